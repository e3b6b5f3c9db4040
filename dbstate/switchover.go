package dbstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// FenceMode says what a switchover does about connected accounts that write through read_only.
type FenceMode string

const (
	// FenceLock locks, on the old primary only, every account that writes through read_only, connected or not
	// (ALTER USER ... ACCOUNT LOCK, not binlogged), and kills the client sessions there. After a promotion the
	// locks stay on the demoted primary (unless SwitchoverOptions.UnlockDemoted); after a rollback they are
	// lifted. The same accounts are locked on the candidate until the promotion and on the old primary's other
	// replicas until the end of the run, from before the old primary is fenced. dbstate's own account, when it
	// writes through read_only, is locked on the candidate and those replicas with them, and on the old primary
	// right before the promotion (connections logged in ahead serve the rest of the run on each). NeverLock
	// accounts are killed but not locked (the plan warns about them).
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
	// MaxWindow bounds the write-unavailability window: from the start of set-read-only until promote made Y
	// writable, every step (the read_only=1 wait behind LOCK TABLES and long writes, killing sessions, the final
	// wait for Y to apply X's last write, promote) runs within MaxWindow of that start (plus a tenth, at most 1 s,
	// so that the server's own abort of a blocked read_only=1 arrives first); past it the switchover rolls back.
	// A hung X or Y costs at most that much of writes; Plan.Report warns when the window exceeded MaxWindow.
	// Zero means 5 s.
	MaxWindow time.Duration
	// LongWrite is the age from which a write statement or an open transaction that wrote counts as long: before
	// read_only=1 (at planning, and again right before), such writes and LOCK TABLES sessions on X make the
	// switchover refuse, naming them (they would make read_only=1 wait, and every write queue behind it); each
	// look counts only what a second look 250 ms later still finds (see settledLongWrites). Zero means 1 s.
	LongWrite time.Duration
	// DelayedCandidate names the candidate again (host:port, as Candidate) to say that it may be a delayed
	// replica: its MASTER_DELAY is then removed before the catch-up (CHANGE MASTER TO MASTER_DELAY=0; a rollback
	// restores it), so that it applies what it held back while X still takes writes. Empty: a candidate with a
	// MASTER_DELAY is refused (ErrDelayedCandidate).
	DelayedCandidate string
	// KillLongWrites kills those sessions (KILL CONNECTION, right before read_only=1) instead of refusing: their
	// transactions roll back.
	KillLongWrites bool
	// MaxLag refuses the switchover when Y or a replica to move is further behind. Zero means 10 s.
	MaxLag time.Duration
	// Replication are the credentials that X will use to replicate from Y. X stores them in the master.info file
	// of its data directory, readable by anyone with access to it: pass an account with REPLICATION SLAVE only.
	//
	// Empty User means the Client's own credentials, the admin login dbstate runs as. That works, but it stores
	// the ADMIN PASSWORD in X's master.info; the plan then carries a warning. Avoid it: the dbstate command
	// requires --repl-user.
	Replication Credentials
	// SkipReplicationLogin skips the check, before step 1, that Replication can log in to the candidate and
	// holds REPLICATION SLAVE there. That check logs in from dbstate's host, which the account may not be
	// allowed from even where the old primary is; skip it only then.
	SkipReplicationLogin bool
	// AllowUnreachable are instances (host:port) that may be unreadable: the switchover proceeds without them
	// and the plan says they are left behind. Every other instance of the tree must answer.
	AllowUnreachable []string
	// Fence defaults to FenceLock.
	Fence FenceMode
	// NeverLock are accounts that fencing kills the sessions of but never locks: an explicit opt-out, e.g. for a
	// break-glass login (root@localhost). The plan warns of the risk: such a writer can still write to X in the
	// window (the switchover then rolls back) or in its last round trip (that write is lost), and to the demoted
	// X afterwards (a split brain). Empty (the default): every account that writes through read_only is locked
	// on X, root@localhost and dbstate's own account included, and on Y until the promotion and X's other
	// replicas until the end of the run, dbstate's own included.
	NeverLock []Account
	// UnlockDemoted unlocks the fenced accounts on X after a successful switchover too, as dbstate did before:
	// a writer that bypasses read_only can then write to the demoted primary (a split brain, and X's
	// replication stops with error 1950). By default (false) they stay locked on X until the operator lifts the
	// locks (Plan.Report says how); they are usable on Y all along, since the locks were not binlogged.
	UnlockDemoted bool
}

