package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	for _, pw := range []string{dbtest.AdminPassword, dbtest.ReplPassword} {
		if strings.Contains(out.String()+errb.String(), pw) {
			t.Fatalf("dbstate %v printed a password:\n%s\n%s", args, out.String(), errb.String())
		}
	}
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	typoCnf := filepath.Join(t.TempDir(), "typo.cnf")
	if err := os.WriteFile(typoCnf, []byte("[client]\nuser=x\npasword=secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sw := []string{"switchover", "--user", "x", "--repl-user", "repl"}
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{name: "no command", args: nil, code: 2},
		{name: "help", args: []string{"help"}, code: 0},
		{name: "unknown", args: []string{"frobnicate"}, code: 2},
		{name: "topology help", args: []string{"topology", "show", "-h"}, code: 0},
		{name: "show without user", args: []string{"topology", "show", "--seed", "127.0.0.1:1"}, code: 2},
		{name: "switchover without --to", args: append(sw, "--primary", "127.0.0.1:1"), code: 2, want: "--to"},
		{name: "bad tls mode", args: []string{"topology", "show", "--user", "x", "--tls", "maybe", "--seed", "a:1"}, code: 2},
		{name: "switchover address without port", args: append(sw, "--primary", "db1", "--to", "db2:1"), code: 2, want: "host:port"},
		{name: "switchover bad fence", args: append(sw, "--primary", "db1:1", "--to", "db2:1", "--fence", "no"), code: 2, want: "--fence"},
		{name: "bad never-lock", args: append(sw, "--primary", "db1:1", "--to", "db2:1", "--never-lock", "root"), code: 2, want: "--never-lock"},
		{name: "seed port out of range", args: []string{"topology", "show", "--user", "x", "--seed", "127.0.0.1:99999"}, code: 2, want: "port must be 1-65535"},
		{name: "check-config seed without port", args: []string{"check-config", "--user", "x", "--seed", "db1"}, code: 2, want: "host:port"},
		{name: "port out of range", args: append(sw, "--primary", "127.0.0.1:99999", "--to", "db2:1"), code: 2, want: "port must be 1-65535"},
		{name: "zero max-lag", args: append(sw, "--primary", "db1:1", "--to", "db2:1", "--max-lag", "0s"), code: 2, want: "--max-lag 0s: must be > 0"},
		{name: "zero max-window", args: append(sw, "--primary", "db1:1", "--to", "db2:1", "--max-window", "0s"), code: 2, want: "--max-window 0s: must be > 0"},
		{name: "zero timeout", args: append(sw, "--primary", "db1:1", "--to", "db2:1", "--timeout", "0s"), code: 2, want: "--timeout 0s: must be > 0"},
		{name: "zero move timeout", args: []string{"topology", "move", "--user", "x", "--replica", "a:1", "--under", "b:1", "--timeout", "0s"}, code: 2, want: "--timeout"},
		{name: "zero connect timeout", args: []string{"topology", "show", "--user", "x", "--seed", "a:1", "--connect-timeout", "0s"}, code: 2, want: "--connect-timeout"},
		{name: "zero statement timeout", args: []string{"topology", "show", "--user", "x", "--seed", "a:1", "--statement-timeout", "0s"}, code: 2, want: "--statement-timeout"},
		{name: "zero long write", args: []string{"switchover", "--user", "x", "--primary", "a:1", "--to", "b:1", "--repl-user", "r", "--long-write", "0s"}, code: 2, want: "long-write"},
		{name: "option file typo", args: []string{"topology", "show", "--defaults-file", typoCnf, "--seed", "a:1"}, code: 2, want: `unknown option "pasword"`},
		{name: "audit show without a file", args: []string{"audit", "show"}, code: 2, want: "FILE"},
		{name: "audit show of a missing file", args: []string{"audit", "show", "/nonexistent/audit"}, code: 2, want: "no such file"},
		{name: "stray argument", args: []string{"topology", "show", "extra"}, code: 2},
		{name: "switchover without --repl-user", args: []string{"switchover", "--user", "x", "--primary", "db1:1", "--to", "db2:1"},
			code: 2, want: "--repl-user is required: the old primary stores its replication user and password in master.info"},
		{name: "--repl-password-file without --repl-user", args: []string{"switchover", "--user", "x", "--primary", "db1:1", "--to", "db2:1",
			"--repl-password-file", "/nonexistent"}, code: 2, want: "--repl-password-file needs --repl-user"},
		{name: "unreadable --repl-password-file", args: append(sw, "--primary", "db1:1", "--to", "db2:1", "--repl-password-file", "/nonexistent"),
			code: 2, want: "--repl-password-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, want %d and %q in stderr\n%s%s", code, tt.code, tt.want, out, errs)
			}
		})
	}
}

