package dbstate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
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
			return fmt.Errorf("%s: %w", a.flag, err)
		}
	}
	if o.Timeout < 0 {
		return fmt.Errorf("%w: negative timeout", ErrInvalidValue)
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

// CheckMove is pure: it returns the checks that passed, or a *RefusalError with every check, passed or failed,
// and every reason to refuse moving o.Replica under o.Under in t.
func CheckMove(t *Topology, o MoveOptions) ([]PreflightCheck, error) {
	o.Replica, o.Under = t.Resolve(o.Replica), t.Resolve(o.Under)
	return checkMove(t, o).result()
}

// checkMove is CheckMove on resolved addresses. With both instances read, it returns them.
func checkMove(t *Topology, o MoveOptions) *checklist {
	l := &checklist{op: "move"}
	r, y, ok := l.pair(t, "replica", o.Replica, "new master", o.Under)
	if !ok {
		return l
	}
	l.allReadable(t, nil)
	switch {
	case r.Replication == nil || r.Master == "":
		l.fail("is a replica", ErrNotReplica, o.Replica+" replicates from no one; only replicas can be moved")
	case r.Master == o.Under:
		l.fail("is a replica", ErrAlreadyThere, o.Replica+" already replicates from "+o.Under)
	default:
		l.pass("is a replica", "%s replicates from %s", o.Replica, r.Master)
	}
	if t.root(o.Replica) != t.root(o.Under) {
		l.fail("same tree", ErrNotSameTree, fmt.Sprintf("%s is under %s, %s under %s", o.Replica, t.root(o.Replica), o.Under, t.root(o.Under)))
	} else {
		l.pass("same tree", "both under %s", t.root(o.Replica))
	}
	if slices.Contains(t.Descendants(o.Replica), o.Under) {
		l.fail("no loop", ErrLoop, o.Under+" replicates (directly or not) from "+o.Replica)
	} else {
		l.pass("no loop", "%s is not below %s", o.Under, o.Replica)
	}
	switch {
	case !y.LogBin:
		l.fail("binlog", ErrNoBinlog, o.Under+" has log_bin=OFF")
	case y.Replication != nil && !y.LogSlaveUpdates:
		l.fail("binlog", ErrNoBinlog, o.Under+" is a replica without log_slave_updates: it does not log what it replicates")
	default:
		l.pass("binlog", "%s logs its writes (log_bin=ON, log_slave_updates=%v)", o.Under, y.LogSlaveUpdates)
	}
	for _, a := range []string{o.Under, o.Replica} {
		if e := t.errantOf(a); len(e) > 0 {
			l.fail("no errant GTIDs", ErrErrantGTID, fmt.Sprintf("%s has transactions its master lacks: %s", a, Position(e)))
		} else {
			l.pass("no errant GTIDs", "%s has nothing its master lacks", a)
		}
	}
	if r.Replication != nil && r.Replication.UsingGTID != "Slave_Pos" && r.Replication.UsingGTID != "Current_Pos" {
		l.fail("GTID", ErrNoGTID, o.Replica+" replicates by file and position")
	} else if r.Replication != nil {
		l.pass("GTID", "%s replicates by GTID (%s)", o.Replica, r.Replication.UsingGTID)
	}
	// Under must have, or be about to get, everything the replica applied.
	need := r.GTIDSlavePos
	switch {
	case y.GTIDCurrentPos.Contains(need):
		l.pass("position", "%s already has %s's position %s", o.Under, o.Replica, need)
	case y.Replication != nil && y.Replication.Healthy():
		l.pass("position", "%s is replicating and will be waited for (up to %v) to reach %s", o.Under, o.Timeout, need)
	default:
		l.fail("position", ErrPositionUnreachable, fmt.Sprintf("%s is at %s, %s needs %s, and %s is not replicating",
			o.Under, y.GTIDCurrentPos, o.Replica, need, o.Under))
	}
	l.known = true
	return l
}

// ValidateAddr checks an instance address as Client takes it: host:port with a port of 1-65535, or a unix
// socket path ("/run/mysqld/mysqld.sock" or "unix:/path").
func ValidateAddr(addr string) error {
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "unix:/") {
		return nil
	}
	_, _, err := splitAddr(addr)
	return err
}

func splitAddr(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: address %q: want host:port", ErrInvalidValue, addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: address %q: port must be 1-65535", ErrInvalidValue, addr)
	}
	if h == "" {
		return "", 0, fmt.Errorf("%w: address %q: no host", ErrInvalidValue, addr)
	}
	return h, port, nil
}

