package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/internal/cli"
)

func runGrants(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := []cli.Command{
		{Name: "show", Summary: "print an instance's users, roles and grants in the desired-state format", Run: runGrantsShow},
		{Name: "plan", Summary: "compare a desired-state file with a cluster; exit 0 when nothing would change, 1 when something would", Run: runGrantsPlan},
		{Name: "apply", Summary: "apply a desired-state file to a cluster, then verify", Run: runGrantsApply},
		{Name: "check", Summary: "validate a desired-state file without connecting", Run: runGrantsCheck},
	}
	return cli.Dispatch(ctx, "dbstate grants", "users, roles and grants as desired state", cmds, args, stdout, stderr)
}

const grantsShowUsage = `
Usage: dbstate grants show --instance HOST:PORT [--json] [connection flags]

Reads the users, roles and grants of one instance and prints them in the desired-state format (YAML), the
starting point for adopting dbstate on an existing cluster: save the output as the desired file, and plan is
empty. The YAML holds password hashes (password_hash, ed25519_key): keep it as safe as mysql.global_priv.
--json prints the same with hashes redacted. Needs only SELECT on the mysql schema.

Examples:
  dbstate grants show --instance 127.0.0.1:3306 --defaults-file ~/.my.cnf > grants.yml
  dbstate grants show --instance 127.0.0.1:3306 --defaults-file ~/.my.cnf --json
`

func runGrantsShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate grants show", grantsShowUsage, stderr)
	var cn conn
	cn.register(fs)
	inst := fs.String("instance", "", "instance to read, host:port or socket path (default: the option file's host/socket)")
	asJSON := fs.Bool("json", false, "print JSON, with hashes redacted")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	c, def, logger, err := cn.client(stderr)
	if err != nil {
		return fail(stderr, "grants show", err)
	}
	defer c.Close()
	addr := first(*inst, def)
	if addr == "" {
		return fail(stderr, "grants show", cli.Usagef("no --instance"))
	}
	db, err := c.DB(addr)
	if err != nil {
		return fail(stderr, "grants show", err)
	}
	st, err := dbstate.ReadGrants(ctx, db)
	if err != nil {
		return fail(stderr, "grants show", err)
	}
	d, left := st.Desired(*asJSON)
	for _, w := range append(st.Warnings, left...) {
		logger.Warn("grants show", "instance", addr, "warning", w)
	}
	if *asJSON {
		err = cli.WriteJSON(stdout, d)
	} else {
		var b []byte
		b, err = dbstate.MarshalDesiredGrants(d, fmt.Sprintf(
			"Users, roles and grants of %s (server version %s), read by dbstate grants show.\nIt holds password hashes: keep it as safe as mysql.global_priv.",
			addr, st.Privileges.Version))
		if err == nil {
			_, err = stdout.Write(b)
		}
	}
	if err != nil {
		return fail(stderr, "grants show", err)
	}
	return cli.ExitOK
}

// grantsFlags are the flags plan and apply share.
type grantsFlags struct {
	desired   string
	seeds     seeds
	instances string
	timeout   time.Duration
}

// grantsConn are the connection flags of grants plan and apply: their --statement-timeout (30 s) also bounds a
// statement waiting for a lock.
func grantsConn() conn {
	return conn{stmtDefault: 30 * time.Second, stmtUsage: "bound for each statement, also one waiting for a lock (a backup's FLUSH TABLES WITH READ LOCK; must be > 0)"}
}

func (g *grantsFlags) flags(fs *flag.FlagSet) {
	fs.StringVar(&g.desired, "desired", "", "the desired-state file (YAML; required)")
	fs.Var(&g.seeds, "seed", "an instance of the replicated cluster, host:port or socket path (repeatable; default: the option file's host/socket)")
	fs.StringVar(&g.instances, "instances", "", "comma-separated independent instances, host:port (instead of --seed)")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "bound for each wait for the replicas")
}

// loadDesired reads and validates the desired file; password files are read relative to its directory.
func loadDesired(path string) (*dbstate.DesiredGrants, func(string) (string, error), error) {
	if path == "" {
		return nil, nil, cli.Usagef("--desired FILE is required")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, cli.Usagef("--desired: %v", err)
	}
	d, err := dbstate.ReadDesiredGrants(f)
	f.Close()
	if err != nil {
		return nil, nil, cli.Usagef("%s: %v", path, err)
	}
	dir := filepath.Dir(path)
	read := func(p string) (string, error) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return dbstate.ReadPasswordFile(p)
	}
	return d, read, nil
}