// Validate checks the options without touching a server: addresses are host:port, durations are not negative,
// the fence mode is known.
func (o SwitchoverOptions) Validate() error {
	for _, a := range []struct{ flag, addr string }{{"primary", o.Primary}, {"candidate", o.Candidate}} {
		if _, _, err := splitAddr(a.addr); err != nil {
			return fmt.Errorf("%s: %w", a.flag, err)
		}
	}
	if o.DelayedCandidate != "" && operatorAddr(o.DelayedCandidate) != operatorAddr(o.Candidate) {
		return fmt.Errorf("%w: delayed candidate %q is not the candidate %q", ErrInvalidValue, o.DelayedCandidate, o.Candidate)
	}
	for _, a := range o.AllowUnreachable {
		if _, _, err := splitAddr(a); err != nil {
			return fmt.Errorf("allow-unreachable: %w", err)
		}
	}
	if o.Timeout < 0 || o.MaxWindow < 0 || o.MaxLag < 0 || o.LongWrite < 0 {
		return fmt.Errorf("%w: negative duration", ErrInvalidValue)
	}
	switch o.Fence {
	case "", FenceLock, FenceRefuse:
	default:
		return fmt.Errorf("%w: fence mode %q (want lock or refuse)", ErrInvalidValue, o.Fence)
	}
	return nil
}

func (o *SwitchoverOptions) defaults(s Servers) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxWindow <= 0 {
		o.MaxWindow = 5 * time.Second
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 10 * time.Second
	}
	if o.LongWrite <= 0 {
		o.LongWrite = time.Second
	}
	if o.Replication.User == "" && s != nil {
		o.Replication = s.Credentials()
	}
	if o.Fence == "" {
		o.Fence = FenceLock
	}
}

// CheckSwitchover is pure: it returns the checks that passed, or a *RefusalError with every check, passed or
// failed, and every reason to refuse switching t from o.Primary to o.Candidate.
func CheckSwitchover(t *Topology, o SwitchoverOptions) ([]PreflightCheck, error) {
	o.defaults(nil)
	o.Primary, o.Candidate = t.Resolve(o.Primary), t.Resolve(o.Candidate)
	return checkSwitchover(t, o).result()
}

