package dbstate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/evenkeel/evenkeel/internal/syncbuf"
)

// switchover plans and runs a switchover from x to y, returning the plan, the audit log and the error.
// testbedNeverLock are what the switchover tests that are not about fencing itself exempt from the fence: the
// test reads every instance as root over the socket and as dbtest's admin (dbstate's own account), and switches
// back and forth. The fence tests pass NeverLock: []dbstate.Account{} for the library's default (none).
var testbedNeverLock = []dbstate.Account{{User: "root", Host: "localhost"},
	{User: dbtest.AdminUser, Host: "127.0.0.1"}, {User: dbtest.AdminUser, Host: "localhost"}}

func switchover(t testing.TB, c *dbstate.Client, x, y *dbtest.Instance, o dbstate.SwitchoverOptions, hook func(context.Context, *dbstate.Step) error) (*dbstate.Plan, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	plan, err := planSwitchover(ctx, t, c, x, y, o)
	if err != nil {
		return nil, "", err
	}
	var audit syncbuf.Buffer
	err = plan.Execute(ctx, dbstate.ExecOptions{Audit: &audit, User: "test", BeforeStep: hook})
	return plan, audit.String(), err
}

// planSwitchover discovers the tree from x and plans a switchover from x to y (with replCreds unless o names
// replication credentials).
func planSwitchover(ctx context.Context, t testing.TB, c *dbstate.Client, x, y *dbtest.Instance, o dbstate.SwitchoverOptions) (*dbstate.Plan, error) {
	t.Helper()
	return planSwitchoverOn(ctx, t, c, c, x, y, o)
}

