// Package dbtest starts real MariaDB servers (mariadbd from Debian's mariadb-server) on 127.0.0.1 and builds GTID
// replication topologies out of them, for dbstate's tests and for yours.
//
// Each instance has its own data directory (a copy of one template made by mariadb-install-db), port, unix socket,
// server_id, report_host and report_port, and runs with the binary log, log_slave_updates, ROW format and
// gtid_strict_mode, and with skip_name_resolve unless Options.ResolveNames asks for MariaDB's default. Replicas
// use MASTER_USE_GTID=slave_pos and are read-only. Everything is torn down by t.Cleanup: no mariadbd process and no
// file is left behind.
//
// Outside tests (a sandbox to try dbstate in, see examples/sandbox), StartTopology does what Build does and
// returns an error instead of failing a test; Options choose the ports, the passwords and least-privilege
// accounts, and Topology.Stop removes every process and file.
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
	acc     accounts
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
	insts, stop, err := startInstances(make([]instanceSpec, n), Options{})
	t.Cleanup(stop)
	if err != nil {
		t.Fatal(err)
	}
	return insts
}

// instanceSpec is what differs between the instances of one start: extra mariadbd options, a fixed port.
type instanceSpec struct {
	extra []string
	port  int // 0: a free one
}

// accounts are the passwords and grants that an instance's bootstrap creates.
type accounts struct {
	adminPassword, replPassword string
	least                       bool
}

func (o Options) accounts() accounts {
	a := accounts{adminPassword: o.AdminPassword, replPassword: o.ReplPassword, least: o.LeastPrivilege}
	if a.adminPassword == "" {
		a.adminPassword = AdminPassword
	}
	if a.replPassword == "" {
		a.replPassword = ReplPassword
	}
	return a
}

// startInstances starts one instance per spec, in parallel. stop kills them and removes their files (and the
// template when no other instance uses it); it is safe to call after an error, and more than once.
func startInstances(specs []instanceSpec, o Options) ([]*Instance, func(), error) {
	tmpl, err := acquireTemplate()
	if err != nil {
		return nil, func() {}, err
	}
	var out []*Instance
	var once sync.Once
	stop := func() {
		once.Do(func() {
			var wg sync.WaitGroup
			for _, in := range out {
				wg.Add(1)
				go func() { defer wg.Done(); in.teardown() }()
			}
			wg.Wait()
			releaseTemplate()
		})
	}
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for k, sp := range specs {
		inst, err := newInstance(tmpl, sp.port)
		if err != nil {
			wg.Wait()
			return nil, stop, err
		}
		inst.extra, inst.resolve, inst.acc = sp.extra, o.ResolveNames, o.accounts()
		out = append(out, inst)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = inst.start(true)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, stop, err
	}
	return out, stop, nil
}

func newInstance(tmpl string, port int) (*Instance, error) {
	// A short base directory: unix socket paths are limited to 107 bytes.
	base, err := os.MkdirTemp("", "dbtest-")
	if err != nil {
		return nil, err
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			os.RemoveAll(base)
			return nil, err
		}
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
		for _, q := range i.acc.bootstrap() {
			if _, err := conn.ExecContext(context.Background(), q); err != nil {
				return fmt.Errorf("dbtest: bootstrap %d: %w", i.Port, err)
			}
		}
	}
	return nil
}

// bootstrap is what a new instance runs as root: the accounts, then read_only=0.
func (a accounts) bootstrap() []string {
	q := []string{"SET SESSION sql_log_bin=0"}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		acc := fmt.Sprintf("'%s'@'%s'", AdminUser, host)
		q = append(q, fmt.Sprintf("CREATE USER %s IDENTIFIED BY %s", acc, quote(a.adminPassword)))
		if a.least {
			for _, g := range LeastPrivilegeGrants {
				q = append(q, fmt.Sprintf(g, acc))
			}
		} else {
			q = append(q, fmt.Sprintf("GRANT ALL ON *.* TO %s WITH GRANT OPTION", acc))
		}
	}
	repl := fmt.Sprintf("'%s'@'127.0.0.1'", ReplUser)
	q = append(q, fmt.Sprintf("CREATE USER %s IDENTIFIED BY %s", repl, quote(a.replPassword)))
	if a.least {
		q = append(q, fmt.Sprintf(ReplGrant, repl))
	} else {
		q = append(q, fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO %s", repl))
	}
	return append(q,
		"SET SESSION sql_log_bin=1", // the connection goes back to the pool
		"SET GLOBAL read_only=0")
}

// quote is a SQL string literal for the passwords a caller chose (no backslash escapes needed in them; quotes
// doubled).
func quote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