// checkSwitchover is CheckSwitchover on options with defaults and resolved addresses.
func checkSwitchover(t *Topology, o SwitchoverOptions) *checklist {
	l := &checklist{op: "switchover"}
	x, y, ok := l.pair(t, "primary", o.Primary, "candidate", o.Candidate)
	if !ok {
		return l
	}
	l.known = true
	l.allReadable(t, o.AllowUnreachable)
	if x.Replication != nil {
		l.fail("primary is a root", ErrPrimaryReplicates, fmt.Sprintf("%s replicates from %s", o.Primary, x.Master))
	} else {
		l.pass("primary is a root", "%s replicates from no one", o.Primary)
	}
	if y.Master != o.Primary {
		l.fail("direct replica", ErrNotReplica, fmt.Sprintf("%s is not a direct replica of %s (its master: %q)", o.Candidate, o.Primary, y.Master))
	} else {
		l.pass("direct replica", "%s replicates from %s", o.Candidate, o.Primary)
	}
	// The candidate and every replica to move must replicate, by GTID, without lag beyond the bound.
	replicas := []string{o.Candidate}
	for _, c := range t.Children(o.Primary) {
		if c != o.Candidate {
			replicas = append(replicas, c)
		}
	}
	healthy := true
	for _, a := range replicas {
		r := t.Instances[a]
		switch {
		case r.Error != "": // reported by allReadable
			healthy = false
			continue
		case r.Replication == nil:
			continue
		case !r.Replication.Healthy():
			l.fail("replication healthy", ErrReplicaUnhealthy, fmt.Sprintf("%s: io=%s sql=%s %s%s", a, r.Replication.IORunning,
				r.Replication.SQLRunning, r.Replication.LastIOError, r.Replication.LastSQLError))
			healthy = false
		default:
			if lag, ok := r.Replication.Lag(); !ok || lag > o.MaxLag {
				l.fail("lag", ErrLagTooHigh, fmt.Sprintf("%s is %s behind beyond its delay of %ds (bound %v)", a, r.Replication.LagString(), r.Replication.SQLDelay, o.MaxLag))
				healthy = false
			}
		}
		if f := r.Replication.FilterString(); a == o.Candidate && f != "" {
			l.fail("candidate not filtered", ErrReplicationFilter, fmt.Sprintf("%s has replication filters (%s): the writes it skipped would be lost", a, f))
			healthy = false
		}
		if a == o.Candidate && r.Replication.Delayed() && o.DelayedCandidate != "" {
			l.pass("candidate not delayed", "%s applies with MASTER_DELAY=%d and is named as a delayed candidate: its delay is removed "+
				"before the catch-up (restored by a rollback)", a, r.Replication.SQLDelay)
		} else if a == o.Candidate && r.Replication.Delayed() {
			l.fail("candidate not delayed", ErrDelayedCandidate, fmt.Sprintf("%s applies with MASTER_DELAY=%d: it would stay behind in the window; "+
				"remove its delay first (CHANGE MASTER TO MASTER_DELAY=0) or promote another replica", a, r.Replication.SQLDelay))
			healthy = false
		}
		if r.Replication != nil && r.Replication.UsingGTID != "Slave_Pos" && r.Replication.UsingGTID != "Current_Pos" {
			l.fail("GTID", ErrNoGTID, a+" replicates by file and position")
		}
	}
	if healthy {
		l.pass("healthy, no lag", "%s healthy with lag within %v (beyond any MASTER_DELAY, which moved replicas keep)", strings.Join(replicas, ", "), o.MaxLag)
	}
	errant := false
	for _, p := range t.Problems {
		if p.Kind == ProblemErrant {
			errant = true
			l.fail("no errant GTIDs", ErrErrantGTID, p.Instance+": "+p.Detail)
		}
	}
	if !errant {
		l.pass("no errant GTIDs", "no instance of the tree has transactions its master lacks")
	}
	if x.BinlogFormat != y.BinlogFormat {
		l.fail("binlog format", ErrBinlogFormat, fmt.Sprintf("%s uses %s, %s uses %s", o.Primary, x.BinlogFormat, o.Candidate, y.BinlogFormat))
	} else {
		l.pass("binlog format", "both %s", x.BinlogFormat)
	}
	if x.GTIDDomainID != y.GTIDDomainID {
		l.fail("GTID domain", ErrGTIDDomain, fmt.Sprintf("%s has gtid_domain_id=%d, %s %d: as the primary it would log new writes in another "+
			"GTID domain than the tree follows; set the same gtid_domain_id on both first", o.Candidate, y.GTIDDomainID, o.Primary, x.GTIDDomainID))
	} else {
		l.pass("GTID domain", "both log in gtid_domain_id %d", x.GTIDDomainID)
	}
	if !y.LogBin || !y.LogSlaveUpdates {
		l.fail("candidate binlog", ErrNoBinlog, fmt.Sprintf("%s: log_bin=%v log_slave_updates=%v; its replicas would miss writes", o.Candidate, y.LogBin, y.LogSlaveUpdates))
	} else {
		l.pass("candidate binlog", "%s has log_bin and log_slave_updates", o.Candidate)
	}
	var writable []string
	for _, a := range t.sortedAddrs() {
		if in := t.Instances[a]; in.Error == "" && !in.ReadOnly && a != o.Primary {
			writable = append(writable, a)
		}
	}
	if len(writable) > 0 {
		l.fail("one writable", ErrMultipleWritable, "writable besides the primary: "+strings.Join(writable, ", "))
	} else {
		l.pass("one writable", "only %s is writable", o.Primary)
	}
	loops := t.loops()
	for _, lp := range loops {
		l.fail("no loop", ErrLoop, strings.Join(lp, " -> "))
	}
	if len(loops) == 0 {
		l.pass("no loop", "no replication loop in the tree")
	}
	return l
}

