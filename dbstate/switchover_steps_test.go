package dbstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func identity(s string) string { return s }

// run runs a step as Execute would: check, then do.
func runStep(t *testing.T, s *Step) error {
	t.Helper()
	ctx := context.Background()
	if s.Check != nil {
		if err := s.Check(ctx); err != nil {
			return err
		}
	}
	return s.Do(ctx)
}

func wantStatements(t *testing.T, f *fakeServers, want string) {
	t.Helper()
	if got := f.statements(); got != want {
		t.Fatalf("statements:\n got %s\nwant %s", got, want)
	}
}

func TestCatchUpStep(t *testing.T) {
	t.Run("waits for the primary's binlog position", func(t *testing.T) {
		f := newFake("y:1")
		if err := runStep(t, catchUpStep(f, identity, "x:1", "y:1", time.Second)); err != nil {
			t.Fatal(err)
		}
		wantStatements(t, f, "y:1: wait 0-1-10")
	})
	t.Run("refuses a candidate that does not replicate from the primary", func(t *testing.T) {
		f := newFake("y:1")
		f.status["y:1"].SQLRunning = "No"
		err := runStep(t, catchUpStep(f, identity, "x:1", "y:1", time.Second))
		if !errors.Is(err, ErrReplicaUnhealthy) {
			t.Fatalf("err = %v", err)
		}
		wantStatements(t, f, "")
	})
	t.Run("a candidate behind times out", func(t *testing.T) {
		f := newFake("y:1")
		f.vars["y:1"].GTIDCurrentPos = MustParsePosition("0-1-9")
		if err := runStep(t, catchUpStep(f, identity, "x:1", "y:1", time.Second)); !errors.Is(err, ErrWaitTimeout) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestFenceWritersStep(t *testing.T) {
	a, b := Account{User: "app", Host: "%"}, Account{User: "etl", Host: "10.%"}
	t.Run("locks the planned and the newly connected, undo unlocks them", func(t *testing.T) {
		f := newFake("y:1")
		f.writers = &FenceInfo{Accounts: []Account{b}}
		fs := &fenceState{}
		st := fenceWritersStep(f, "x:1", FenceLock, nil, []Account{a}, fs)
		if err := runStep(t, st); err != nil {
			t.Fatal(err)
		}
		if !f.locked[a] || !f.locked[b] {
			t.Fatalf("locked = %v", f.locked)
		}
		if err := st.Undo(context.Background()); err != nil {
			t.Fatal(err)
		}
		if f.locked[a] || f.locked[b] || len(fs.snapshot()) != 0 {
			t.Fatalf("after undo: locked = %v, state = %v", f.locked, fs.snapshot())
		}
	})
	t.Run("a lock that fails halfway: undo unlocks only what was locked", func(t *testing.T) {
		f := newFake("y:1")
		f.fail["x:1: lock "+b.String()] = errors.New("boom")
		fs := &fenceState{}
		st := fenceWritersStep(f, "x:1", FenceLock, nil, []Account{a, b}, fs)
		if err := runStep(t, st); err == nil {
			t.Fatal("want an error")
		}
		if err := st.Undo(context.Background()); err != nil {
			t.Fatal(err)
		}
		wantStatements(t, f, "x:1: writers; x:1: lock 'app'@'%'; x:1: lock 'etl'@'10.%'; x:1: unlock 'app'@'%'")
	})
	t.Run("nothing to lock: undo changed nothing", func(t *testing.T) {
		f := newFake("y:1")
		st := fenceWritersStep(f, "x:1", FenceLock, nil, nil, &fenceState{})
		if err := runStep(t, st); err != nil {
			t.Fatal(err)
		}
		if err := st.Undo(context.Background()); !errors.Is(err, ErrNothingChanged) {
			t.Fatalf("undo = %v, want ErrNothingChanged", err)
		}
	})
	t.Run("refuse mode fails on a writer connected since planning, locking nothing", func(t *testing.T) {
		f := newFake("y:1")
		f.writers = &FenceInfo{Accounts: []Account{b}}
		err := runStep(t, fenceWritersStep(f, "x:1", FenceRefuse, nil, nil, &fenceState{}))
		if !errors.Is(err, ErrUnfencedWriters) || !strings.Contains(err.Error(), b.String()) {
			t.Fatalf("err = %v", err)
		}
		wantStatements(t, f, "x:1: writers")
	})
}

func TestSetReadOnlyStep(t *testing.T) {
	t.Run("sets and undoes", func(t *testing.T) {
		f := newFake("y:1")
		st := setReadOnlyStep(f, "x:1", time.Second)
		if err := runStep(t, st); err != nil || !f.vars["x:1"].ReadOnly {
			t.Fatalf("err = %v, read_only = %v", err, f.vars["x:1"].ReadOnly)
		}
		if err := st.Undo(context.Background()); err != nil || f.vars["x:1"].ReadOnly {
			t.Fatalf("undo = %v, read_only = %v", err, f.vars["x:1"].ReadOnly)
		}
	})
	t.Run("denied (no READ_ONLY ADMIN): undo changes nothing", func(t *testing.T) {
		f := newFake("y:1")
		f.fail["x:1: "+readOnlyStmt] = errDenied
		st := setReadOnlyStep(f, "x:1", time.Second)
		if err := runStep(t, st); !errors.Is(err, errDenied) {
			t.Fatalf("err = %v", err)
		}
		f.fail["x:1: SET GLOBAL read_only=0"] = errDenied // an undo that tried would fail
		if err := st.Undo(context.Background()); !errors.Is(err, ErrNothingChanged) {
			t.Fatalf("undo = %v, want ErrNothingChanged", err)
		}
		wantStatements(t, f, "x:1: "+readOnlyStmt)
	})
	t.Run("already read-only: nothing to set, nothing to undo", func(t *testing.T) {
		f := newFake("y:1")
		f.vars["x:1"].ReadOnly = true
		st := setReadOnlyStep(f, "x:1", time.Second)
		if err := runStep(t, st); err != nil {
			t.Fatal(err)
		}
		if err := st.Undo(context.Background()); !errors.Is(err, ErrNothingChanged) || !f.vars["x:1"].ReadOnly {
			t.Fatalf("undo = %v, read_only = %v", err, f.vars["x:1"].ReadOnly)
		}
		wantStatements(t, f, "")
	})
}

// readOnlyStmt is what setReadOnlyStep sends with a bound of 1 s.
const readOnlyStmt = "SET STATEMENT max_statement_time=1.000 FOR SET GLOBAL read_only=1"

func TestKillSessionsStep(t *testing.T) {
	f := newFake("y:1")
	if err := runStep(t, killSessionsStep(f, "x:1")); err != nil {
		t.Fatal(err)
	}
	wantStatements(t, f, "x:1: kill sessions")
}

func TestWaitForCandidateStep(t *testing.T) {
	t.Run("hands the final position on", func(t *testing.T) {
		f := newFake("y:1")
		f.vars["x:1"].ReadOnly = true
		h := &handoff{}
		if err := runStep(t, waitForCandidateStep(f, "x:1", "y:1", time.Second, h)); err != nil {
			t.Fatal(err)
		}
		if h.get().String() != "0-1-10" {
			t.Fatalf("final = %s", h.get())
		}
	})
	t.Run("a writable primary fails the precondition", func(t *testing.T) {
		f := newFake("y:1")
		if err := runStep(t, waitForCandidateStep(f, "x:1", "y:1", time.Second, &handoff{})); err == nil || !strings.Contains(err.Error(), "writable again") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a write on the primary during the wait fails it", func(t *testing.T) {
		f := newFake("y:1")
		f.vars["x:1"].ReadOnly = true
		later := *f.vars["x:1"]
		later.GTIDBinlogPos = MustParsePosition("0-1-11")
		f.varsAfter["x:1"] = struct {
			n int
			v Vars
		}{3, later} // read 1: check, 2: final position, 3: after the wait
		err := runStep(t, waitForCandidateStep(f, "x:1", "y:1", time.Second, &handoff{}))
		if err == nil || !strings.Contains(err.Error(), "a writer is not fenced") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestWaitForCandidateFailsWhenItStopsApplying(t *testing.T) {
	f := newFake("y:1")
	f.vars["x:1"].ReadOnly = true
	f.blockWait = true
	f.status["y:1"].SQLRunning, f.status["y:1"].LastSQLError = "No", "Error 1062: duplicate key"
	err := runStep(t, waitForCandidateStep(f, "x:1", "y:1", time.Hour, &handoff{}))
	if !errors.Is(err, ErrCandidateStopped) || !strings.Contains(err.Error(), "duplicate key") {
		t.Fatalf("err = %v", err)
	}
}

func TestPromoteStep(t *testing.T) {
	final := func() *handoff { h := &handoff{}; h.set(MustParsePosition("0-1-10")); return h }
	t.Run("makes the candidate writable", func(t *testing.T) {
		f := newFake("y:1")
		f.vars["x:1"].ReadOnly = true
		if err := runStep(t, promoteStep(f, "x:1", "y:1", final(), &fenceState{})); err != nil {
			t.Fatal(err)
		}
		wantStatements(t, f, "y:1: STOP SLAVE; y:1: SET GLOBAL read_only=0")
	})
	t.Run("the primary logged after the final wait: fails before the candidate is writable, undo restarts it", func(t *testing.T) {
		f := newFake("y:1")
		f.vars["x:1"].ReadOnly = true
		f.vars["x:1"].GTIDBinlogPos = MustParsePosition("0-1-11")
		st := promoteStep(f, "x:1", "y:1", final(), &fenceState{})
		if err := runStep(t, st); err == nil || !strings.Contains(err.Error(), "after the final wait") {
			t.Fatalf("err = %v", err)
		}
		if f.vars["y:1"].ReadOnly != true {
			t.Fatal("candidate writable")
		}
		if err := st.Undo(context.Background()); err != nil {
			t.Fatal(err)
		}
		wantStatements(t, f, "y:1: STOP SLAVE; y:1: SET GLOBAL read_only=1; y:1: START SLAVE")
	})
	t.Run("a candidate short of the final position fails", func(t *testing.T) {
		f := newFake("y:1")
		f.vars["x:1"].ReadOnly = true
		f.vars["y:1"].GTIDCurrentPos = MustParsePosition("0-1-9")
		if err := runStep(t, promoteStep(f, "x:1", "y:1", final(), &fenceState{})); err == nil || !strings.Contains(err.Error(), "short of") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a writable primary fails", func(t *testing.T) {
		f := newFake("y:1")
		if err := runStep(t, promoteStep(f, "x:1", "y:1", final(), &fenceState{})); err == nil || !strings.Contains(err.Error(), "writable again") {
			t.Fatalf("err = %v", err)
		}
	})
	// A candidate that hangs as read_only=0 reaches it runs it once it resumes: undoing (making the primary
	// writable again) would split. The step says it may be past the point of no return, and counts as promoted.
	t.Run("read_only=0 without an answer may have passed the point of no return", func(t *testing.T) {
		f := newFake("y:1")
		f.vars["x:1"].ReadOnly = true
		f.fail["y:1: SET GLOBAL read_only=0"] = ErrStatementTimeout
		fs := &fenceState{}
		err := runStep(t, promoteStep(f, "x:1", "y:1", final(), fs))
		if !errors.Is(err, ErrMaybePastPointOfNoReturn) || !errors.Is(err, ErrStatementTimeout) || !fs.promoted.Load() {
			t.Fatalf("err = %v, promoted %v", err, fs.promoted.Load())
		}
	})
	t.Run("read_only=0 refused is undone", func(t *testing.T) {
		f := newFake("y:1")
		f.vars["x:1"].ReadOnly = true
		f.fail["y:1: SET GLOBAL read_only=0"] = errors.New("access denied")
		fs := &fenceState{}
		if err := runStep(t, promoteStep(f, "x:1", "y:1", final(), fs)); err == nil || errors.Is(err, ErrMaybePastPointOfNoReturn) || fs.promoted.Load() {
			t.Fatalf("err = %v, promoted %v", err, fs.promoted.Load())
		}
	})
}

func TestResetCandidateStep(t *testing.T) {
	f := newFake("y:1")
	if err := runStep(t, resetCandidateStep(f, "y:1")); err != nil || f.status["y:1"] != nil || f.vars["y:1"].ReadOnly {
		t.Fatalf("err = %v, status = %+v, read_only %v", err, f.status["y:1"], f.vars["y:1"].ReadOnly)
	}
}

func TestRepointOldPrimaryStep(t *testing.T) {
	repl := Credentials{User: "repl", Password: "s3cret"}
	for _, tt := range []struct {
		name   string
		demote bool
		want   string
	}{
		{"10.10 and later: MASTER_DEMOTE_TO_SLAVE", true,
			"x:1: CHANGE MASTER TO MASTER_HOST='y', MASTER_PORT=1, MASTER_USER='repl', MASTER_PASSWORD=<redacted>, MASTER_USE_GTID=slave_pos, MASTER_DEMOTE_TO_SLAVE=1"},
		{"before 10.10: gtid_slave_pos first", false,
			"x:1: STOP SLAVE; x:1: SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos; x:1: CHANGE MASTER TO MASTER_HOST='y', MASTER_PORT=1, MASTER_USER='repl', MASTER_PASSWORD=<redacted>, MASTER_USE_GTID=slave_pos"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake("y:1")
			st, err := repointOldPrimaryStep(f, "x:1", "y:1", repl, tt.demote)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(st.Description, "s3cret") {
				t.Fatal("password in the description")
			}
			if err := runStep(t, st); err != nil {
				t.Fatal(err)
			}
			wantStatements(t, f, tt.want)
			if f.status["x:1"].MasterAddr() != "y:1" {
				t.Fatalf("x replicates from %s", f.status["x:1"].MasterAddr())
			}
		})
	}
	if _, err := repointOldPrimaryStep(newFake(), "x:1", "y", repl, true); !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("bad address: err = %v", err)
	}
}

func TestUnfenceWritersStep(t *testing.T) {
	a := Account{User: "app", Host: "%"}
	f := newFake("y:1")
	fs := &fenceState{}
	st := unfenceWritersStep(f, "x:1", fs, false)
	if !st.Cleanup {
		t.Fatal("not a cleanup step")
	}
	if err := runStep(t, st); err != nil {
		t.Fatalf("nothing locked: %v", err)
	}
	fs.add(a)
	f.locked[a] = true
	if err := runStep(t, st); err != nil || f.locked[a] || len(fs.snapshot()) != 0 {
		t.Fatalf("err = %v, locked = %v", err, f.locked)
	}
	// keep (the default): a failure-only cleanup that unlocks after a rollback, and keeps the demoted primary fenced.
	keep := unfenceWritersStep(f, "x:1", fs, true)
	if !keep.Cleanup || !keep.FailureOnly {
		t.Fatal("keep: not a failure-only cleanup step")
	}
	fs.add(a)
	f.locked[a] = true
	fs.promoted.Store(true)
	if err := runStep(t, keep); err != nil || !f.locked[a] || len(fs.snapshot()) != 1 {
		t.Fatalf("promoted: err = %v, locked = %v (want kept)", err, f.locked)
	}
	fs.promoted.Store(false)
	if err := runStep(t, keep); err != nil || f.locked[a] || len(fs.snapshot()) != 0 {
		t.Fatalf("not promoted: err = %v, locked = %v (want unlocked)", err, f.locked)
	}
}

func TestVerifyStep(t *testing.T) {
	f := newFake("y:1", "z:1")
	f.status["z:1"].MasterHost, f.status["z:1"].MasterPort = "y", 1
	f.status["x:1"] = &ReplicaStatus{MasterHost: "y", MasterPort: 1, IORunning: "Yes", SQLRunning: "Yes"}
	if err := runStep(t, verifyStep(f, "y:1", []string{"x:1", "z:1"})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	f.status["z:1"].IORunning = "Connecting"
	if err := verifyStep(f, "y:1", []string{"x:1", "z:1"}).Do(ctx); err == nil {
		t.Fatal("want an error for a replica that does not run")
	}
}

func TestMoveStep(t *testing.T) {
	for _, tt := range []struct {
		name  string
		delay int
		want  string
	}{
		{"moves and undoes", 0, "z:1: STOP SLAVE; z:1: CHANGE MASTER TO MASTER_HOST='y', MASTER_PORT=1, MASTER_USE_GTID=slave_pos; " +
			"z:1: CHANGE MASTER TO MASTER_HOST='x', MASTER_PORT=1, MASTER_USE_GTID=slave_pos"},
		{"a delayed replica keeps its delay both ways", 20, "z:1: STOP SLAVE; z:1: CHANGE MASTER TO MASTER_HOST='y', MASTER_PORT=1, MASTER_DELAY=20, MASTER_USE_GTID=slave_pos; " +
			"z:1: CHANGE MASTER TO MASTER_HOST='x', MASTER_PORT=1, MASTER_DELAY=20, MASTER_USE_GTID=slave_pos"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake("y:1", "z:1")
			st, err := moveStep(f, identity, "z:1", "x:1", "y:1", tt.delay, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := runStep(t, st); err != nil {
				t.Fatal(err)
			}
			if err := st.Undo(context.Background()); err != nil {
				t.Fatal(err)
			}
			wantStatements(t, f, tt.want)
		})
	}
	t.Run("a connection error is not called a missing position", func(t *testing.T) {
		f := newFake("y:1", "z:1")
		f.fail["y:1: vars"] = errors.New("dial tcp: connection refused")
		st, _ := moveStep(f, identity, "z:1", "x:1", "y:1", 0, time.Second)
		err := runStep(t, st)
		if err == nil || errors.Is(err, ErrPositionUnreachable) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a new master that never gets the position", func(t *testing.T) {
		f := newFake("y:1", "z:1")
		f.vars["y:1"].GTIDBinlogPos = MustParsePosition("0-1-9")
		st, _ := moveStep(f, identity, "z:1", "x:1", "y:1", 0, 50*time.Millisecond)
		if err := runStep(t, st); !errors.Is(err, ErrPositionUnreachable) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("not run: undo changes nothing", func(t *testing.T) {
		f := newFake("y:1", "z:1")
		st, _ := moveStep(f, identity, "z:1", "x:1", "y:1", 0, time.Second)
		if err := st.Undo(context.Background()); !errors.Is(err, ErrNothingChanged) {
			t.Fatalf("undo = %v", err)
		}
	})
}

// TestSwitchoverPlanOnFake runs whole switchover plans against the fake: one that succeeds, and one whose
// account lacks READ_ONLY ADMIN, so set-read-only fails before anything changed.
func TestSwitchoverPlanOnFake(t *testing.T) {
	ctx := context.Background()
	o := SwitchoverOptions{Primary: "x:1", Candidate: "y:1", Replication: Credentials{User: "repl"}}
	t.Run("succeeds, and a second run is refused", func(t *testing.T) {
		f := newFake("y:1", "z:1")
		p, err := PlanSwitchover(ctx, f, f.topology(), o)
		if err != nil {
			t.Fatal(err)
		}
		if !p.OneShot {
			t.Fatal("a switchover plan must say it runs once")
		}
		// The fake's replication does not apply anything by itself: the final wait needs y at x's position.
		if err := p.Execute(ctx, ExecOptions{}); err != nil {
			t.Fatalf("%v\n%s", err, f.statements())
		}
		if f.vars["y:1"].ReadOnly || f.status["y:1"] != nil || f.status["x:1"].MasterAddr() != "y:1" || f.status["z:1"].MasterAddr() != "y:1" {
			t.Fatalf("not switched:\n%s", f.statements())
		}
		if err := p.Execute(ctx, ExecOptions{}); !errors.Is(err, ErrPlanExecuted) {
			t.Fatalf("second run: err = %v", err)
		}
	})
	t.Run("denied set-read-only: nothing changed, no undo errors", func(t *testing.T) {
		f := newFake("y:1")
		f.fail["x:1: SET STATEMENT max_statement_time=5.000 FOR SET GLOBAL read_only=1"] = errDenied // the default window, 5 s
		f.fail["x:1: SET GLOBAL read_only=0"] = errDenied
		p, err := PlanSwitchover(ctx, f, f.topology(), o)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Execute(ctx, ExecOptions{})
		var ee *ExecError
		if !errors.As(err, &ee) || !ee.NothingChanged || !ee.RolledBack || len(ee.UndoErrs) > 0 {
			t.Fatalf("err = %v (%+v)", err, ee)
		}
		if !strings.Contains(err.Error(), "nothing changed") || strings.Contains(err.Error(), "INCOMPLETE") {
			t.Fatalf("message: %v", err)
		}
		if f.vars["x:1"].ReadOnly {
			t.Fatal("x read-only")
		}
	})
}

func TestSwitchoverChecksTheReplicationLogin(t *testing.T) {
	o := SwitchoverOptions{Primary: "x:1", Candidate: "y:1", Replication: Credentials{User: "repl", Password: "pw"}}
	f := newFake("y:1")
	f.fail["y:1: login repl"] = errors.New("Error 1045 (28000): Access denied for user 'repl'@'127.0.0.1' (using password: YES)")
	if _, err := PlanSwitchover(context.Background(), f, f.topology(), o); !errors.Is(err, ErrReplicationLogin) {
		t.Fatalf("err = %v", err)
	}
	o.SkipReplicationLogin = true
	p, err := PlanSwitchover(context.Background(), f, f.topology(), o)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	p.WriteText(&b)
	if !strings.Contains(b.String(), "replication login") || !strings.Contains(b.String(), "not checked (asked)") {
		t.Fatalf("plan:\n%s", b.String())
	}
}

func TestSwitchoverRefusesErrantWithThePrimarysServerID(t *testing.T) {
	f := newFake("y:1", "z:1")
	// z logged a transaction under x's server id: Diagnose (by server id) cannot tell; the live check can.
	f.vars["z:1"].GTIDBinlogPos = MustParsePosition("0-1-11")
	_, err := PlanSwitchover(context.Background(), f, f.topology(), SwitchoverOptions{Primary: "x:1", Candidate: "y:1", Replication: Credentials{User: "repl"}})
	if !errors.Is(err, ErrErrantGTID) || !strings.Contains(err.Error(), "z:1 has 0-1-11") {
		t.Fatalf("err = %v", err)
	}
	wantStatements(t, f, "")
}

func TestFenceStepsLeaveLockedAccounts(t *testing.T) {
	a, b := Account{User: "app", Host: "%"}, Account{User: "dba", Host: "10.%"}
	steps := map[string]func(f *fakeServers) *Step{
		"fence-writers": func(f *fakeServers) *Step {
			return fenceWritersStep(f, "y:1", FenceLock, nil, []Account{a, b}, &fenceState{})
		},
		"fence-candidate": func(f *fakeServers) *Step {
			return fenceReplicaStep(f, "x:1", "y:1", true, nil, []Account{a, b}, &fenceState{})
		},
		"fence-replica": func(f *fakeServers) *Step {
			return fenceReplicaStep(f, "x:1", "y:1", false, nil, []Account{a, b}, &fenceState{})
		},
	}
	for name, mk := range steps {
		t.Run(name, func(t *testing.T) {
			// b, planned, is locked on the instance already (by a DBA): the fence must not lock it, and its
			// undo must not unlock it.
			f := newFake("y:1")
			f.writers = &FenceInfo{Locked: []Account{b}}
			f.locked[b] = true
			st := mk(f)
			if err := runStep(t, st); err != nil {
				t.Fatal(err)
			}
			if err := st.Undo(context.Background()); err != nil {
				t.Fatal(err)
			}
			if f.locked[a] || !f.locked[b] {
				t.Fatalf("after undo: locked = %v, want only %s", f.locked, b)
			}
			if got := f.statements(); strings.Contains(got, "'dba'") {
				t.Fatalf("statements name the account locked beforehand: %s", got)
			}
		})
	}
}

func TestDisableEventsUndoFailsHalfway(t *testing.T) {
	e1 := Event{Schema: "app", Name: "purge", Definer: "root@localhost"}
	e2 := Event{Schema: "app", Name: "rollup", Definer: "root@localhost"}
	f := newFake("y:1")
	f.events = map[string][]Event{"x:1": {e1, e2}}
	es := &eventState{}
	st := disableEventsStep(f, "x:1", []Event{e1, e2}, es)
	if err := runStep(t, st); err != nil {
		t.Fatal(err)
	}
	f.fail[fmt.Sprintf("x:1: event %s enable=true local=true", e2)] = errors.New("boom")
	if err := st.Undo(context.Background()); err == nil {
		t.Fatal("undo: want an error")
	}
	// e1 runs again on x:1; only e2 is still stopped, and that is what a rollback's check must report.
	if got := es.snapshot(); len(got) != 1 || got[0] != e2 {
		t.Fatalf("still stopped after a half-failed undo: %v, want [%s]", got, e2)
	}
	delete(f.fail, fmt.Sprintf("x:1: event %s enable=true local=true", e2))
	if err := st.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := es.snapshot(); len(got) != 0 {
		t.Fatalf("still stopped after the undo: %v", got)
	}
	wantStatements(t, f, "x:1: events; "+
		"x:1: event app.purge enable=false local=true; x:1: event app.rollup enable=false local=true; "+
		"x:1: event app.purge enable=true local=true; x:1: event app.rollup enable=true local=true; "+
		"x:1: event app.rollup enable=true local=true")
}

func TestFenceStepsUnlockAnUnansweredLock(t *testing.T) {
	a, b := Account{User: "app", Host: "%"}, Account{User: "etl", Host: "10.%"}
	steps := map[string]func(f *fakeServers, fs *fenceState) *Step{
		"fence-writers": func(f *fakeServers, fs *fenceState) *Step {
			return fenceWritersStep(f, "y:1", FenceLock, nil, []Account{a, b}, fs)
		},
		"fence-replica": func(f *fakeServers, fs *fenceState) *Step {
			return fenceReplicaStep(f, "x:1", "y:1", false, nil, []Account{a, b}, fs)
		},
	}
	for name, mk := range steps {
		t.Run(name, func(t *testing.T) {
			// The lock of a got no answer: it may have taken on the server. The undo must lift it (and b, never
			// tried: unlocking it changes nothing).
			f := newFake("y:1")
			f.fail["y:1: lock "+a.String()] = fmt.Errorf("%w: hung", ErrStatementTimeout)
			fs := &fenceState{}
			st := mk(f, fs)
			if err := runStep(t, st); !errors.Is(err, ErrStatementTimeout) {
				t.Fatalf("do = %v, want ErrStatementTimeout", err)
			}
			if err := st.Undo(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(f.statements(), "y:1: unlock 'app'@'%'") || len(fs.snapshot()) != 0 {
				t.Fatalf("undo did not lift the unanswered lock: %s; still recorded: %v", f.statements(), fs.snapshot())
			}
		})
	}
}

// fence-candidate and fence-replica lock dbstate's own account too when it writes through read_only there (an
// application that shares dbstate's login and fails over is fenced like any other), announce it, with the old
// primary through which recover can unlock it, before they lock, and the rollback lifts it, dbstate's own first.
func TestFenceReplicaStepsLockTheOwnAccount(t *testing.T) {
	own, app := Account{User: "dbstate", Host: "%"}, Account{User: "app", Host: "%"}
	for _, candidate := range []bool{true, false} {
		t.Run(map[bool]string{true: stepFenceCandidate, false: stepFenceReplica}[candidate], func(t *testing.T) {
			f := newFake("y:1")
			f.writers = &FenceInfo{Self: own, OwnBypasses: true, Accounts: []Account{app}}
			fs := &fenceState{}
			p := &Plan{Kind: "switchover", Steps: []*Step{
				fenceReplicaStep(f, "x:1", "y:1", candidate, nil, []Account{app}, fs),
				{Name: "boom", Instance: "x:1", Do: func(context.Context) error { return errors.New("boom") }},
			}}
			audit, err := auditOf(t, p, ExecOptions{})
			var ee *ExecError
			if !errors.As(err, &ee) || !ee.RolledBack {
				t.Fatalf("err = %v, want a rollback", err)
			}
			wantStatements(t, f, "y:1: writers; y:1: lock 'app'@'%'; y:1: kill sessions of app; y:1: lock own 'dbstate'@'%'; "+
				"y:1: unlock 'app'@'%'; y:1: unlock 'dbstate'@'%'")
			if f.locked[own] || f.locked[app] || len(fs.snapshot()) != 0 {
				t.Fatalf("after the rollback: locked %v, recorded %v", f.locked, fs.snapshot())
			}
			var intent *FenceAction
			for _, line := range strings.Split(strings.TrimSpace(audit), "\n") {
				var r AuditRecord
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatal(err)
				}
				if r.Result == "intent" {
					intent = r.Fence
					break
				}
			}
			if intent == nil || accountList(intent.Lock) != "'app'@'%', 'dbstate'@'%'" || intent.Via != "x:1" {
				t.Fatalf("intent %+v, want both accounts via x:1, before the lock:\n%s", intent, audit)
			}
			if l, err := ReadLeftovers(strings.NewReader(audit), ""); err != nil || !l.Empty() {
				t.Fatalf("leftovers after the rollback: %v, %v", l, err)
			}
		})
	}
}

// The plan says where dbstate's own login is fenced: on the candidate and the other replicas with the other
// accounts, and on the old primary right before the promotion.
func TestSwitchoverPlanNamesWhereTheOwnLoginIsFenced(t *testing.T) {
	f := newFake("y:1", "z:1")
	f.status["z:1"].MasterHost = "x"
	f.writers = &FenceInfo{Self: Account{User: "dbstate", Host: "%"}, OwnBypasses: true}
	p, err := PlanSwitchover(context.Background(), f, f.topology(), SwitchoverOptions{Primary: "x:1", Candidate: "y:1", Replication: Credentials{User: "repl"}})
	if err != nil {
		t.Fatal(err)
	}
	var detail string
	for _, c := range p.Preflight {
		if c.Name == "own account fenced" {
			detail = c.Detail
		}
	}
	for _, want := range []string{"on y:1 until the promotion", "on z:1 until the end of the run", "on x:1 right before the promotion"} {
		if !strings.Contains(detail, want) {
			t.Errorf("preflight %q lacks %q", detail, want)
		}
	}
	var steps []string
	for _, s := range p.Steps {
		if s.Name == stepFenceCandidate || s.Name == stepFenceReplica || s.Name == stepFenceOwn {
			steps = append(steps, s.Name+" "+s.Instance)
		}
	}
	if got := strings.Join(steps, ", "); got != "fence-candidate y:1, fence-replica z:1, fence-own-account x:1" {
		t.Errorf("fence steps: %s", got)
	}
}
