package dbstate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// FenceMode says what a switchover does about connected accounts that write through read_only.
type FenceMode string

const (
	// FenceLock locks those accounts (ALTER USER ... ACCOUNT LOCK, not binlogged) and kills their sessions for the
	// switchover window, and unlocks them afterwards, on the old primary only. NeverLock accounts and other
	// sessions of dbstate's own account are killed but not locked (the plan warns about them).
	FenceLock FenceMode = "lock"
	// FenceRefuse refuses the switchover, at planning and again right before the window, while anything that
	// writes through read_only is connected to the old primary: an account to lock, a NeverLock account, or a
	// session of dbstate's own user other than dbstate's own connections. It names them all.
	FenceRefuse FenceMode = "refuse"
)

// SwitchoverOptions describe a planned switchover of Primary to Candidate.
type SwitchoverOptions struct {
	Primary   string // X, host:port
	Candidate string // Y, host:port, a direct replica of X
	// Timeout bounds each catch-up wait while X still takes writes (moving replicas, catching Y up). Zero: 30 s.
	Timeout time.Duration
	// MaxWindow bounds the final wait, while X is read-only, for Y to apply X's last write. Zero means 5 s.
	MaxWindow time.Duration
	// MaxLag refuses the switchover when Y or a replica to move is further behind. Zero means 10 s.
	MaxLag time.Duration
	// Replication are the credentials that X will use to replicate from Y. X stores them in the master.info file
	// of its data directory, readable by anyone with access to it: pass an account with REPLICATION SLAVE only.
	//
	// Empty User means the Client's own credentials, the admin login dbstate runs as. That works, but it stores
	// the ADMIN PASSWORD in X's master.info; the plan then carries a warning. Avoid it: the dbstate command
	// requires --repl-user.
	Replication Credentials
	// Fence defaults to FenceLock.
	Fence FenceMode
	// NeverLock are accounts that fencing kills the sessions of but never locks, so that a crash of dbstate in
	// the window cannot lock the DBAs out. nil means DefaultNeverLock; an empty non-nil slice means none.
	NeverLock []Account
}

// DefaultNeverLock is the break-glass account: on Debian, root@localhost logs in through the unix socket.
var DefaultNeverLock = []Account{{User: "root", Host: "localhost"}}

// Validate checks the options without touching a server: addresses are host:port, durations are not negative,
// the fence mode is known.
func (o SwitchoverOptions) Validate() error {
	for _, a := range []struct{ flag, addr string }{{"primary", o.Primary}, {"candidate", o.Candidate}} {
		if _, _, err := splitAddr(a.addr); err != nil {
			return fmt.Errorf("switchover %s: %w", a.flag, err)
		}
	}
	if o.Timeout < 0 || o.MaxWindow < 0 || o.MaxLag < 0 {
		return fmt.Errorf("switchover: %w: negative duration", ErrInvalidValue)
	}
	switch o.Fence {
	case "", FenceLock, FenceRefuse:
	default:
		return fmt.Errorf("switchover: %w: fence mode %q (want lock or refuse)", ErrInvalidValue, o.Fence)
	}
	return nil
}

func (o *SwitchoverOptions) defaults(c *Client) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxWindow <= 0 {
		o.MaxWindow = 5 * time.Second
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 10 * time.Second
	}
	if o.Replication.User == "" && c != nil {
		o.Replication = c.Credentials()
	}
	if o.Fence == "" {
		o.Fence = FenceLock
	}
	if o.NeverLock == nil {
		o.NeverLock = DefaultNeverLock
	}
}

