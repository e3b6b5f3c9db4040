package dbstate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/go-sql-driver/mysql"
)

func init() {
	// The driver logs dropped idle connections (which switchovers kill on purpose) to a global logger.
	mysql.SetLogger(log.New(io.Discard, "", 0))
}

func newClient(t testing.TB) *dbstate.Client {
	t.Helper()
	c := dbstate.NewClient(dbstate.Credentials{User: dbtest.AdminUser, Password: dbtest.AdminPassword}, 3*time.Second, nil)
	t.Cleanup(func() { c.Close() })
	return c
}

func replCreds() dbstate.Credentials {
	return dbstate.Credentials{User: dbtest.ReplUser, Password: dbtest.ReplPassword}
}

func discover(t testing.TB, c *dbstate.Client, seeds ...string) *dbstate.Topology {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo, err := dbstate.Discover(ctx, c, seeds, dbstate.DiscoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func hasProblem(topo *dbstate.Topology, addr string, kind dbstate.ProblemKind) bool {
	for _, p := range topo.ProblemsOf(addr) {
		if p.Kind == kind {
			return true
		}
	}
	return false
}

// assertNoSecrets fails when any of the test passwords appears in s.
func assertNoSecrets(t testing.TB, what, s string) {
	t.Helper()
	for _, pw := range []string{dbtest.AdminPassword, dbtest.ReplPassword, appPassword} {
		if strings.Contains(s, pw) {
			t.Fatalf("%s contains a password:\n%s", what, s)
		}
	}
}

// waitUntil polls f until it returns nil or the timeout passes.
func waitUntil(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const appPassword = "app-s3cret"

// createAppAccounts creates, on the primary (replicated everywhere), the table the writer uses, an account "app"
// with INSERT and SELECT on test.*, and an account "appall" with ALL PRIVILEGES ON *.*.
func createAppAccounts(t testing.TB, primary *dbtest.Instance) {
	t.Helper()
	primary.Exec(t,
		"CREATE TABLE IF NOT EXISTS test.w (seq BIGINT PRIMARY KEY, via INT NOT NULL, at DATETIME(6) NOT NULL)",
		"CREATE USER IF NOT EXISTS 'app'@'127.0.0.1' IDENTIFIED BY '"+appPassword+"'",
		"GRANT SELECT, INSERT ON test.* TO 'app'@'127.0.0.1'",
		"CREATE USER IF NOT EXISTS 'appall'@'127.0.0.1' IDENTIFIED BY '"+appPassword+"'",
		"GRANT ALL PRIVILEGES ON *.* TO 'appall'@'127.0.0.1'",
		// approle gets READ ONLY ADMIN only through a role.
		"CREATE ROLE IF NOT EXISTS 'writer_admin'",
		"GRANT SELECT, INSERT ON test.* TO 'writer_admin'",
		"GRANT READ ONLY ADMIN ON *.* TO 'writer_admin'",
		"CREATE USER IF NOT EXISTS 'approle'@'127.0.0.1' IDENTIFIED BY '"+appPassword+"'",
		"GRANT 'writer_admin' TO 'approle'@'127.0.0.1'",
		"SET DEFAULT ROLE 'writer_admin' FOR 'approle'@'127.0.0.1'",
	)
}

// ack is one acknowledged write.
type ack struct {
	seq  int64
	via  string
	at   time.Time
	took time.Duration
}

var writerBase atomic.Int64

// writer inserts sequenced rows, at about rate per second, through whichever instance is writable: it stays on
// one instance until a write fails, then looks for the instance with read_only=0.
type writer struct {
	user  string
	addrs []string
	rate  int
	dbs   map[string]*sql.DB

	mu       sync.Mutex
	acks     []ack
	errs     int
	lastErr  error
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func startWriter(t testing.TB, user string, rate int, insts ...*dbtest.Instance) *writer {
	t.Helper()
	w := &writer{user: user, rate: rate, dbs: map[string]*sql.DB{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, in := range insts {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, appPassword, "tcp", in.Addr()
		cfg.InterpolateParams = true
		cfg.Timeout = time.Second
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		db.SetMaxOpenConns(1)
		w.dbs[in.Addr()] = db
		w.addrs = append(w.addrs, in.Addr())
	}
	go w.run()
	t.Cleanup(w.Stop)
	return w
}

func (w *writer) findWritable() string {
	for _, a := range w.addrs {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		var ro int
		err := w.dbs[a].QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro)
		cancel()
		if err == nil && ro == 0 {
			return a
		}
	}
	return ""
}

func (w *writer) run() {
	defer close(w.done)
	interval := time.Second / time.Duration(w.rate)
	// Each writer has its own range of sequence numbers, so that a duplicate key can only be its own earlier
	// attempt whose answer was lost.
	seq := writerBase.Add(1_000_000_000)
	target := w.findWritable()
	next := time.Now()
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		if target == "" {
			time.Sleep(time.Millisecond)
			target = w.findWritable()
			continue
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := w.dbs[target].ExecContext(ctx, "INSERT INTO test.w (seq, via, at) VALUES (?, @@server_id, NOW(6))", seq)
		cancel()
		var me *mysql.MySQLError
		if err != nil && errors.As(err, &me) && me.Number == 1062 {
			err = nil // an earlier attempt committed, though its answer was lost: it is there
		}
		if err != nil {
			w.mu.Lock()
			w.errs++
			w.lastErr = err
			w.mu.Unlock()
			target = w.findWritable()
			continue
		}
		w.mu.Lock()
		w.acks = append(w.acks, ack{seq: seq, via: target, at: time.Now(), took: time.Since(start)})
		w.mu.Unlock()
		seq++
		next = next.Add(interval)
		// Keep the average rate: catch up after slow writes, but do not burst after a long stall (a switchover).
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else if d < -100*time.Millisecond {
			next = time.Now()
		}
	}
}

// Stop stops the writer, waits for it and closes its connections.
func (w *writer) Stop() {
	w.stopOnce.Do(func() {
		close(w.stop)
		<-w.done
		for _, db := range w.dbs {
			db.Close()
		}
	})
}

func (w *writer) Acks() []ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ack(nil), w.acks...)
}

// waitAcks waits until the writer has n more acknowledged writes than now, on the writable instance.
func (w *writer) waitAcks(t testing.TB, n int) {
	t.Helper()
	base := len(w.Acks())
	waitUntil(t, 20*time.Second, func() error {
		if got := len(w.Acks()) - base; got < n {
			w.mu.Lock()
			defer w.mu.Unlock()
			return fmt.Errorf("writer: %d of %d new acks (errors %d, last %v)", got, n, w.errs, w.lastErr)
		}
		return nil
	})
}

// window is the write-unavailability window: from the last ack through from to the first ack through to.
func window(acks []ack, from, to string) (time.Duration, bool) {
	var last, first time.Time
	for _, a := range acks {
		if a.via == from {
			last = a.at
		}
		if a.via == to && first.IsZero() {
			first = a.at
		}
	}
	if last.IsZero() || first.IsZero() {
		return 0, false
	}
	return first.Sub(last), true
}

// assertAcksEverywhere checks that every acknowledged seq is present on every instance.
func assertAcksEverywhere(t testing.TB, acks []ack, insts ...*dbtest.Instance) {
	t.Helper()
	want := map[int64]bool{}
	for _, a := range acks {
		want[a.seq] = true
	}
	for _, in := range insts {
		rows, err := in.DB().Query("SELECT seq FROM test.w")
		if err != nil {
			t.Fatal(err)
		}
		have := map[int64]bool{}
		for rows.Next() {
			var s int64
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			have[s] = true
		}
		rows.Close()
		missing := 0
		for s := range want {
			if !have[s] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%s (%s) lacks %d of %d acknowledged writes", in.Name, in.Addr(), missing, len(want))
		}
	}
}

// closeRootSessions closes the idle root connections that dbtest keeps to in, and makes later root statements
// close theirs, then waits until the server shows no root session. Root bypasses read_only: with a root session
// connected, --fence refuse rightly refuses. It looks through c, whose own sessions fencing ignores.
func closeRootSessions(t testing.TB, c *dbstate.Client, in *dbtest.Instance) {
	t.Helper()
	in.DB().SetMaxIdleConns(0)
	db, err := c.DB(in.Addr())
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, func() error {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='root'").Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("%d root sessions on %s", n, in.Name)
		}
		return nil
	})
}

// holdLag makes replica lag for real (not by MASTER_DELAY, which is no lag): its SQL thread waits for a lock on
// a new table that a write on master needs. release lets it go on.
func holdLag(t testing.TB, replica, master *dbtest.Instance, table string) (release func()) {
	t.Helper()
	master.Exec(t, "CREATE TABLE test."+table+" (id INT)")
	replica.WaitCaughtUp(t, master)
	conn, err := replica.DB().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "LOCK TABLES test."+table+" WRITE"); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	master.Exec(t, "INSERT INTO test."+table+" VALUES (1)")
	return func() {
		conn.ExecContext(context.Background(), "UNLOCK TABLES")
		conn.Close()
		replica.WaitCaughtUp(t, master)
	}
}
