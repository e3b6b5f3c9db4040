package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/internal/atomicfile"
	"github.com/evenkeel/evenkeel/internal/cli"
)

func runVars(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := []cli.Command{
		{Name: "plan", Summary: "show, per instance, each desired variable's current and new value (exit 1 when something differs)", Run: runVarsPlan},
		{Name: "apply", Summary: "push the desired variables to every instance as one transaction, rolled back everywhere on any failure", Run: runVarsApply},
	}
	return cli.Dispatch(ctx, "dbstate vars", "runtime variables (SET GLOBAL) across many instances", cmds, args, stdout, stderr)
}

const varsPlanUsage = `
Usage: dbstate vars plan --desired FILE (--seed HOST:PORT ... | --instances A,B,C) [--json] [connection flags]

Reads the desired variables (YAML: variables: {name: value}, and groups: {name: {instances: [...], variables:
{...}}} whose values override the base set on those instances), reads every instance's
information_schema.SYSTEM_VARIABLES rows for them, validates each value (the variable exists, is dynamic and
global, and the value fits its type, range and allowed values) and prints, per instance, each variable's current
and new value. Values are compared normalised: ON/1/TRUE/YES, 64M or bytes, 10m or 600 seconds, enums and sets in
any case and order. A rejected variable is named with the instance and the reason, and nothing is sent.

With --seed the instances are the whole replication tree discovered from the seeds; with --instances exactly
those (host:port, comma-separated).

Exit status: 0 nothing differs; 1 something differs (or an instance could not be read); 2 usage, or the desired
file is invalid or rejected.

Examples:
  dbstate vars plan --defaults-file dbstate.cnf --seed 127.0.0.1:3306 --desired examples/dbstate/vars.yml
  dbstate vars plan --defaults-file dbstate.cnf --instances 127.0.0.1:3306,127.0.0.1:3307 --desired vars.yml --json
`

const varsApplyUsage = `
Usage: dbstate vars apply --desired FILE (--seed HOST:PORT ... | --instances A,B,C) (--yes | --dry-run)
                          [--parallel N] [--audit-log FILE] [--persist FILE] [--json] [connection flags]

Plans as "dbstate vars plan" does, prints the plan and, with --yes, pushes it as one transaction:
  1. snapshot: read every instance that changes, and check nothing changed since the plan;
  2. apply: SET GLOBAL on every instance, at most --parallel at once;
  3. read-back: read every value back and compare it with the planned one;
  4. on any failure (unreachable, error, mismatch, an instance killed midway): restore the snapshot on every
     instance where a statement was sent, and verify the restore by reading.
The result is one of: applied everywhere; rolled back everywhere; or ROLLBACK INCOMPLETE on named instances,
with their current values and the statements a DBA can run to finish by hand.

--persist FILE writes the applied values as a my.cnf fragment ([mariadbd]), atomically and only after "applied
everywhere", for the static configuration to carry across restarts (MariaDB has no SET PERSIST).

Exit status: 0 applied everywhere, or nothing to do; 1 rolled back, rollback incomplete, or nothing applied
because the snapshot failed; 2 usage, a rejected desired file, or no --yes (nothing changed).

Examples:
  dbstate vars apply --defaults-file dbstate.cnf --seed 127.0.0.1:3306 --desired examples/dbstate/vars.yml --yes
  dbstate vars apply --defaults-file dbstate.cnf --seed 127.0.0.1:3306 --desired vars.yml --yes \
      --audit-log audit.jsonl --persist /etc/mysql/mariadb.conf.d/90-dbstate-vars.cnf
`

// varsFlags are the flags vars plan and apply share.
type varsFlags struct {
	cn        conn
	seeds     seeds
	instances string
	desired   string
	asJSON    bool
	parallel  int
	timeout   time.Duration
}

func (f *varsFlags) register(fs *flag.FlagSet) {
	f.cn.register(fs)
	fs.Var(&f.seeds, "seed", "discover the instances from this one, host:port or socket path (repeatable)")
	fs.StringVar(&f.instances, "instances", "", "exactly these instances, host:port, comma-separated (instead of --seed)")
	fs.StringVar(&f.desired, "desired", "", "desired variables, YAML (required)")
	fs.BoolVar(&f.asJSON, "json", false, "print the plan (and the result) as JSON")
	fs.IntVar(&f.parallel, "parallel", 8, "instances read or changed at once (at least 1)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound for each instance's part of each phase")
}

