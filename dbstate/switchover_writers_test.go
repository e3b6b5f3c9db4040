package dbstate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/evenkeel/evenkeel/internal/syncbuf"
	"github.com/go-sql-driver/mysql"
)

// safe are the library's default fence options: nothing exempt (the switchover helper exempts the testbed's
// logins otherwise).
var safe = dbstate.SwitchoverOptions{NeverLock: []dbstate.Account{}}

// seqWriter writes sequenced rows, rate per second, opening a new connection for every write, to the first of
// targets that takes it (a failover-aware application tries the next address when one refuses), and records
// every acknowledged sequence number.
type seqWriter struct {
	stop, done chan struct{}
	mu         sync.Mutex
	acked      []int64
	at         []time.Time // when each of acked was acknowledged
}

type target struct{ net, addr, user, password string }

func tcpAs(in *dbtest.Instance, user, password string) target {
	return target{"tcp", in.Addr(), user, password}
}

func startSeqWriter(t testing.TB, rate int, targets ...target) *seqWriter {
	t.Helper()
	var dbs []*sql.DB
	for _, tg := range targets {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.Timeout = tg.user, tg.password, tg.net, tg.addr, time.Second
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		db.SetMaxIdleConns(0)
		dbs = append(dbs, db)
	}
	w := &seqWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		seq := writerBase.Add(1_000_000_000)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				for _, db := range dbs {
					db.Close()
				}
				return
			case <-tick.C:
			}
			for _, db := range dbs {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := db.ExecContext(ctx, "INSERT INTO test.w (seq, via, at) VALUES (?, @@server_id, NOW(6))", seq)
				cancel()
				if err == nil {
					w.mu.Lock()
					w.acked = append(w.acked, seq)
					w.at = append(w.at, time.Now())
					w.mu.Unlock()
					break
				}
			}
			seq++
		}
	}()
	t.Cleanup(w.Stop)
	return w
}

func (w *seqWriter) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *seqWriter) count() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) }

// acksAfter counts the acknowledged writes after at.
func (w *seqWriter) acksAfter(at time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.at {
		if a.After(at) {
			n++
		}
	}
	return n
}

// watcher reads an instance as 'watch'@'localhost' over its socket: SELECT and SLAVE MONITOR only, no READ ONLY
// ADMIN, so the fence leaves it alone (root and the admin account are locked on the demoted primary).
type watcher struct{ db *sql.DB }

func watch(t testing.TB, in *dbtest.Instance) *watcher {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "watch", appPassword, "unix", in.Socket
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return &watcher{db: db}
}