// CheckSwitchover is pure: it returns the checks that passed, or a *RefusalError with every reason to refuse
// switching t from o.Primary to o.Candidate.
func CheckSwitchover(t *Topology, o SwitchoverOptions) ([]PreflightCheck, error) {
	o.defaults(nil)
	o.Primary, o.Candidate = t.Resolve(o.Primary), t.Resolve(o.Candidate)
	var reasons []error
	var ok []PreflightCheck
	pass := func(name, format string, args ...any) {
		ok = append(ok, PreflightCheck{Name: name, Detail: fmt.Sprintf(format, args...)})
	}
	x, y := t.Instances[o.Primary], t.Instances[o.Candidate]
	for _, e := range []struct {
		addr string
		in   *Instance
	}{{o.Primary, x}, {o.Candidate, y}} {
		if e.in == nil {
			reasons = append(reasons, because(ErrUnknownInstance, e.addr))
		} else if e.in.Error != "" {
			reasons = append(reasons, because(ErrUnreachable, e.addr+": "+e.in.Error))
		}
	}
	if len(reasons) > 0 {
		return nil, &RefusalError{Op: "switchover", Reasons: reasons}
	}
	if o.Primary == o.Candidate {
		return nil, &RefusalError{Op: "switchover", Reasons: []error{because(ErrSameInstance, o.Primary)}}
	}
	if x.Replication != nil {
		reasons = append(reasons, because(ErrPrimaryReplicates, fmt.Sprintf("%s replicates from %s", o.Primary, x.Master)))
	} else {
		pass("primary is a root", "%s replicates from no one", o.Primary)
	}
	if y.Master != o.Primary {
		reasons = append(reasons, because(ErrNotReplica, fmt.Sprintf("%s is not a direct replica of %s (its master: %q)", o.Candidate, o.Primary, y.Master)))
	} else {
		pass("direct replica", "%s replicates from %s", o.Candidate, o.Primary)
	}
	// The candidate and every replica to move must replicate, by GTID, without lag beyond the bound.
	replicas := []string{o.Candidate}
	for _, c := range t.Children(o.Primary) {
		if c != o.Candidate {
			replicas = append(replicas, c)
		}
	}
	for _, a := range replicas {
		r := t.Instances[a]
		switch {
		case r.Error != "":
			reasons = append(reasons, because(ErrUnreachable, a+": "+r.Error))
			continue
		case r.Replication == nil:
			continue
		case !r.Replication.Healthy():
			reasons = append(reasons, because(ErrReplicaUnhealthy, fmt.Sprintf("%s: io=%s sql=%s %s%s", a, r.Replication.IORunning,
				r.Replication.SQLRunning, r.Replication.LastIOError, r.Replication.LastSQLError)))
		case r.Replication.SecondsBehind == nil || time.Duration(*r.Replication.SecondsBehind)*time.Second > o.MaxLag:
			lag := "NULL"
			if r.Replication.SecondsBehind != nil {
				lag = fmt.Sprintf("%ds", *r.Replication.SecondsBehind)
			}
			reasons = append(reasons, because(ErrLagTooHigh, fmt.Sprintf("%s is %s behind (bound %v)", a, lag, o.MaxLag)))
		}
		if r.Replication != nil && r.Replication.UsingGTID != "Slave_Pos" && r.Replication.UsingGTID != "Current_Pos" {
			reasons = append(reasons, because(ErrNoGTID, a+" replicates by file and position"))
		}
	}
	if !hasReason(reasons, ErrReplicaUnhealthy, ErrLagTooHigh) {
		pass("healthy, no lag", "%s healthy with lag within %v", strings.Join(replicas, ", "), o.MaxLag)
	}
	errant := false
	for _, p := range t.Problems {
		if p.Kind == ProblemErrant {
			errant = true
			reasons = append(reasons, because(ErrErrantGTID, p.Instance+": "+p.Detail))
		}
	}
	if !errant {
		pass("no errant GTIDs", "no instance of the tree has transactions its master lacks")
	}
	if x.BinlogFormat != y.BinlogFormat {
		reasons = append(reasons, because(ErrBinlogFormat, fmt.Sprintf("%s uses %s, %s uses %s", o.Primary, x.BinlogFormat, o.Candidate, y.BinlogFormat)))
	} else {
		pass("binlog format", "both %s", x.BinlogFormat)
	}
	if !y.LogBin || !y.LogSlaveUpdates {
		reasons = append(reasons, because(ErrNoBinlog, fmt.Sprintf("%s: log_bin=%v log_slave_updates=%v; its replicas would miss writes", o.Candidate, y.LogBin, y.LogSlaveUpdates)))
	} else {
		pass("candidate binlog", "%s has log_bin and log_slave_updates", o.Candidate)
	}
	var writable []string
	for _, a := range t.sortedAddrs() {
		if in := t.Instances[a]; in.Error == "" && !in.ReadOnly && a != o.Primary {
			writable = append(writable, a)
		}
	}
	if len(writable) > 0 {
		reasons = append(reasons, because(ErrMultipleWritable, "writable besides the primary: "+strings.Join(writable, ", ")))
	} else {
		pass("one writable", "only %s is writable", o.Primary)
	}
	for _, l := range t.loops() {
		reasons = append(reasons, because(ErrLoop, strings.Join(l, " -> ")))
	}
	if len(reasons) > 0 {
		return nil, &RefusalError{Op: "switchover", Reasons: reasons}
	}
	return ok, nil
}

func hasReason(reasons []error, sentinels ...error) bool {
	for _, r := range reasons {
		for _, s := range sentinels {
			if u, ok := r.(*reason); ok && u.err == s {
				return true
			}
		}
	}
	return false
}