// planSwitchoverOn is planSwitchover with steps that talk to the servers through s (c wrapped to inject a fault).
func planSwitchoverOn(ctx context.Context, t testing.TB, c *dbstate.Client, s dbstate.Servers, x, y *dbtest.Instance, o dbstate.SwitchoverOptions) (*dbstate.Plan, error) {
	t.Helper()
	o.Primary, o.Candidate = x.Addr(), y.Addr()
	if o.NeverLock == nil {
		o.NeverLock = testbedNeverLock
	}
	if o.Replication.User == "" {
		o.Replication = replCreds()
	}
	topo, err := dbstate.Discover(ctx, c, []string{x.Addr()}, dbstate.DiscoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return dbstate.PlanSwitchover(ctx, s, topo, o)
}

// assertSwitched checks the topology after a switchover to y: y is the only writable instance, every other
// instance replicates from y, healthy, and no instance has errant GTIDs.
func assertSwitched(t testing.TB, c *dbstate.Client, y *dbtest.Instance, all []*dbtest.Instance) {
	t.Helper()
	for _, in := range all {
		if in != y {
			in.WaitCaughtUp(t, y)
		}
	}
	topo := discover(t, c, y.Addr())
	if len(topo.Roots) != 1 || topo.Roots[0] != y.Addr() {
		t.Fatalf("roots = %v, want [%s]", topo.Roots, y.Addr())
	}
	for _, in := range all {
		i := topo.Instances[in.Addr()]
		if i == nil {
			t.Fatalf("%s not discovered", in.Name)
		}
		if in == y {
			if i.ReadOnly || i.Replication != nil {
				t.Fatalf("new primary %s: read_only=%v replication=%+v", in.Name, i.ReadOnly, i.Replication)
			}
			continue
		}
		if !i.ReadOnly || i.Master != y.Addr() || !i.Replication.Healthy() {
			t.Fatalf("%s: read_only=%v master=%s replication=%+v", in.Name, i.ReadOnly, i.Master, i.Replication)
		}
	}
	if len(topo.Problems) != 0 {
		t.Fatalf("problems after switchover: %v", topo.Problems)
	}
}

// assertOriginal checks that x is the writable primary and that every instance in replicas replicates from it.
func assertOriginal(t testing.TB, c *dbstate.Client, x *dbtest.Instance, replicas []*dbtest.Instance) {
	t.Helper()
	waitUntil(t, 15*time.Second, func() error {
		topo := discover(t, c, x.Addr())
		if in := topo.Instances[x.Addr()]; in == nil || in.ReadOnly || in.Replication != nil {
			return fmt.Errorf("%s is not a writable root: %+v", x.Name, in)
		}
		for _, r := range replicas {
			in := topo.Instances[r.Addr()]
			if in == nil || in.Master != x.Addr() || !in.ReadOnly || in.Replication == nil || !in.Replication.Healthy() {
				return fmt.Errorf("%s is not a healthy replica of %s: %+v", r.Name, x.Name, in)
			}
		}
		if len(topo.Problems) != 0 {
			return fmt.Errorf("problems: %v", topo.Problems)
		}
		return nil
	})
	for _, a := range []string{"app", "appall"} {
		if got := x.QueryString(t, "SELECT IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') FROM mysql.global_priv WHERE User=? AND Host='127.0.0.1'", a); got == "true" || got == "1" {
			t.Fatalf("account %s left locked on %s: %s", a, x.Name, got)
		}
	}
}

func TestSwitchoverUnderWriteLoadAndBack(t *testing.T) {
	t.Parallel()
	tp := dbtest.PrimaryWithReplicas(t, 3)
	p, r1, r2, r3 := tp.Get("p"), tp.Get("r1"), tp.Get("r2"), tp.Get("r3")
	createAppAccounts(t, p)
	for _, r := range []*dbtest.Instance{r1, r2, r3} {
		r.WaitCaughtUp(t, p)
	}
	c := newClient(t)

	// The fact that fencing exists for (seen on 10.11.19): an ALL PRIVILEGES account writes through read_only.
	t.Run("ALL PRIVILEGES writes through read_only", func(t *testing.T) {
		w := startWriter(t, "appall", 50, p)
		w.waitAcks(t, 5)
		p.Exec(t, "SET GLOBAL read_only=1")
		w.waitAcks(t, 5)
		p.Exec(t, "SET GLOBAL read_only=0")
		w.Stop()
		app := startWriter(t, "app", 50, p)
		app.waitAcks(t, 5)
		p.Exec(t, "SET GLOBAL read_only=1")
		time.Sleep(100 * time.Millisecond)
		n := len(app.Acks())
		time.Sleep(200 * time.Millisecond)
		got := len(app.Acks())
		app.Stop()
		p.Exec(t, "SET GLOBAL read_only=0")
		if got != n {
			t.Fatalf("an account without READ ONLY ADMIN wrote %d rows through read_only", got-n)
		}
		p.Exec(t, "DELETE FROM test.w")
		for _, r := range []*dbtest.Instance{r1, r2, r3} {
			r.WaitCaughtUp(t, p)
		}
	})

	t.Run("dry run prints the plan without secrets", func(t *testing.T) {
		ctx := context.Background()
		topo := discover(t, c, p.Addr())
		plan, err := dbstate.PlanSwitchover(ctx, c, topo, dbstate.SwitchoverOptions{Primary: p.Addr(), Candidate: r1.Addr(), Replication: replCreds()})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		plan.WriteText(&b)
		js, _ := json.Marshal(plan)
		t.Log("\n" + b.String())
		assertNoSecrets(t, "plan", b.String())
		assertNoSecrets(t, "plan json", string(js))
		for _, s := range []string{"move-replica", "catch-up", "set-read-only", "kill-sessions", "wait-for-candidate", "promote", "repoint-old-primary", "unfence-writers", "cleanup: runs only when an earlier step fails", "stay locked on " + p.Addr(), "MASTER_PASSWORD=<redacted>"} {
			if !strings.Contains(b.String(), s) {
				t.Errorf("plan lacks %q", s)
			}
		}
		if p.QueryString(t, "SELECT @@read_only") != "0" {
			t.Fatal("the dry run changed the primary")
		}
		// Without replication credentials, the admin login would end up in the old primary's master.info.
		plan, err = dbstate.PlanSwitchover(ctx, c, topo, dbstate.SwitchoverOptions{Primary: p.Addr(), Candidate: r1.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		if w := strings.Join(plan.Warnings, "\n"); !strings.Contains(w, "master.info") || !strings.Contains(w, dbtest.AdminUser) {
			t.Fatalf("no warning about the admin login as replication user: %q", w)
		}
	})

	all := []*dbtest.Instance{p, r1, r2, r3}
	t.Run("p to r1 under write load", func(t *testing.T) {
		w := startWriter(t, "app", 300, all...)
		w.waitAcks(t, 100)
		plan, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{}, nil)
		if err != nil {
			t.Fatalf("switchover: %v\naudit:\n%s", err, audit)
		}
		w.waitAcks(t, 100) // the writer found r1
		w.Stop()
		acks := w.Acks()
		win, ok := window(acks, p.Addr(), r1.Addr())
		t.Logf("%d acks, window %v, %d steps", len(acks), win, len(plan.Steps))
		if !ok {
			t.Fatal("no write went through both p and r1")
		}
		assertSwitched(t, c, r1, all)
		assertAcksEverywhere(t, acks, all...)
		if p.QueryString(t, "SELECT @@read_only") != "1" {
			t.Fatal("old primary is writable")
		}
		assertNoSecrets(t, "audit", audit)
		checkAudit(t, audit, plan)
		liftKept(t, c, audit) // p becomes the primary again below
	})

	t.Run("r1 back to p with an ALL PRIVILEGES writer", func(t *testing.T) {
		w := startWriter(t, "appall", 300, all...)
		w.waitAcks(t, 100)
		_, audit, err := switchover(t, c, r1, p, dbstate.SwitchoverOptions{}, nil)
		if err != nil {
			t.Fatalf("switchover: %v\naudit:\n%s", err, audit)
		}
		w.waitAcks(t, 100)
		w.Stop()
		acks := w.Acks()
		win, _ := window(acks, r1.Addr(), p.Addr())
		t.Logf("%d acks, window %v", len(acks), win)
		// No split: the writer, which bypasses read_only, wrote nothing to r1 that p lacks (errant GTIDs would
		// show as problems), and every acknowledged write is everywhere.
		assertSwitched(t, c, p, all)
		assertAcksEverywhere(t, acks, all...)
		if !strings.Contains(audit, `"step":"fence-writers"`) {
			t.Fatalf("no fence step in the audit:\n%s", audit)
		}
		if !accountLocked(t, r1, "appall") || accountLocked(t, p, "appall") {
			t.Fatalf("appall locked on the demoted r1 %v (want true), on the new primary p %v (want false)", accountLocked(t, r1, "appall"), accountLocked(t, p, "appall"))
		}
		liftKept(t, c, audit)
	})

	t.Run("refuse instead of fencing", func(t *testing.T) {
		w := startWriter(t, "appall", 50, all...)
		w.waitAcks(t, 10)
		defer w.Stop()
		_, _, err := switchover(t, c, p, r2, dbstate.SwitchoverOptions{Fence: dbstate.FenceRefuse}, nil)
		if !errors.Is(err, dbstate.ErrUnfencedWriters) || !strings.Contains(err.Error(), "'appall'@'127.0.0.1'") {
			t.Fatalf("err = %v, want ErrUnfencedWriters naming appall", err)
		}
		w.Stop()
		// A writer that connects between planning and execution fails the fence step, which rolls back. Planning
		// must pass first: no session that bypasses read_only may be connected, dbtest's root sessions included.
		closeRootSessions(t, c, p)
		_, _, err = switchover(t, c, p, r2, dbstate.SwitchoverOptions{Fence: dbstate.FenceRefuse}, func(ctx context.Context, s *dbstate.Step) error {
			if s.Name == "fence-writers" {
				startWriter(t, "appall", 50, all...).waitAcks(t, 3)
			}
			return nil
		})
		var ee *dbstate.ExecError
		if !errors.Is(err, dbstate.ErrUnfencedWriters) || !errors.As(err, &ee) || !ee.RolledBack {
			t.Fatalf("err = %v, want a rolled-back ErrUnfencedWriters", err)
		}
	})

	t.Run("READ ONLY ADMIN through a role is detected", func(t *testing.T) {
		w := startWriter(t, "approle", 50, all...)
		w.waitAcks(t, 10)
		defer w.Stop()
		_, _, err := switchover(t, c, p, r2, dbstate.SwitchoverOptions{Fence: dbstate.FenceRefuse}, nil)
		if !errors.Is(err, dbstate.ErrUnfencedWriters) || !strings.Contains(err.Error(), "'approle'@'127.0.0.1'") {
			t.Fatalf("err = %v, want ErrUnfencedWriters naming approle", err)
		}
	})
}

func TestSwitchoverRefuseNamesEveryBypassWriter(t *testing.T) {
	t.Parallel()
	tp := dbtest.Build(t, "p>r")
	p, r := tp.Get("p"), tp.Get("r")
	c := newClient(t)
	ctx := context.Background()
	plan := func() error {
		_, err := dbstate.PlanSwitchover(ctx, c, discover(t, c, p.Addr()), dbstate.SwitchoverOptions{Primary: p.Addr(),
			Candidate: r.Addr(), Replication: replCreds(), Fence: dbstate.FenceRefuse})
		return err
	}
	wantRefusal := func(t *testing.T, what string) {
		t.Helper()
		err := plan()
		if !errors.Is(err, dbstate.ErrUnfencedWriters) || !strings.Contains(err.Error(), what) {
			t.Fatalf("err = %v, want ErrUnfencedWriters naming %s", err, what)
		}
		t.Log(err)
	}

	// Nothing but dbstate's own connections (discover leaves some in its pool): no reason to refuse.
	closeRootSessions(t, c, p)
	if err := plan(); err != nil {
		t.Fatalf("refused with no other session connected: %v", err)
	}

	t.Run("a session of a NeverLock account", func(t *testing.T) {
		root, err := p.DB().Conn(ctx) // a DBA on the socket: root@localhost, killed but never locked
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		if err := root.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		wantRefusal(t, "'root'@'localhost'")
	})

	t.Run("another session of dbstate's own user", func(t *testing.T) {
		closeRootSessions(t, c, p)
		other := newClient(t) // another dbstate process, say; same account, which cannot be locked
		db, err := other.DB(p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		wantRefusal(t, "dbstate's own user")
		other.Close()
		waitUntil(t, 5*time.Second, plan) // its session goes away; ours do not count
	})
}

// checkAudit checks that the audit log is JSON lines with time, user, step and result, one "do start" and then one
// "do ok" per step.
// checkAudit checks that every step of plan that runs when all goes well (not the failure-only cleanups) has a
// start and an ok record in audit.
func checkAudit(t testing.TB, audit string, plan *dbstate.Plan) {
	t.Helper()
	steps := 0
	for _, s := range plan.Steps {
		if !s.FailureOnly {
			steps++
		}
	}
	sc := bufio.NewScanner(strings.NewReader(audit))
	oks := 0
	running := ""
	for sc.Scan() {
		var r dbstate.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if r.Time.IsZero() || r.User != "test" || r.Result == "" {
			t.Fatalf("audit line lacks fields: %q", sc.Text())
		}
		if r.Phase == "do" && r.Result == "start" {
			running = r.Step + " " + r.Instance
		}
		if r.Phase == "do" && r.Result == "ok" {
			if running != r.Step+" "+r.Instance {
				t.Fatalf("step %s on %s ended without a start record before it:\n%s", r.Step, r.Instance, audit)
			}
			running = ""
			oks++
		}
	}
	if oks != steps {
		t.Fatalf("audit has %d successful steps, want %d:\n%s", oks, steps, audit)
	}
}

func TestSwitchoverFailuresRollBack(t *testing.T) {
	t.Parallel()
	tp := dbtest.PrimaryWithReplicas(t, 3)
	p, r1, r2, r3 := tp.Get("p"), tp.Get("r1"), tp.Get("r2"), tp.Get("r3")
	createAppAccounts(t, p)
	for _, r := range []*dbtest.Instance{r1, r2, r3} {
		r.WaitCaughtUp(t, p)
	}
	c := newClient(t)
	replicas := []*dbtest.Instance{r1, r2, r3}

	// An "appall" session is connected during each attempt, so that the fence step locks an account and its
	// undo must unlock it.
	w := startWriter(t, "appall", 50, p)
	defer w.Stop()
	w.waitAcks(t, 5)

	steps := []string{"move-replica", "catch-up", "fence-candidate", "fence-replica", "fence-writers", "disable-events", "long-writes",
		"set-read-only", "kill-sessions", "wait-for-candidate", "promote"}
	for _, step := range steps {
		t.Run("error before "+step, func(t *testing.T) {
			injected := errors.New("injected fault")
			_, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{}, func(ctx context.Context, s *dbstate.Step) error {
				if s.Name == step {
					return injected
				}
				return nil
			})
			var ee *dbstate.ExecError
			if !errors.As(err, &ee) || !errors.Is(err, injected) || !ee.RolledBack {
				t.Fatalf("err = %v, want a rolled-back ExecError\naudit:\n%s", err, audit)
			}
			want := "rolled back"
			if ee.NothingChanged {
				want = "nothing changed"
			}
			if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "INCOMPLETE") {
				t.Fatalf("the error does not tell the user %q: %v", want, err)
			}
			if (step == "move-replica") != ee.NothingChanged {
				t.Fatalf("NothingChanged = %v for a failure before %s: %v", ee.NothingChanged, step, err)
			}
			assertOriginal(t, c, p, replicas)
		})
	}

	t.Run("candidate SQL thread stopped before the final wait", func(t *testing.T) {
		// The wait fails as soon as it sees the SQL thread stopped, not at the end of the window.
		_, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{MaxWindow: time.Minute}, func(ctx context.Context, s *dbstate.Step) error {
			if s.Name == "set-read-only" {
				r1.StopSQLThread(t)
				p.Exec(t, "INSERT INTO test.w (seq, via, at) VALUES (-1, 0, NOW(6))") // something r1 must apply
			}
			return nil
		})
		if !errors.Is(err, dbstate.ErrCandidateStopped) {
			t.Fatalf("err = %v, want ErrCandidateStopped\naudit:\n%s", err, audit)
		}
		r1.StartSQLThread(t)
		assertOriginal(t, c, p, replicas)
	})

	t.Run("catch-up times out on a candidate that falls behind after planning", func(t *testing.T) {
		_, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{Timeout: time.Second}, func(ctx context.Context, s *dbstate.Step) error {
			if s.Name == "catch-up" {
				r1.AddLag(t, 30*time.Second)
				p.Exec(t, "INSERT INTO test.w (seq, via, at) VALUES (-2, 0, NOW(6))")
			}
			return nil
		})
		if !errors.Is(err, dbstate.ErrWaitTimeout) {
			t.Fatalf("err = %v, want a timeout\naudit:\n%s", err, audit)
		}
		r1.AddLag(t, 0)
		assertOriginal(t, c, p, replicas)
	})

	t.Run("LOCK TABLES on the primary: read_only waits at most the window, then a rollback", func(t *testing.T) {
		p.Exec(t, "CREATE TABLE IF NOT EXISTS test.lockme (id INT)")
		conn, err := p.DB().Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(context.Background(), "LOCK TABLES test.lockme WRITE"); err != nil {
			t.Fatal(err)
		}
		_, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{MaxWindow: time.Second}, nil)
		conn.ExecContext(context.Background(), "UNLOCK TABLES")
		var ee *dbstate.ExecError
		if !errors.As(err, &ee) || ee.Step != "set-read-only" || !ee.RolledBack || !strings.Contains(err.Error(), "LOCK TABLES or a long write") {
			t.Fatalf("err = %v, want set-read-only to fail and roll back\naudit:\n%s", err, audit)
		}
		assertOriginal(t, c, p, replicas)
	})

	t.Run("a delayed candidate is refused, nothing changed", func(t *testing.T) {
		r1.AddLag(t, 60*time.Second)
		_, _, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{}, nil)
		if !errors.Is(err, dbstate.ErrDelayedCandidate) {
			t.Fatalf("err = %v, want ErrDelayedCandidate", err)
		}
		r1.AddLag(t, 0)
		assertOriginal(t, c, p, replicas)
	})

	t.Run("candidate killed before promote", func(t *testing.T) {
		_, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{}, func(ctx context.Context, s *dbstate.Step) error {
			if s.Name == "promote" {
				r1.Kill(t)
			}
			return nil
		})
		// Everything else was undone, but r1 is dead: the candidate's fence cannot be lifted there, and the
		// rollback says so.
		var ee *dbstate.ExecError
		if !errors.As(err, &ee) || ee.RolledBack || len(ee.UndoErrs) != 1 || !strings.Contains(ee.UndoErrs[0].Error(), "fence-candidate on "+r1.Addr()) ||
			!strings.Contains(err.Error(), "rollback INCOMPLETE") {
			t.Fatalf("err = %v, want a rollback that could not lift the fence on r1\naudit:\n%s", err, audit)
		}
		// The other replicas are back under p and p is writable, with r1 dead.
		assertOriginal(t, c, p, []*dbtest.Instance{r2, r3})
		r1.Restart(t)
		liftKept(t, c, audit) // the audit log names what stayed locked on r1
		assertOriginal(t, c, p, replicas)
	})

	t.Run("a write to the primary between the final wait and promote", func(t *testing.T) {
		_, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{}, func(ctx context.Context, s *dbstate.Step) error {
			if s.Name == "promote" {
				// root@localhost (NeverLock: killed, never locked) writes through read_only after the final wait.
				// r1 does not apply it before promote stops replication: without a last look at p, r1 would become
				// writable without it.
				r1.StopSQLThread(t)
				p.Exec(t, "INSERT INTO test.w (seq, via, at) VALUES (-3, 0, NOW(6))")
			}
			return nil
		})
		var ee *dbstate.ExecError
		if !errors.As(err, &ee) || !ee.RolledBack || ee.Step != "promote" || !strings.Contains(err.Error(), "rolled back") {
			t.Fatalf("err = %v, want promote to fail and roll back\naudit:\n%s", err, audit)
		}
		t.Log(err)
		assertOriginal(t, c, p, replicas)
		r1.WaitCaughtUp(t, p)
		if got := r1.QueryString(t, "SELECT COUNT(*) FROM test.w WHERE seq = -3"); got != "1" {
			t.Fatal("r1 lacks the late write after the rollback")
		}
	})

	t.Run("after all that, a switchover still works", func(t *testing.T) {
		w.Stop()
		// Through the one-call Go API this time.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var audit syncbuf.Buffer
		if _, err := dbstate.Switchover(ctx, c, dbstate.SwitchoverOptions{Primary: p.Addr(), Candidate: r2.Addr(), Replication: replCreds(), NeverLock: testbedNeverLock},
			dbstate.ExecOptions{Audit: &audit}); err != nil {
			t.Fatalf("switchover: %v\naudit:\n%s", err, audit.String())
		}
		assertSwitched(t, c, r2, []*dbtest.Instance{p, r1, r2, r3})
	})

	t.Run("a failure after the point of no return is reported, not undone", func(t *testing.T) {
		// An ALL PRIVILEGES session on r2, so that the fence step locks an account, which must stay locked on r2,
		// the demoted primary, and nowhere else.
		w := startWriter(t, "appall", 50, r2, r1)
		w.waitAcks(t, 5)
		defer w.Stop()
		_, audit, err := switchover(t, c, r2, r1, dbstate.SwitchoverOptions{}, func(ctx context.Context, s *dbstate.Step) error {
			if s.Name == "repoint-old-primary" {
				return errors.New("injected fault")
			}
			return nil
		})
		var ee *dbstate.ExecError
		if !errors.As(err, &ee) || !ee.PastPointOfNoReturn || ee.RolledBack || !strings.Contains(err.Error(), "NOT rolled back") {
			t.Fatalf("err = %v\naudit:\n%s", err, audit)
		}
		// The new primary took over; the old one is read-only and waits for a human (or a move).
		if r1.QueryString(t, "SELECT @@read_only") != "0" || r2.QueryString(t, "SELECT @@read_only") != "1" {
			t.Fatal("roles not as reported")
		}
		// The cleanup step ran although an earlier step failed, and kept the demoted primary fenced: r1 is
		// writable, so a write to r2 would split the tree.
		if !strings.Contains(audit, `"step":"fence-writers","instance":"`+r2.Addr()+`","phase":"do","result":"ok"`) {
			t.Fatalf("the fence step locked nothing:\n%s", audit)
		}
		if !accountLocked(t, r2, "appall") || accountLocked(t, r1, "appall") {
			t.Fatalf("appall locked on the demoted r2 %v (want true), on the new primary r1 %v (want false)\naudit:\n%s",
				accountLocked(t, r2, "appall"), accountLocked(t, r1, "appall"), audit)
		}
		if !strings.Contains(err.Error(), "unfence-writers") {
			t.Fatalf("the error does not name the cleanup step: %v", err)
		}
		w.waitAcks(t, 5) // the writer found r1
		// recover finishes what the run left: r2 replicates from r1, nothing stays locked.
		liftKept(t, c, audit)
		if st := r2.SlaveStatus(t); st["Master_Port"] != strconv.Itoa(r1.Port) || st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
			t.Fatalf("after recover r2 does not replicate from r1: %v", st)
		}
		if accountLocked(t, r2, "appall") {
			t.Fatal("appall still locked on r2 after recover")
		}
	})
}