func (w *watcher) str(t testing.TB, q string, args ...any) string {
	t.Helper()
	var v sql.NullString
	if err := w.db.QueryRow(q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v.String
}

// assertNoSplit checks the rule after a switchover from x to y: x's gtid_binlog_pos is contained in y's, x
// replicates from y without error (no 1950), and every write the writer saw acknowledged is on y.
func assertNoSplit(t testing.TB, x, y *dbtest.Instance, w *seqWriter) {
	t.Helper()
	wx, wy := watch(t, x), watch(t, y)
	yb := wy.str(t, "SELECT @@gtid_binlog_pos")
	waitUntil(t, 10*time.Second, func() error {
		if got := wx.str(t, "SELECT @@gtid_slave_pos"); !dbstate.MustParsePosition(got).Contains(dbstate.MustParsePosition(yb)) {
			return fmt.Errorf("the demoted primary applied %s of %s", got, yb)
		}
		return nil
	})
	st, err := dbstate.ReadReplicaStatus(context.Background(), wx.db)
	if err != nil || st == nil {
		t.Fatalf("SHOW SLAVE STATUS on the demoted primary: %+v %v", st, err)
	}
	if !st.Healthy() || st.LastSQLErrno != 0 || st.LastIOError != "" {
		t.Fatalf("the demoted primary's replication: sql=%s %s io=%s %s", st.SQLRunning, st.LastSQLError, st.IORunning, st.LastIOError)
	}
	xb := wx.str(t, "SELECT @@gtid_binlog_pos")
	if !dbstate.MustParsePosition(yb).Contains(dbstate.MustParsePosition(xb)) {
		t.Fatalf("split: the demoted primary logged %s, the new primary %s", xb, yb)
	}
	if w == nil {
		return
	}
	w.mu.Lock()
	acked := append([]int64(nil), w.acked...)
	w.mu.Unlock()
	missing := 0
	for _, s := range acked {
		if wy.str(t, "SELECT COUNT(*) FROM test.w WHERE seq = ?", s) != "1" {
			missing++
		}
	}
	if missing > 0 || len(acked) == 0 {
		t.Fatalf("%d of %d acknowledged writes missing on the new primary", missing, len(acked))
	}
}

func lockedAccounts(t testing.TB, in *dbtest.Instance) string {
	t.Helper()
	return watch(t, in).str(t, "SELECT IFNULL(GROUP_CONCAT(CONCAT(User, '@', Host) ORDER BY User, Host), '') FROM mysql.global_priv "+
		"WHERE User <> 'mariadb.sys' AND JSON_VALUE(Priv, '$.account_locked') IN ('true', '1')")
}

// runAndLift runs a switchover with the default fence while w writes, checks the rule, and lifts what the
// switchover kept on the demoted primary through the new one (dbstate's own login is locked on it), so that the
// next switchover can go back.
func runAndLift(t *testing.T, c *dbstate.Client, x, y *dbtest.Instance, w *seqWriter, o dbstate.SwitchoverOptions) {
	t.Helper()
	waitUntil(t, 10*time.Second, func() error {
		if w != nil && w.count() < 5 {
			return context.DeadlineExceeded
		}
		return nil
	})
	// A writer that logs in as dbstate itself is locked only right before the promotion (so that dbstate's login
	// stays usable on the old primary should dbstate die earlier): a write it lands in the window makes the
	// switchover roll back, truthfully and with nothing lost, which the rule allows. Try again then, a few times.
	var plan *dbstate.Plan
	var audit string
	var err error
	for attempt := 1; ; attempt++ {
		plan, audit, err = switchover(t, c, x, y, o, nil)
		var ee *dbstate.ExecError
		if err != nil && attempt < 5 && errors.As(err, &ee) && ee.RolledBack && strings.Contains(err.Error(), "a writer is not fenced") {
			t.Logf("attempt %d rolled back: %v", attempt, err)
			continue
		}
		break
	}
	if err != nil {
		t.Fatalf("switchover: %v\naudit:\n%s", err, audit)
	}
	time.Sleep(500 * time.Millisecond) // chances for the writer to reach the demoted primary
	if w != nil {
		w.Stop()
	}
	assertNoSplit(t, x, y, w)
	report := strings.Join(plan.Report(), "\n")
	if !strings.Contains(report, "'"+dbtest.AdminUser+"'@'127.0.0.1'") || !strings.Contains(report, "on "+y.Addr()+", the new primary") {
		t.Fatalf("the report does not say that dbstate's own login stays locked, nor how to lift it:\n%s", report)
	}
	if got := lockedAccounts(t, y); got != "" {
		t.Fatalf("locked on the new primary: %s", got)
	}
	liftKept(t, c, audit)
	waitUntil(t, 10*time.Second, func() error {
		if got := lockedAccounts(t, x); got != "" {
			return fmt.Errorf("still locked on the demoted primary after recover: %s", got)
		}
		return nil
	})
}

// One writer of each kind that read_only does not stop, each reconnecting for every write, against the
// library's default fence; switchovers back and forth on one testbed (each lifted by recover, through the new
// primary, before the next).
func TestSwitchoverFencesEveryWriter(t *testing.T) {
	tp := dbtest.PrimaryWithReplicas(t, 1)
	p, r1 := tp.Get("p"), tp.Get("r1")
	createAppAccounts(t, p)
	p.Exec(t, "CREATE USER 'watch'@'localhost' IDENTIFIED BY '"+appPassword+"'", "GRANT SELECT, SLAVE MONITOR ON *.* TO 'watch'@'localhost'")
	r1.WaitCaughtUp(t, p)
	c := newClient(t)

	t.Run("root over the socket", func(t *testing.T) {
		w := startSeqWriter(t, 50, target{"unix", p.Socket, "root", ""})
		runAndLift(t, c, p, r1, w, safe)
	})
	t.Run("dbstate's own account, switching back", func(t *testing.T) {
		w := startSeqWriter(t, 50, tcpAs(r1, dbtest.AdminUser, dbtest.AdminPassword))
		runAndLift(t, c, r1, p, w, safe)
	})
	t.Run("an ALL writer that moves to the candidate 1 s behind", func(t *testing.T) {
		r1.Exec(t, "STOP SLAVE SQL_THREAD")
		time.AfterFunc(time.Second, func() { _ = r1.ExecErr("START SLAVE SQL_THREAD") })
		w := startSeqWriter(t, 50, tcpAs(p, "appall", appPassword), tcpAs(r1, "appall", appPassword))
		time.Sleep(1200 * time.Millisecond)
		runAndLift(t, c, p, r1, w, safe)
	})
	t.Run("an event", func(t *testing.T) {
		for _, in := range []*dbtest.Instance{p, r1} {
			in.Exec(t, "SET GLOBAL event_scheduler=ON")
		}
		r1.Exec(t, "CREATE TABLE IF NOT EXISTS test.ev (id BIGINT AUTO_INCREMENT PRIMARY KEY, via INT)",
			"CREATE DEFINER='root'@'localhost' EVENT test.`tick ``1` ON SCHEDULE EVERY 1 SECOND DO INSERT INTO test.ev (via) VALUES (@@server_id)")
		p.WaitCaughtUp(t, r1)
		time.Sleep(1500 * time.Millisecond)
		runAndLift(t, c, r1, p, nil, safe)
		status := func(in *dbtest.Instance) string {
			return in.QueryString(t, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_NAME = 'tick `1'")
		}
		if status(r1) != "SLAVESIDE_DISABLED" || status(p) != "ENABLED" {
			t.Fatalf("event on the demoted primary %s (want SLAVESIDE_DISABLED), on the new one %s (want ENABLED)", status(r1), status(p))
		}
		id := p.QueryString(t, "SELECT @@server_id")
		waitUntil(t, 5*time.Second, func() error {
			if p.QueryString(t, "SELECT COUNT(*) FROM test.ev WHERE via = ?", id) == "0" {
				return fmt.Errorf("the event does not run on the new primary")
			}
			return nil
		})
		assertNoSplit(t, r1, p, nil)
	})
	t.Run("dbstate's own login failing over to the candidate, then a rollback", func(t *testing.T) {
		// An application with dbstate's login tries the candidate when the old primary fails it: kill-sessions
		// kills its sessions there in the window. The switchover fails 300 ms later, right before
		// fence-own-account: a write it landed on the candidate meanwhile would be an errant transaction there
		// once the rollback restarts its replication. (From fence-own-account on, dbstate's login is open on the
		// candidate again, so that recover can reach it after a kill -9; see fenceOwnAccountStep.)
		w := startSeqWriter(t, 20, tcpAs(p, dbtest.AdminUser, dbtest.AdminPassword), tcpAs(r1, dbtest.AdminUser, dbtest.AdminPassword))
		waitUntil(t, 10*time.Second, func() error {
			if w.count() < 5 {
				return context.DeadlineExceeded
			}
			return nil
		})
		var err error
		var audit string
		for attempt := 1; attempt <= 5; attempt++ {
			reached := false
			_, audit, err = switchover(t, c, p, r1, safe, func(_ context.Context, s *dbstate.Step) error {
				if s.Name == "fence-own-account" {
					reached = true
					time.Sleep(300 * time.Millisecond)
					return fmt.Errorf("injected")
				}
				return nil
			})
			if reached {
				break
			}
			// A write of that login landed on the old primary in the window, before its lock: a rollback too.
			t.Logf("attempt %d rolled back before fence-own-account: %v", attempt, err)
		}
		w.Stop()
		var ee *dbstate.ExecError
		if !errors.As(err, &ee) || !ee.RolledBack || !strings.Contains(err.Error(), "injected") {
			t.Fatalf("err = %v, want the injected failure, rolled back\naudit:\n%s", err, audit)
		}
		r1.WaitCaughtUp(t, p)
		pb, rb := watch(t, p).str(t, "SELECT @@gtid_binlog_pos"), watch(t, r1).str(t, "SELECT @@gtid_binlog_pos")
		if !dbstate.MustParsePosition(pb).Contains(dbstate.MustParsePosition(rb)) {
			t.Fatalf("errant transactions on the candidate: it logged %s, the primary %s", rb, pb)
		}
		for _, in := range []*dbtest.Instance{p, r1} {
			if got := lockedAccounts(t, in); got != "" {
				t.Fatalf("locked on %s after the rollback: %s", in.Name, got)
			}
		}
	})
	t.Run("a writer refused by the primary finds the candidate fenced", func(t *testing.T) {
		// The window is held open for 300 ms, then the switchover fails: the writer, refused by the old primary,
		// tries the candidate all that time. Unfenced, the candidate would take its writes while it still
		// replicates, and the rollback would leave it with transactions the primary lacks.
		w := startSeqWriter(t, 50, tcpAs(p, "appall", appPassword), tcpAs(r1, "appall", appPassword))
		waitUntil(t, 10*time.Second, func() error {
			if w.count() < 5 {
				return context.DeadlineExceeded
			}
			return nil
		})
		_, audit, err := switchover(t, c, p, r1, safe, func(_ context.Context, s *dbstate.Step) error {
			if s.Name == "wait-for-candidate" {
				time.Sleep(300 * time.Millisecond)
				return fmt.Errorf("injected")
			}
			return nil
		})
		w.Stop()
		var ee *dbstate.ExecError
		if !errors.As(err, &ee) || !ee.RolledBack {
			t.Fatalf("err = %v, want a verified rollback (no write on the candidate)\naudit:\n%s", err, audit)
		}
		if topo := discover(t, c, p.Addr()); len(topo.Problems) != 0 {
			t.Fatalf("problems after the rollback: %v", topo.Problems)
		}
	})
	t.Run("a rollback lifts every fence", func(t *testing.T) {
		_, audit, err := switchover(t, c, p, r1, safe, func(_ context.Context, s *dbstate.Step) error {
			if s.Name == "promote" {
				return fmt.Errorf("injected")
			}
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "rolled back") {
			t.Fatalf("err = %v, want a rollback\naudit:\n%s", err, audit)
		}
		for _, in := range []*dbtest.Instance{p, r1} {
			if got := lockedAccounts(t, in); got != "" {
				t.Fatalf("locked on %s after the rollback: %s", in.Name, got)
			}
		}
		if got := p.QueryString(t, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_NAME = 'tick `1'"); got != "ENABLED" {
			t.Fatalf("event on p after the rollback: %s", got)
		}
	})
	t.Run("recover after death in the window", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		o := safe
		o.Primary, o.Candidate, o.Replication = p.Addr(), r1.Addr(), replCreds()
		// The run that dies has a client of its own, closed after its death: every connection it logged in
		// ahead ends with it, as with a kill -9, and dbstate's own login stays locked on the candidate.
		dying := newClient(t)
		plan, err := dbstate.PlanSwitchover(ctx, dying, discover(t, dying, p.Addr()), o)
		if err != nil {
			t.Fatal(err)
		}
		var audit syncbuf.Buffer
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = plan.Execute(ctx, dbstate.ExecOptions{Audit: &audit, User: "test", BeforeStep: func(_ context.Context, s *dbstate.Step) error {
				if s.Name == "wait-for-candidate" {
					runtime.Goexit() // dbstate dies: nothing after this runs, no undo
				}
				return nil
			}})
		}()
		<-done
		dying.Close()
		if !strings.Contains(lockedAccounts(t, r1), dbtest.AdminUser+"@") || watch(t, p).str(t, "SELECT status FROM mysql.event WHERE name = 'tick `1'") == "ENABLED" {
			t.Fatalf("the interrupted run fenced nothing (dbstate's own login on the candidate: locked %q):\n%s", lockedAccounts(t, r1), audit.String())
		}
		l, err := dbstate.ReadLeftovers(strings.NewReader(audit.String()), "")
		if err != nil {
			t.Fatal(err)
		}
		rp, err := dbstate.PlanRecover(ctx, c, discover(t, c, p.Addr()), l)
		if err != nil {
			t.Fatalf("recover: %v (%s)", err, l)
		}
		if err := rp.Execute(ctx, dbstate.ExecOptions{User: "test"}); err != nil {
			t.Fatalf("recover: %v", err)
		}
		for _, in := range []*dbtest.Instance{p, r1} {
			if got := lockedAccounts(t, in); got != "" {
				t.Fatalf("locked on %s after recover: %s", in.Name, got)
			}
		}
		if got := watch(t, p).str(t, "SELECT status FROM mysql.event WHERE name = 'tick `1'"); got != "ENABLED" {
			t.Fatalf("event on p after recover: %s", got)
		}
		if watch(t, p).str(t, "SELECT @@read_only") != "0" {
			t.Fatal("p still read-only after recover")
		}
	})
}