// LeastPrivilegeGrants are the grants, measured on MariaDB 10.11, that dbstate's account needs to discover,
// move and switch over (fmt verbs take the account, e.g. 'dbstate'@'127.0.0.1'); the README gives the same SQL.
// ReadGrant alone is enough for topology show and check-config.
var LeastPrivilegeGrants = []string{
	"GRANT SLAVE MONITOR, REPLICATION MASTER ADMIN, REPLICATION SLAVE ADMIN, RELOAD, READ_ONLY ADMIN, PROCESS, " +
		"CONNECTION ADMIN, CREATE USER, BINLOG ADMIN, EVENT, SET USER ON *.* TO %s",
	"GRANT SELECT ON mysql.* TO %s",
}

// ReadGrant is what dbstate's account needs to read topologies (SHOW SLAVE STATUS, SHOW SLAVE HOSTS).
const ReadGrant = "GRANT SLAVE MONITOR, REPLICATION MASTER ADMIN ON *.* TO %s"

// ReplGrant is the replication account's only grant.
const ReplGrant = "GRANT REPLICATION SLAVE ON *.* TO %s"

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

// Pause stops the server with SIGSTOP: it hangs without crashing, as a server that is frozen, swapping or cut
// off behind a dead network path would. The kernel still accepts TCP connections into the listen backlog, but
// nothing answers, on new connections or on open ones. Resume undoes it; a cleanup registered here always
// resumes the server when the test that paused it ends, so later tests and teardown find it running.
func (i *Instance) Pause(t testing.TB) {
	t.Helper()
	pid := i.Pid()
	if pid == 0 {
		t.Fatalf("dbtest: pause %s: not running", i.Name)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("dbtest: pause %s: %v", i.Name, err)
	}
	t.Cleanup(func() { i.resume() })
}

// Resume lets a paused server run again (SIGCONT). Resuming a server that is not paused does nothing.
func (i *Instance) Resume(t testing.TB) {
	t.Helper()
	if err := i.resume(); err != nil {
		t.Fatalf("dbtest: resume %s: %v", i.Name, err)
	}
}

func (i *Instance) resume() error {
	if pid := i.Pid(); pid != 0 {
		return syscall.Kill(pid, syscall.SIGCONT)
	}
	return nil
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
	if err := i.ExecErr(queries...); err != nil {
		t.Fatal(err)
	}
}

// ExecErr is Exec outside tests: it returns the first error.
func (i *Instance) ExecErr(queries ...string) error {
	for _, q := range queries {
		if _, err := i.DB().Exec(q); err != nil {
			return fmt.Errorf("dbtest: %s on %s: %w", q, i.Name, err)
		}
	}
	return nil
}

