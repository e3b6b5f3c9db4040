package dbstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evenkeel/evenkeel/internal/ctxwait"
	"github.com/go-sql-driver/mysql"
)

// The steps of a switchover from X to Y, each built by its own function (see PlanSwitchover for their order).
// What one step hands to a later one goes through a value made for that purpose (fenceState, handoff), created
// with the plan: that is why a switchover plan runs once.

// fenceState is what fence-writers hands to its undo and to unfence-writers: the accounts it locked on X and
// that nobody has unlocked yet.
type fenceState struct {
	mu     sync.Mutex
	locked []Account
	// promoted is set once promote made Y writable: from then on X is the demoted primary.
	promoted atomic.Bool
}

func (f *fenceState) add(a Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.locked = append(f.locked, a)
}

func (f *fenceState) remove(a Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.locked = slices.DeleteFunc(f.locked, func(b Account) bool { return a == b })
}

func (f *fenceState) snapshot() []Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Account(nil), f.locked...)
}

// lock locks accounts on X, recording each once its lock took. A statement that got no answer (a hung X, a
// cancelled run) may still take effect there: then every account of the batch counts as locked, so that the
// undo lifts them all, as recover would from the announced batch (unlocking one whose lock never took changes
// nothing: the fence steps leave out the accounts locked already).
func (f *fenceState) lock(ctx context.Context, s Servers, X string, accounts []Account) error {
	err := s.SetAccountsLocked(ctx, X, accounts, true, f.add)
	if unanswered(err) {
		for _, a := range accounts {
			if !slices.Contains(f.snapshot(), a) {
				f.add(a)
			}
		}
	}
	return err
}

// unlock unlocks on X the accounts still locked; ErrNothingChanged when there are none.
func (f *fenceState) unlock(ctx context.Context, s Servers, X string) error {
	accs := f.snapshot()
	if len(accs) == 0 {
		return ErrNothingChanged
	}
	return s.SetAccountsLocked(ctx, X, accs, false, f.remove)
}

// handoff carries X's final position from wait-for-candidate to promote.
type handoff struct {
	mu       sync.Mutex
	finalPos Position
}

func (h *handoff) set(p Position) { h.mu.Lock(); h.finalPos = p; h.mu.Unlock() }

func (h *handoff) get() Position { h.mu.Lock(); defer h.mu.Unlock(); return h.finalPos }

// checkReplicating fails unless replica replicates from master with both threads running.
func checkReplicating(ctx context.Context, s Servers, resolve func(string) string, replica, master string) error {
	st, err := s.ReplicaStatus(ctx, replica)
	if err != nil {
		return err
	}
	if st == nil || resolve(st.MasterAddr()) != resolve(master) {
		return fmt.Errorf("%w: %s does not replicate from %s", ErrNotReplica, replica, master)
	}
	if !st.Healthy() {
		return fmt.Errorf("%w: %s: io=%s sql=%s %s%s", ErrReplicaUnhealthy, replica, st.IORunning, st.SQLRunning, st.LastIOError, st.LastSQLError)
	}
	return nil
}

// catchUpStep waits (up to timeout) until Y has applied X's current gtid_binlog_pos, while X still takes writes.
func catchUpStep(s Servers, resolve func(string) string, X, Y string, timeout time.Duration) *Step {
	return &Step{
		Name: "catch-up", ReadsOnly: true, Instance: Y,
		Description:  fmt.Sprintf("wait (up to %v) until %s has applied %s's current gtid_binlog_pos, while %s still takes writes", timeout, Y, X, X),
		Precondition: fmt.Sprintf("%s replicates from %s with both threads running", Y, X),
		Check:        func(ctx context.Context) error { return checkReplicating(ctx, s, resolve, Y, X) },
		Do: func(ctx context.Context) error {
			v, err := s.Vars(ctx, X)
			if err != nil {
				return err
			}
			pos := v.GTIDBinlogPos
			return waitReporting(ctx, s, fmt.Sprintf("catch-up: %s to apply %s's position", Y, X), Y, pos, appliedPos,
				func(ctx context.Context) error { return s.WaitApplied(ctx, Y, pos, timeout) })
		},
	}
}

