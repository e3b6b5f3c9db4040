// Command dbstate shows MariaDB replication topologies, moves replicas, switches primaries over and reads its
// audit logs. It is a thin wrapper around the dbstate package: flags, credentials, output, exit codes (0 ok, 1
// failure, refusal or problems found, 2 usage).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/internal/cli"
	"github.com/go-sql-driver/mysql"
)

func main() {
	ctx, cancel := cli.SignalContext(context.Background())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

const about = "discover MariaDB replication topologies, move replicas, switch the primary over"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := []cli.Command{
		{Name: "topology", Summary: "show the replication tree (topology show) or move a replica (topology move)", Run: runTopology},
		{Name: "switchover", Summary: "make a replica the primary, with no acknowledged write lost", Run: runSwitchover},
		{Name: "grants", Summary: "users, roles and grants as desired state: show, plan, apply", Run: runGrants},
		{Name: "check-config", Summary: "check the connection flags and option file, and try to connect", Run: runCheckConfig},
		{Name: "vars", Summary: "plan or push runtime variables (SET GLOBAL) to many instances as one transaction", Run: runVars},
		{Name: "exporter", Summary: "serve Prometheus metrics: desired beside observed state (variables, replication, topology)", Run: runExporter},
		{Name: "audit", Summary: "read an audit log: one run as a timeline (audit show FILE)", Run: runAudit},
		{Name: "recover", Summary: "lift what an interrupted switchover left (locked accounts, read_only, events), or finish it past its point of no return, from its audit log", Run: runRecover},
	}
	return cli.Dispatch(ctx, "dbstate", about, cmds, args, stdout, stderr)
}

func runTopology(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := []cli.Command{
		{Name: "show", Summary: "print the replication tree with its problems, or as JSON", Run: runShow},
		{Name: "move", Summary: "repoint a replica under another instance of the same tree, by GTID", Run: runMove},
	}
	return cli.Dispatch(ctx, "dbstate topology", "replication topology", cmds, args, stdout, stderr)
}

// conn holds the connection flags every subcommand shares.
type conn struct {
	defaultsFile, user, passwordFile string
	tlsMode, tlsCA, tlsCert, tlsKey  string
	timeout, stmtTimeout             time.Duration
	logLevel, logFormat              string
	verbose                          bool
	// stmtDefault and stmtUsage, when set before register, are --statement-timeout's default and help text for
	// a subcommand whose statements may wait longer by nature (grants: behind a backup's lock).
	stmtDefault time.Duration
	stmtUsage   string
}

func (c *conn) register(fs *flag.FlagSet) {
	fs.StringVar(&c.defaultsFile, "defaults-file", "", "MariaDB option file; its [client] user, password, host, port, socket and ssl-* are used")
	fs.StringVar(&c.user, "user", "", "user to log in as (overrides the option file)")
	fs.StringVar(&c.passwordFile, "password-file", "", "file whose first line is the password (overrides the option file)")
	fs.StringVar(&c.tlsMode, "tls", "", "off, on (verify the server certificate) or skip-verify; default: from the option file, else off")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "CA certificate file (PEM)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "client certificate file (PEM)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "client key file (PEM)")
	fs.DurationVar(&c.timeout, "connect-timeout", dbstate.DefaultConnectTimeout, "bound for connecting to an instance: dial, TLS, handshake and login (must be > 0)")
	stmtDefault, stmtUsage := dbstate.DefaultStatementTimeout, "bound for every statement sent (client deadline and the server's max_statement_time; "+
		"waits such as MASTER_GTID_WAIT get their own bound on top): a hung server costs this, then an error (must be > 0)"
	if c.stmtDefault > 0 {
		stmtDefault, stmtUsage = c.stmtDefault, c.stmtUsage
	}
	fs.DurationVar(&c.stmtTimeout, "statement-timeout", stmtDefault, stmtUsage)
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
	fs.BoolVar(&c.verbose, "v", false, "verbose: --log-level debug (each step also logged on stderr)")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
}