// QueryString runs a query that returns one value and returns it ("" for NULL).
func (i *Instance) QueryString(t testing.TB, query string, args ...any) string {
	t.Helper()
	v, err := i.queryString(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (i *Instance) queryString(query string, args ...any) (string, error) {
	var v sql.NullString
	if err := i.DB().QueryRow(query, args...).Scan(&v); err != nil {
		return "", fmt.Errorf("dbtest: %s on %s: %w", query, i.Name, err)
	}
	return v.String, nil
}

// ReplicateFrom makes i a read-only GTID replica of master (MASTER_USE_GTID=slave_pos) and starts replication.
func (i *Instance) ReplicateFrom(t testing.TB, master *Instance) {
	t.Helper()
	if err := i.replicateFrom(master); err != nil {
		t.Fatal(err)
	}
}

func (i *Instance) replicateFrom(master *Instance) error {
	err := i.ExecErr("STOP SLAVE",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', "+
			"MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", master.Port, ReplUser, quote(i.acc.replPassword)),
		"SET GLOBAL read_only=1", "START SLAVE")
	if err != nil {
		return err
	}
	return i.waitThreadsErr()
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
	if err := i.waitThreadsErr(); err != nil {
		t.Fatal(err)
	}
}

func (i *Instance) waitThreadsErr() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		io, _ := i.queryStatus("Slave_IO_Running")
		sqlt, _ := i.queryStatus("Slave_SQL_Running")
		if io == "Yes" && sqlt == "Yes" {
			return nil
		}
		if time.Now().After(deadline) {
			ioe, _ := i.queryStatus("Last_IO_Error")
			sqle, _ := i.queryStatus("Last_SQL_Error")
			return fmt.Errorf("dbtest: replication threads of %s not running after 10s: io=%s sql=%s %s %s", i.Name, io, sqlt, ioe, sqle)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// queryStatus is one column of SHOW SLAVE STATUS ("" when i is not a replica).
func (i *Instance) queryStatus(col string) (string, error) {
	rows, err := i.DB().Query("SHOW SLAVE STATUS")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return "", rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for k := range vals {
		ptrs[k] = &vals[k]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", err
	}
	for k, c := range cols {
		if c == col {
			return vals[k].String, nil
		}
	}
	return "", nil
}

// WaitCaughtUp waits (up to 30 s) until replica i has applied everything master has logged.
func (i *Instance) WaitCaughtUp(t testing.TB, master *Instance) {
	t.Helper()
	if err := i.waitCaughtUp(master); err != nil {
		t.Fatal(err)
	}
}

func (i *Instance) waitCaughtUp(master *Instance) error {
	pos, err := master.queryString("SELECT @@gtid_binlog_pos")
	if err != nil {
		return err
	}
	got, err := i.queryString("SELECT MASTER_GTID_WAIT(?, 30)", pos)
	if err != nil {
		return err
	}
	if got != "0" {
		return fmt.Errorf("dbtest: %s did not reach %s's position %q in 30s", i.Name, master.Name, pos)
	}
	return nil
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

// Topology is a set of named instances wired by Build or StartTopology.
type Topology struct {
	Instances []*Instance          // in order of first appearance in the description
	Master    map[string]string    // replica name -> master name
	byName    map[string]*Instance //
	stop      func()
}

// Stop kills every instance of a topology that StartTopology started and removes all its files (data
// directories, sockets, logs, and the shared template once no instance uses it). It is safe to call twice.
func (tp *Topology) Stop() {
	if tp.stop != nil {
		tp.stop()
	}
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
	// Ports are fixed ports per instance name; the others get a free port. A port in use fails the start.
	Ports map[string]int
	// AdminPassword and ReplPassword replace the passwords of AdminUser and ReplUser (empty: the constants).
	AdminPassword, ReplPassword string
	// LeastPrivilege gives AdminUser only LeastPrivilegeGrants and ReplUser only ReplGrant, instead of ALL
	// PRIVILEGES and REPLICATION SLAVE, REPLICATION CLIENT.
	LeastPrivilege bool
}

// BuildOpts is Build with options.
func BuildOpts(t testing.TB, desc string, o Options) *Topology {
	t.Helper()
	tp, err := StartTopology(desc, o)
	if tp != nil {
		t.Cleanup(tp.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// StartTopology is Build outside tests (a sandbox, a demo): it starts and wires the instances and returns them,
// or an error after stopping whatever it had started. The caller must call Stop, which removes every process
// and file. Instance methods that take a testing.TB need one; ExecErr and DB do not.
func StartTopology(desc string, o Options) (*Topology, error) {
	names, master, err := ParseDescription(desc)
	if err != nil {
		return nil, err
	}
	for _, m := range []map[string][]string{o.Extra} {
		for n := range m {
			if !slices.Contains(names, n) {
				return nil, fmt.Errorf("dbtest: options for %q, which is not in %q", n, desc)
			}
		}
	}
	for n := range o.Ports {
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("dbtest: a port for %q, which is not in %q", n, desc)
		}
	}
	specs := make([]instanceSpec, len(names))
	for k, n := range names {
		specs[k] = instanceSpec{extra: o.Extra[n], port: o.Ports[n]}
	}
	insts, stop, err := startInstances(specs, o)
	if err != nil {
		stop()
		return nil, err
	}
	tp := &Topology{Instances: insts, Master: master, byName: map[string]*Instance{}, stop: stop}
	for k, n := range names {
		insts[k].Name = n
		tp.byName[n] = insts[k]
	}
	if err := tp.wire(names); err != nil {
		stop()
		return nil, err
	}
	return tp, nil
}

// wire creates the test database on every root, points each replica at its master (top-down, so that each
// master is configured before its replicas) and waits until every replica has caught up.
func (tp *Topology) wire(names []string) error {
	for _, n := range names {
		if _, ok := tp.Master[n]; !ok {
			if err := tp.byName[n].ExecErr("CREATE DATABASE IF NOT EXISTS " + Database); err != nil {
				return err
			}
		}
	}
	for _, n := range names {
		if m, ok := tp.Master[n]; ok {
			if err := tp.byName[n].replicateFrom(tp.byName[m]); err != nil {
				return err
			}
		}
	}
	for _, n := range names {
		chain := []string{n}
		for m, ok := tp.Master[n]; ok; m, ok = tp.Master[m] {
			chain = append(chain, m)
		}
		if len(chain) > 1 {
			if err := tp.byName[n].waitCaughtUp(tp.byName[chain[len(chain)-1]]); err != nil {
				return err
			}
		}
	}
	return nil
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
