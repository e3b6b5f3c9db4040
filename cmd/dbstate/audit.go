package main

import (
	"context"
	"io"
	"os"
	"strings"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/internal/cli"
)

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := []cli.Command{
		{Name: "show", Summary: "print one run of an audit log as a timeline, with the write window", Run: runAuditShow},
	}
	return cli.Dispatch(ctx, "dbstate audit", "read audit logs", cmds, args, stdout, stderr)
}

const auditShowUsage = `
Usage: dbstate audit show FILE [--run ID] [--json]

Prints one run of an audit log (the --audit-log of topology move and switchover) as a readable timeline: who
ran it (OS user, host, database account), every step's start and outcome with its offset, duration, what it
did (accounts locked, sessions killed, the final position) and errors, then the result and, for a switchover,
the write-unavailability window (set-read-only started to promote done). Without --run, the last run in the
file. A run with no result line was interrupted: its last start line is the step that was running.

Examples:
  dbstate audit show audit.jsonl
  dbstate audit show /var/log/dbstate.audit --run 3f9c2a7d51e0b6c4
  dbstate audit show audit.jsonl --json
`

func runAuditShow(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dbstate audit show", auditShowUsage, stderr)
	run := fs.String("run", "", "the run id to show (default: the last run in the file)")
	asJSON := fs.Bool("json", false, "print the run's records as JSON")
	// FILE comes first, then the flags (as in the examples).
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	if file == "" {
		return fail(stderr, "audit show", cli.Usagef("which audit log? pass FILE first: dbstate audit show FILE [--run ID]"))
	}
	f, err := os.Open(file)
	if err != nil {
		return fail(stderr, "audit show", cli.Usagef("%v", err))
	}
	defer f.Close()
	r, err := dbstate.ReadAuditRun(f, *run)
	if err != nil {
		return fail(stderr, "audit show", err)
	}
	if *asJSON {
		err = cli.WriteJSON(stdout, r)
	} else {
		err = r.WriteTimeline(stdout)
	}
	if err != nil {
		return fail(stderr, "audit show", err)
	}
	return cli.ExitOK
}