// PlanSwitchover checks the switchover against t and against live X (connected accounts that write through
// read_only), and returns its plan. The steps, in order (Vitess's ordering: the candidate catches up before
// the primary is demoted):
//
//  1. move X's other replicas under Y (each waits until Y has its position);
//  2. wait until Y has X's current position, while X still takes writes;
//  3. lock the accounts that write through read_only (not binlogged, X only);
//  4. set X read-only;
//  5. kill the remaining client sessions on X;
//  6. wait with MASTER_GTID_WAIT until Y has X's final gtid_binlog_pos (bounded by MaxWindow);
//  7. promote Y: stop replication, check that X logged nothing since the final wait, make Y writable (the point of
//     no return), forget its master;
//  8. repoint X under Y with MASTER_DEMOTE_TO_SLAVE=1 (or gtid_slave_pos from gtid_binlog_pos before 10.10);
//  9. unlock the fenced accounts on X: a cleanup step, which runs even when an earlier step fails (after the
//     rollback, or past the point of no return), so that no failure leaves them locked;
//  10. verify that X and the moved replicas replicate from Y.
func PlanSwitchover(ctx context.Context, c *Client, t *Topology, o SwitchoverOptions) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	adminAsRepl := o.Replication.User == ""
	o.defaults(c)
	o.Primary, o.Candidate = t.Resolve(o.Primary), t.Resolve(o.Candidate)
	checks, err := CheckSwitchover(t, o)
	if err != nil {
		return nil, err
	}
	X, Y := o.Primary, o.Candidate
	x := t.Instances[X]
	fi, err := c.detectFence(ctx, X, o.NeverLock)
	if err != nil {
		return nil, err
	}
	p := &Plan{Kind: "switchover", Summary: fmt.Sprintf("make %s the primary in place of %s", Y, X), Preflight: checks}
	if o.Fence == FenceRefuse {
		if w := fi.writers(); w != "" {
			return nil, &RefusalError{Op: "switchover", Reasons: []error{because(ErrUnfencedWriters,
				fmt.Sprintf("connected to %s with READ ONLY ADMIN or ALL PRIVILEGES: %s", X, w))}}
		}
	}
	if len(fi.accounts) > 0 {
		p.Preflight = append(p.Preflight, PreflightCheck{Name: "writers fenced", Detail: fmt.Sprintf(
			"%s write through read_only; they will be locked on %s for the window", accountList(fi.accounts), X)})
	} else {
		p.Preflight = append(p.Preflight, PreflightCheck{Name: "writers", Detail: "no connected account writes through read_only"})
	}
	if len(fi.unlocked) > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s write through read_only and are never locked (NeverLock): their "+
			"sessions are killed, but a new session in the window could write to %s", accountList(fi.unlocked), X))
	}
	if adminAsRepl {
		p.Warnings = append(p.Warnings, fmt.Sprintf("no replication credentials given: %s will replicate as dbstate's own login %q, "+
			"whose password it stores in its master.info; prefer an account with REPLICATION SLAVE only", X, o.Replication.User))
	}
	if fi.shared > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d other sessions use dbstate's own user (account %s, which bypasses read_only); "+
			"they are killed but the account cannot be locked", fi.shared, fi.self))
	}
	yh, yp, err := splitAddr(Y)
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, r := range t.Children(X) {
		if r == Y {
			continue
		}
		st, err := moveStep(c, t.Resolve, r, X, Y, o.Timeout)
		if err != nil {
			return nil, err
		}
		moved = append(moved, r)
		p.Steps = append(p.Steps, st)
	}
	p.Steps = append(p.Steps, &Step{
		Name: "catch-up", Instance: Y,
		Description:  fmt.Sprintf("wait (up to %v) until %s has applied %s's current gtid_binlog_pos, while %s still takes writes", o.Timeout, Y, X, X),
		Precondition: fmt.Sprintf("%s replicates from %s with both threads running", Y, X),
		Check:        func(ctx context.Context) error { return checkReplicating(ctx, c, t.Resolve, Y, X) },
		Do: func(ctx context.Context) error {
			v, err := c.vars(ctx, X)
			if err != nil {
				return err
			}
			return c.waitFor(ctx, Y, v.GTIDBinlogPos, o.Timeout)
		},
	})

	// Fencing: the accounts are re-detected when the step runs; undo, and the cleanup step unfence-writers, unlock
	// exactly those it locked and not yet unlocked.
	var lockMu sync.Mutex
	var locked []Account
	unlock := func(ctx context.Context) error {
		lockMu.Lock()
		accs := append([]Account(nil), locked...)
		lockMu.Unlock()
		return c.setAccountsLocked(ctx, X, accs, false, func(a Account) {
			lockMu.Lock()
			locked = slices.DeleteFunc(locked, func(b Account) bool { return a == b })
			lockMu.Unlock()
		})
	}
	p.Steps = append(p.Steps, &Step{
		Name: "fence-writers", Instance: X,
		Description: fmt.Sprintf("lock (ALTER USER ... ACCOUNT LOCK, sql_log_bin=0) the connected accounts that write through read_only "+
			"(READ ONLY ADMIN or ALL PRIVILEGES, directly or through a role), re-detected now; at planning: %s", orNone(accountList(fi.accounts))),
		UndoText: "unlock the accounts this step locked (sql_log_bin=0)",
		Do: func(ctx context.Context) error {
			now, err := c.detectFence(ctx, X, o.NeverLock)
			if err != nil {
				return err
			}
			if w := now.writers(); o.Fence == FenceRefuse && w != "" {
				return fmt.Errorf("%w: connected to %s since planning: %s", ErrUnfencedWriters, X, w)
			}
			accs := mergeAccounts(fi.accounts, now.accounts)
			return c.setAccountsLocked(ctx, X, accs, true, func(a Account) {
				lockMu.Lock()
				locked = append(locked, a)
				lockMu.Unlock()
			})
		},
		Undo: unlock,
	})
	wasReadOnly := x.ReadOnly
	p.Steps = append(p.Steps, &Step{
		Name: "set-read-only", Instance: X,
		Description: fmt.Sprintf("SET GLOBAL read_only=1 on %s (the write-unavailability window starts)", X),
		UndoText:    "SET GLOBAL read_only=0",
		Do:          func(ctx context.Context) error { return c.exec(ctx, X, "SET GLOBAL read_only=1") },
		Undo: func(ctx context.Context) error {
			if wasReadOnly {
				return nil
			}
			return c.exec(ctx, X, "SET GLOBAL read_only=0")
		},
	})
	p.Steps = append(p.Steps, &Step{
		Name: "kill-sessions", Instance: X,
		Description: fmt.Sprintf("KILL CONNECTION every client session on %s except dbstate's own and replicas' binlog dumps, and wait until they are gone", X),
		Do: func(ctx context.Context) error {
			_, err := c.killClientSessions(ctx, X, 5*time.Second)
			return err
		},
	})
	var finalPos Position
	p.Steps = append(p.Steps, &Step{
		Name: "wait-for-candidate", Instance: Y,
		Description:  fmt.Sprintf("read %s's final gtid_binlog_pos; MASTER_GTID_WAIT on %s (up to %v); check %s logged nothing since", X, Y, o.MaxWindow, X),
		Precondition: fmt.Sprintf("%s is read-only", X),
		Check: func(ctx context.Context) error {
			v, err := c.vars(ctx, X)
			if err != nil {
				return err
			}
			if !v.ReadOnly {
				return fmt.Errorf("%s is writable again", X)
			}
			return nil
		},
		Do: func(ctx context.Context) error {
			v, err := c.vars(ctx, X)
			if err != nil {
				return err
			}
			finalPos = v.GTIDBinlogPos
			if err := c.waitFor(ctx, Y, finalPos, o.MaxWindow); err != nil {
				return err
			}
			after, err := c.vars(ctx, X)
			if err != nil {
				return err
			}
			if after.GTIDBinlogPos.String() != finalPos.String() {
				return fmt.Errorf("%s logged more transactions while read-only (%s -> %s): a writer is not fenced", X, finalPos, after.GTIDBinlogPos)
			}
			return nil
		},
	})
	stopped := false
	p.Steps = append(p.Steps, &Step{
		Name: "promote", Instance: Y,
		Description: fmt.Sprintf("STOP SLAVE on %s; check it has %s's final position; right before the point of no return, read %s's "+
			"gtid_binlog_pos and read_only again and fail (rolling back) if %s logged anything %s lacks or is writable; "+
			"SET GLOBAL read_only=0 on %s (the window ends)", Y, X, X, X, Y, Y),
		UndoText:        fmt.Sprintf("SET GLOBAL read_only=1 and START SLAVE on %s, if they were changed", Y),
		PointOfNoReturn: true,
		Do: func(ctx context.Context) error {
			if err := c.exec(ctx, Y, "STOP SLAVE"); err != nil {
				return err
			}
			stopped = true
			v, err := c.vars(ctx, Y)
			if err != nil {
				return err
			}
			if !v.GTIDCurrentPos.Contains(finalPos) {
				return fmt.Errorf("%s stopped at %s, short of %s", Y, v.GTIDCurrentPos, finalPos)
			}
			// The last look at X: a session that was not fenced (a NeverLock account) may have written since the
			// final wait. Y no longer replicates, so such a write would be lost once Y is writable.
			xv, err := c.vars(ctx, X)
			if err != nil {
				return err
			}
			if !v.GTIDCurrentPos.Contains(xv.GTIDBinlogPos) {
				return fmt.Errorf("%s logged transactions after the final wait (%s; %s has %s): a writer is not fenced",
					X, xv.GTIDBinlogPos, Y, v.GTIDCurrentPos)
			}
			if !xv.ReadOnly {
				return fmt.Errorf("%s is writable again", X)
			}
			return c.exec(ctx, Y, "SET GLOBAL read_only=0")
		},
		Undo: func(ctx context.Context) error {
			if !stopped {
				return nil
			}
			return c.exec(ctx, Y, "SET GLOBAL read_only=1", "START SLAVE")
		},
	})
	p.Steps = append(p.Steps, &Step{
		Name: "reset-candidate", Instance: Y,
		Description: fmt.Sprintf("RESET SLAVE ALL on %s: it replicates from no one", Y),
		Do:          func(ctx context.Context) error { return c.exec(ctx, Y, "RESET SLAVE ALL") },
	})
	demote := ChangeMaster{Host: yh, Port: yp, User: o.Replication.User, Password: o.Replication.Password, DemoteToSlave: VersionAtLeast(x.Version, 10, 10)}
	how := "MASTER_DEMOTE_TO_SLAVE=1 puts its gtid_binlog_pos into gtid_slave_pos"
	if !demote.DemoteToSlave {
		how = "SET GLOBAL gtid_slave_pos = its gtid_binlog_pos first (before 10.10)"
	}
	p.Steps = append(p.Steps, &Step{
		Name: "repoint-old-primary", Instance: X,
		Description: fmt.Sprintf("%s; START SLAVE (%s)", demote.Redacted(), how),
		Do: func(ctx context.Context) error {
			if !demote.DemoteToSlave {
				if err := c.exec(ctx, X, "STOP SLAVE", "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos"); err != nil {
					return err
				}
			}
			return c.changeMaster(ctx, X, demote, true)
		},
	})
	p.Steps = append(p.Steps, &Step{
		Name: "unfence-writers", Instance: X,
		Description: "unlock the accounts locked by fence-writers and not unlocked yet (sql_log_bin=0); " +
			"it runs even when an earlier step fails, past the point of no return too",
		Cleanup: true,
		Do:      unlock,
	})
	p.Steps = append(p.Steps, &Step{
		Name: "verify", Instance: X,
		Description: fmt.Sprintf("wait (up to 10s) until %s and %s replicate from %s with both threads running",
			X, orNone(strings.Join(moved, ", ")), Y),
		Do: func(ctx context.Context) error {
			for _, r := range append([]string{X}, moved...) {
				if err := c.waitReplicating(ctx, r, Y, 10*time.Second); err != nil {
					return err
				}
			}
			return nil
		},
	})
	return p, nil
}