// target resolves --seed (discover the cluster) or --instances (independent servers).
func (g *grantsFlags) target(ctx context.Context, c *dbstate.Client, def string) (dbstate.GrantsTarget, error) {
	if len(g.seeds) > 0 && g.instances != "" {
		return dbstate.GrantsTarget{}, cli.Usagef("--seed and --instances exclude each other")
	}
	if g.instances != "" {
		// The one --instances parser: host:port, localhost written 127.0.0.1, so that one server listed in two
		// spellings is refused as listed twice rather than changed twice.
		list, err := splitInstances(g.instances)
		if err != nil {
			return dbstate.GrantsTarget{}, err
		}
		t := dbstate.GrantsTarget{Independent: list}
		if err := t.Validate(); err != nil {
			return t, cli.Usagef("--instances: %v", err)
		}
		return t, nil
	}
	ss := []string(g.seeds)
	if len(ss) == 0 && def != "" {
		ss = []string{def}
	}
	if len(ss) == 0 {
		return dbstate.GrantsTarget{}, cli.Usagef("want --seed ADDR (a replicated cluster) or --instances A,B,C (independent servers)")
	}
	topo, err := dbstate.Discover(ctx, c, ss, dbstate.DiscoverOptions{})
	if err != nil {
		return dbstate.GrantsTarget{}, err
	}
	return dbstate.GrantsTargetFromTopology(topo)
}

// plan connects, resolves the target and plans.
func (g *grantsFlags) plan(ctx context.Context, cn *conn, stderr io.Writer) (*dbstate.GrantsPlan, *dbstate.Client, error) {
	d, read, err := loadDesired(g.desired)
	if err != nil {
		return nil, nil, err
	}
	if g.timeout <= 0 || cn.stmtTimeout < time.Millisecond {
		return nil, nil, cli.Usagef("--timeout and --statement-timeout must be positive")
	}
	c, def, _, err := cn.client(stderr)
	if err != nil {
		return nil, nil, err
	}
	t, err := g.target(ctx, c, def)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	p, err := dbstate.PlanGrants(ctx, c, t, d, dbstate.GrantsOptions{ReadFile: read, WaitTimeout: g.timeout, StatementTimeout: cn.stmtTimeout})
	if err != nil {
		c.Close()
		if errors.Is(err, dbstate.ErrDesiredGrants) {
			return nil, nil, cli.Usagef("%v", err)
		}
		return nil, nil, err
	}
	return p, c, nil
}

const grantsPlanUsage = `
Usage: dbstate grants plan --desired FILE (--seed HOST:PORT | --instances A,B,C) [--json] [connection flags]

Reads every instance, compares it with the desired-state file, and prints per account what would be created,
altered, granted, revoked or dropped, as SQL with password hashes redacted, then a summary line. With --seed
the replicated cluster is discovered: a change that every instance lacks runs once on the primary and
replicates; drift on only some instances is repaired on those alone with sql_log_bin=0 (no errant GTIDs).
--instances treats the listed instances as independent servers. Password files in the desired file are read
relative to its directory. Changes nothing; needs only SELECT on the mysql schema and REPLICATION CLIENT
(SLAVE MONITOR) for discovery.

Exit status: 0 nothing to change, 1 changes (drift) or a failure, 2 usage or desired-file errors.

Examples:
  dbstate grants plan --desired examples/dbstate/grants.yml --seed 127.0.0.1:3306 --defaults-file ~/.my.cnf
  dbstate grants plan --desired grants.yml --instances 10.0.0.1:3306,10.0.0.2:3306 --user dba --password-file pw --json
`

func runGrantsPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate grants plan", grantsPlanUsage, stderr)
	cn := grantsConn()
	cn.register(fs)
	var g grantsFlags
	g.flags(fs)
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	p, c, err := g.plan(ctx, &cn, stderr)
	if err != nil {
		return fail(stderr, "grants plan", err)
	}
	defer c.Close()
	if *asJSON {
		err = cli.WriteJSON(stdout, p)
	} else {
		err = p.WriteText(stdout)
	}
	if err != nil {
		return fail(stderr, "grants plan", err)
	}
	if p.Empty() {
		return cli.ExitOK
	}
	return cli.ExitFailure
}