// fenceWritersStep locks, on X only, every account that writes through read_only (connected or not, see
// detectFence): those found at planning (planned) and those found again when the step runs. With FenceRefuse it fails instead when any such
// writer connected since planning. Its undo unlocks exactly what it locked.
func fenceWritersStep(s Servers, X string, mode FenceMode, neverLock, planned []Account, fs *fenceState) *Step {
	return &Step{
		Name: stepFenceWriters, Instance: X,
		Description: fmt.Sprintf("lock on %s only (ALTER USER ... ACCOUNT LOCK, sql_log_bin=0) every account that writes through read_only "+
			"(READ ONLY ADMIN or ALL PRIVILEGES, directly or through a role), connected or not, re-detected now; at planning: %s", X, orNone(accountList(planned))),
		UndoText: "unlock the accounts this step locked (sql_log_bin=0)",
		Detail:   func() string { return "locked on " + X + ": " + orNone(accountList(fs.snapshot())) },
		Do: func(ctx context.Context) error {
			now, err := s.Writers(ctx, X, neverLock)
			if err != nil {
				return err
			}
			if w := now.writers(); mode == FenceRefuse && w != "" {
				return fmt.Errorf("%w: connected to %s since planning: %s", ErrUnfencedWriters, X, w)
			}
			lock := now.lockNow(planned)
			if len(lock) > 0 {
				announce(ctx, FenceAction{Lock: lock}, "about to lock on "+X+": "+accountList(lock))
			}
			return fs.lock(ctx, s, X, lock)
		},
		Undo: func(ctx context.Context) error { return fs.unlock(ctx, s, X) },
	}
}

// setReadOnlyStep sets X read-only: the write-unavailability window starts. SET GLOBAL read_only=1 waits for
// LOCK TABLES and long writes to end, and every other write queues behind it; max_statement_time bounds that
// wait by bound (the window), after which the step fails and the switchover rolls back. Its undo makes X
// writable again only when this step made it read-only.
func setReadOnlyStep(s Servers, X string, bound time.Duration) *Step {
	var attempted atomic.Bool
	return &Step{
		Detail: func() string {
			if attempted.Load() {
				return "SET GLOBAL read_only=1 sent"
			}
			return "already read-only: nothing changed"
		},
		Name: stepSetReadOnly, Instance: X,
		Description: fmt.Sprintf("SET GLOBAL read_only=1 on %s (the write-unavailability window starts), waiting at most %v for LOCK TABLES and long writes (max_statement_time)", X, bound),
		UndoText:    "SET GLOBAL read_only=0, if this step made it read-only",
		Do: func(ctx context.Context) error {
			// The topology may be stale: read_only as it is now decides what the undo restores.
			v, err := s.Vars(ctx, X)
			if err != nil {
				return err
			}
			if v.ReadOnly {
				return nil // nothing to change, nothing to undo
			}
			stmt := "SET STATEMENT max_statement_time=" + secondsLiteral(bound) + " FOR SET GLOBAL read_only=1"
			attempted.Store(true)
			ro := true
			announce(ctx, FenceAction{ReadOnly: &ro}, "about to SET GLOBAL read_only=1 on "+X+" (it was writable)")
			if err := s.Exec(allowStatement(ctx, bound), X, stmt); err != nil {
				if isStatementTimeout(err) {
					return fmt.Errorf("%s: read_only=1 did not take within %v: LOCK TABLES or a long write holds it (see SHOW PROCESSLIST): %w", X, bound, err)
				}
				return err
			}
			return nil
		},
		Undo: func(ctx context.Context) error {
			if !attempted.Load() {
				return ErrNothingChanged
			}
			// A statement that failed may or may not have taken effect (a lost connection): look.
			v, err := s.Vars(ctx, X)
			if err != nil {
				return err
			}
			if !v.ReadOnly {
				return ErrNothingChanged
			}
			return s.Exec(ctx, X, "SET GLOBAL read_only=0")
		},
	}
}

// isStatementTimeout reports whether err is MariaDB's ER_STATEMENT_TIMEOUT (max_statement_time exceeded).
func isStatementTimeout(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1969
}

// killSessionsStep kills every client session on X but dbstate's own and replicas' binlog dumps.
func killSessionsStep(s Servers, X string) *Step {
	var killed atomic.Int64
	return &Step{
		Detail: func() string { return fmt.Sprintf("killed %d sessions", killed.Load()) },
		Name:   "kill-sessions", Instance: X,
		Description: fmt.Sprintf("KILL CONNECTION every client session on %s except dbstate's own and replicas' binlog dumps, and wait until they are gone", X),
		Do: func(ctx context.Context) error {
			n, err := s.KillClientSessions(ctx, X, 5*time.Second)
			killed.Store(int64(n))
			return err
		},
	}
}

