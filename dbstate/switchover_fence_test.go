package dbstate_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/go-sql-driver/mysql"
)

func accountLocked(t testing.TB, in *dbtest.Instance, user string) bool {
	t.Helper()
	got := in.QueryString(t, "SELECT IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') FROM mysql.global_priv WHERE User=? AND Host='127.0.0.1'", user)
	return got == "true" || got == "1"
}

// liftKept runs dbstate recover on the audit log of a switchover: it unlocks what the run kept locked on the
// demoted primary (or left locked), lifts a read_only the run left, and finishes a run that failed past its point
// of no return (with the testbed's replication account, to repoint the old primary).
func liftKept(t testing.TB, c *dbstate.Client, audit string) {
	t.Helper()
	l, err := dbstate.ReadLeftovers(strings.NewReader(audit), "")
	if err != nil {
		t.Fatal(err)
	}
	var topo *dbstate.Topology // needed only to lift a read_only
	if len(l.ReadOnly) > 0 {
		topo = discover(t, c, l.ReadOnly...)
	}
	plan, err := dbstate.PlanRecoverWith(context.Background(), c, topo, l,
		dbstate.RecoverOptions{Replication: dbstate.Credentials{User: dbtest.ReplUser, Password: dbtest.ReplPassword}})
	if err != nil {
		t.Fatalf("recover: %v (leftovers %s)", err, l)
	}
	if err := plan.Execute(context.Background(), dbstate.ExecOptions{User: "test"}); err != nil {
		t.Fatalf("recover: %v", err)
	}
}

// The split that an unlock after the switchover opened: an ALL PRIVILEGES account (not root) that reconnects
// for every write, 50 writes/s, to the old primary's address. After the switchover the demoted primary must
// take none of its writes: the fenced accounts stay locked there (not binlogged: usable on the new primary).
func TestSwitchoverKeepsDemotedPrimaryFenced(t *testing.T) {
	t.Parallel()
	tp := dbtest.PrimaryWithReplicas(t, 1)
	p, r1 := tp.Get("p"), tp.Get("r1")
	createAppAccounts(t, p)
	r1.WaitCaughtUp(t, p)
	c := newClient(t)

	w := startSeqWriter(t, 50, tcpAs(p, "appall", appPassword))
	waitUntil(t, 10*time.Second, func() error {
		if w.acksAfter(time.Time{}) < 10 {
			return context.DeadlineExceeded
		}
		return nil
	})
	plan, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{}, nil)
	if err != nil {
		t.Fatalf("switchover: %v\naudit:\n%s", err, audit)
	}
	done := time.Now()
	time.Sleep(time.Second) // 50 chances for the writer to reach the demoted primary
	w.Stop()
	if n := w.acksAfter(done); n > 0 {
		t.Errorf("%d writes acknowledged by the demoted primary after the switchover", n)
	}
	waitUntil(t, 10*time.Second, func() error {
		st, err := c.ReplicaStatus(context.Background(), p.Addr())
		if err != nil {
			return err
		}
		if st == nil || st.LastSQLErrno != 0 || !st.Healthy() {
			return context.DeadlineExceeded
		}
		return nil
	})
	if st, _ := c.ReplicaStatus(context.Background(), p.Addr()); st == nil || st.LastSQLErrno == 1950 {
		t.Fatalf("old primary's replication: %+v", st)
	}
	xv, err := c.Vars(context.Background(), p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	yv, err := c.Vars(context.Background(), r1.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if !yv.GTIDBinlogPos.Contains(xv.GTIDBinlogPos) {
		t.Fatalf("split: the demoted primary has %s, the new primary %s", xv.GTIDBinlogPos, yv.GTIDBinlogPos)
	}
	if !accountLocked(t, p, "appall") || accountLocked(t, r1, "appall") {
		t.Fatalf("appall locked: on p %v (want true), on r1 %v (want false)", accountLocked(t, p, "appall"), accountLocked(t, r1, "appall"))
	}
	// The account writes on the new primary.
	w2 := startSeqWriter(t, 50, tcpAs(r1, "appall", appPassword))
	waitUntil(t, 10*time.Second, func() error {
		if w2.acksAfter(done) < 5 {
			return context.DeadlineExceeded
		}
		return nil
	})
	w2.Stop()
	report := strings.Join(plan.Report(), "\n")
	if !strings.Contains(report, "'appall'@'127.0.0.1'") || !strings.Contains(report, "ALTER USER 'appall'@'127.0.0.1' ACCOUNT UNLOCK") ||
		!strings.Contains(report, p.Addr()) {
		t.Fatalf("report does not say what stays locked and how to lift it:\n%s", report)
	}
	// The audit log says what was kept: recover lifts exactly that.
	liftKept(t, c, audit)
	if accountLocked(t, p, "appall") {
		t.Fatal("recover left appall locked on p")
	}

	t.Run("unlock-demoted unlocks and warns", func(t *testing.T) {
		p.WaitCaughtUp(t, r1)
		plan, audit, err := switchover(t, c, r1, p, dbstate.SwitchoverOptions{UnlockDemoted: true}, nil)
		if err != nil {
			t.Fatalf("switchover: %v\naudit:\n%s", err, audit)
		}
		if !strings.Contains(strings.Join(plan.Warnings, "\n"), "split brain") {
			t.Fatalf("no warning of the risk: %q", plan.Warnings)
		}
		if accountLocked(t, r1, "appall") {
			t.Fatal("appall locked on the demoted r1 with UnlockDemoted")
		}
	})
}

// A switchover fences the candidate with the accounts found on the primary, and lifts that fence after the
// promotion. An account a DBA had locked on the candidate beforehand is none of the fence's business: it stays
// locked.
func TestSwitchoverLeavesAnAccountLockedBeforeLocked(t *testing.T) {
	t.Parallel()
	tp := dbtest.PrimaryWithReplicas(t, 1)
	p, r1 := tp.Get("p"), tp.Get("r1")
	createAppAccounts(t, p)
	r1.WaitCaughtUp(t, p)
	ctx := context.Background()
	conn, err := r1.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET SESSION sql_log_bin=0", "ALTER USER 'approle'@'127.0.0.1' ACCOUNT LOCK", "SET SESSION sql_log_bin=1"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s on r1: %v", q, err)
		}
	}
	conn.Close()
	c := newClient(t)
	if _, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{}, nil); err != nil {
		t.Fatalf("switchover: %v\naudit:\n%s", err, audit)
	}
	if !accountLocked(t, r1, "approle") {
		t.Error("approle, locked on r1 before the switchover, was unlocked there by it")
	}
	if accountLocked(t, r1, "appall") {
		t.Error("appall still locked on the new primary r1")
	}
}

