package dbstate_test

import (
	"context"
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

// boundedClient bounds connecting and every statement at 2 s, so that a hung server costs 2 s per statement (and
// a loaded test machine does not time out healthy ones).
func boundedClient(t testing.TB) *dbstate.Client {
	t.Helper()
	c, err := dbstate.NewClientWith(dbstate.Credentials{User: dbtest.AdminUser, Password: dbtest.AdminPassword},
		dbstate.ClientOptions{ConnectTimeout: 2 * time.Second, StatementTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runBounded plans a switchover of x to y and runs it with hook, failing the test when Execute does not return
// within limit: a hang. It returns the audit log and Execute's error.
func runBounded(t *testing.T, c *dbstate.Client, x, y *dbtest.Instance, o dbstate.SwitchoverOptions, limit time.Duration,
	hook func(context.Context, *dbstate.Step) error) (*dbstate.Plan, string, error) {
	t.Helper()
	return runBoundedOn(t, c, c, x, y, o, limit, hook)
}

// runBoundedOn is runBounded with steps that talk to the servers through s (see planSwitchoverOn).
func runBoundedOn(t *testing.T, c *dbstate.Client, s dbstate.Servers, x, y *dbtest.Instance, o dbstate.SwitchoverOptions, limit time.Duration,
	hook func(context.Context, *dbstate.Step) error) (*dbstate.Plan, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*limit)
	defer cancel()
	plan, err := planSwitchoverOn(ctx, t, c, s, x, y, o)
	if err != nil {
		return nil, "", err
	}
	var audit syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- plan.Execute(ctx, dbstate.ExecOptions{Audit: &audit, User: "test", BeforeStep: hook, UndoTimeout: limit / 2})
	}()
	select {
	case err = <-done:
	case <-time.After(limit):
		t.Fatalf("the switchover still runs after %v: a hang\naudit:\n%s", limit, audit.String())
	}
	return plan, audit.String(), err
}

// recoverLeftovers lifts what the run of audit left (accounts locked, read_only), if anything.
func recoverLeftovers(t *testing.T, c *dbstate.Client, audit string) {
	t.Helper()
	l, err := dbstate.ReadLeftovers(strings.NewReader(audit), "")
	if err != nil {
		t.Fatal(err)
	}
	if l.Empty() {
		return
	}
	t.Logf("left by the run: %s", l)
	liftKept(t, c, audit)
}

// longSession runs stmt on its own connection to in (as root over the socket) in the background until it ends or
// is killed, and waits until the process list shows it running for more than a second (or, for an idle session,
// until idle is true of in). It returns the session's connection id; cleanup kills it.
func longSession(t *testing.T, in *dbtest.Instance, setup []string, stmt string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := in.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, s := range setup {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if stmt != "" {
			conn.ExecContext(ctx, stmt) // ends when it is killed
		}
	}()
	t.Cleanup(func() {
		in.ExecErr(fmt.Sprintf("KILL %d", id))
		<-done
		conn.Close()
	})
	waitUntil(t, 10*time.Second, func() error {
		ms := in.QueryString(t, "SELECT IFNULL(MAX(TIME_MS), 0) FROM information_schema.PROCESSLIST WHERE ID = ?", id)
		if f, _ := strconv.ParseFloat(ms, 64); f < 1100 {
			return fmt.Errorf("session %d runs for %s ms only", id, ms)
		}
		return nil
	})
	return id
}

func sessionAlive(t *testing.T, in *dbtest.Instance, id int64) bool {
	return in.QueryString(t, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id) != "0"
}

// TestSwitchoverLongWrites: a 30 s write statement, an open transaction that wrote, and a LOCK TABLES session on
// the primary would make read_only=1 wait, and every write queue behind it. The switchover refuses, naming each,
// with nothing changed; with KillLongWrites it kills them right before read_only=1 and completes, with its window
// within the bound. LOCK TABLES is seen through the metadata_lock_info plugin; without it the plan says so.
func TestSwitchoverLongWrites(t *testing.T) {
	t.Parallel()
	tp := dbtest.PrimaryWithReplicas(t, 1)
	p, r1 := tp.Get("p"), tp.Get("r1")
	createAppAccounts(t, p)
	p.Exec(t, "CREATE TABLE test.lw (id INT PRIMARY KEY, v INT)", "INSERT INTO test.lw VALUES (1, 0), (2, 0)", "CREATE TABLE test.lockme (id INT)")
	r1.WaitCaughtUp(t, p)
	c := boundedClient(t)
	o := dbstate.SwitchoverOptions{MaxWindow: 2 * time.Second, LongWrite: time.Second} // the default

	t.Run("without metadata_lock_info: the plan warns that LOCK TABLES cannot be seen", func(t *testing.T) {
		plan, _, err := runBounded(t, c, p, r1, o, time.Minute, func(context.Context, *dbstate.Step) error { return errors.New("dry") })
		if plan == nil {
			t.Fatalf("plan: %v", err)
		}
		if w := strings.Join(plan.Warnings, "\n"); !strings.Contains(w, "metadata_lock_info") {
			t.Fatalf("warnings: %s", w)
		}
	})
	p.Exec(t, "SET SESSION sql_log_bin=0", "INSTALL SONAME 'metadata_lock_info'")

	long := longSession(t, p, nil, "UPDATE test.lw SET v = SLEEP(30) WHERE id = 1")
	trx := longSession(t, p, []string{"BEGIN", "UPDATE test.lw SET v = 7 WHERE id = 2"}, "")
	locks := longSession(t, p, []string{"LOCK TABLES test.lockme WRITE"}, "")

	t.Run("refused, naming each, nothing changed", func(t *testing.T) {
		_, _, err := runBounded(t, c, p, r1, o, time.Minute, nil)
		var re *dbstate.RefusalError // at planning: not a failure of the look again right before read_only=1
		if !errors.As(err, &re) || !errors.Is(err, dbstate.ErrLongWrites) {
			t.Fatalf("err = %v, want a refusal with ErrLongWrites", err)
		}
		for _, want := range []string{
			fmt.Sprintf("session %d", long), "statement for", "UPDATE test.lw SET v = SLEEP(30)",
			fmt.Sprintf("session %d", trx), "transaction for", "1 rows modified",
			fmt.Sprintf("session %d", locks), "lock tables", "test.lockme MDL_SHARED_NO_READ_WRITE",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal lacks %q: %v", want, err)
			}
		}
		assertOriginal(t, c, p, []*dbtest.Instance{r1})
	})

	t.Run("killed with KillLongWrites: the switchover completes within its window", func(t *testing.T) {
		ko := o
		ko.KillLongWrites = true
		plan, audit, err := runBounded(t, c, p, r1, ko, time.Minute, nil)
		if err != nil {
			t.Fatalf("%v\naudit:\n%s", err, audit)
		}
		for _, id := range []int64{long, trx, locks} {
			if sessionAlive(t, p, id) {
				t.Errorf("session %d still there", id)
			}
		}
		if !strings.Contains(audit, `"step":"long-writes"`) || !strings.Contains(audit, fmt.Sprintf("session %d", locks)) {
			t.Fatalf("the audit log does not name what long-writes killed:\n%s", audit)
		}
		report := strings.Join(plan.Report(), "\n")
		if !strings.Contains(report, "write-unavailability window: ") || strings.Contains(report, "WARNING") {
			t.Fatalf("report:\n%s", report)
		}
		assertSwitched(t, c, r1, []*dbtest.Instance{p, r1})
		// The open transaction rolled back; the long write never committed.
		if got := r1.QueryString(t, "SELECT GROUP_CONCAT(v ORDER BY id) FROM test.lw"); got != "0,0" {
			t.Fatalf("test.lw on the new primary = %s, want 0,0", got)
		}
	})
}

// TestSwitchoverToANamedDelayedCandidate: a candidate with a MASTER_DELAY is refused, nothing changed, unless the
// operator names it as the delayed candidate: then its delay is removed before the catch-up, a rollback puts the
// delay back, and a switchover loses none of the writes it held back.
func TestSwitchoverToANamedDelayedCandidate(t *testing.T) {
	t.Parallel()
	tp := dbtest.PrimaryWithReplicas(t, 1)
	p, r1 := tp.Get("p"), tp.Get("r1")
	createAppAccounts(t, p)
	r1.WaitCaughtUp(t, p)
	c := boundedClient(t)
	r1.AddLag(t, 8*time.Second)
	for k := 1; k <= 5; k++ {
		p.Exec(t, fmt.Sprintf("INSERT INTO test.w (seq, via, at) VALUES (%d, 0, NOW(6))", -100-k)) // held back by r1
	}

	if _, _, err := runBounded(t, c, p, r1, dbstate.SwitchoverOptions{}, time.Minute, nil); !errors.Is(err, dbstate.ErrDelayedCandidate) {
		t.Fatalf("err = %v, want ErrDelayedCandidate", err)
	}
	o := dbstate.SwitchoverOptions{DelayedCandidate: r1.Addr()}
	_, audit, err := runBounded(t, c, p, r1, o, time.Minute, func(_ context.Context, s *dbstate.Step) error {
		if s.Name == "catch-up" {
			return errors.New("injected fault")
		}
		return nil
	})
	var ee *dbstate.ExecError
	if !errors.As(err, &ee) || !ee.RolledBack || !strings.Contains(audit, `"step":"undelay-candidate"`) {
		t.Fatalf("err = %v, want a rollback of undelay-candidate\naudit:\n%s", err, audit)
	}
	if got := r1.SlaveStatus(t)["SQL_Delay"]; got != "8" {
		t.Fatalf("SQL_Delay after the rollback = %q, want 8", got)
	}
	_, audit, err = runBounded(t, c, p, r1, o, time.Minute, nil)
	if err != nil {
		t.Fatalf("%v\naudit:\n%s", err, audit)
	}
	assertSwitched(t, c, r1, []*dbtest.Instance{p, r1})
	if got := r1.QueryString(t, "SELECT COUNT(*) FROM test.w WHERE seq BETWEEN -105 AND -101"); got != "5" {
		t.Fatalf("the new primary has %s of the 5 writes it held back", got)
	}
}