// waitForCandidateStep reads X's final gtid_binlog_pos (handed to promote), waits with MASTER_GTID_WAIT (up to
// maxWindow) until Y applied it, and checks that X logged nothing meanwhile.
func waitForCandidateStep(s Servers, X, Y string, maxWindow time.Duration, h *handoff) *Step {
	return &Step{
		Name: "wait-for-candidate", ReadsOnly: true, Instance: Y,
		Detail:       func() string { return fmt.Sprintf("%s's final position: %s", X, orNone(h.get().String())) },
		Description:  fmt.Sprintf("read %s's final gtid_binlog_pos; MASTER_GTID_WAIT on %s (up to %v); check %s logged nothing since", X, Y, maxWindow, X),
		Precondition: fmt.Sprintf("%s is read-only", X),
		Check: func(ctx context.Context) error {
			v, err := s.Vars(ctx, X)
			if err != nil {
				return err
			}
			if !v.ReadOnly {
				return fmt.Errorf("%s is writable again", X)
			}
			return nil
		},
		Do: func(ctx context.Context) error {
			v, err := s.Vars(ctx, X)
			if err != nil {
				return err
			}
			final := v.GTIDBinlogPos
			h.set(final)
			err = waitReporting(ctx, s, fmt.Sprintf("wait-for-candidate (%s is read-only): %s to apply its final position", X, Y), Y, final, appliedPos,
				func(ctx context.Context) error { return waitWhileApplying(ctx, s, Y, final, maxWindow) })
			if err != nil {
				return err
			}
			after, err := s.Vars(ctx, X)
			if err != nil {
				return err
			}
			if after.GTIDBinlogPos.String() != final.String() {
				return fmt.Errorf("%s logged more transactions while read-only (%s -> %s): a writer is not fenced", X, final, after.GTIDBinlogPos)
			}
			return nil
		},
	}
}

// ErrCandidateStopped is returned when the candidate's replication stops during the final wait: the wait fails at
// once instead of running out the window.
var ErrCandidateStopped = errors.New("the candidate's replication stopped during the wait")

// waitWhileApplying waits (MASTER_GTID_WAIT, up to timeout) until Y applied pos, and fails at once when Y's
// replication threads stop meanwhile (checked every 20 ms on another connection).
func waitWhileApplying(ctx context.Context, s Servers, Y string, pos Position, timeout time.Duration) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		for wctx.Err() == nil {
			if ctxwait.Sleep(wctx, 20*time.Millisecond) != nil {
				return
			}
			st, err := s.ReplicaStatus(wctx, Y)
			if err == nil && (st == nil || st.SQLRunning != "Yes" || st.LastSQLErrno != 0) {
				what := "it replicates from no one"
				if st != nil {
					what = fmt.Sprintf("sql=%s %s", st.SQLRunning, st.LastSQLError)
				}
				cancel(fmt.Errorf("%w: %s: %s", ErrCandidateStopped, Y, what))
				return
			}
		}
	}()
	err := s.WaitApplied(wctx, Y, pos, timeout)
	if cause := context.Cause(wctx); err != nil && errors.Is(cause, ErrCandidateStopped) {
		return cause
	}
	return err
}