// With name resolution on (MariaDB's default), a TCP session from 127.0.0.1 shows in the process list as
// "localhost:PORT", so the account it logged in through ('appall'@'127.0.0.1') cannot be told from its host. Every
// account of a connected user that bypasses read_only must be fenced, whatever its host.
func TestSwitchoverFencesWithNameResolution(t *testing.T) {
	t.Parallel()
	tp := dbtest.BuildOpts(t, "p>r", dbtest.Options{ResolveNames: true})
	p, r := tp.Get("p"), tp.Get("r")
	createAppAccounts(t, p)
	r.WaitCaughtUp(t, p)
	c := newClient(t)
	all := []*dbtest.Instance{p, r}

	w := startWriter(t, "appall", 300, all...)
	w.waitAcks(t, 100)
	if got := p.QueryString(t, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='appall' AND HOST LIKE 'localhost:%'"); got == "0" {
		t.Fatal("the writer's session does not show as localhost:PORT: the premise of this test is gone")
	}
	_, _, err := switchover(t, c, p, r, dbstate.SwitchoverOptions{Fence: dbstate.FenceRefuse}, nil)
	if !errors.Is(err, dbstate.ErrUnfencedWriters) || !strings.Contains(err.Error(), "'appall'@'127.0.0.1'") {
		t.Errorf("--fence refuse: err = %v, want ErrUnfencedWriters naming 'appall'@'127.0.0.1'", err)
	}
	_, audit, err := switchover(t, c, p, r, dbstate.SwitchoverOptions{}, nil)
	if err != nil {
		t.Fatalf("switchover: %v\naudit:\n%s", err, audit)
	}
	w.waitAcks(t, 100) // the writer found r
	w.Stop()
	assertSwitched(t, c, r, all) // no errant GTIDs on p: nothing wrote through read_only in the window
	assertAcksEverywhere(t, w.Acks(), all...)
	if !accountLocked(t, p, "appall") || accountLocked(t, r, "appall") {
		t.Fatalf("appall locked on the demoted p %v (want true), on the new primary r %v (want false)", accountLocked(t, p, "appall"), accountLocked(t, r, "appall"))
	}
}