// TestSwitchoverEndsSessionsOfSpecialNames: ALL PRIVILEGES accounts named like the server's own threads ('system
// user', 'event_scheduler', 'unauthenticated user') and a client that logs in with an empty user name (the
// anonymous account), each holding a connection open on the primary. --fence refuse names them all; the default
// fence kills their sessions (their accounts are locked there), so that none of them writes to the demoted
// primary after the switchover through the connection it kept.
func TestSwitchoverEndsSessionsOfSpecialNames(t *testing.T) {
	t.Parallel()
	tp := dbtest.PrimaryWithReplicas(t, 1)
	p, r1 := tp.Get("p"), tp.Get("r1")
	p.Exec(t, "CREATE TABLE test.special (id INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(32))")
	names := []string{"system user", "event_scheduler", "unauthenticated user", ""}
	for _, u := range names {
		p.Exec(t, "CREATE USER '"+u+"'@'127.0.0.1' IDENTIFIED BY '"+appPassword+"'", "GRANT ALL PRIVILEGES ON *.* TO '"+u+"'@'127.0.0.1'")
	}
	r1.WaitCaughtUp(t, p)
	ctx := context.Background()
	conns := map[string]*sql.Conn{}
	for _, u := range names {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.Timeout = u, appPassword, "tcp", p.Addr(), time.Second
		connector, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(connector)
		t.Cleanup(func() { db.Close() })
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("log in as %q: %v", u, err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := conn.ExecContext(ctx, "INSERT INTO test.special (who) VALUES (?)", u); err != nil {
			t.Fatalf("write as %q: %v", u, err)
		}
		conns[u] = conn
	}
	c := newClient(t)

	closeRootSessions(t, c, p)
	_, _, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{Fence: dbstate.FenceRefuse}, nil)
	for _, u := range names {
		if !errors.Is(err, dbstate.ErrUnfencedWriters) || !strings.Contains(err.Error(), "'"+u+"'@'127.0.0.1'") {
			t.Errorf("--fence refuse: err = %v, want ErrUnfencedWriters naming '%s'@'127.0.0.1'", err, u)
		}
	}
	if p.QueryString(t, "SELECT @@read_only") != "0" {
		t.Fatal("a refused switchover changed the primary")
	}

	if _, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{}, nil); err != nil {
		t.Fatalf("switchover: %v\naudit:\n%s", err, audit)
	}
	for _, u := range names {
		if _, err := conns[u].ExecContext(ctx, "INSERT INTO test.special (who) VALUES (?)", u); err == nil {
			t.Errorf("the session of %q wrote to the demoted primary after the switchover", u)
		}
	}
	xv, err := c.Vars(ctx, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	yv, err := c.Vars(ctx, r1.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if !yv.GTIDBinlogPos.Contains(xv.GTIDBinlogPos) {
		t.Fatalf("split: the demoted primary has %s, the new primary %s", xv.GTIDBinlogPos, yv.GTIDBinlogPos)
	}
}