// PlanSwitchover checks the switchover against t, that dbstate's account holds every privilege the steps use
// on every instance they touch (PrimaryPrivileges, CandidatePrivileges, MovePrivileges, ReadPrivileges), and
// against live X (connected accounts that write through read_only), and returns its plan, which runs once (Plan.OneShot). The steps, in order (Vitess's ordering: the
// candidate catches up before the primary is demoted), each built by its own function:
//
//  1. move X's other replicas under Y (moveStep; each waits until Y has its position);
//  2. wait until Y has X's current position, while X still takes writes (catchUpStep);
//  3. lock the same accounts on Y until the promotion, and on X's other replicas until the end of the run,
//     dbstate's own among them when it writes through read_only (fenceReplicaStep);
//  4. lock every account that writes through read_only (not binlogged, X only) (fenceWritersStep), stop X's
//     ENABLED events (disableEventsStep), look for long writes and LOCK TABLES on X and fail or kill them
//     (longWritesStep), then set X read-only (setReadOnlyStep): the window starts, bounded by MaxWindow until
//     promote ends it;
//  5. kill the remaining client sessions on X (killSessionsStep);
//  6. wait with MASTER_GTID_WAIT until Y has X's final gtid_binlog_pos, bounded by MaxWindow
//     (waitForCandidateStep), then lock dbstate's own account on X when it bypasses read_only
//     (fenceOwnAccountStep);
//  7. promote Y: stop replication, check that X logged nothing since the final wait, make Y writable (the point of
//     no return) (promoteStep), lift Y's fence (unfenceCandidateStep), enable on Y the events stopped on X
//     (enableEventsStep), and forget its master (resetCandidateStep);
//  8. repoint X under Y with MASTER_DEMOTE_TO_SLAVE=1 (or gtid_slave_pos from gtid_binlog_pos before 10.10)
//     (repointOldPrimaryStep);
//  9. unlock the fenced accounts on X: a cleanup step that runs only when an earlier step fails, so that a
//     rollback leaves nothing locked; after a promotion they stay locked on X, the demoted primary (with
//     UnlockDemoted, it always runs and unlocks) (unfenceWritersStep);
//  10. verify that X and the moved replicas replicate from Y (verifyStep).
func PlanSwitchover(ctx context.Context, s Servers, t *Topology, o SwitchoverOptions) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	adminAsRepl := o.Replication.User == ""
	o.defaults(s)
	// X and Y are the addresses the operator gave: the steps connect to them and CHANGE MASTER names Y by
	// them, whatever the servers report as report_host. kx and ky are their keys in t, for lookups.
	X, Y := operatorAddr(o.Primary), operatorAddr(o.Candidate)
	o.Primary, o.Candidate = t.Resolve(o.Primary), t.Resolve(o.Candidate)
	kx, ky := o.Primary, o.Candidate
	connect := func(key string) string {
		switch key {
		case kx:
			return X
		case ky:
			return Y
		}
		return key
	}
	l := checkSwitchover(t, o)
	account := s.Credentials().User
	var lockWarn string
	var others []string // X's replicas other than Y, by key
	for _, r := range t.Children(kx) {
		if r != ky {
			others = append(others, r)
		}
	}
	if l.known {
		order := append([]string{X, Y}, others...)
		needs := map[string][]Privilege{
			X: append(slices.Clip(ReadPrivileges), PrimaryPrivileges...),
			Y: append(slices.Clip(ReadPrivileges), CandidatePrivileges...),
		}
		for _, r := range others {
			needs[r] = append(append(slices.Clip(ReadPrivileges), MovePrivileges...), ReplicaFencePrivileges...)
		}
		account = checkPrivileges(ctx, l, s, order, needs)
		var below []string
		for _, d := range t.Descendants(kx) {
			below = append(below, connect(d))
		}
		var unchecked []string // left behind, allowed unreachable: their errant GTIDs are not known
		for _, a := range t.sortedAddrs() {
			if in := t.Instances[a]; in.Error != "" && a != kx && a != ky {
				unchecked = append(unchecked, a)
			}
		}
		checkErrantLive(ctx, l, s, X, below, unchecked)
		checkReplicationLogin(ctx, l, s, Y, o, adminAsRepl)
		lockWarn = checkLongWrites(ctx, l, s, X, o.LongWrite, o.KillLongWrites)
	}
	checks, err := l.result()
	if err != nil {
		return nil, err
	}
	x := t.Instances[kx]
	fi, err := s.Writers(ctx, X, o.NeverLock)
	if err != nil {
		return nil, err
	}
	// Past the promotion a step that fails does not stop the others: a hung new primary must not keep the old one
	// from being repointed under it, nor a hung old primary the rest.
	p := &Plan{Kind: "switchover", Summary: fmt.Sprintf("make %s the primary in place of %s", Y, X), Preflight: checks, OneShot: true,
		Account: account, FinishPastPointOfNoReturn: true}
	if o.Fence == FenceRefuse {
		if w := fi.writers(); w != "" {
			l := &checklist{op: "switchover", checks: checks}
			l.fail("writers", ErrUnfencedWriters, fmt.Sprintf("connected to %s with READ ONLY ADMIN or ALL PRIVILEGES: %s", X, w))
			_, err := l.result()
			return nil, err
		}
	}
	fs := &fenceState{}
	kept := "they stay locked on " + X + " after the switchover (the demoted primary; not binlogged, so usable on " + Y + ")"
	if o.UnlockDemoted {
		kept = "they are unlocked on " + X + " after the switchover (--unlock-demoted; see the warning)"
		p.Warnings = append(p.Warnings, fmt.Sprintf("the fenced accounts are unlocked on %s after the switchover: a writer that bypasses "+
			"read_only and connects to %s then writes to the demoted primary (a split brain; %s's replication stops with error 1950)", X, X, X))
	}
	if lock := fi.toLock(); len(lock) > 0 {
		p.Preflight = append(p.Preflight, PreflightCheck{Name: "writers fenced", Passed: true, Detail: fmt.Sprintf(
			"%s write through read_only; they will be locked on %s from before read_only=1; %s", accountList(lock), X, kept)})
	} else {
		p.Preflight = append(p.Preflight, PreflightCheck{Name: "writers", Passed: true, Detail: "no account writes through read_only"})
	}
	win := &window{bound: o.MaxWindow}
	p.Report = func() []string {
		if o.UnlockDemoted {
			return win.report()
		}
		return append(win.report(), keptReport(X, Y, fs)...)
	}
	if lockWarn != "" {
		p.Warnings = append(p.Warnings, lockWarn)
	}
	if never := fi.NeverLocked; len(never) > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s write through read_only and are never locked (--never-lock): their "+
			"sessions are killed, but a new session in the window fails the switchover (a rollback), one in the last round trip "+
			"before %s becomes writable is lost to %s, and after the switchover they write to the demoted %s: a split brain, "+
			"and %s's replication stops with error 1950", accountList(never), Y, Y, X, X))
	}
	events, err := s.Events(ctx, X)
	if err != nil {
		return nil, err
	}
	if len(events) > 0 {
		p.Preflight = append(p.Preflight, PreflightCheck{Name: "events fenced", Passed: true, Detail: fmt.Sprintf(
			"%s are ENABLED on %s: stopped there before read_only=1 (DISABLE ON SLAVE, not binlogged), enabled on %s after the promotion "+
				"(its event_scheduler must be ON for them to run)", eventList(events), X, Y)})
	}
	if fi.OwnBypasses {
		p.Preflight = append(p.Preflight, PreflightCheck{Name: "own account fenced", Passed: true, Detail: fmt.Sprintf(
			"dbstate's own account %s writes through read_only: locked, like the other accounts, on %s until the promotion%s, "+
				"and on %s right before the promotion and kept locked there; connections that dbstate logs in ahead on each do the rest "+
				"of the run there; lift it on %s afterwards, see the report", fi.Self, Y, othersUntilEnd(others, connect), X, X)})
	}
	if adminAsRepl {
		p.Warnings = append(p.Warnings, fmt.Sprintf("no replication credentials given: %s will replicate as dbstate's own login %q, "+
			"whose password it stores in its master.info; prefer an account with REPLICATION SLAVE only", X, o.Replication.User))
	}
	if fi.Shared > 0 && !fi.OwnBypasses {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d other sessions use dbstate's own user (account %s, which bypasses read_only); "+
			"they are killed but the account is never locked (--never-lock)", fi.Shared, fi.Self))
	}
	var moved []string
	for _, r := range others {
		st, err := moveStep(s, t.Resolve, r, t.Instances[r].Replication.MasterAddr(), Y, delayOf(t.Instances[r]), o.Timeout)
		if err != nil {
			return nil, err
		}
		announceMove(st, X, Y)
		moved = append(moved, r)
		p.Steps = append(p.Steps, st)
	}
	repoint, err := repointOldPrimaryStep(s, X, Y, o.Replication, VersionAtLeast(x.Version, 10, 10))
	if err != nil {
		return nil, err
	}
	hand := &handoff{}
	restored := map[string]string{Y: t.Instances[ky].Replication.MasterAddr()}
	for _, r := range others {
		restored[r] = t.Instances[r].Replication.MasterAddr()
	}
	fsY, es := &fenceState{}, &eventState{}
	fenced := map[string]*fenceState{Y: fsY} // the fences on the tree's replicas until the promotion
	for _, r := range others {
		fenced[r] = &fenceState{}
	}
	p.VerifyRollback = func(ctx context.Context) error {
		return verifyRestored(ctx, s, X, !x.ReadOnly, restored, fs, fenced, es)
	}
	if d := delayOf(t.Instances[ky]); d > 0 && o.DelayedCandidate != "" {
		p.Steps = append(p.Steps, undelayStep(s, Y, t.Instances[ky].Replication.MasterAddr(), d))
	}
	p.Steps = append(p.Steps,
		catchUpStep(s, t.Resolve, X, Y, o.Timeout),
		fenceReplicaStep(s, X, Y, true, o.NeverLock, fi.toLock(), fsY),
	)
	for _, r := range others {
		p.Steps = append(p.Steps, fenceReplicaStep(s, X, r, false, o.NeverLock, fi.toLock(), fenced[r]))
	}
	p.Steps = append(p.Steps,
		fenceWritersStep(s, X, o.Fence, o.NeverLock, fi.Accounts, fs),
		disableEventsStep(s, X, events, es),
		longWritesStep(s, X, o.LongWrite, o.KillLongWrites),
		// The window: every step from read_only=1 on X until Y is writable runs within MaxWindow of its start.
		win.within(setReadOnlyStep(s, X, o.MaxWindow), false),
		win.within(killSessionsStep(s, X), false),
		win.within(waitForCandidateStep(s, X, Y, o.MaxWindow, hand), false),
	)
	if fi.OwnBypasses {
		p.Steps = append(p.Steps, win.within(fenceOwnAccountStep(s, X, Y, fi, fs, fsY), false))
	}
	p.Steps = append(p.Steps,
		win.within(promoteStep(s, X, Y, hand, fs), true),
		unfenceReplicaStep(s, Y, true, Y, fsY),
		enableEventsStep(s, Y, es, fs),
		resetCandidateStep(s, Y),
		repoint,
		unfenceWritersStep(s, X, fs, !o.UnlockDemoted),
		verifyStep(s, Y, append([]string{X}, moved...)),
	)
	// The other replicas stay fenced until the very end, not only until the promotion: a writer that the
	// candidate refused a moment before it became writable goes on to the next instance, and would land there
	// if it were unfenced at once.
	for _, r := range others {
		p.Steps = append(p.Steps, unfenceReplicaStep(s, r, false, Y, fenced[r]))
	}
	return p, nil
}