func checkReplicating(ctx context.Context, c *Client, resolve func(string) string, replica, master string) error {
	s, err := c.replicaStatus(ctx, replica)
	if err != nil {
		return err
	}
	if s == nil || resolve(s.MasterAddr()) != master {
		return fmt.Errorf("%w: %s does not replicate from %s", ErrNotReplica, replica, master)
	}
	if !s.Healthy() {
		return fmt.Errorf("%w: %s: io=%s sql=%s %s%s", ErrReplicaUnhealthy, replica, s.IORunning, s.SQLRunning, s.LastIOError, s.LastSQLError)
	}
	return nil
}

func accountList(as []Account) string {
	parts := make([]string, len(as))
	for k, a := range as {
		parts[k] = a.String()
	}
	return strings.Join(parts, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func mergeAccounts(a, b []Account) []Account {
	seen := map[Account]bool{}
	var out []Account
	for _, x := range append(append([]Account(nil), a...), b...) {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Switchover discovers the topology from X and Y, plans the switchover and executes it.
func Switchover(ctx context.Context, c *Client, o SwitchoverOptions, eo ExecOptions) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	t, err := Discover(ctx, c, []string{o.Primary, o.Candidate}, DiscoverOptions{Diagnose: DiagnoseOptions{MaxLag: o.MaxLag}})
	if err != nil {
		return nil, err
	}
	p, err := PlanSwitchover(ctx, c, t, o)
	if err != nil {
		return nil, err
	}
	return p, p.Execute(ctx, eo)
}