// promoteStep stops replication on Y, checks it has X's final position and that X logged nothing more and is
// still read-only, then makes Y writable: the point of no return.
func promoteStep(s Servers, X, Y string, h *handoff, fs *fenceState) *Step {
	var stopped atomic.Bool
	return &Step{
		Name: stepPromote, Instance: Y,
		Description: fmt.Sprintf("STOP SLAVE on %s; check it has %s's final position; right before the point of no return, read %s's "+
			"gtid_binlog_pos and read_only again and fail (rolling back) if %s logged anything %s lacks or is writable; "+
			"SET GLOBAL read_only=0 on %s (the window ends)", Y, X, X, X, Y, Y),
		UndoText: fmt.Sprintf("SET GLOBAL read_only=1 and START SLAVE on %s, if they were changed; never once read_only=0 was sent "+
			"without an answer (%s may run it when it answers again): the switchover then counts as past its point of no return", Y, Y),
		PointOfNoReturn: true,
		Do: func(ctx context.Context) error {
			if err := s.Exec(ctx, Y, "STOP SLAVE"); err != nil {
				// A STOP SLAVE that got no answer (a hung Y) may still take effect there: undo it then too.
				stopped.Store(unanswered(err))
				return err
			}
			stopped.Store(true)
			final := h.get()
			v, err := s.Vars(ctx, Y)
			if err != nil {
				return err
			}
			if !v.GTIDCurrentPos.Contains(final) {
				return fmt.Errorf("%s stopped at %s, short of %s", Y, v.GTIDCurrentPos, final)
			}
			// The last look at X: a session that was not fenced (a NeverLock account) may have written since the
			// final wait. Y no longer replicates, so such a write would be lost once Y is writable.
			xv, err := s.Vars(ctx, X)
			if err != nil {
				return err
			}
			// What Y applied from X: gtid_slave_pos. Its gtid_current_pos would do, but for a write that Y took
			// itself meanwhile (one of dbstate's own login, unlocked on Y from fence-own-account on), whose
			// sequence number can equal that of X's missing one: compared per domain by sequence number, Y would
			// seem to have it.
			applied := v.GTIDSlavePos
			if len(applied) == 0 {
				applied = v.GTIDCurrentPos
			}
			if !v.GTIDCurrentPos.Contains(xv.GTIDBinlogPos) || !applied.Contains(xv.GTIDBinlogPos) {
				return fmt.Errorf("%s logged transactions after the final wait (%s; %s applied %s): a writer is not fenced",
					X, xv.GTIDBinlogPos, Y, applied)
			}
			if !xv.ReadOnly {
				return fmt.Errorf("%s is writable again", X)
			}
			if err := s.Exec(ctx, Y, "SET GLOBAL read_only=0"); err != nil {
				if unanswered(err) {
					// Sent, not answered: a hung Y runs it once it resumes. Undoing now would make X writable
					// beside it (a split brain); Y has every write of X, and X stays read-only and fenced.
					fs.promoted.Store(true)
					return fmt.Errorf("%w: SET GLOBAL read_only=0 on %s got no answer, and %s may be writable once it runs again: "+
						"it has every write of %s, which stays read-only and fenced; once %s answers, SET GLOBAL read_only=0 there "+
						"if it is still read-only, then finish the steps below: %w", ErrMaybePastPointOfNoReturn, Y, Y, X, Y, err)
				}
				return err
			}
			fs.promoted.Store(true)
			return nil
		},
		Undo: func(ctx context.Context) error {
			if !stopped.Load() {
				return ErrNothingChanged
			}
			return s.Exec(ctx, Y, "SET GLOBAL read_only=1", "START SLAVE")
		},
	}
}

// resetCandidateStep makes Y forget its master, and sends read_only=0 again: a no-op after promote, it finishes
// a promote whose read_only=0 got no answer (Y has every write of X by then, and X is read-only and fenced).
func resetCandidateStep(s Servers, Y string) *Step {
	return &Step{
		Name: "reset-candidate", Instance: Y,
		Description: fmt.Sprintf("RESET SLAVE ALL on %s: it replicates from no one; SET GLOBAL read_only=0 (again, for a promote "+
			"whose read_only=0 got no answer)", Y),
		Do: func(ctx context.Context) error { return s.Exec(ctx, Y, "RESET SLAVE ALL", "SET GLOBAL read_only=0") },
	}
}

// repointOldPrimaryStep makes X a replica of Y with repl's credentials. demote: X is 10.10 or later and has
// MASTER_DEMOTE_TO_SLAVE; before that, gtid_slave_pos is set from gtid_binlog_pos first.
func repointOldPrimaryStep(s Servers, X, Y string, repl Credentials, demote bool) (*Step, error) {
	yh, yp, err := splitAddr(Y)
	if err != nil {
		return nil, err
	}
	cm := ChangeMaster{Host: yh, Port: yp, User: repl.User, Password: repl.Password, DemoteToSlave: demote}
	if _, err := cm.SQL(); err != nil {
		return nil, fmt.Errorf("repoint-old-primary: %w", err) // at plan time, never inside a printed plan
	}
	how := "MASTER_DEMOTE_TO_SLAVE=1 puts its gtid_binlog_pos into gtid_slave_pos"
	if !demote {
		how = "SET GLOBAL gtid_slave_pos = its gtid_binlog_pos first (before 10.10)"
	}
	return &Step{
		Name: "repoint-old-primary", Instance: X,
		Description: fmt.Sprintf("%s; START SLAVE (%s)", cm.Redacted(), how),
		Do: func(ctx context.Context) error {
			if !demote {
				if err := s.Exec(ctx, X, "STOP SLAVE", "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos"); err != nil {
					return err
				}
			}
			return s.ChangeMaster(ctx, X, cm, true)
		},
	}, nil
}

