package dbstate_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/evenkeel/evenkeel/internal/syncbuf"
)

func planMove(t testing.TB, c *dbstate.Client, seed string, o dbstate.MoveOptions) (*dbstate.Plan, error) {
	t.Helper()
	return dbstate.PlanMove(context.Background(), c, discover(t, c, seed), o)
}

func TestMoveAndRefusals(t *testing.T) {
	t.Parallel()
	// p is the primary; a and b replicate from it, c from b; n has no log_slave_updates.
	tp := dbtest.BuildWith(t, "p>a p>b b>c p>n", map[string][]string{"n": {"--log-slave-updates=0"}})
	p, a, b, cc, n := tp.Get("p"), tp.Get("a"), tp.Get("b"), tp.Get("c"), tp.Get("n")
	c := newClient(t)
	p.Exec(t, "CREATE TABLE test.m (id INT PRIMARY KEY)")
	ctx := context.Background()

	move := func(t *testing.T, replica, under *dbtest.Instance, timeout time.Duration) error {
		t.Helper()
		plan, err := planMove(t, c, p.Addr(), dbstate.MoveOptions{Replica: replica.Addr(), Under: under.Addr(), Timeout: timeout})
		if err != nil {
			return err
		}
		return plan.Execute(ctx, dbstate.ExecOptions{User: "test"})
	}
	masterOf := func(t *testing.T, in *dbtest.Instance) string {
		t.Helper()
		return discover(t, c, p.Addr()).Instances[in.Addr()].Master
	}

	t.Run("dry run", func(t *testing.T) {
		plan, err := planMove(t, c, p.Addr(), dbstate.MoveOptions{Replica: cc.Addr(), Under: a.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		plan.WriteText(&sb)
		t.Log("\n" + sb.String())
		if !strings.Contains(sb.String(), "CHANGE MASTER TO MASTER_HOST='127.0.0.1'") || masterOf(t, cc) != b.Addr() {
			t.Fatalf("plan:\n%s", sb.String())
		}
	})

	t.Run("move c from b to a, and back", func(t *testing.T) {
		if err := move(t, cc, a, 0); err != nil {
			t.Fatal(err)
		}
		if got := masterOf(t, cc); got != a.Addr() {
			t.Fatalf("c replicates from %s, want a", got)
		}
		p.Exec(t, "INSERT INTO test.m VALUES (1)")
		a.WaitCaughtUp(t, p)
		cc.WaitCaughtUp(t, p)
		if got := cc.QueryString(t, "SELECT COUNT(*) FROM test.m WHERE id=1"); got != "1" {
			t.Fatal("c does not get new writes through a")
		}
		// Back through the one-call Go API.
		if _, err := dbstate.Move(ctx, c, dbstate.MoveOptions{Replica: cc.Addr(), Under: b.Addr()}, dbstate.ExecOptions{User: "test"}); err != nil {
			t.Fatal(err)
		}
		if got := masterOf(t, cc); got != b.Addr() {
			t.Fatalf("c replicates from %s, want b", got)
		}
		topo := discover(t, c, p.Addr())
		if len(topo.Problems) != 0 {
			t.Fatalf("problems: %v", topo.Problems)
		}
	})

	refusals := []struct {
		name    string
		replica *dbtest.Instance
		under   *dbtest.Instance
		want    error
	}{
		{name: "loop", replica: b, under: cc, want: dbstate.ErrLoop},
		{name: "no log_slave_updates", replica: a, under: n, want: dbstate.ErrNoBinlog},
		{name: "the primary is no replica", replica: p, under: a, want: dbstate.ErrNotReplica},
		{name: "already there", replica: cc, under: b, want: dbstate.ErrAlreadyThere},
		{name: "same instance", replica: a, under: a, want: dbstate.ErrSameInstance},
	}
	for _, r := range refusals {
		t.Run("refuses "+r.name, func(t *testing.T) {
			err := move(t, r.replica, r.under, 0)
			var re *dbstate.RefusalError
			if !errors.As(err, &re) || !errors.Is(err, r.want) {
				t.Fatalf("err = %v, want a refusal with %v", err, r.want)
			}
			t.Log(err)
		})
	}

	t.Run("refuses when the new master lacks the position and is not replicating", func(t *testing.T) {
		a.StopSQLThread(t)
		defer a.StartSQLThread(t)
		p.Exec(t, "INSERT INTO test.m VALUES (2)")
		cc.WaitCaughtUp(t, p)
		err := move(t, cc, a, 0)
		if !errors.Is(err, dbstate.ErrPositionUnreachable) {
			t.Fatalf("err = %v, want ErrPositionUnreachable", err)
		}
		t.Log(err)
	})

	t.Run("new master cannot reach the position in time: rolled back", func(t *testing.T) {
		a.WaitCaughtUp(t, p)
		a.AddLag(t, 60*time.Second)
		lagged := true
		defer func() {
			if lagged {
				a.AddLag(t, 0)
			}
		}()
		p.Exec(t, "INSERT INTO test.m VALUES (3)")
		cc.WaitCaughtUp(t, p)
		err := move(t, cc, a, time.Second)
		var ee *dbstate.ExecError
		if !errors.Is(err, dbstate.ErrPositionUnreachable) || !errors.As(err, &ee) || !ee.RolledBack {
			t.Fatalf("err = %v, want a rolled-back ErrPositionUnreachable", err)
		}
		a.AddLag(t, 0)
		lagged = false
		if got := masterOf(t, cc); got != b.Addr() {
			t.Fatalf("c replicates from %s after the rollback, want b", got)
		}
		p.Exec(t, "INSERT INTO test.m VALUES (4)")
		cc.WaitCaughtUp(t, p)
	})

	t.Run("refuses a new master with errant transactions", func(t *testing.T) {
		a.WaitCaughtUp(t, p)
		a.ErrantTransaction(t)
		err := move(t, cc, a, 0)
		if !errors.Is(err, dbstate.ErrErrantGTID) {
			t.Fatalf("err = %v, want ErrErrantGTID", err)
		}
		t.Log(err)
		// The same errant transaction blocks a switchover to any replica.
		_, _, err = switchover(t, c, p, b, dbstate.SwitchoverOptions{}, nil)
		if !errors.Is(err, dbstate.ErrErrantGTID) {
			t.Fatalf("switchover err = %v, want ErrErrantGTID", err)
		}
	})
}

func TestSwitchoverRefusals(t *testing.T) {
	t.Parallel()
	tp := dbtest.Build(t, "p>a p>b b>c")
	p, a, b, cc := tp.Get("p"), tp.Get("a"), tp.Get("b"), tp.Get("c")
	c := newClient(t)
	tests := []struct {
		name   string
		x, y   *dbtest.Instance
		before func(t *testing.T)
		after  func(t *testing.T)
		want   error
	}{
		{name: "not a direct replica", x: p, y: cc, want: dbstate.ErrNotReplica},
		{name: "primary replicates", x: b, y: cc, want: dbstate.ErrPrimaryReplicates},
		{name: "same instance", x: p, y: p, want: dbstate.ErrSameInstance},
		{name: "candidate SQL thread stopped", x: p, y: a,
			before: func(t *testing.T) { a.StopSQLThread(t) }, after: func(t *testing.T) { a.StartSQLThread(t) }, want: dbstate.ErrReplicaUnhealthy},
		{name: "another replica broken", x: p, y: a,
			before: func(t *testing.T) { b.StopSQLThread(t) }, after: func(t *testing.T) { b.StartSQLThread(t) }, want: dbstate.ErrReplicaUnhealthy},
		{name: "second writable instance", x: p, y: a,
			before: func(t *testing.T) { cc.Exec(t, "SET GLOBAL read_only=0") }, after: func(t *testing.T) { cc.Exec(t, "SET GLOBAL read_only=1") }, want: dbstate.ErrMultipleWritable},
		{name: "binlog formats differ", x: p, y: a,
			before: func(t *testing.T) { a.Exec(t, "SET GLOBAL binlog_format=STATEMENT") }, after: func(t *testing.T) { a.Exec(t, "SET GLOBAL binlog_format=ROW") }, want: dbstate.ErrBinlogFormat},
		{name: "lag above the bound", x: p, y: a,
			before: func(t *testing.T) {
				release := holdLag(t, a, p, "lag_refusal")
				t.Cleanup(release)
				waitUntil(t, 10*time.Second, func() error {
					if n, _ := strconv.Atoi(a.SlaveStatus(t)["Seconds_Behind_Master"]); n < 2 {
						return errors.New("no lag yet")
					}
					return nil
				})
			}, want: dbstate.ErrLagTooHigh},
		{name: "delayed candidate", x: p, y: a,
			before: func(t *testing.T) { a.AddLag(t, time.Hour) }, after: func(t *testing.T) { a.AddLag(t, 0) }, want: dbstate.ErrDelayedCandidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before(t)
			}
			if tt.after != nil {
				defer tt.after(t)
			}
			_, _, err := switchover(t, c, tt.x, tt.y, dbstate.SwitchoverOptions{MaxLag: time.Second}, nil)
			var re *dbstate.RefusalError
			if !errors.As(err, &re) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want a refusal with %v", err, tt.want)
			}
			t.Log(err)
			if p.QueryString(t, "SELECT @@read_only") != "0" {
				t.Fatal("a refused switchover changed the primary")
			}
		})
	}
}

