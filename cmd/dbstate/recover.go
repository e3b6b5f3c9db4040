package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/internal/cli"
)

const recoverUsage = `
Usage: dbstate recover --audit-log FILE [--run ID] [--repl-user USER --repl-password-file FILE]
       [--break-glass-defaults-file FILE] [--dry-run | --yes] [--json] [flags]

Lifts what a switchover that did not finish (dbstate killed, the host lost) left on the servers, as its audit
log says: before fence-writers locks accounts and before set-read-only makes the primary read-only, the log
records what is about to change. Without --run it takes the last run of FILE that left something.

Before the switchover went past its point of no return, recover undoes what the run left: it unlocks the
accounts the run locked and did not unlock (ALTER USER ... ACCOUNT UNLOCK, sql_log_bin=0: on that instance only),
enables the events it stopped, points the replicas it moved back at the old primary, and sets read_only=0 on the
old primary, but only when no other instance of the tree is writable or unreadable; otherwise it refuses (exit 1)
and says why.

Past it (the candidate promoted, or promote started and the log does not say how it ended, or dbstate died after
it started locking its own login on the old primary, with the candidate caught up), recover finishes the
switchover instead: it completes the promotion (after checking that the old primary is read-only and logged
nothing the candidate lacks), lifts the candidate's fence, enables the stopped events there, resets its
replication, repoints the old primary under it (as --repl-user, which that needs), lifts the locks on the old
primary and the other replicas, and verifies. When dbstate's own login is locked on the old primary and the old
primary replicates from no one, nothing of dbstate's reaches it: with --break-glass-defaults-file, recover
repoints it as that account; without, it does the rest, fails with exit 1 and says what to run on the old
primary, and a second recover then finishes.

Without --yes it prints the plan and changes nothing (a dry run). With --yes it executes it and appends its own
records to FILE, so that a second recover finds "nothing to recover". A run that completed or was rolled back
cleanly: "nothing to recover", exit 0.

Examples:
  dbstate recover --audit-log audit.jsonl --defaults-file ~/.my.cnf
  dbstate recover --audit-log audit.jsonl --run 3f9c2a7d51e0b6c4 --defaults-file ~/.my.cnf --yes
  dbstate recover --audit-log audit.jsonl --defaults-file ~/.my.cnf --repl-user repl --repl-password-file repl.pw --yes
  dbstate recover --audit-log audit.jsonl --defaults-file ~/.my.cnf --repl-user repl --repl-password-file repl.pw \
      --break-glass-defaults-file ~/.ops.cnf --yes
  dbstate recover --audit-log audit.jsonl --defaults-file ~/.my.cnf --json
`

// recoverResult is the --json answer when there is nothing to do.
type recoverResult struct {
	NothingToRecover bool               `json:"nothing_to_recover"`
	Leftovers        *dbstate.Leftovers `json:"leftovers"`
}

func runRecover(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate recover", recoverUsage, stderr)
	var cn conn
	cn.register(fs)
	var ch change
	ch.register(fs)
	fs.Lookup("audit-log").Usage = "the audit log of the interrupted run (required); with --yes, recover appends its own records to it"
	run := fs.String("run", "", "the run id to recover (default: the last run in the file that left something)")
	replUser := fs.String("repl-user", "", "the switchover's --repl-user: the old primary replicates from the new one as this user when recover "+
		"must repoint it; recover also reads the old primary's position as this user when dbstate's own login is locked there")
	replPwFile := fs.String("repl-password-file", "", "file whose first line is --repl-user's password (needs --repl-user)")
	breakGlass := fs.String("break-glass-defaults-file", "", "MariaDB option file ([client] user and password) of an account without READ ONLY ADMIN "+
		"(so the fence never locks it) that holds REPLICATION SLAVE ADMIN and SLAVE MONITOR: recover repoints the old primary as it when "+
		"dbstate's own login is locked there and it replicates from no one")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	if *replPwFile != "" && *replUser == "" {
		return fail(stderr, "recover", cli.Usagef("--repl-password-file needs --repl-user: whose password is it?"))
	}
	var ro dbstate.RecoverOptions
	ro.Replication.User = *replUser
	if *replPwFile != "" {
		pw, err := dbstate.ReadPasswordFile(*replPwFile)
		if err != nil {
			return fail(stderr, "recover", cli.Usagef("--repl-password-file: %v", err))
		}
		ro.Replication.Password = pw
	}
	if ch.auditLog == "" {
		return fail(stderr, "recover", cli.Usagef("--audit-log FILE is required: the log of the run to recover"))
	}
	if !ch.yes {
		ch.dryRun = true // a dry run unless asked
	}
	f, err := os.Open(ch.auditLog)
	if err != nil {
		return fail(stderr, "recover", cli.Usagef("--audit-log: %v", err))
	}
	l, err := dbstate.ReadLeftovers(f, *run)
	f.Close()
	if err != nil {
		return fail(stderr, "recover", err)
	}
	if l.Empty() {
		if ch.asJSON {
			if err := cli.WriteJSON(stdout, recoverResult{NothingToRecover: true, Leftovers: l}); err != nil {
				return fail(stderr, "recover", err)
			}
			return cli.ExitOK
		}
		if _, err := fmt.Fprintf(stdout, "nothing to recover: %s left nothing locked or read-only\n", l.Describe()); err != nil {
			return fail(stderr, "recover", err)
		}
		return cli.ExitOK
	}
	if err := l.Validate(); err != nil {
		return fail(stderr, "recover", cli.Usagef("%v; nothing changed", err))
	}
	fmt.Fprintf(stderr, "dbstate recover: %s left: %s\n", l.Describe(), l)
	c, _, logger, err := cn.client(stderr)
	if err != nil {
		return fail(stderr, "recover", err)
	}
	defer c.Close()
	var topo *dbstate.Topology
	if len(l.ReadOnly) > 0 {
		topo, err = dbstate.Discover(ctx, c, l.ReadOnly, dbstate.DiscoverOptions{})
		if err != nil {
			return fail(stderr, "recover", err)
		}
	}
	if *breakGlass != "" {
		opt, err := dbstate.ReadOptionFile(*breakGlass)
		if err != nil || opt.User == "" {
			return fail(stderr, "recover", cli.Usagef("--break-glass-defaults-file: %v", orNoUser(err)))
		}
		bc := c.WithCredentials(dbstate.Credentials{User: opt.User, Password: opt.Password})
		defer bc.Close()
		ro.BreakGlass = bc
	}
	if ro.Replication.User != "" {
		rc := c.WithCredentials(ro.Replication)
		defer rc.Close()
		ro.OldPrimary = rc
	}
	plan, err := dbstate.PlanRecoverWith(ctx, c, topo, l, ro)
	if errors.Is(err, dbstate.ErrNothingToRecover) {
		fmt.Fprintln(stdout, "nothing to recover")
		return cli.ExitOK
	}
	return ch.planned(ctx, "recover", plan, err, logger, stdout, stderr)
}

// orNoUser is err, or, when nil, the complaint that an option file names no user.
func orNoUser(err error) error {
	if err != nil {
		return err
	}
	return errors.New("no user= in [client]")
}
