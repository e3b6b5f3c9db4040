// Command sandbox starts a MariaDB replication topology to try dbstate in: a primary on 127.0.0.1:3306 and
// three replicas on 3307-3309 (another --base-port moves them all), with the accounts the README uses:
// dbstate (the least privileges dbstate needs, password "change-me") and repl (REPLICATION SLAVE only,
// password "repl-pw"). An application account, app, writes --writes rows a second to whichever instance is
// writable; read_only stops it, as it stops any account without READ ONLY ADMIN.
//
// It prints the commands to try and stays up until Ctrl-C (or SIGTERM). Then it checks that every write the
// application saw acknowledged is on every instance, and removes every process and file it made.
//
// It needs mariadbd and mariadb-install-db from Debian's mariadb-server (make deps). Run it with
// "go run ./examples/sandbox" or "make sandbox".
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/evenkeel/evenkeel/internal/cli"
	"github.com/go-sql-driver/mysql"
)

func main() {
	ctx, cancel := cli.SignalContext(context.Background())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	cancel()
	os.Exit(code)
}

const usage = `
Usage: go run ./examples/sandbox [--base-port 3306] [--writes 50]

Starts a primary on 127.0.0.1:BASE and replicas on BASE+1..BASE+3 (mariadbd from mariadb-server, data in a
temporary directory), with the accounts dbstate (least privileges, password change-me), repl (REPLICATION SLAVE,
password repl-pw) and app (writes to the database "sandbox"). Prints commands to try; stays up until Ctrl-C,
then checks that no acknowledged write was lost and removes every process and file.

Examples:
  go run ./examples/sandbox
  go run ./examples/sandbox --base-port 13306 --writes 0
`

// The sandbox's accounts: the passwords the README's option file and password file use.
const (
	dbstatePassword = "change-me"
	replPassword    = "repl-pw"
	appUser         = "app"
	appPassword     = "app-pw"
)

// run starts the sandbox and blocks until ctx ends. ready, when not nil, receives the topology once it is up
// (tests use it).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- *dbtest.Topology) int {
	fs := cli.NewFlagSet("sandbox", usage, stderr)
	base := fs.Int("base-port", 3306, "port of the primary; the replicas use the next three")
	writes := fs.Int("writes", 50, "rows a second that the app account writes to the writable instance (0: none)")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	if *base < 1 || *base > 65535-3 {
		fmt.Fprintf(stderr, "sandbox: --base-port %d: want 1-65532\n", *base)
		return cli.ExitUsage
	}
	if *writes < 0 || *writes > 1000 {
		fmt.Fprintf(stderr, "sandbox: --writes %d: want 0-1000\n", *writes)
		return cli.ExitUsage
	}
	_ = mysql.SetLogger(log.New(io.Discard, "", 0)) // the writer's connections are killed on purpose in a switchover
	names := []string{"p", "r1", "r2", "r3"}
	ports := map[string]int{}
	for k, n := range names {
		ports[n] = *base + k
	}
	fmt.Fprintf(stdout, "Starting a primary and 3 replicas of MariaDB on 127.0.0.1:%d-%d ...\n", *base, *base+3)
	tp, err := dbtest.StartTopology("p p>r1 p>r2 p>r3", dbtest.Options{Ports: ports, AdminPassword: dbstatePassword,
		ReplPassword: replPassword, LeastPrivilege: true})
	if err != nil {
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return cli.ExitFailure
	}
	defer func() {
		tp.Stop()
		fmt.Fprintln(stdout, "Stopped every mariadbd and removed their files.")
	}()
	p := tp.Get("p")
	if err := p.ExecErr(
		"CREATE DATABASE sandbox", "CREATE TABLE sandbox.w (id BIGINT PRIMARY KEY, at DATETIME(6) NOT NULL)",
		fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", appUser, appPassword),
		fmt.Sprintf("GRANT SELECT, INSERT ON sandbox.* TO '%s'@'127.0.0.1'", appUser)); err != nil {
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return cli.ExitFailure
	}
	for _, n := range names[1:] {
		if err := waitCaughtUp(ctx, tp.Get(n), p); err != nil {
			fmt.Fprintf(stderr, "sandbox: %v\n", err)
			return cli.ExitFailure
		}
	}
	var w *writer
	if *writes > 0 {
		w = startWriter(tp, *writes)
	}
	printTry(stdout, tp, *writes)
	if ready != nil {
		ready <- tp
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nStopping ...")
	if w == nil {
		return cli.ExitOK
	}
	acked := w.stop()
	if err := checkAcked(tp, acked); err != nil {
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return cli.ExitFailure
	}
	fmt.Fprintf(stdout, "All %d writes the application saw acknowledged are on every instance.\n", len(acked))
	return cli.ExitOK
}