// othersUntilEnd names X's other replicas, fenced until the end of the run, for the plan text.
func othersUntilEnd(others []string, connect func(string) string) string {
	if len(others) == 0 {
		return ""
	}
	addrs := make([]string, len(others))
	for k, r := range others {
		addrs[k] = connect(r)
	}
	return " and on " + strings.Join(addrs, ", ") + " until the end of the run"
}

// keptReport says, after a switchover, which accounts stay locked on the demoted primary X and how to lift them.
// With dbstate's own login and root@localhost locked there too, the way in is the new primary Y: an unlock
// binlogged on Y (a no-op there) replicates to X.
func keptReport(X, Y string, fs *fenceState) []string {
	if !fs.promoted.Load() {
		return nil
	}
	locked := fs.snapshot()
	if len(locked) == 0 {
		return nil
	}
	var out []string
	out = append(out, fmt.Sprintf("kept locked on %s, the demoted primary, so that they cannot write there: %s "+
		"(usable on the new primary; the lock was not binlogged)", X, accountList(locked)))
	for _, a := range locked {
		if acc, err := a.sql(); err == nil {
			out = append(out, fmt.Sprintf("to lift on %s: on %s, the new primary, binlogged so that it replicates to %s: ALTER USER %s ACCOUNT UNLOCK; "+
				"or on %s with a login that is not locked: SET SESSION sql_log_bin=0; ALTER USER %s ACCOUNT UNLOCK;", X, Y, X, acc, X, acc))
		}
	}
	out = append(out, "or: dbstate recover --audit-log FILE, which does the same through "+Y+" (the audit log of this run lists them; "+
		"any admin login of "+Y+" will do, e.g. --defaults-file of another account); lift them before "+X+" becomes a primary again "+
		"(dbstate's own login cannot switch back to "+X+" while it is locked there)")
	for k := range out {
		out[k] = clean(out[k]) // account names are outside text
	}
	return out
}

