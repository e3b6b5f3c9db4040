package dbstate

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// MoveOptions describe moving Replica under Under.
type MoveOptions struct {
	Replica string // host:port of the replica to move
	Under   string // host:port of its new master
	// Timeout bounds the wait for Under to reach the replica's position. Zero means 30 s.
	Timeout time.Duration
}

// Validate checks the options without touching a server.
func (o MoveOptions) Validate() error {
	for _, a := range []struct{ flag, addr string }{{"replica", o.Replica}, {"under", o.Under}} {
		if _, _, err := splitAddr(a.addr); err != nil {
			return fmt.Errorf("move %s: %w", a.flag, err)
		}
	}
	if o.Timeout < 0 {
		return fmt.Errorf("move: %w: negative timeout", ErrInvalidValue)
	}
	return nil
}

func (o *MoveOptions) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
}

// root follows Master links to the top; it stops on loops.
func (t *Topology) root(addr string) string {
	seen := map[string]bool{}
	for {
		in, ok := t.Instances[addr]
		if !ok || in.Master == "" || seen[addr] {
			return addr
		}
		if _, known := t.Instances[in.Master]; !known {
			return addr
		}
		seen[addr] = true
		addr = in.Master
	}
}

func (t *Topology) errantOf(addr string) []GTID {
	in := t.Instances[addr]
	if in == nil || in.Error != "" {
		return nil
	}
	m, ok := t.Instances[in.Master]
	if !ok || m.Error != "" {
		return nil
	}
	return Errant(in.GTIDBinlogPos, in.ServerID, m.GTIDCurrentPos)
}

// CheckMove is pure: it returns the checks that passed, or a *RefusalError with every reason to refuse moving
// o.Replica under o.Under in t.
func CheckMove(t *Topology, o MoveOptions) ([]PreflightCheck, error) {
	o.Replica, o.Under = t.Resolve(o.Replica), t.Resolve(o.Under)
	var reasons []error
	var ok []PreflightCheck
	pass := func(name, format string, args ...any) {
		ok = append(ok, PreflightCheck{Name: name, Detail: fmt.Sprintf(format, args...)})
	}
	r, y := t.Instances[o.Replica], t.Instances[o.Under]
	for _, x := range []struct {
		addr string
		in   *Instance
	}{{o.Replica, r}, {o.Under, y}} {
		if x.in == nil {
			reasons = append(reasons, because(ErrUnknownInstance, x.addr))
		} else if x.in.Error != "" {
			reasons = append(reasons, because(ErrUnreachable, x.addr+": "+x.in.Error))
		}
	}
	if len(reasons) > 0 {
		return nil, &RefusalError{Op: "move", Reasons: reasons}
	}
	if o.Replica == o.Under {
		return nil, &RefusalError{Op: "move", Reasons: []error{because(ErrSameInstance, o.Replica)}}
	}
	if r.Replication == nil || r.Master == "" {
		reasons = append(reasons, because(ErrNotReplica, o.Replica+" replicates from no one; only replicas can be moved"))
	} else if r.Master == o.Under {
		reasons = append(reasons, because(ErrAlreadyThere, o.Replica+" already replicates from "+o.Under))
	}
	if t.root(o.Replica) != t.root(o.Under) {
		reasons = append(reasons, because(ErrNotSameTree, fmt.Sprintf("%s is under %s, %s under %s", o.Replica, t.root(o.Replica), o.Under, t.root(o.Under))))
	}
	loop := false
	for _, d := range t.Descendants(o.Replica) {
		if d == o.Under {
			loop = true
		}
	}
	if loop {
		reasons = append(reasons, because(ErrLoop, o.Under+" replicates (directly or not) from "+o.Replica))
	} else {
		pass("no loop", "%s is not below %s", o.Under, o.Replica)
	}
	if !y.LogBin {
		reasons = append(reasons, because(ErrNoBinlog, o.Under+" has log_bin=OFF"))
	} else if y.Replication != nil && !y.LogSlaveUpdates {
		reasons = append(reasons, because(ErrNoBinlog, o.Under+" is a replica without log_slave_updates: it does not log what it replicates"))
	} else {
		pass("binlog", "%s logs its writes (log_bin=ON, log_slave_updates=%v)", o.Under, y.LogSlaveUpdates)
	}
	if e := t.errantOf(o.Under); len(e) > 0 {
		reasons = append(reasons, because(ErrErrantGTID, fmt.Sprintf("%s has transactions its master lacks: %s", o.Under, Position(e))))
	} else {
		pass("no errant GTIDs", "%s has nothing its master lacks", o.Under)
	}
	if e := t.errantOf(o.Replica); len(e) > 0 {
		reasons = append(reasons, because(ErrErrantGTID, fmt.Sprintf("%s has transactions its master lacks: %s", o.Replica, Position(e))))
	}
	if r.Replication != nil && r.Replication.UsingGTID != "Slave_Pos" && r.Replication.UsingGTID != "Current_Pos" {
		reasons = append(reasons, because(ErrNoGTID, o.Replica+" replicates by file and position"))
	}
	// Under must have, or be about to get, everything the replica applied.
	need := r.GTIDSlavePos
	switch {
	case y.GTIDCurrentPos.Contains(need):
		pass("position", "%s already has %s's position %s", o.Under, o.Replica, need)
	case y.Replication != nil && y.Replication.Healthy():
		pass("position", "%s is replicating and will be waited for (up to %v) to reach %s", o.Under, o.Timeout, need)
	default:
		reasons = append(reasons, because(ErrPositionUnreachable, fmt.Sprintf("%s is at %s, %s needs %s, and %s is not replicating",
			o.Under, y.GTIDCurrentPos, o.Replica, need, o.Under)))
	}
	if len(reasons) > 0 {
		return nil, &RefusalError{Op: "move", Reasons: reasons}
	}
	return ok, nil
}