// unfenceWritersStep is the cleanup step that unlocks what fence-writers locked and nobody unlocked yet. With
// keep (the default), it runs only when a step failed before promote completed (after the rollback): after a
// promotion the accounts stay locked on X, the demoted primary, so that no writer that bypasses read_only
// writes there; they stay usable on Y, since the lock was not binlogged.
func unfenceWritersStep(s Servers, X string, fs *fenceState, keep bool) *Step {
	desc := "unlock the accounts locked by fence-writers and not unlocked yet (sql_log_bin=0); " +
		"it runs even when an earlier step fails, past the point of no return too"
	if keep {
		desc = "after a failure before promote completed (a rollback): unlock the accounts locked by fence-writers and not unlocked " +
			"yet (sql_log_bin=0). After a promotion they stay locked on " + X + ", the demoted primary"
	}
	return &Step{
		Name: stepUnfenceWriters, Instance: X,
		Description: desc,
		Cleanup:     true,
		FailureOnly: keep,
		Do: func(ctx context.Context) error {
			if keep && fs.promoted.Load() {
				// Past the promotion: the demoted primary stays fenced; the record keeps them leftovers of the run.
				if kept := fs.snapshot(); len(kept) > 0 {
					announce(ctx, FenceAction{Kept: kept}, "kept locked on "+X+" (the demoted primary): "+accountList(kept))
				}
				return nil
			}
			if err := fs.unlock(ctx, s, X); err != nil && !errors.Is(err, ErrNothingChanged) {
				return err
			}
			return nil
		},
	}
}