// A replica can be moved under the root primary (flattening a chain) and back under a replica while the primary
// takes writes. The root primary's gtid_slave_pos never moves with its own writes, so waiting for the position
// there must look at what it logged (gtid_binlog_pos), not at what it replicated.
func TestMoveUnderRootPrimaryUnderWriteLoad(t *testing.T) {
	t.Parallel()
	tp := dbtest.Build(t, "p>a a>c")
	p, a, cc := tp.Get("p"), tp.Get("a"), tp.Get("c")
	createAppAccounts(t, p)
	a.WaitCaughtUp(t, p)
	cc.WaitCaughtUp(t, p)
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := startWriter(t, "app", 200, p)
	w.waitAcks(t, 50)

	masterOf := func(in *dbtest.Instance) string { return discover(t, c, p.Addr()).Instances[in.Addr()].Master }
	for _, step := range []struct {
		name  string
		under *dbtest.Instance
	}{{"flatten: c under the root p", p}, {"back under the replica a", a}} {
		var audit syncbuf.Buffer
		if _, err := dbstate.Move(ctx, c, dbstate.MoveOptions{Replica: cc.Addr(), Under: step.under.Addr(), Timeout: 5 * time.Second},
			dbstate.ExecOptions{User: "test", Audit: &audit}); err != nil {
			t.Fatalf("%s: %v\naudit:\n%s", step.name, err, audit.String())
		}
		if got := masterOf(cc); got != step.under.Addr() {
			t.Fatalf("%s: c replicates from %s", step.name, got)
		}
		w.waitAcks(t, 50) // writes keep flowing to c through its new master
	}
	w.Stop()
	a.WaitCaughtUp(t, p)
	cc.WaitCaughtUp(t, p)
	assertAcksEverywhere(t, w.Acks(), p, a, cc)
	if topo := discover(t, c, p.Addr()); len(topo.Problems) != 0 {
		t.Fatalf("problems: %v", topo.Problems)
	}
}