// client resolves the credentials and returns a client and the option file's default address ("" if none).
func (c *conn) client(stderr io.Writer) (*dbstate.Client, string, *slog.Logger, error) {
	if c.timeout <= 0 {
		return nil, "", nil, cli.Usagef("--connect-timeout %v: must be > 0", c.timeout)
	}
	if c.stmtTimeout <= 0 {
		return nil, "", nil, cli.Usagef("--statement-timeout %v: must be > 0", c.stmtTimeout)
	}
	level := c.logLevel
	if c.verbose {
		level = "debug"
	}
	logger, err := cli.NewLogger(stderr, level, c.logFormat)
	if err != nil {
		return nil, "", nil, err
	}
	// The driver's own logger would print to stderr behind slog's back; route it to debug.
	_ = mysql.SetLogger(log.New(slogWriter{logger}, "", 0))
	opt := &dbstate.OptionFile{}
	if c.defaultsFile != "" {
		if opt, err = dbstate.ReadOptionFile(c.defaultsFile); err != nil {
			return nil, "", nil, cli.Usagef("--defaults-file: %v", err)
		}
	}
	creds := dbstate.Credentials{User: opt.User, Password: opt.Password}
	if c.user != "" {
		creds.User = c.user
	}
	if c.passwordFile != "" {
		if creds.Password, err = dbstate.ReadPasswordFile(c.passwordFile); err != nil {
			return nil, "", nil, cli.Usagef("--password-file: %v", err)
		}
	}
	if creds.User == "" {
		return nil, "", nil, cli.Usagef("no user: pass --user or a --defaults-file with user= in [client]")
	}
	mode := c.tlsMode
	if mode == "" {
		switch {
		case opt.SSLVerifyServerCert:
			mode = "on"
		case opt.SSL:
			mode = "skip-verify"
		default:
			mode = "off"
		}
	}
	ca, cert, key := first(c.tlsCA, opt.SSLCA), first(c.tlsCert, opt.SSLCert), first(c.tlsKey, opt.SSLKey)
	switch mode {
	case "off":
	case "on", "skip-verify":
		if creds.TLS, err = dbstate.TLSConfig(ca, cert, key, mode == "on"); err != nil {
			return nil, "", nil, cli.Usagef("%v", err)
		}
	default:
		return nil, "", nil, cli.Usagef("--tls %q: want off, on or skip-verify", mode)
	}
	def := ""
	switch {
	case opt.Socket != "":
		def = opt.Socket
	case opt.Host != "":
		port := opt.Port
		if port == 0 {
			port = 3306
		}
		def = dbstate.NormalizeAddr(opt.Host, port)
	}
	logger.Debug("connecting", "credentials", creds)
	cl, err := dbstate.NewClientWith(creds, dbstate.ClientOptions{ConnectTimeout: c.timeout, StatementTimeout: c.stmtTimeout, Logger: logger})
	if err != nil {
		return nil, "", nil, cli.Usagef("%v", err)
	}
	return cl, def, logger, nil
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("mysql driver", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type seeds []string

func (s *seeds) String() string     { return strings.Join(*s, ",") }
func (s *seeds) Set(v string) error { *s = append(*s, v); return nil }

// fail prints err with one prefix: prog's, unless err is a refusal or a plan's failure, which name their
// operation themselves.
func fail(stderr io.Writer, prog string, err error) int {
	var re *dbstate.RefusalError
	var ee *dbstate.ExecError
	if errors.As(err, &re) || errors.As(err, &ee) {
		fmt.Fprintf(stderr, "dbstate %v\n", err)
	} else {
		fmt.Fprintf(stderr, "dbstate %s: %v\n", prog, err)
	}
	return cli.ExitCode(err)
}

// positive rejects a zero or negative duration flag: zero would otherwise silently mean a default.
func positive(flags map[string]time.Duration) error {
	for name, d := range flags {
		if d <= 0 {
			return cli.Usagef("--%s %v: must be > 0", name, d)
		}
	}
	return nil
}

const showUsage = `
Usage: dbstate topology show --seed HOST:PORT [--seed ...] [--json] [connection flags]

Crawls the replication tree from the seeds (up through SHOW SLAVE STATUS, down through SHOW SLAVE HOSTS) and
prints it as an indented tree, one instance per line, with problems marked "!!": broken or stopped replication,
lag, more than one writable instance, loops, replicas without GTID, errant GTIDs. Exits 1 when it found a
problem. A seed is host:port or a unix socket path.

Examples:
  dbstate topology show --seed 127.0.0.1:3306 --defaults-file ~/.my.cnf
  dbstate topology show --seed /run/mysqld/mysqld.sock --user dba --password-file /etc/dbstate/pw --json
`

func runShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate topology show", showUsage, stderr)
	var cn conn
	cn.register(fs)
	var ss seeds
	fs.Var(&ss, "seed", "instance to start from, host:port or socket path (repeatable; default: the option file's host/socket)")
	asJSON := fs.Bool("json", false, "print the full model as JSON")
	maxLag := fs.Duration("max-lag", 10*time.Second, "report lag above this (beyond a replica's MASTER_DELAY; must be > 0)")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	if err := positive(map[string]time.Duration{"max-lag": *maxLag}); err != nil {
		return fail(stderr, "topology show", err)
	}
	c, def, _, err := cn.client(stderr)
	if err != nil {
		return fail(stderr, "topology show", err)
	}
	defer c.Close()
	if len(ss) == 0 && def != "" {
		ss = seeds{def}
	}
	if len(ss) == 0 {
		return fail(stderr, "topology show", cli.Usagef("no --seed"))
	}
	for _, s := range ss {
		if err := dbstate.ValidateAddr(s); err != nil {
			return fail(stderr, "topology show", cli.Usagef("--seed: %v", err))
		}
	}
	topo, err := dbstate.Discover(ctx, c, ss, dbstate.DiscoverOptions{Diagnose: dbstate.DiagnoseOptions{MaxLag: *maxLag}})
	if err != nil {
		return fail(stderr, "topology show", err)
	}
	if *asJSON {
		err = cli.WriteJSON(stdout, topo)
	} else {
		err = topo.WriteTree(stdout)
	}
	if err != nil {
		return fail(stderr, "topology show", err)
	}
	if len(topo.Problems) > 0 {
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// change holds the flags of commands that change servers.
type change struct {
	dryRun, yes, asJSON bool
	auditLog            string
}

func (ch *change) register(fs *flag.FlagSet) {
	fs.BoolVar(&ch.dryRun, "dry-run", false, "print the plan and change nothing")
	fs.BoolVar(&ch.yes, "yes", false, "execute the plan (without it, or with --dry-run, nothing changes)")
	fs.BoolVar(&ch.asJSON, "json", false, "print the plan and the result as JSON")
	fs.StringVar(&ch.auditLog, "audit-log", "", "append the audit log (JSON lines: time, user, step, result; a start and an end line per step) to this file; default stderr")
}

type result struct {
	Plan           *dbstate.Plan            `json:"plan,omitempty"`
	Refused        bool                     `json:"refused,omitempty"`
	Checks         []dbstate.PreflightCheck `json:"checks,omitempty"` // of a refusal: every check, passed or failed
	Executed       bool                     `json:"executed"`
	Run            string                   `json:"run,omitempty"` // the run id in the audit log
	Error          string                   `json:"error,omitempty"`
	RolledBack     *bool                    `json:"rolled_back,omitempty"`
	NothingChanged *bool                    `json:"nothing_changed,omitempty"`
	// Report is what the run leaves on purpose (accounts kept locked on a demoted primary) and how to lift it.
	Report []string `json:"report,omitempty"`
}

// planned prints the outcome of planning: the refusal with every check (on stdout, as text or JSON), or, with a
// plan, the plan and, with --yes, its execution.
func (ch *change) planned(ctx context.Context, prog string, plan *dbstate.Plan, err error, logger *slog.Logger, stdout, stderr io.Writer) int {
	var re *dbstate.RefusalError
	if errors.As(err, &re) {
		res := result{Refused: true, Checks: re.Checks, Error: re.Error()}
		var werr error
		if ch.asJSON {
			werr = cli.WriteJSON(stdout, res)
		} else {
			werr = re.WriteText(stdout)
		}
		if werr != nil {
			return fail(stderr, prog, fmt.Errorf("write: %w", werr))
		}
		var failed []string
		for _, c := range re.Checks {
			if !c.Passed && !slices.Contains(failed, c.Name) {
				failed = append(failed, c.Name)
			}
		}
		fmt.Fprintf(stderr, "dbstate %s: refused, nothing changed; failed checks: %s\n", prog, strings.Join(failed, ", "))
		return cli.ExitFailure
	}
	if errors.Is(err, dbstate.ErrInvalidValue) {
		// A statement of the plan cannot be built from what the servers or the flags said (a report_host that
		// is no host name, say): nothing was planned, nothing changed.
		return fail(stderr, prog, cli.Usagef("%v; nothing changed", err))
	}
	if err != nil {
		return fail(stderr, prog, err)
	}
	return ch.execute(ctx, prog, plan, logger, stdout, stderr)
}

// confirm prints a plan before anything is executed, and says whether to go on. Without --yes, with --dry-run,
// or for an empty plan, it prints the plan (asJSON as JSON, or text), and proceed is false with the exit code:
// 2 when --yes is missing for a plan that would change something, else 0. Otherwise it prints the text plan
// (JSON waits for the result) and "Executing...". A failed write to stdout is a failure: nothing changed.
func (ch *change) confirm(prog string, empty bool, asJSON any, text func(io.Writer) error, stdout, stderr io.Writer) (proceed bool, code int) {
	if !ch.yes || ch.dryRun || empty {
		var err error
		if ch.asJSON {
			err = cli.WriteJSON(stdout, asJSON)
		} else {
			err = text(stdout)
		}
		if err != nil {
			return false, fail(stderr, prog, fmt.Errorf("write: %w, nothing changed", err))
		}
		if !ch.dryRun && !empty {
			fmt.Fprintf(stderr, "dbstate %s: nothing changed: pass --yes to execute this plan, or --dry-run to only print it\n", prog)
			return false, cli.ExitUsage
		}
		return false, cli.ExitOK
	}
	if !ch.asJSON {
		err := text(stdout)
		if err == nil {
			_, err = fmt.Fprintln(stdout, "\nExecuting...")
		}
		if err != nil {
			return false, fail(stderr, prog, fmt.Errorf("write: %w, nothing changed", err))
		}
	}
	return true, cli.ExitOK
}

// execute prints the plan and, with --yes, runs it. A failed write to stdout or the audit log is a failure.
func (ch *change) execute(ctx context.Context, prog string, plan *dbstate.Plan, logger *slog.Logger, stdout, stderr io.Writer) int {
	res := result{Plan: plan}
	if proceed, code := ch.confirm(prog, false, res, plan.WriteText, stdout, stderr); !proceed {
		return code
	}
	audit, closeAudit, err := openAudit(ch.auditLog, stderr)
	if err != nil {
		return fail(stderr, prog, err)
	}
	defer closeAudit()
	start := time.Now()
	runID := dbstate.NewRunID()
	res.Run = runID
	fmt.Fprintf(stderr, "dbstate %s: run %s", prog, runID)
	if ch.auditLog != "" {
		fmt.Fprintf(stderr, " (dbstate audit show %s --run %s)", ch.auditLog, runID)
	}
	fmt.Fprintln(stderr)
	err = plan.Execute(ctx, dbstate.ExecOptions{Audit: audit, Logger: logger, RunID: runID,
		Progress: func(p dbstate.Progress) { fmt.Fprintf(stderr, "dbstate %s: %s\n", prog, p) }})
	res.Executed = true
	if plan.Report != nil {
		res.Report = plan.Report() // also after a failure past the point of no return
	}
	if err != nil {
		res.Error = err.Error()
		var ee *dbstate.ExecError
		if errors.As(err, &ee) {
			rb, nc := ee.RolledBack, ee.NothingChanged
			res.RolledBack, res.NothingChanged = &rb, &nc
		}
	}
	var werr error
	if ch.asJSON {
		werr = cli.WriteJSON(stdout, res)
	} else if err == nil {
		_, werr = fmt.Fprintf(stdout, "Done in %v.\n", time.Since(start).Round(time.Millisecond))
		for _, line := range res.Report {
			if werr == nil {
				_, werr = fmt.Fprintln(stdout, line)
			}
		}
	} else {
		for _, line := range res.Report {
			fmt.Fprintf(stderr, "dbstate %s: %s\n", prog, line)
		}
	}
	err = audit.checkRun(prog, err, stderr)
	if err == nil && werr != nil {
		err = fmt.Errorf("write: %w (the plan itself succeeded)", werr)
	}
	if err != nil {
		return fail(stderr, prog, err)
	}
	return cli.ExitOK
}

// openAudit opens the --audit-log file for appending (path "" is stderr). The writer records its first write
// error, so that a run can say its audit log is incomplete; closeFn ends the file.
func openAudit(path string, stderr io.Writer) (audit *checkedWriter, closeFn func(), err error) {
	if path == "" {
		return &checkedWriter{w: stderr}, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, nil, cli.Usagef("--audit-log: %v", err)
	}
	return &checkedWriter{w: f}, func() { f.Close() }, nil
}

// checkRun says on stderr when the audit log missed a record, and makes a run that otherwise succeeded a
// failure that says its changes were made: the servers changed but the log of who changed what is incomplete.
func (c *checkedWriter) checkRun(prog string, err error, stderr io.Writer) error {
	aerr := c.Err()
	if aerr == nil {
		return err
	}
	fmt.Fprintf(stderr, "dbstate %s: the audit log is incomplete: %v\n", prog, aerr)
	if err == nil {
		err = fmt.Errorf("audit log: %w (the plan itself succeeded)", aerr)
	}
	return err
}

// checkedWriter remembers the first write error (the audit log must not fail silently).
type checkedWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.w.Write(p)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// Err is the first write error.
func (c *checkedWriter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

const moveUsage = `
Usage: dbstate topology move --replica HOST:PORT --under HOST:PORT (--dry-run | --yes) [flags]

Repoints a replica under another instance of the same tree, by GTID (MASTER_USE_GTID=slave_pos): stop it, wait
until the new master has its position, CHANGE MASTER, start it. Refuses, with the reason, when the new master
does not have the position and cannot get it in time, has errant transactions, has no binlog or
log_slave_updates, or when the move would create a loop. A failure after the replica was stopped puts it back.

Examples:
  dbstate topology move --replica 127.0.0.1:3308 --under 127.0.0.1:3307 --defaults-file ~/.my.cnf --dry-run
  dbstate topology move --replica 127.0.0.1:3308 --under 127.0.0.1:3307 --defaults-file ~/.my.cnf --yes
`

func runMove(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate topology move", moveUsage, stderr)
	var cn conn
	cn.register(fs)
	var ch change
	ch.register(fs)
	replica := fs.String("replica", "", "the replica to move, host:port")
	under := fs.String("under", "", "its new master, host:port")
	timeout := fs.Duration("timeout", 30*time.Second, "how long the new master may take to reach the replica's position")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	if *replica == "" || *under == "" {
		return fail(stderr, "topology move", cli.Usagef("--replica and --under are required"))
	}
	if err := positive(map[string]time.Duration{"timeout": *timeout}); err != nil {
		return fail(stderr, "topology move", err)
	}
	mo := dbstate.MoveOptions{Replica: *replica, Under: *under, Timeout: *timeout}
	if err := mo.Validate(); err != nil {
		return fail(stderr, "topology move", cli.Usagef("%v", err))
	}
	c, _, logger, err := cn.client(stderr)
	if err != nil {
		return fail(stderr, "topology move", err)
	}
	defer c.Close()
	topo, err := dbstate.Discover(ctx, c, []string{*replica, *under}, dbstate.DiscoverOptions{})
	if err != nil {
		return fail(stderr, "topology move", err)
	}
	plan, err := dbstate.PlanMove(ctx, c, topo, mo)
	return ch.planned(ctx, "topology move", plan, err, logger, stdout, stderr)
}

const switchoverUsage = `
Usage: dbstate switchover --primary HOST:PORT --to HOST:PORT --repl-user USER [--repl-password-file FILE]
                          (--dry-run | --yes) [flags]

Makes the replica --to the primary in place of --primary, with no acknowledged write lost: it moves the other
replicas under the candidate, catches the candidate up while the primary still takes writes, makes the primary
read-only, locks the accounts of connected users that write through read_only (READ ONLY ADMIN or ALL
PRIVILEGES, whatever the account's host) and kills the remaining sessions, waits with MASTER_GTID_WAIT until the candidate has the primary's last write, promotes it,
and repoints the old primary under it. Any failure before the candidate is writable undoes what was changed
(or says "nothing changed").

Before anything changes it checks, and lists with ok or FAIL (also with --json, on stdout): the candidate is a
direct, healthy replica, lagging at most --max-lag beyond any MASTER_DELAY and not delayed itself; no errant
GTIDs (with --delayed-candidate ADDR, naming --to again, a delayed candidate is promoted: its MASTER_DELAY is
removed before the catch-up, and a rollback restores it); dbstate's account holds every privilege the steps use on every instance they touch (see the README for
the grants). Replicas with a MASTER_DELAY are moved with their delay kept. Waits that take longer than a second
print their progress on stderr. The run id goes to stderr: "dbstate audit show FILE --run ID" prints the run.

The old primary replicates from the new one as --repl-user (required), with the password in
--repl-password-file. The old primary stores them in its master.info, readable by anyone with access to its data
directory, so dbstate does not put its own login there: use an account with REPLICATION SLAVE only. Without
--repl-password-file, the old primary keeps the password already in its master.info.

With --fence refuse, it refuses while anything that writes through read_only is connected to the primary: an
account to lock, a --never-lock account, or another session of dbstate's own user.
With --fence lock (the default), every account that writes through read_only (READ ONLY ADMIN or ALL
PRIVILEGES, directly or through a role, connected or not, root@localhost included) is locked with
sql_log_bin=0, so that no lock reaches another server: on the candidate from before the final position until
the promotion, then on the primary before read_only=1, and on the primary's other replicas until the end of the
run. dbstate's own account is locked with them on the candidate and the replicas, and on the primary right
before the promotion (connections it logs in first do the rest of the run there). Events ENABLED on the primary
are stopped there (ALTER EVENT ... DISABLE ON SLAVE) before read_only=1 and enabled on the new primary after
the promotion.
After a switchover the accounts STAY LOCKED on the demoted primary, so that no writer can split the tree there;
the report names them and says how to lift them: dbstate recover --audit-log FILE unlocks them through the new
primary (a binlogged ALTER USER ... ACCOUNT UNLOCK, which replicates to the demoted primary), which also works
when every admin login of the demoted primary is locked. After a rollback everything is lifted.
--never-lock ACCOUNT exempts a login (e.g. a break-glass root@localhost) and --unlock-demoted unlocks the
accounts after a switchover; the plan warns of the risk of each.

Everything is bounded. Every statement gets no longer than --statement-timeout (waits get their own bound on
top), so a hung instance (stopped, swapping, cut off) costs a bounded wait and a rollback, never a hang. The
write-unavailability window, from read_only=1 on the primary until the candidate is writable, lasts at most
--max-window (plus a tenth, at most 1 s): past it the switchover rolls back, and the report gives the window's
length. A write statement running for --long-write or longer, a transaction that wrote that long ago and is
still open, or a LOCK TABLES session on the primary (seen with the metadata_lock_info plugin only; the plan
warns without it) would make read_only=1 wait and every write queue behind it: the switchover refuses, naming
them, and looks again right before read_only=1; --kill-long-writes kills them there instead. A rollback that
cannot reach an instance says which undo failed (never "restored"): a statement that got no answer may still
take effect when the instance runs again.

Examples:
  dbstate switchover --primary 127.0.0.1:3306 --to 127.0.0.1:3307 --defaults-file ~/.my.cnf \
      --repl-user repl --repl-password-file /etc/dbstate/repl.pw --dry-run
  dbstate switchover --primary 127.0.0.1:3306 --to 127.0.0.1:3307 --defaults-file ~/.my.cnf \
      --repl-user repl --repl-password-file /etc/dbstate/repl.pw --yes --audit-log /var/log/dbstate.audit
`

func runSwitchover(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate switchover", switchoverUsage, stderr)
	var cn conn
	cn.register(fs)
	var ch change
	ch.register(fs)
	primary := fs.String("primary", "", "the current primary, host:port")
	to := fs.String("to", "", "the replica to promote, host:port (a direct replica of --primary)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound for each catch-up wait while the primary still takes writes")
	maxWindow := fs.Duration("max-window", 5*time.Second, "bound for the write-unavailability window: from read_only=1 on the primary until the candidate is writable; past it the switchover rolls back")
	longWrite := fs.Duration("long-write", time.Second, "a write statement running, or a transaction that wrote and is open, this long or longer on the primary counts as long (see --kill-long-writes)")
	delayed := fs.String("delayed-candidate", "", "host:port, the same as --to: promote it although it is a delayed replica (its MASTER_DELAY is removed before the catch-up; a rollback restores it); without it a delayed candidate is refused")
	killLong := fs.Bool("kill-long-writes", false, "kill long writes, open write transactions and LOCK TABLES sessions on the primary right before read_only=1, instead of refusing")
	maxLag := fs.Duration("max-lag", 10*time.Second, "refuse when a replica lags more")
	fence := fs.String("fence", "lock", "lock: lock every account that writes through read_only on the primary (kept locked there after a switchover, see --unlock-demoted); refuse: refuse while such writers are connected, naming them")
	var allowUnreachable seeds
	fs.Var(&allowUnreachable, "allow-unreachable", "host:port of an instance of the tree that may be down: the switchover leaves it behind, and the plan says so (repeatable)")
	var neverLock seeds
	fs.Var(&neverLock, "never-lock", "user@host whose sessions are killed but whose account is never locked, e.g. a break-glass root@localhost (repeatable; default none: every account that writes through read_only is locked; the plan warns of the risk)")
	replUser := fs.String("repl-user", "", "user the old primary replicates with, a REPLICATION SLAVE account (required)")
	replPwFile := fs.String("repl-password-file", "", "file whose first line is --repl-user's password (needs --repl-user)")
	unlockDemoted := fs.Bool("unlock-demoted", false, "after a switchover, unlock the fenced accounts on the demoted primary too (risk: a writer that bypasses read_only writes there, a split brain)")
	skipReplLogin := fs.Bool("skip-repl-login-check", false, "do not log in to --to as --repl-user before step 1 (that login comes from dbstate's host, which the account may not be allowed from)")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	if *primary == "" || *to == "" {
		return fail(stderr, "switchover", cli.Usagef("--primary and --to are required"))
	}
	if *replPwFile != "" && *replUser == "" {
		return fail(stderr, "switchover", cli.Usagef("--repl-password-file needs --repl-user: whose password is it?"))
	}
	if *replUser == "" {
		return fail(stderr, "switchover", cli.Usagef("--repl-user is required: the old primary stores its replication "+
			"user and password in master.info, readable by anyone with access to its data directory, so dbstate does "+
			"not put its own login there; pass an account with REPLICATION SLAVE only, and --repl-password-file"))
	}
	repl := dbstate.Credentials{User: *replUser}
	if *replPwFile != "" {
		pw, err := dbstate.ReadPasswordFile(*replPwFile)
		if err != nil {
			return fail(stderr, "switchover", cli.Usagef("--repl-password-file: %v", err))
		}
		repl.Password = pw
	}
	if *fence != string(dbstate.FenceLock) && *fence != string(dbstate.FenceRefuse) {
		return fail(stderr, "switchover", cli.Usagef("--fence %q: want lock or refuse", *fence))
	}
	if err := positive(map[string]time.Duration{"timeout": *timeout, "max-window": *maxWindow, "max-lag": *maxLag, "long-write": *longWrite}); err != nil {
		return fail(stderr, "switchover", err)
	}
	var never []dbstate.Account // nil: the default
	for _, a := range neverLock {
		if never == nil {
			never = []dbstate.Account{}
		}
		if a == "none" {
			continue
		}
		acc, err := dbstate.ParseAccount(a)
		if err != nil {
			return fail(stderr, "switchover", cli.Usagef("--never-lock %q: want user@host", a))
		}
		never = append(never, acc)
	}
	o := dbstate.SwitchoverOptions{Primary: *primary, Candidate: *to, Timeout: *timeout, MaxWindow: *maxWindow, MaxLag: *maxLag,
		Replication: repl, Fence: dbstate.FenceMode(*fence), NeverLock: never, SkipReplicationLogin: *skipReplLogin,
		AllowUnreachable: allowUnreachable, UnlockDemoted: *unlockDemoted, LongWrite: *longWrite, KillLongWrites: *killLong, DelayedCandidate: *delayed}
	if err := o.Validate(); err != nil {
		return fail(stderr, "switchover", cli.Usagef("%v", err))
	}
	c, _, logger, err := cn.client(stderr)
	if err != nil {
		return fail(stderr, "switchover", err)
	}
	defer c.Close()
	topo, err := dbstate.Discover(ctx, c, []string{o.Primary, o.Candidate}, dbstate.DiscoverOptions{Diagnose: dbstate.DiagnoseOptions{MaxLag: o.MaxLag}})
	if err != nil {
		return fail(stderr, "switchover", err)
	}
	plan, err := dbstate.PlanSwitchover(ctx, c, topo, o)
	return ch.planned(ctx, "switchover", plan, err, logger, stdout, stderr)
}

const checkConfigUsage = `
Usage: dbstate check-config [--seed HOST:PORT] [connection flags]

Reads the option file and password files, prints the resolved connection settings (never the password) and, with
a seed (or the option file's host/socket), connects once and prints the server version.

Example:
  dbstate check-config --defaults-file ~/.my.cnf --seed 127.0.0.1:3306
`

func runCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate check-config", checkConfigUsage, stderr)
	var cn conn
	cn.register(fs)
	seed := fs.String("seed", "", "instance to try, host:port or socket path")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	c, def, _, err := cn.client(stderr)
	if err != nil {
		return fail(stderr, "check-config", err)
	}
	defer c.Close()
	fmt.Fprintf(stdout, "credentials: %s\n", c.Credentials())
	addr := first(*seed, def)
	if addr == "" {
		fmt.Fprintln(stdout, "no seed: not connecting")
		return cli.ExitOK
	}
	if err := dbstate.ValidateAddr(addr); err != nil {
		return fail(stderr, "check-config", cli.Usagef("--seed: %v", err))
	}
	in := c.ReadInstance(ctx, addr)
	if in.Error != "" {
		return fail(stderr, "check-config", errors.New(in.Error))
	}
	fmt.Fprintf(stdout, "%s: server_id=%s version=%s read_only=%v\n", in.Addr, strconv.FormatUint(uint64(in.ServerID), 10), in.Version, in.ReadOnly)
	return cli.ExitOK
}