// verifyStep waits (up to 10 s each) until every one of replicas replicates from Y with both threads running.
func verifyStep(s Servers, Y string, replicas []string) *Step {
	return &Step{
		Name: "verify", ReadsOnly: true, Instance: replicas[0],
		Description: fmt.Sprintf("wait (up to 10s) until %s replicate from %s with both threads running",
			orNone(strings.Join(replicas, ", ")), Y),
		Do: func(ctx context.Context) error {
			for _, r := range replicas {
				if err := waitReplicating(ctx, s, r, Y, 10*time.Second); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// fenceReplicaStep locks on r only (sql_log_bin=0) the accounts that write through read_only, as found on X
// at planning and on r now, and kills their sessions on r: a writer that is refused on X and moves to another
// instance of the tree (a failover-aware application) would otherwise write to r while it still replicates, and
// that write would be missing from the new primary. dbstate's own account is locked there too when it writes
// through read_only on r (LockOwnAccount: its connections logged in ahead serve the rest of the run on r). r is
// the candidate Y (candidate true) or one of the other replicas, which replicate from X, directly or through Y:
// the announcement names X as the instance through which recover can unlock r (binlogged) when dbstate dies
// with its own login locked on r. It runs before X is fenced; the unfence step lifts the locks once Y is the
// primary (on Y) or at the end of the run (on the others), and its undo lifts them on a rollback.
func fenceReplicaStep(s Servers, X, r string, candidate bool, neverLock, planned []Account, fs *fenceState) *Step {
	name, role, until := stepFenceReplica, "a replica", "until the end of the run"
	if candidate {
		name, role, until = stepFenceCandidate, "the candidate", "until the promotion"
	}
	return &Step{
		Name: name, Instance: r,
		Description: fmt.Sprintf("lock on %s only (%s; ALTER USER ... ACCOUNT LOCK, sql_log_bin=0) the accounts that write through read_only "+
			"(found on the primary at planning: %s; and on %s now), dbstate's own among them when it does (its connections logged in ahead "+
			"serve the rest of the run there), and kill their sessions on %s, %s",
			r, role, orNone(accountList(planned)), r, r, until),
		UndoText: "unlock the accounts this step locked on " + r + " (sql_log_bin=0), dbstate's own first",
		Detail:   func() string { return "locked on " + r + ": " + orNone(accountList(fs.snapshot())) },
		Do: func(ctx context.Context) error {
			now, err := s.Writers(ctx, r, neverLock)
			if err != nil {
				return err
			}
			lock := now.lockNow(planned)
			announced := slices.Clone(lock)
			if now.OwnBypasses {
				announced = append(announced, now.Self)
			}
			if len(announced) == 0 {
				return nil
			}
			announce(ctx, FenceAction{Lock: announced, Via: X}, "about to lock on "+r+" ("+role+", "+until+"): "+accountList(announced))
			if err := fs.lock(ctx, s, r, lock); err != nil {
				return err
			}
			if _, err = s.KillUserSessions(ctx, r, userNames(lock), 5*time.Second); err != nil {
				return err
			}
			if !now.OwnBypasses {
				return nil
			}
			fs.add(now.Self) // whatever the outcome, the lock may have taken: the undo lifts it
			_, err = s.LockOwnAccount(ctx, r, now.Self)
			return err
		},
		Undo: func(ctx context.Context) error { return fs.unlock(ctx, s, r) },
	}
}

// unfenceReplicaStep is the cleanup step that lifts fenceReplicaStep's locks on r (dbstate's own first) once Y is
// the primary. Before a
// promotion (a rollback) the fence step's undo already lifted them, and this step finds nothing to do.
func unfenceReplicaStep(s Servers, r string, candidate bool, Y string, fs *fenceState) *Step {
	name, why := stepUnfenceReplica, Y+" is the primary now, which a writer refused on the demoted primary reaches"
	if candidate {
		name, why = stepUnfenceCandidate, Y+" is the primary now"
	}
	return &Step{
		Name: name, Instance: r, Cleanup: true,
		Description: "unlock on " + r + " (sql_log_bin=0) the accounts the fence locked there: " + why,
		Do: func(ctx context.Context) error {
			if err := fs.unlock(ctx, s, r); err != nil && !errors.Is(err, ErrNothingChanged) {
				return err
			}
			return nil
		},
	}
}

// fenceOwnAccountStep locks dbstate's own account on X only (sql_log_bin=0) and kills the other sessions of its
// user there, right before promote's last look at X: another process that logs in with dbstate's login writes
// through read_only like any other writer. Connections that LockOwnAccount logs in first survive the lock and do
// the rest of the run on X. It comes this late so that, should dbstate die earlier, its login still lifts what
// the run left on X (every other account that bypasses read_only is locked by then), and, through X, on the
// candidate and the replicas, where its own login is locked from their fence steps on.
//
// First it unlocks dbstate's own account on the candidate Y (fsY, sql_log_bin=0), where fence-candidate locked
// it: were dbstate to die with its login locked on both X and Y, nothing of dbstate's could reach either (X
// replicates from no one, and Y only from X), and no recover could finish or undo the run. With Y open, recover
// finishes the switchover through Y. What that costs: from here until promote makes Y writable (a round trip
// or two), an application that shares dbstate's login and is refused by X can write to Y, which then has it;
// should promote fail in that span, the rollback finds it as an errant transaction on Y and says so. Its undo
// unlocks X.
func fenceOwnAccountStep(s Servers, X, Y string, own *FenceInfo, fs, fsY *fenceState) *Step {
	var locked atomic.Bool
	return &Step{
		Name: stepFenceOwn, Instance: X,
		Description: fmt.Sprintf("unlock dbstate's own account %s on %s, the candidate (sql_log_bin=0), so that its login reaches %s whatever "+
			"happens next; lock it on %s only (sql_log_bin=0) and kill the other sessions of its user there; connections dbstate logs in "+
			"first serve the rest of the run there", own.Self, Y, Y, X),
		UndoText: "unlock dbstate's own account on " + X + " (sql_log_bin=0), before anything else is undone there",
		Do: func(ctx context.Context) error {
			if h, ok := s.(interface {
				holdLogins(context.Context, string, int) (int, error)
			}); ok {
				// The old primary's connections logged in first, so that the lock follows the candidate's
				// unlock within one round trip: in between, an application with dbstate's login can write to both.
				if _, err := h.holdLogins(ctx, X, ownReserve); err != nil {
					return err
				}
			}
			if slices.Contains(fsY.snapshot(), own.Self) {
				if err := s.SetAccountsLocked(ctx, Y, []Account{own.Self}, false, fsY.remove); err != nil {
					return fmt.Errorf("unlock dbstate's own account on %s before locking it on %s: %w", Y, X, err)
				}
			}
			announce(ctx, FenceAction{Lock: []Account{own.Self}}, "about to lock on "+X+" dbstate's own account "+own.Self.String())
			// Whatever the outcome, the lock may have taken: the undo lifts it.
			locked.Store(true)
			fs.add(own.Self)
			_, err := s.LockOwnAccount(ctx, X, own.Self)
			return err
		},
		Undo: func(ctx context.Context) error {
			if !locked.Load() {
				return ErrNothingChanged
			}
			return s.SetAccountsLocked(ctx, X, []Account{own.Self}, false, fs.remove)
		},
	}
}

// eventState is what disable-events hands to its undo and to enable-events: the events it stopped on X and
// that nobody enabled again yet.
type eventState struct {
	mu      sync.Mutex
	stopped []Event
}

func (e *eventState) add(ev Event) { e.mu.Lock(); e.stopped = append(e.stopped, ev); e.mu.Unlock() }

func (e *eventState) snapshot() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.stopped)
}

// remove forgets ev once it runs again: an enable that fails halfway leaves only the events still stopped.
func (e *eventState) remove(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = slices.DeleteFunc(e.stopped, func(x Event) bool { return x == ev })
}

// disableEventsStep stops, on X only (sql_log_bin=0), every event ENABLED there (ALTER EVENT ... DISABLE ON
// SLAVE, keeping its definer), before X becomes read-only: an event runs as its definer, and one defined by an
// account that bypasses read_only writes through it. Its undo enables them again on X.
func disableEventsStep(s Servers, X string, planned []Event, es *eventState) *Step {
	return &Step{
		Name: stepDisableEvents, Instance: X,
		Description: fmt.Sprintf("stop on %s only (ALTER EVENT ... DISABLE ON SLAVE, sql_log_bin=0, keeping each definer) every event ENABLED there, "+
			"re-read now; at planning: %s", X, orNone(eventList(planned))),
		UndoText: "ALTER EVENT ... ENABLE on " + X + " (sql_log_bin=0) the events this step stopped",
		Detail:   func() string { return "stopped on " + X + ": " + orNone(eventList(es.snapshot())) },
		Do: func(ctx context.Context) error {
			now, err := s.Events(ctx, X)
			if err != nil {
				return err
			}
			if len(now) == 0 {
				return nil
			}
			announce(ctx, FenceAction{DisableEvents: now}, "about to stop on "+X+" the events "+eventList(now))
			return s.SetEventsEnabled(ctx, X, now, false, true, es.add)
		},
		Undo: func(ctx context.Context) error {
			stopped := es.snapshot()
			if len(stopped) == 0 {
				return ErrNothingChanged
			}
			return s.SetEventsEnabled(ctx, X, stopped, true, true, es.remove)
		},
	}
}

// enableEventsStep is the cleanup step that, once Y is the primary, enables on Y the events disable-events
// stopped on X (ALTER EVENT ... ENABLE, binlogged: on the replicas, X included, they become SLAVESIDE_DISABLED by
// themselves). Before a promotion (a rollback) it does nothing: the disable-events undo enabled them on X again.
func enableEventsStep(s Servers, Y string, es *eventState, fs *fenceState) *Step {
	return &Step{
		Name: stepEnableEvents, Instance: Y, Cleanup: true,
		Description: "after the promotion: ALTER EVENT ... ENABLE on " + Y + " (binlogged, keeping each definer) the events disable-events stopped on the old primary",
		Do: func(ctx context.Context) error {
			if !fs.promoted.Load() {
				return nil
			}
			stopped := es.snapshot()
			if len(stopped) == 0 {
				return nil
			}
			announce(ctx, FenceAction{EnableEvents: stopped}, "about to enable on "+Y+" the events "+eventList(stopped))
			return s.SetEventsEnabled(ctx, Y, stopped, true, false, es.remove)
		},
	}
}

// announceMove makes a switchover's move-replica step say in the audit log, before it moves anything, which old
// primary X the replica leaves: should dbstate die before the promotion, recover points it back there.
func announceMove(st *Step, X, Y string) {
	do := st.Do
	st.Do = func(ctx context.Context) error {
		announce(ctx, FenceAction{MovedFrom: X}, "about to move "+st.Instance+" from "+X+" under "+Y)
		return do(ctx)
	}
}

func userNames(as []Account) []string {
	var out []string
	for _, a := range as {
		if !slices.Contains(out, a.User) {
			out = append(out, a.User)
		}
	}
	return out
}