// moveStep returns the step that stops replica, waits (up to timeout) until newMaster has logged the replica's
// position (its gtid_binlog_pos contains the replica's gtid_slave_pos; newMaster may be the root primary), points
// the replica at newMaster and starts it; its undo points it back at oldMaster, if the step stopped it.
// resolve maps the master address a server reports to the topology's key for it. delay is the replica's
// MASTER_DELAY in seconds, kept in both directions.
func moveStep(s Servers, resolve func(string) string, replica, oldMaster, newMaster string, delay int, timeout time.Duration) (*Step, error) {
	nh, np, err := splitAddr(newMaster)
	if err != nil {
		return nil, err
	}
	oh, op, err := splitAddr(oldMaster)
	if err != nil {
		return nil, err
	}
	to, back := ChangeMaster{Host: nh, Port: np, Delay: delay}, ChangeMaster{Host: oh, Port: op, Delay: delay}
	if _, err := to.SQL(); err != nil {
		return nil, err
	}
	var touched atomic.Bool
	return &Step{
		Name:         "move-replica",
		Instance:     replica,
		Description:  fmt.Sprintf("STOP SLAVE on %s; wait until %s has logged its gtid_slave_pos (gtid_binlog_pos, polled, up to %v); %s; START SLAVE", replica, newMaster, timeout, to.Redacted()),
		Precondition: fmt.Sprintf("%s still replicates from %s", replica, oldMaster),
		UndoText:     fmt.Sprintf("point %s back at %s (%s) and start it", replica, oldMaster, back.Redacted()),
		Check: func(ctx context.Context) error {
			st, err := s.ReplicaStatus(ctx, replica)
			if err != nil {
				return err
			}
			if st == nil || resolve(st.MasterAddr()) != resolve(oldMaster) {
				return fmt.Errorf("%w: %s no longer replicates from %s", ErrNotReplica, replica, oldMaster)
			}
			return nil
		},
		Do: func(ctx context.Context) error {
			touched.Store(true)
			if err := s.Exec(ctx, replica, "STOP SLAVE"); err != nil {
				return err
			}
			v, err := s.Vars(ctx, replica)
			if err != nil {
				return err
			}
			// newMaster may be the root primary, whose gtid_slave_pos does not move: wait on what it logged.
			err = waitReporting(ctx, s, fmt.Sprintf("move-replica: %s to log %s's position", newMaster, replica), newMaster, v.GTIDSlavePos, loggedPos,
				func(ctx context.Context) error { return waitLogged(ctx, s, newMaster, v.GTIDSlavePos, timeout) })
			if err != nil {
				if errors.Is(err, ErrWaitTimeout) {
					return fmt.Errorf("%w: %w", ErrPositionUnreachable, err)
				}
				return err
			}
			if err := s.ChangeMaster(ctx, replica, to, true); err != nil {
				return err
			}
			return waitReplicating(ctx, s, replica, newMaster, 10*time.Second)
		},
		Undo: func(ctx context.Context) error {
			if !touched.Load() {
				return ErrNothingChanged
			}
			return s.ChangeMaster(ctx, replica, back, true)
		},
	}, nil
}

// PlanMove checks the move against t (see CheckMove) and that dbstate's account holds the privileges the move
// needs on both instances (MovePrivileges, ReadPrivileges), and returns its plan.
func PlanMove(ctx context.Context, s Servers, t *Topology, o MoveOptions) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	// The step connects to the addresses the operator gave and names the new master by its; keys are for t.
	replica, under := operatorAddr(o.Replica), operatorAddr(o.Under)
	o.Replica, o.Under = t.Resolve(o.Replica), t.Resolve(o.Under)
	l := checkMove(t, o)
	account := s.Credentials().User
	if l.known {
		account = checkPrivileges(ctx, l, s, []string{replica, under}, map[string][]Privilege{
			replica: append(slices.Clip(ReadPrivileges), MovePrivileges...), under: ReadPrivileges})
	}
	checks, err := l.result()
	if err != nil {
		return nil, err
	}
	r := t.Instances[o.Replica]
	// Undo points it back at the master it names now, exactly as it names it.
	st, err := moveStep(s, t.Resolve, replica, r.Replication.MasterAddr(), under, delayOf(r), o.Timeout)
	if err != nil {
		return nil, err
	}
	was := r.Replication.MasterAddr()
	return &Plan{
		Kind:      "move",
		Summary:   fmt.Sprintf("move %s from %s to under %s", replica, r.Master, under),
		Preflight: checks,
		Steps:     []*Step{st},
		OneShot:   true,
		Account:   account,
		VerifyRollback: func(ctx context.Context) error {
			return waitReplicating(ctx, s, replica, was, 10*time.Second)
		},
	}, nil
}

// delayOf is an instance's MASTER_DELAY in seconds (0 for none).
func delayOf(in *Instance) int {
	if in == nil || in.Replication == nil {
		return 0
	}
	return int(min(in.Replication.SQLDelay, 1<<31-1))
}

// Move discovers the topology from the two instances, plans the move and executes it.
func Move(ctx context.Context, s Servers, o MoveOptions, eo ExecOptions) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return discoverPlanExecute(ctx, s, []string{o.Replica, o.Under}, DiscoverOptions{}, eo, func(t *Topology) (*Plan, error) {
		return PlanMove(ctx, s, t, o)
	})
}

// discoverPlanExecute is what Move and Switchover share: discover from the seeds, plan, execute.
func discoverPlanExecute(ctx context.Context, s Servers, seeds []string, do DiscoverOptions, eo ExecOptions,
	plan func(*Topology) (*Plan, error)) (*Plan, error) {
	t, err := Discover(ctx, s, seeds, do)
	if err != nil {
		return nil, err
	}
	p, err := plan(t)
	if err != nil {
		return nil, err
	}
	return p, p.Execute(ctx, eo)
}
