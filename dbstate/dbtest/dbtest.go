// Package dbtest starts real MariaDB servers (mariadbd from Debian's mariadb-server) on 127.0.0.1 and builds GTID
// replication topologies out of them, for dbstate's tests and for yours.
//
// Each instance has its own data directory (a copy of one template made by mariadb-install-db), port, unix socket,
// server_id, report_host and report_port, and runs with the binary log, log_slave_updates, ROW format and
// gtid_strict_mode, and with skip_name_resolve unless Options.ResolveNames asks for MariaDB's default. Replicas
// use MASTER_USE_GTID=slave_pos and are read-only. Everything is torn down by t.Cleanup: no mariadbd process and no
// file is left behind.
//
// Every instance has two accounts besides root: AdminUser (ALL PRIVILEGES WITH GRANT OPTION, what dbstate
// connects as) and ReplUser (REPLICATION SLAVE, what replicas connect as). Their passwords are the exported
// constants, and the files from PasswordFile hold them for code that reads credentials from a file.
//
// When mariadbd or mariadb-install-db is missing, every function fails the test with a message naming the Debian
// package mariadb-server. It never skips.
//
// A test of your own looks like this (see also TestExample in example_test.go):
//
//	func TestFailover(t *testing.T) {
//		topo := dbtest.Build(t, "a>b a>c") // a is the primary, b and c replicate from it
//		a, b := topo.Get("a"), topo.Get("b")
//		a.Exec(t, "CREATE TABLE test.t (id INT PRIMARY KEY)")
//		a.Exec(t, "INSERT INTO test.t VALUES (1)")
//		b.WaitCaughtUp(t, a)
//		b.StopSQLThread(t) // inject a fault, then check what your code does
//	}
package dbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Accounts created on every instance (with sql_log_bin=0, so they are no transactions of anyone's).
const (
	AdminUser     = "dbstate"
	AdminPassword = "adm1n-secret" // ALL PRIVILEGES ON *.* WITH GRANT OPTION, from 127.0.0.1 and localhost
	ReplUser      = "repl"
	ReplPassword  = "r3pl-secret" // REPLICATION SLAVE, REPLICATION CLIENT ON *.*, from 127.0.0.1
	// Database is created on every primary that Build makes, and replicated.
	Database = "test"
)

// Paths of the server binaries. Tests fail, naming the package, when they are missing.
var (
	MariadbdPath  = "/usr/sbin/mariadbd"
	InstallDBPath = "/usr/bin/mariadb-install-db"
)

const pkgHint = "install the Debian package mariadb-server (apt-get install mariadb-server, or make deps)"

// Instance is one running (or killed) mariadbd.
type Instance struct {
	Name     string // the name in the topology description, e.g. "a"
	Port     int
	Socket   string
	Dir      string // data directory
	ServerID int

	base    string
	extra   []string
	resolve bool // start without --skip-name-resolve
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	root    *sql.DB
	stopped bool
}

// Addr is "127.0.0.1:port".
func (i *Instance) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(i.Port)) }

// DB returns a pool connected as root over the unix socket. It is closed at cleanup.
func (i *Instance) DB() *sql.DB {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.root
}

var (
	serverIDs atomic.Int64
	tmplMu    sync.Mutex
	tmplDir   string
	tmplRefs  int
)

func checkBinaries() error {
	for _, p := range []string{MariadbdPath, InstallDBPath} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("dbtest: %s not found: %s", p, pkgHint)
		}
	}
	return nil
}

// acquireTemplate returns a data directory made by mariadb-install-db, shared by all live instances of this
// process and removed when the last of them is cleaned up.
func acquireTemplate() (string, error) {
	tmplMu.Lock()
	defer tmplMu.Unlock()
	if tmplDir != "" {
		tmplRefs++
		return tmplDir, nil
	}
	if err := checkBinaries(); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "dbtest-tmpl-")
	if err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	// A private tmpdir: the bootstrap's temporary tables must not meet anyone else's in /tmp.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	cmd := exec.Command(InstallDBPath, "--no-defaults", "--datadir="+data, "--user=root", "--tmpdir="+tmp,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
		"--innodb-log-file-size=4M", "--innodb-data-file-path=ibdata1:4M:autoextend")
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("dbtest: mariadb-install-db: %v\n%s", err, out)
	}
	tmplDir, tmplRefs = data, 1
	return data, nil
}