// checkReplicationLogin logs in to Y as the replication account, so that a wrong password or a missing grant
// is found before step 1, not after the point of no return.
func checkReplicationLogin(ctx context.Context, l *checklist, s Servers, Y string, o SwitchoverOptions, adminAsRepl bool) {
	const name = "replication login"
	switch {
	case adminAsRepl:
		l.pass(name, "dbstate's own login replicates (see the warning)")
		return
	case o.SkipReplicationLogin:
		l.pass(name, "not checked (asked): %q logging in to %s is not verified", o.Replication.User, Y)
		return
	case o.Replication.Password == "":
		l.pass(name, "not checked: no password given, the old primary keeps the one in its master.info")
		return
	}
	p, err := s.LoginPrivileges(ctx, Y, o.Replication)
	if err != nil {
		l.fail(name, ErrReplicationLogin, fmt.Sprintf("%q cannot log in to %s from dbstate's host: %v", o.Replication.User, Y, err))
		return
	}
	if !p.Has(privReplSlave) {
		l.fail(name, ErrReplicationLogin, fmt.Sprintf("%s on %s lacks REPLICATION SLAVE", p.Account, Y))
		return
	}
	l.pass(name, "%s logs in to %s and holds REPLICATION SLAVE", p.Account, Y)
}

// verifyRestored reads back what a rolled-back switchover must have restored: X writable (if it was), every
// replica replicating from the master it had (both threads running, within 10 s), no account still locked by
// the fence on X or on the candidate (others), no event left stopped on X, and no replica with a GTID that X
// lacks.
func verifyRestored(ctx context.Context, s Servers, X string, writable bool, replicas map[string]string, fs *fenceState,
	others map[string]*fenceState, es *eventState) error {
	var errs []error
	if v, err := s.Vars(ctx, X); err != nil {
		errs = append(errs, err)
	} else if writable && v.ReadOnly {
		errs = append(errs, fmt.Errorf("%s is still read-only", X))
	}
	if left := fs.snapshot(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("still locked on %s: %s", X, accountList(left)))
	}
	for addr, f := range others {
		if left := f.snapshot(); len(left) > 0 {
			errs = append(errs, fmt.Errorf("still locked on %s: %s", addr, accountList(left)))
		}
	}
	if left := es.snapshot(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("events still stopped on %s: %s", X, eventList(left)))
	}
	addrs := make([]string, 0, len(replicas))
	for r := range replicas {
		addrs = append(addrs, r)
	}
	slices.Sort(addrs)
	got := map[string]Position{}
	for _, r := range addrs {
		if err := waitReplicating(ctx, s, r, replicas[r], 10*time.Second); err != nil {
			errs = append(errs, err)
		}
		if v, err := s.Vars(ctx, r); err == nil {
			got[r] = v.GTIDBinlogPos
		}
	}
	if v, err := s.Vars(ctx, X); err == nil {
		for _, r := range addrs {
			if e := ErrantAgainst(got[r], v.GTIDBinlogPos.Merge(v.GTIDCurrentPos)); len(e) > 0 {
				errs = append(errs, fmt.Errorf("%s has %s, which %s lacks", r, Position(e), X))
			}
		}
	}
	return errors.Join(errs...)
}

// operatorAddr is an address as the operator gave it, with localhost written 127.0.0.1 (as NormalizeAddr).
func operatorAddr(addr string) string {
	if h, p, err := splitAddr(addr); err == nil {
		return NormalizeAddr(h, p)
	}
	return addr
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
func Switchover(ctx context.Context, s Servers, o SwitchoverOptions, eo ExecOptions) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	do := DiscoverOptions{Diagnose: DiagnoseOptions{MaxLag: o.MaxLag}}
	return discoverPlanExecute(ctx, s, []string{o.Primary, o.Candidate}, do, eo, func(t *Topology) (*Plan, error) {
		return PlanSwitchover(ctx, s, t, o)
	})
}