const grantsApplyUsage = `
Usage: dbstate grants apply --desired FILE (--seed HOST:PORT | --instances A,B,C) (--dry-run | --yes)
                            [--audit-log FILE] [--json] [connection flags]

Plans as "dbstate grants plan" does and, with --yes, runs the statements: rank by rank (accounts, privileges,
roles, default roles, drops), local repairs with sql_log_bin=0 before replicated statements on the primary,
waiting with MASTER_GTID_WAIT after each rank until every replica has the primary's changes. Then it reads every
instance back and checks that nothing remains. Statements are not undone: a failure midway says which
statements were applied, which failed and which were not applied, and "plan" then shows what remains.
Without --yes it prints the plan and changes nothing. The account needs CREATE USER, SELECT and UPDATE on
mysql.*, BINLOG ADMIN (sql_log_bin=0), READ ONLY ADMIN (read-only replicas), SLAVE MONITOR and REPLICATION
MASTER ADMIN (discovery), and every privilege it grants WITH GRANT OPTION; ALL PRIVILEGES ON *.* WITH GRANT
OPTION covers them.

Examples:
  dbstate grants apply --desired grants.yml --seed 127.0.0.1:3306 --defaults-file ~/.my.cnf --dry-run
  dbstate grants apply --desired grants.yml --seed 127.0.0.1:3306 --defaults-file ~/.my.cnf --yes --audit-log grants.audit
`

func runGrantsApply(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate grants apply", grantsApplyUsage, stderr)
	cn := grantsConn()
	cn.register(fs)
	var g grantsFlags
	g.flags(fs)
	var ch change
	ch.register(fs)
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	p, c, err := g.plan(ctx, &cn, stderr)
	if err != nil {
		return fail(stderr, "grants apply", err)
	}
	defer c.Close()
	type applyResult struct {
		Plan     *dbstate.GrantsPlan   `json:"plan"`
		Executed bool                  `json:"executed"`
		Result   *dbstate.GrantsResult `json:"result,omitempty"`
	}
	res := applyResult{Plan: p}
	if proceed, code := ch.confirm("grants apply", p.Empty(), res, p.WriteText, stdout, stderr); !proceed {
		return code
	}
	audit, closeAudit, err := openAudit(ch.auditLog, stderr)
	if err != nil {
		return fail(stderr, "grants apply", err)
	}
	defer closeAudit()
	start := time.Now()
	r, err := p.Execute(ctx, dbstate.ExecOptions{Audit: audit})
	res.Executed, res.Result = true, r
	var werr error
	if ch.asJSON {
		werr = cli.WriteJSON(stdout, res)
	} else if err == nil {
		_, werr = fmt.Fprintf(stdout, "Done in %v: %d statements applied, every instance verified.\n", time.Since(start).Round(time.Millisecond), len(r.Applied))
	} else {
		fmt.Fprintf(stdout, "\nApplied (%d):\n", len(r.Applied))
		for _, s := range r.Applied {
			fmt.Fprintf(stdout, "  %s on %s: %s\n", s.Step, s.Instance, s.Statement)
		}
		if r.Failed != nil {
			state := "not applied"
			if r.Unknown {
				state = "unknown whether applied: the connection was lost"
			}
			fmt.Fprintf(stdout, "Failed (%s):\n  %s on %s: %s\n", state, r.Failed.Step, r.Failed.Instance, r.Failed.Statement)
		}
		fmt.Fprintf(stdout, "Not applied (%d):\n", len(r.NotApplied))
		for _, s := range r.NotApplied {
			fmt.Fprintf(stdout, "  %s on %s: %s\n", s.Step, s.Instance, s.Statement)
		}
		fmt.Fprintln(stdout, "Run dbstate grants plan to see what remains.")
	}
	err = audit.checkRun("grants apply", err, stderr)
	if err == nil && werr != nil {
		err = fmt.Errorf("write: %w (the plan itself succeeded)", werr)
	}
	if err != nil {
		return fail(stderr, "grants apply", err)
	}
	return cli.ExitOK
}

const grantsCheckUsage = `
Usage: dbstate grants check --desired FILE

Validates a desired-state file without connecting: unknown keys, names, hosts, privileges (against MariaDB
10.11's list), objects, roles, and that every password file can be read. Exit 0 valid, 2 invalid.

Example:
  dbstate grants check --desired examples/dbstate/grants.yml
`

func runGrantsCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate grants check", grantsCheckUsage, stderr)
	desired := fs.String("desired", "", "the desired-state file (YAML)")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	d, read, err := loadDesired(*desired)
	if err != nil {
		return fail(stderr, "grants check", err)
	}
	st, err := d.Normalize(dbstate.DefaultServerPrivileges(), read)
	if err != nil {
		return fail(stderr, "grants check", cli.Usagef("%v", err))
	}
	for _, w := range st.Warnings {
		fmt.Fprintf(stderr, "grants check: warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: %d roles, %d users: ok\n", *desired, len(d.Roles), len(d.Users))
	return cli.ExitOK
}