func releaseTemplate() {
	tmplMu.Lock()
	defer tmplMu.Unlock()
	tmplRefs--
	if tmplRefs == 0 && tmplDir != "" {
		os.RemoveAll(filepath.Dir(tmplDir))
		tmplDir = ""
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts n unconnected instances in parallel and returns them once they accept connections.
func Start(t testing.TB, n int) []*Instance {
	t.Helper()
	return start(t, make([][]string, n), false)
}

// start starts len(extra) instances; extra[k] are additional mariadbd options of instance k; resolve starts them
// without --skip-name-resolve.
func start(t testing.TB, extra [][]string, resolve bool) []*Instance {
	t.Helper()
	n := len(extra)
	tmpl, err := acquireTemplate()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(releaseTemplate)
	out := make([]*Instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		inst, err := newInstance(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		inst.extra, inst.resolve = extra[k], resolve
		out[k] = inst
		t.Cleanup(inst.teardown)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = inst.start(true)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

func newInstance(tmpl string) (*Instance, error) {
	// A short base directory: unix socket paths are limited to 107 bytes.
	base, err := os.MkdirTemp("", "dbtest-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	inst := &Instance{
		Port: port, Socket: filepath.Join(base, "sock"), Dir: filepath.Join(base, "data"),
		ServerID: int(serverIDs.Add(1)), base: base,
	}
	if err := os.Mkdir(filepath.Join(base, "tmp"), 0o700); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	if err := exec.Command("cp", "-a", tmpl, inst.Dir).Run(); err != nil {
		os.RemoveAll(base)
		return nil, fmt.Errorf("dbtest: copy template: %w", err)
	}
	return inst, nil
}

func (i *Instance) args() []string {
	args := []string{
		"--no-defaults", "--user=root", "--datadir=" + i.Dir, "--port=" + strconv.Itoa(i.Port),
		"--socket=" + i.Socket, "--bind-address=127.0.0.1", "--tmpdir=" + filepath.Join(i.base, "tmp"), "--pid-file=" + filepath.Join(i.base, "pid"),
		"--log-error=" + filepath.Join(i.base, "error.log"),
		"--server-id=" + strconv.Itoa(i.ServerID), "--report-host=127.0.0.1", "--report-port=" + strconv.Itoa(i.Port),
		"--log-bin=binlog", "--relay-log=relay", "--log-slave-updates", "--binlog-format=ROW", "--gtid-strict-mode=1",
		"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M", "--innodb-data-file-path=ibdata1:4M:autoextend",
		"--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0", "--performance-schema=OFF",
		"--skip-innodb-adaptive-hash-index", "--max-connections=300", "--key-buffer-size=1M",
		"--slave-net-timeout=5", "--loose-skip-log-warnings",
		"--read-only=1", // the first start makes it writable; after Restart it stays read-only until told otherwise
	}
	if !i.resolve {
		args = append(args, "--skip-name-resolve")
	}
	return append(args, i.extra...)
}

// start launches mariadbd and waits for it; first also creates the accounts.
func (i *Instance) start(first bool) error {
	cmd := exec.Command(MariadbdPath, i.args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dbtest: start mariadbd: %w (%s)", err, pkgHint)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", i.Socket
	cfg.InterpolateParams = true
	cfg.Timeout = 2 * time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	db.SetMaxIdleConns(2)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			db.Close()
			return fmt.Errorf("dbtest: mariadbd on port %d exited during startup: %s", i.Port, i.errorLogTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			db.Close()
			return fmt.Errorf("dbtest: mariadbd on port %d not ready after 60s: %v: %s", i.Port, err, i.errorLogTail())
		}
		time.Sleep(30 * time.Millisecond)
	}
	i.mu.Lock()
	i.cmd, i.done, i.root, i.stopped = cmd, done, db, false
	i.mu.Unlock()
	if first {
		conn, err := db.Conn(context.Background())
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, q := range []string{
			"SET SESSION sql_log_bin=0",
			fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", AdminUser, AdminPassword),
			fmt.Sprintf("CREATE USER '%s'@'localhost' IDENTIFIED BY '%s'", AdminUser, AdminPassword),
			fmt.Sprintf("GRANT ALL ON *.* TO '%s'@'127.0.0.1' WITH GRANT OPTION", AdminUser),
			fmt.Sprintf("GRANT ALL ON *.* TO '%s'@'localhost' WITH GRANT OPTION", AdminUser),
			fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", ReplUser, ReplPassword),
			fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%s'@'127.0.0.1'", ReplUser),
			"SET SESSION sql_log_bin=1", // the connection goes back to the pool
			"SET GLOBAL read_only=0",
		} {
			if _, err := conn.ExecContext(context.Background(), q); err != nil {
				return fmt.Errorf("dbtest: bootstrap %d: %w", i.Port, err)
			}
		}
	}
	return nil
}

func (i *Instance) errorLogTail() string {
	b, _ := os.ReadFile(filepath.Join(i.base, "error.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Kill sends SIGKILL to the server and waits for it to exit, as a crash would.
func (i *Instance) Kill(t testing.TB) {
	t.Helper()
	i.kill()
}

func (i *Instance) kill() {
	i.mu.Lock()
	cmd, done, db := i.cmd, i.done, i.root
	i.stopped = true
	i.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Process.Kill()
	<-done
	if db != nil {
		db.Close()
	}
}

// Restart starts a killed instance again on the same data directory and port. Replicas resume replication. The
// instance comes back read-only, as a crashed primary should: set read_only=0 yourself if it must take writes.
func (i *Instance) Restart(t testing.TB) {
	t.Helper()
	i.kill()
	if err := i.start(false); err != nil {
		t.Fatal(err)
	}
}

// Pid is the process id of the running mariadbd (0 when it is not running), for tests that signal it, e.g.
// syscall.Kill(in.Pid(), syscall.SIGSTOP) to make it hang.
func (i *Instance) Pid() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd == nil || i.cmd.Process == nil || i.stopped {
		return 0
	}
	return i.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (i *Instance) Running() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.done == nil {
		return false
	}
	select {
	case <-i.done:
		return false
	default:
		return true
	}
}

func (i *Instance) teardown() {
	i.kill()
	os.RemoveAll(i.base)
}

// Exec runs statements (as root, over the socket, binlogged) and fails the test on error.
func (i *Instance) Exec(t testing.TB, queries ...string) {
	t.Helper()
	for _, q := range queries {
		if _, err := i.DB().Exec(q); err != nil {
			t.Fatalf("dbtest: %s on %s: %v", q, i.Name, err)
		}
	}
}

// QueryString runs a query that returns one value and returns it ("" for NULL).
func (i *Instance) QueryString(t testing.TB, query string, args ...any) string {
	t.Helper()
	var v sql.NullString
	if err := i.DB().QueryRow(query, args...).Scan(&v); err != nil {
		t.Fatalf("dbtest: %s on %s: %v", query, i.Name, err)
	}
	return v.String
}

// ReplicateFrom makes i a read-only GTID replica of master (MASTER_USE_GTID=slave_pos) and starts replication.
func (i *Instance) ReplicateFrom(t testing.TB, master *Instance) {
	t.Helper()
	i.Exec(t, "STOP SLAVE",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', "+
			"MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", master.Port, ReplUser, ReplPassword),
		"SET GLOBAL read_only=1", "START SLAVE")
	i.waitThreads(t)
}

// SlaveStatus returns the row of SHOW SLAVE STATUS by column name (empty when i is not a replica). NULL is "".
func (i *Instance) SlaveStatus(t testing.TB) map[string]string {
	t.Helper()
	rows, err := i.DB().Query("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatalf("dbtest: SHOW SLAVE STATUS on %s: %v", i.Name, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[string]string{}
	if rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for k := range vals {
			ptrs[k] = &vals[k]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for k, c := range cols {
			out[c] = vals[k].String
		}
	}
	return out
}

// StopSQLThread stops the replica's SQL thread; the IO thread keeps fetching.
func (i *Instance) StopSQLThread(t testing.TB) { t.Helper(); i.Exec(t, "STOP SLAVE SQL_THREAD") }

// StartSQLThread starts the SQL thread again.
func (i *Instance) StartSQLThread(t testing.TB) {
	t.Helper()
	i.Exec(t, "START SLAVE SQL_THREAD")
	i.waitThreads(t)
}

// ErrantTransaction writes one binlogged transaction directly on i (bypassing read_only as root): on a replica that
// is an errant GTID, one the primary never had.
func (i *Instance) ErrantTransaction(t testing.TB) {
	t.Helper()
	i.Exec(t, "CREATE DATABASE IF NOT EXISTS errant", "CREATE TABLE IF NOT EXISTS errant.t (id INT PRIMARY KEY AUTO_INCREMENT)",
		"INSERT INTO errant.t VALUES (NULL)")
}

// AddLag delays the replica's SQL thread by d (MASTER_DELAY, whole seconds). Zero removes the delay.
func (i *Instance) AddLag(t testing.TB, d time.Duration) {
	t.Helper()
	i.Exec(t, "STOP SLAVE", fmt.Sprintf("CHANGE MASTER TO MASTER_DELAY=%d", int(d.Seconds())), "START SLAVE")
	i.waitThreads(t)
}

// waitThreads waits (up to 10 s) until both replication threads run.
func (i *Instance) waitThreads(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := i.SlaveStatus(t)
		if s["Slave_IO_Running"] == "Yes" && s["Slave_SQL_Running"] == "Yes" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dbtest: replication threads of %s not running after 10s: io=%s sql=%s %s %s", i.Name,
				s["Slave_IO_Running"], s["Slave_SQL_Running"], s["Last_IO_Error"], s["Last_SQL_Error"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitCaughtUp waits (up to 30 s) until replica i has applied everything master has logged.
func (i *Instance) WaitCaughtUp(t testing.TB, master *Instance) {
	t.Helper()
	pos := master.QueryString(t, "SELECT @@gtid_binlog_pos")
	if got := i.QueryString(t, "SELECT MASTER_GTID_WAIT(?, 30)", pos); got != "0" {
		t.Fatalf("dbtest: %s did not reach %s's position %q in 30s", i.Name, master.Name, pos)
	}
}

// PasswordFile writes password to a file (mode 0600) in a test temp dir and returns its path.
func PasswordFile(t testing.TB, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Topology is a set of named instances wired by Build.
type Topology struct {
	Instances []*Instance          // in order of first appearance in the description
	Master    map[string]string    // replica name -> master name
	byName    map[string]*Instance //
}

// Get returns the instance with the given name, or fails the test.
func (tp *Topology) Get(name string) *Instance {
	if i, ok := tp.byName[name]; ok {
		return i
	}
	panic("dbtest: no instance " + name)
}

// ParseDescription parses a topology description: whitespace- or comma-separated edges "master>replica", and
// lone names for unconnected instances. "a>b a>c c>d" is a primary a with replicas b and c, and d under c.
// It returns the names in order of first appearance and each replica's master.
func ParseDescription(desc string) (names []string, master map[string]string, err error) {
	master = map[string]string{}
	seen := map[string]bool{}
	add := func(n string) error {
		if n == "" || strings.ContainsAny(n, "> \t") {
			return fmt.Errorf("dbtest: bad instance name %q in %q", n, desc)
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
		return nil
	}
	for _, f := range strings.FieldsFunc(desc, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		parts := strings.Split(f, ">")
		if len(parts) > 2 {
			return nil, nil, fmt.Errorf("dbtest: edge %q: want master>replica", f)
		}
		for _, p := range parts {
			if err := add(p); err != nil {
				return nil, nil, err
			}
		}
		if len(parts) == 2 {
			if parts[0] == parts[1] {
				return nil, nil, fmt.Errorf("dbtest: %q replicates from itself", f)
			}
			if m, ok := master[parts[1]]; ok && m != parts[0] {
				return nil, nil, fmt.Errorf("dbtest: %s has two masters (%s, %s)", parts[1], m, parts[0])
			}
			master[parts[1]] = parts[0]
		}
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("dbtest: empty topology description")
	}
	// Reject loops: follow masters from each name.
	for _, n := range names {
		cur, steps := n, 0
		for {
			m, ok := master[cur]
			if !ok {
				break
			}
			if steps++; steps > len(names) {
				return nil, nil, fmt.Errorf("dbtest: replication loop through %s", n)
			}
			cur = m
		}
	}
	return names, master, nil
}

// Build starts the instances of a description (see ParseDescription) in parallel, creates the database "test" on
// every root, wires replication, and waits until every replica has caught up.
func Build(t testing.TB, desc string) *Topology {
	t.Helper()
	return BuildWith(t, desc, nil)
}

// BuildWith is Build with additional mariadbd options per instance name, e.g.
// {"b": {"--log-slave-updates=0"}}. Later options override dbtest's defaults.
func BuildWith(t testing.TB, desc string, extra map[string][]string) *Topology {
	t.Helper()
	return BuildOpts(t, desc, Options{Extra: extra})
}

// Options tune the instances that BuildOpts starts. The zero value is what Build does.
type Options struct {
	// ResolveNames starts every instance without --skip-name-resolve, as MariaDB runs by default: the server
	// resolves client addresses to names, so a TCP session from 127.0.0.1 shows in the process list as
	// "localhost:PORT", while accounts still match by name or address ('app'@'127.0.0.1' logs in from it).
	ResolveNames bool
	// Extra are additional mariadbd options per instance name, as for BuildWith.
	Extra map[string][]string
}

// BuildOpts is Build with options.
func BuildOpts(t testing.TB, desc string, o Options) *Topology {
	t.Helper()
	extra := o.Extra
	names, master, err := ParseDescription(desc)
	if err != nil {
		t.Fatal(err)
	}
	for n := range extra {
		if !slices.Contains(names, n) {
			t.Fatalf("dbtest: options for %q, which is not in %q", n, desc)
		}
	}
	args := make([][]string, len(names))
	for k, n := range names {
		args[k] = extra[n]
	}
	insts := start(t, args, o.ResolveNames)
	tp := &Topology{Instances: insts, Master: master, byName: map[string]*Instance{}}
	for k, n := range names {
		insts[k].Name = n
		tp.byName[n] = insts[k]
	}
	for _, n := range names {
		if _, ok := master[n]; !ok {
			tp.byName[n].Exec(t, "CREATE DATABASE IF NOT EXISTS "+Database)
		}
	}
	// Wire top-down so that each master is configured before its replicas.
	for _, n := range names {
		if m, ok := master[n]; ok {
			tp.byName[n].ReplicateFrom(t, tp.byName[m])
		}
	}
	for _, n := range names {
		tp.waitTree(t, n)
	}
	return tp
}

func (tp *Topology) waitTree(t testing.TB, n string) {
	chain := []string{n}
	for m, ok := tp.Master[n]; ok; m, ok = tp.Master[m] {
		chain = append(chain, m)
	}
	root := tp.byName[chain[len(chain)-1]]
	if len(chain) > 1 {
		tp.byName[n].WaitCaughtUp(t, root)
	}
}

// PrimaryWithReplicas builds a primary "p" with replicas "r1".."rN".
func PrimaryWithReplicas(t testing.TB, n int) *Topology {
	t.Helper()
	var b strings.Builder
	b.WriteString("p")
	for k := 1; k <= n; k++ {
		fmt.Fprintf(&b, " p>r%d", k)
	}
	return Build(t, b.String())
}

// Chain builds "c1>c2>...>cN": c1 is the primary, each next one replicates from the previous.
func Chain(t testing.TB, n int) *Topology {
	t.Helper()
	parts := []string{"c1"}
	for k := 2; k <= n; k++ {
		parts = append(parts, fmt.Sprintf("c%d>c%d", k-1, k))
	}
	return Build(t, strings.Join(parts, " "))
}