func TestCLIOnRealTopology(t *testing.T) {
	tp := dbtest.Build(t, "p>a p>b")
	p, a, b := tp.Get("p"), tp.Get("a"), tp.Get("b")
	dir := t.TempDir()
	cnf := filepath.Join(dir, "my.cnf")
	os.WriteFile(cnf, []byte("[client]\nuser="+dbtest.AdminUser+"\npassword=\""+dbtest.AdminPassword+"\"\nhost=127.0.0.1\n"), 0o600)
	replPw := dbtest.PasswordFile(t, dbtest.ReplPassword)
	adminPw := dbtest.PasswordFile(t, dbtest.AdminPassword)
	audit := filepath.Join(dir, "audit.log")

	t.Run("show", func(t *testing.T) {
		code, out, errs := runCLI(t, "topology", "show", "--defaults-file", cnf, "--seed", a.Addr())
		if code != 0 || !strings.HasPrefix(out, p.Addr()+" [primary]") || strings.Count(out, "[replica]") != 2 {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		t.Log("\n" + out)
	})
	t.Run("show json over the socket with a password file", func(t *testing.T) {
		code, out, errs := runCLI(t, "topology", "show", "--user", dbtest.AdminUser, "--password-file", adminPw, "--seed", p.Socket, "--json")
		var topo dbstate.Topology
		if code != 0 || json.Unmarshal([]byte(out), &topo) != nil || len(topo.Instances) != 3 {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("check-config", func(t *testing.T) {
		code, out, errs := runCLI(t, "check-config", "--defaults-file", cnf, "--seed", p.Addr())
		if code != 0 || !strings.Contains(out, "password set") || !strings.Contains(out, "10.11") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
	})
	// The test reads the instances as root over the socket and as dbtest's admin (dbstate's login here): it
	// exempts them from the fence, which locks them by default (see the dbstate tests for that).
	sw := []string{"switchover", "--defaults-file", cnf, "--primary", p.Addr(), "--to", a.Addr(), "--repl-user", dbtest.ReplUser, "--repl-password-file", replPw,
		"--never-lock", "root@localhost", "--never-lock", dbtest.AdminUser + "@127.0.0.1", "--never-lock", dbtest.AdminUser + "@localhost"}
	t.Run("switchover dry run", func(t *testing.T) {
		code, out, errs := runCLI(t, append(sw, "--dry-run")...)
		if code != 0 || !strings.Contains(out, "promote") || !strings.Contains(out, "MASTER_PASSWORD=<redacted>") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		t.Log("\n" + out)
	})
	t.Run("switchover without --yes changes nothing", func(t *testing.T) {
		code, _, errs := runCLI(t, sw...)
		if code != 2 || !strings.Contains(errs, "--yes") || p.QueryString(t, "SELECT @@read_only") != "0" {
			t.Fatalf("exit %d\n%s", code, errs)
		}
	})
	t.Run("switchover", func(t *testing.T) {
		code, out, errs := runCLI(t, append(sw, "--yes", "--audit-log", audit)...)
		if code != 0 || !strings.Contains(out, "Done in") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		// The report says what stays locked on the demoted primary and how to lift it.
		if !strings.Contains(out, "kept locked on "+p.Addr()) || !strings.Contains(out, "ACCOUNT UNLOCK") || !strings.Contains(out, "dbstate recover --audit-log") {
			t.Fatalf("no report of the accounts kept locked:\n%s", out)
		}
		// With an audit log, stderr says only which run to look at.
		if strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "dbstate audit show "+audit+" --run ") {
			t.Fatalf("stderr is not quiet:\n%s", errs)
		}
		code, tl, errs := runCLI(t, "audit", "show", audit)
		if code != 0 || !strings.Contains(tl, "Write window (set-read-only started to promote done):") || !strings.Contains(tl, "Result: ok") ||
			!strings.Contains(tl, "as database account "+dbtest.AdminUser+"@") || !strings.Contains(tl, "fence-writers on "+p.Addr()) {
			t.Fatalf("audit show: exit %d\n%s%s", code, tl, errs)
		}
		t.Log("\n" + tl)
		code, out, errs = runCLI(t, "topology", "show", "--defaults-file", cnf, "--seed", p.Addr())
		if code != 0 || !strings.HasPrefix(out, a.Addr()+" [primary]") {
			t.Fatalf("after switchover: exit %d\n%s%s", code, out, errs)
		}
		log, _ := os.ReadFile(audit)
		if !strings.Contains(string(log), `"step":"promote"`) || strings.Contains(string(log), dbtest.ReplPassword) {
			t.Fatalf("audit log:\n%s", log)
		}
	})
	t.Run("move json", func(t *testing.T) {
		code, out, errs := runCLI(t, "topology", "move", "--defaults-file", cnf, "--replica", b.Addr(), "--under", p.Addr(), "--yes", "--json", "--audit-log", audit)
		var res struct {
			Executed bool
			Error    string
		}
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.Executed || res.Error != "" {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		code, out, errs = runCLI(t, "topology", "show", "--defaults-file", cnf, "--seed", a.Addr())
		if code != 0 || !strings.Contains(out, "\n    "+b.Addr()) {
			t.Fatalf("b is not under p: exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("move refused", func(t *testing.T) {
		code, out, errs := runCLI(t, "topology", "move", "--defaults-file", cnf, "--replica", p.Addr(), "--under", b.Addr(), "--yes")
		if code != 1 || !strings.Contains(errs, "no loop") || !strings.Contains(out, "FAIL no loop") || !strings.Contains(out, "ok   replica readable") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		if strings.Count(errs, "\n") != 1 || strings.Count(errs, "refused") != 1 {
			t.Fatalf("stderr is not one line with one prefix:\n%s", errs)
		}
	})
	t.Run("move refused json", func(t *testing.T) {
		code, out, errs := runCLI(t, "topology", "move", "--defaults-file", cnf, "--replica", p.Addr(), "--under", b.Addr(), "--yes", "--json")
		var res struct {
			Refused bool
			Checks  []dbstate.PreflightCheck
		}
		if code != 1 || json.Unmarshal([]byte(out), &res) != nil || !res.Refused || len(res.Checks) < 3 {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		failed := 0
		for _, c := range res.Checks {
			if !c.Passed {
				failed++
			}
		}
		if failed == 0 || failed == len(res.Checks) {
			t.Fatalf("want passed and failed checks: %+v", res.Checks)
		}
	})
}

// TestConfirm: every command that changes servers prints its plan through one rule before anything executes.
func TestConfirm(t *testing.T) {
	text := func(w io.Writer) error { _, err := io.WriteString(w, "the plan\n"); return err }
	for _, tc := range []struct {
		name             string
		ch               change
		empty            bool
		stdout           io.Writer
		proceed          bool
		code             int
		wantOut, wantErr string
	}{
		{name: "no --yes", ch: change{}, code: 2, wantOut: "the plan", wantErr: "dbstate x: nothing changed: pass --yes"},
		{name: "dry run", ch: change{yes: true, dryRun: true}, code: 0, wantOut: "the plan"},
		{name: "empty plan", ch: change{yes: true}, empty: true, code: 0, wantOut: "the plan"},
		{name: "json without --yes", ch: change{asJSON: true}, code: 2, wantOut: `"plan"`, wantErr: "pass --yes"},
		{name: "yes", ch: change{yes: true}, proceed: true, wantOut: "the plan\n\nExecuting..."},
		{name: "yes json prints later", ch: change{yes: true, asJSON: true}, proceed: true},
		{name: "unwritable stdout", ch: change{yes: true}, stdout: failingWriter{}, code: 1, wantErr: "nothing changed"},
		{name: "unwritable stdout, dry run", ch: change{dryRun: true}, stdout: failingWriter{}, code: 1, wantErr: "nothing changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb strings.Builder
			w := tc.stdout
			if w == nil {
				w = &out
			}
			proceed, code := tc.ch.confirm("x", tc.empty, map[string]string{"plan": "p"}, text, w, &errb)
			if proceed != tc.proceed || code != tc.code {
				t.Fatalf("proceed %v code %d, want %v %d (stderr %q)", proceed, code, tc.proceed, tc.code, errb.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) || (tc.wantOut == "" && out.Len() > 0) {
				t.Fatalf("stdout %q, want %q", out.String(), tc.wantOut)
			}
			if !strings.Contains(errb.String(), tc.wantErr) || (tc.wantErr == "" && errb.Len() > 0) {
				t.Fatalf("stderr %q, want %q", errb.String(), tc.wantErr)
			}
		})
	}
}