func splitAddr(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: address %q: want host:port", ErrInvalidValue, addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("%w: address %q: bad port", ErrInvalidValue, addr)
	}
	return h, port, nil
}

// moveStep returns the step that stops replica, waits (up to timeout) until newMaster has logged the replica's
// position (its gtid_binlog_pos contains the replica's gtid_slave_pos; newMaster may be the root primary), points
// the replica at newMaster and starts it; its undo points it back at oldMaster.
// resolve maps the master address a server reports to the topology's key for it.
func moveStep(c *Client, resolve func(string) string, replica, oldMaster, newMaster string, timeout time.Duration) (*Step, error) {
	nh, np, err := splitAddr(newMaster)
	if err != nil {
		return nil, err
	}
	oh, op, err := splitAddr(oldMaster)
	if err != nil {
		return nil, err
	}
	touched := false
	return &Step{
		Name:         "move-replica",
		Instance:     replica,
		Description:  fmt.Sprintf("STOP SLAVE on %s; wait until %s has logged its gtid_slave_pos (gtid_binlog_pos, polled, up to %v); %s; START SLAVE", replica, newMaster, timeout, ChangeMaster{Host: nh, Port: np}.Redacted()),
		Precondition: fmt.Sprintf("%s still replicates from %s", replica, oldMaster),
		UndoText:     fmt.Sprintf("point %s back at %s (%s) and start it", replica, oldMaster, ChangeMaster{Host: oh, Port: op}.Redacted()),
		Check: func(ctx context.Context) error {
			s, err := c.replicaStatus(ctx, replica)
			if err != nil {
				return err
			}
			if s == nil || resolve(s.MasterAddr()) != oldMaster {
				return fmt.Errorf("%w: %s no longer replicates from %s", ErrNotReplica, replica, oldMaster)
			}
			return nil
		},
		Do: func(ctx context.Context) error {
			touched = true
			if err := c.exec(ctx, replica, "STOP SLAVE"); err != nil {
				return err
			}
			v, err := c.vars(ctx, replica)
			if err != nil {
				return err
			}
			// newMaster may be the root primary, whose gtid_slave_pos does not move: wait on what it logged.
			if err := c.waitLogged(ctx, newMaster, v.GTIDSlavePos, timeout); err != nil {
				return fmt.Errorf("%w: %w", ErrPositionUnreachable, err)
			}
			if err := c.changeMaster(ctx, replica, ChangeMaster{Host: nh, Port: np}, true); err != nil {
				return err
			}
			return c.waitReplicating(ctx, replica, newMaster, 10*time.Second)
		},
		Undo: func(ctx context.Context) error {
			if !touched {
				return nil
			}
			return c.changeMaster(ctx, replica, ChangeMaster{Host: oh, Port: op}, true)
		},
	}, nil
}

// PlanMove checks the move against t (see CheckMove) and returns its plan.
func PlanMove(c *Client, t *Topology, o MoveOptions) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	o.Replica, o.Under = t.Resolve(o.Replica), t.Resolve(o.Under)
	checks, err := CheckMove(t, o)
	if err != nil {
		return nil, err
	}
	st, err := moveStep(c, t.Resolve, o.Replica, t.Instances[o.Replica].Master, o.Under, o.Timeout)
	if err != nil {
		return nil, err
	}
	return &Plan{
		Kind:      "move",
		Summary:   fmt.Sprintf("move %s from %s to under %s", o.Replica, t.Instances[o.Replica].Master, o.Under),
		Preflight: checks,
		Steps:     []*Step{st},
	}, nil
}

// Move discovers the topology from the two instances, plans the move and executes it.
func Move(ctx context.Context, c *Client, o MoveOptions, eo ExecOptions) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	t, err := Discover(ctx, c, []string{o.Replica, o.Under}, DiscoverOptions{})
	if err != nil {
		return nil, err
	}
	p, err := PlanMove(c, t, o)
	if err != nil {
		return nil, err
	}
	return p, p.Execute(ctx, eo)
}