// plan is what plan and apply share: it returns a client, its logger and the plan, or the exit status.
func (f *varsFlags) plan(ctx context.Context, prog string, stderr io.Writer) (*dbstate.Client, *slog.Logger, *dbstate.VarsPlan, int, bool) {
	if f.desired == "" {
		return nil, nil, nil, fail(stderr, prog, cli.Usagef("--desired is required")), false
	}
	if (len(f.seeds) == 0) == (f.instances == "") {
		return nil, nil, nil, fail(stderr, prog, cli.Usagef("give either --seed or --instances")), false
	}
	opt := dbstate.VarsOptions{Parallel: f.parallel, Timeout: f.timeout}
	if f.parallel < 1 || f.timeout <= 0 {
		return nil, nil, nil, fail(stderr, prog, cli.Usagef("--parallel must be at least 1 and --timeout positive")), false
	}
	d, err := readDesiredVars(f.desired)
	if err != nil {
		return nil, nil, nil, fail(stderr, prog, err), false
	}
	insts, err := splitInstances(f.instances)
	if err != nil {
		return nil, nil, nil, fail(stderr, prog, err), false
	}
	c, _, logger, err := f.cn.client(stderr)
	if err != nil {
		return nil, nil, nil, fail(stderr, prog, err), false
	}
	if len(f.seeds) > 0 {
		topo, err := dbstate.Discover(ctx, c, f.seeds, dbstate.DiscoverOptions{})
		if err != nil {
			c.Close()
			return nil, nil, nil, fail(stderr, prog, err), false
		}
		var down []string
		for a, in := range topo.Instances {
			insts = append(insts, a)
			if in.Error != "" {
				down = append(down, a+" ("+in.Error+")")
			}
		}
		if len(down) > 0 {
			sort.Strings(down)
			c.Close()
			return nil, nil, nil, fail(stderr, prog, fmt.Errorf("%w: %s: a push needs every instance of the tree", dbstate.ErrUnreachable, strings.Join(down, ", "))), false
		}
	}
	p, err := dbstate.PlanVariables(ctx, c, insts, d, opt)
	if err != nil {
		c.Close()
		if errors.Is(err, dbstate.ErrVarsRejected) {
			err = &cli.UsageError{Err: err}
		}
		return nil, nil, nil, fail(stderr, prog, err), false
	}
	return c, logger, p, 0, true
}

func readDesiredVars(path string) (*dbstate.DesiredVars, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, cli.Usagef("--desired: %v", err)
	}
	defer f.Close()
	d, err := dbstate.ParseDesiredVars(f)
	if err != nil {
		return nil, cli.Usagef("--desired %s: %v", path, err)
	}
	return d, nil
}

// splitInstances reads --instances: host:port, comma-separated.
func splitInstances(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		n, err := dbstate.ParseInstance(a)
		if err != nil {
			return nil, cli.Usagef("--instances: %v", err)
		}
		out = append(out, n)
	}
	if s != "" && len(out) == 0 {
		return nil, cli.Usagef("--instances: no instance")
	}
	return out, nil
}

type varsOutput struct {
	Plan   *dbstate.VarsPlan   `json:"plan"`
	Result *dbstate.VarsResult `json:"result,omitempty"`
	Error  string              `json:"error,omitempty"`
}

func runVarsPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate vars plan", varsPlanUsage, stderr)
	var f varsFlags
	f.register(fs)
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	c, _, p, code, ok := f.plan(ctx, "vars plan", stderr)
	if !ok {
		return code
	}
	defer c.Close()
	var werr error
	if f.asJSON {
		werr = cli.WriteJSON(stdout, varsOutput{Plan: p})
	} else {
		werr = p.WriteText(stdout)
	}
	if werr != nil {
		return fail(stderr, "vars plan", fmt.Errorf("write: %w", werr))
	}
	if p.Changed() {
		return cli.ExitFailure
	}
	return cli.ExitOK
}

func runVarsApply(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate vars apply", varsApplyUsage, stderr)
	var f varsFlags
	f.register(fs)
	yes := fs.Bool("yes", false, "execute the push (without it, or with --dry-run, nothing changes)")
	dryRun := fs.Bool("dry-run", false, "print the plan and change nothing")
	auditLog := fs.String("audit-log", "", "append the audit log (JSON lines: a start and an outcome line per instance and phase) to this file; default stderr")
	persist := fs.String("persist", "", "after applied everywhere, write the values as a my.cnf fragment to this file (atomically)")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	if *persist != "" {
		// Checked before anything is planned or sent: a push applied everywhere whose fragment then cannot be
		// written would leave the static configuration behind the servers.
		if err := atomicfile.CheckWritable(*persist); err != nil {
			return fail(stderr, "vars apply", cli.Usagef("--persist %s: %v", *persist, err))
		}
	}
	audit, closeAudit, err := openAudit(*auditLog, stderr)
	if err != nil {
		return fail(stderr, "vars apply", err)
	}
	defer closeAudit()
	c, logger, p, code, ok := f.plan(ctx, "vars apply", stderr)
	if !ok {
		return code
	}
	defer c.Close()
	ch := change{yes: *yes, dryRun: *dryRun, asJSON: f.asJSON}
	if proceed, code := ch.confirm("vars apply", !p.Changed(), varsOutput{Plan: p}, p.WriteText, stdout, stderr); !proceed {
		return code
	}
	res, err := p.Execute(ctx, dbstate.VarsExecOptions{Audit: audit, Logger: logger})
	if err == nil && *persist != "" {
		if perr := atomicfile.Write(*persist, 0o644, func(w io.Writer) error {
			_, err := io.WriteString(w, p.OptionFragment())
			return err
		}); perr != nil {
			err = fmt.Errorf("applied everywhere, but the --persist fragment was not written: %w", perr)
		}
	}
	err = audit.checkRun("vars apply", err, stderr)
	return reportPush(p, res, err, f.asJSON, stdout, stderr)
}

// reportPush prints the result and returns the exit status: 0 only for applied everywhere (or nothing to do).
func reportPush(p *dbstate.VarsPlan, res *dbstate.VarsResult, err error, asJSON bool, stdout, stderr io.Writer) int {
	var werr error
	if asJSON {
		out := varsOutput{Plan: p, Result: res}
		if err != nil {
			out.Error = err.Error()
		}
		werr = cli.WriteJSON(stdout, out)
	} else {
		if _, werr = fmt.Fprintln(stdout); werr == nil {
			werr = res.WriteText(stdout)
		}
	}
	if err == nil && werr != nil {
		err = fmt.Errorf("write: %w (the push itself succeeded)", werr)
	}
	if err != nil {
		return fail(stderr, "vars apply", err)
	}
	return cli.ExitOK
}