func printTry(w io.Writer, tp *dbtest.Topology, writes int) {
	addr := func(n string) string { return tp.Get(n).Addr() }
	var b strings.Builder
	fmt.Fprintf(&b, "\nUp: primary %s, replicas %s, %s, %s.\n", addr("p"), addr("r1"), addr("r2"), addr("r3"))
	fmt.Fprintf(&b, "Accounts: dbstate / %s (least privileges for dbstate), repl / %s (REPLICATION SLAVE), root over the sockets.\n",
		dbstatePassword, replPassword)
	if writes > 0 {
		fmt.Fprintf(&b, "The app account writes %d rows a second to sandbox.w on the writable instance.\n", writes)
	}
	fmt.Fprintf(&b, "\nIn another terminal, from the repository root (the dbstate section of README.md has more):\n\n")
	fmt.Fprintf(&b, "  go build -o bin/dbstate ./cmd/dbstate\n")
	fmt.Fprintf(&b, "  printf '[client]\\nuser = dbstate\\npassword = \"%s\"\\n' > dbstate.cnf && chmod 600 dbstate.cnf\n", dbstatePassword)
	fmt.Fprintf(&b, "  printf '%s\\n' > repl.pw && chmod 600 repl.pw\n", replPassword)
	fmt.Fprintf(&b, "  bin/dbstate topology show --defaults-file dbstate.cnf --seed %s\n", addr("p"))
	fmt.Fprintf(&b, "  bin/dbstate switchover --defaults-file dbstate.cnf --primary %s --to %s --repl-user repl --repl-password-file repl.pw --yes --audit-log audit.jsonl\n", addr("p"), addr("r1"))
	fmt.Fprintf(&b, "  bin/dbstate audit show audit.jsonl\n")
	for _, n := range []string{"p", "r1"} {
		in := tp.Get(n)
		fmt.Fprintf(&b, "  mariadb --socket %s -uroot -e 'SELECT COUNT(*) FROM sandbox.w'   # %s\n", in.Socket, in.Addr())
	}
	fmt.Fprintf(&b, "\nCtrl-C stops everything and removes every file.\n")
	io.WriteString(w, b.String())
}

func waitCaughtUp(ctx context.Context, replica, master *dbtest.Instance) error {
	var pos string
	if err := master.DB().QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		return err
	}
	var got sql.NullString
	if err := replica.DB().QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 30)", pos).Scan(&got); err != nil {
		return err
	}
	if got.String != "0" {
		return fmt.Errorf("%s did not catch up with %s in 30s", replica.Name, master.Name)
	}
	return nil
}

// writer is the application: it inserts rows at a rate into whichever instance accepts them, as the app
// account, and remembers every acknowledged id.
type writer struct {
	dbs    map[string]*sql.DB
	order  []string
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	acked  []int64
}

func startWriter(tp *dbtest.Topology, rate int) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{dbs: map[string]*sql.DB{}, cancel: cancel, done: make(chan struct{})}
	for _, in := range tp.Instances {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = appUser, appPassword, "tcp", in.Addr(), "sandbox"
		cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
		conn, _ := mysql.NewConnector(cfg)
		db := sql.OpenDB(conn)
		db.SetMaxOpenConns(1)
		w.dbs[in.Name] = db
		w.order = append(w.order, in.Name)
	}
	go w.run(ctx, time.Second/time.Duration(rate))
	return w
}

func (w *writer) run(ctx context.Context, every time.Duration) {
	defer close(w.done)
	t := time.NewTicker(every)
	defer t.Stop()
	id, cur := int64(0), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id++
		// Try the instance that took the last write first, then the others (after a switchover, the new primary).
		for k := range w.order {
			name := w.order[(cur+k)%len(w.order)]
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := w.dbs[name].ExecContext(qctx, "INSERT INTO w (id, at) VALUES (?, NOW(6))", id)
			cancel()
			if err == nil {
				cur = (cur + k) % len(w.order)
				w.mu.Lock()
				w.acked = append(w.acked, id)
				w.mu.Unlock()
				break
			}
		}
	}
}

// stop ends the writer and returns the acknowledged ids.
func (w *writer) stop() []int64 {
	w.cancel()
	<-w.done
	for _, db := range w.dbs {
		db.Close()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked
}

// checkAcked waits until every instance has what the writable one logged, then checks that each has every
// acknowledged id.
func checkAcked(tp *dbtest.Topology, acked []int64) error {
	var primary *dbtest.Instance
	for _, in := range tp.Instances {
		var ro string
		if err := in.DB().QueryRow("SELECT @@read_only").Scan(&ro); err == nil && ro == "0" {
			primary = in
		}
	}
	if primary == nil {
		return errors.New("no writable instance: is a switchover still running?")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, in := range tp.Instances {
		if in != primary {
			if err := waitCaughtUp(ctx, in, primary); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		have := map[int64]bool{}
		rows, err := in.DB().QueryContext(ctx, "SELECT id FROM sandbox.w")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for rows.Next() {
			var id int64
			if rows.Scan(&id) == nil {
				have[id] = true
			}
		}
		rows.Close()
		missing := 0
		for _, id := range acked {
			if !have[id] {
				missing++
			}
		}
		if missing > 0 {
			errs = append(errs, fmt.Errorf("%s (%s) lacks %d of %d acknowledged writes", in.Name, in.Addr(), missing, len(acked)))
		}
	}
	return errors.Join(errs...)
}
