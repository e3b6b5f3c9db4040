package main

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/evenkeel/evenkeel/internal/syncbuf"
)

// The test binary doubles as the dbstate command: with cliEnv set, it runs the CLI and exits, so that a test can
// start the real thing in a subprocess and kill it by pid.
const cliEnv = "EVENKEEL_TEST_RUN_DBSTATE"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// recoverTestbed is a primary p with a replica a, an ALL PRIVILEGES account appall on p (db logs in as it, not
// connected yet) and an option file cnf with dbstate's login, in a temporary directory of its own.
func recoverTestbed(t *testing.T) (p, a *dbtest.Instance, db *sql.DB, cnf string) {
	t.Helper()
	tp := dbtest.Build(t, "p>a")
	p, a = tp.Get("p"), tp.Get("a")
	const pw = "app-pw-7"
	p.Exec(t, "CREATE USER 'appall'@'127.0.0.1' IDENTIFIED BY '"+pw+"'", "GRANT ALL PRIVILEGES ON *.* TO 'appall'@'127.0.0.1'")
	a.WaitCaughtUp(t, p)
	db, err := sql.Open("mysql", "appall:"+pw+"@tcp("+p.Addr()+")/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cnf = filepath.Join(t.TempDir(), "my.cnf")
	if err := os.WriteFile(cnf, []byte("[client]\nuser="+dbtest.AdminUser+"\npassword=\""+dbtest.AdminPassword+"\"\nhost=127.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, a, db, cnf
}

// startSwitchover starts dbstate switchover --yes from p to a, with --max-window 2s and its audit log at logPath,
// in a subprocess (the test binary as the CLI, see TestMain). exited receives the end of the process; out
// collects its stdout and stderr.
func startSwitchover(t *testing.T, p, a *dbtest.Instance, cnf, logPath string) (*exec.Cmd, <-chan error, *syncbuf.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "switchover", "--primary", p.Addr(), "--to", a.Addr(), "--defaults-file", cnf,
		"--repl-user", dbtest.ReplUser, "--repl-password-file", dbtest.PasswordFile(t, dbtest.ReplPassword),
		"--max-window", "2s", "--yes", "--audit-log", logPath)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, exited, out
}

// TestRecoverAfterKill9: dbstate switchover runs in a subprocess and is killed (SIGKILL, by pid) as soon as its
// audit log shows that a step started, at each step from the catch-up to the window's kill-sessions, so that the
// kill lands in that step or the next one, at the latest in wait-for-candidate, before any promotion. dbstate
// recover --audit-log FILE --yes then leaves nothing locked and nothing read-only: the primary is writable, its
// replica replicates from it, and the accounts the fence locked are unlocked (never on the replica).
func TestRecoverAfterKill9(t *testing.T) {
	p, a, db, cnf := recoverTestbed(t)
	dir := filepath.Dir(cnf)
	locked := func(in *dbtest.Instance) string {
		return in.QueryString(t, "SELECT IFNULL(GROUP_CONCAT(CONCAT(User, '@', Host)), '') FROM mysql.global_priv "+
			"WHERE JSON_VALUE(Priv, '$.account_locked') IN ('true', '1') AND User <> 'mariadb.sys'") // locked by the installer
	}

	for _, step := range []string{"catch-up", "fence-writers", "long-writes", "set-read-only", "kill-sessions"} {
		t.Run("killed at "+step, func(t *testing.T) {
			if err := db.Ping(); err != nil { // a connected ALL PRIVILEGES session: the fence locks its account
				t.Fatal(err)
			}
			logPath := filepath.Join(dir, step+".audit")
			cmd, exited, out := startSwitchover(t, p, a, cnf, logPath)
			mark := `"step":"` + step + `","instance":`
			deadline := time.After(30 * time.Second)
		watch:
			for {
				select {
				case err := <-exited:
					t.Fatalf("dbstate ended (%v) before step %s started:\n%s", err, step, out.String())
				case <-deadline:
					cmd.Process.Kill()
					t.Fatalf("step %s never started:\n%s", step, out.String())
				default:
				}
				if b, _ := os.ReadFile(logPath); strings.Contains(string(b), mark) {
					break watch
				}
				time.Sleep(time.Millisecond)
			}
			if err := cmd.Process.Kill(); err != nil { // SIGKILL, by pid
				t.Fatal(err)
			}
			<-exited
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("killed after: %s", lines[len(lines)-1])
			if strings.Contains(string(b), `"step":"promote"`) {
				t.Fatalf("the kill came after promote started: the premise is gone\n%s", b)
			}

			code, rout, rerr := runCLI(t, "recover", "--audit-log", logPath, "--defaults-file", cnf, "--yes")
			if code != 0 {
				t.Fatalf("recover: exit %d\n%s%s", code, rout, rerr)
			}
			t.Logf("recover: %s", strings.TrimSpace(rout))
			if l := locked(p); l != "" {
				t.Fatalf("still locked on p after recover: %s\naudit:\n%s", l, b)
			}
			if l := locked(a); l != "" {
				t.Fatalf("locked on a: %s", l)
			}
			if p.QueryString(t, "SELECT @@read_only") != "0" || a.QueryString(t, "SELECT @@read_only") != "1" {
				t.Fatalf("after recover: p read_only=%s, a read_only=%s", p.QueryString(t, "SELECT @@read_only"), a.QueryString(t, "SELECT @@read_only"))
			}
			if st := a.SlaveStatus(t); st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" || st["Master_Port"] != p.QueryString(t, "SELECT @@port") {
				t.Fatalf("a does not replicate from p: %v", st)
			}
			code, rout, rerr = runCLI(t, "recover", "--audit-log", logPath, "--defaults-file", cnf, "--yes")
			if code != 0 || !strings.HasPrefix(rout, "nothing to recover") {
				t.Fatalf("second recover: exit %d\n%s%s", code, rout, rerr)
			}
		})
	}
}

// TestSwitchoverCLIWithAHungCandidate: dbstate switchover (a subprocess, default --statement-timeout) with the
// candidate hung (SIGSTOP) as soon as the window starts. It ends by itself with exit 1 and a rollback, the primary
// read-only for about --max-window: the time between set-read-only's intent and its undo in the audit log is
// logged (measured, not asserted). The primary is writable again and nothing stays locked.
func TestSwitchoverCLIWithAHungCandidate(t *testing.T) {
	p, a, db, cnf := recoverTestbed(t)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(filepath.Dir(cnf), "audit.jsonl")
	cmd, exited, out := startSwitchover(t, p, a, cnf, logPath)
	paused := false
	var err error
	limit := time.After(2 * time.Minute)
wait:
	for {
		select {
		case err = <-exited:
			break wait
		case <-limit:
			cmd.Process.Kill()
			t.Fatalf("dbstate still runs after 2 minutes: a hang\n%s", out.String())
		case <-time.After(time.Millisecond):
		}
		if b, _ := os.ReadFile(logPath); !paused && strings.Contains(string(b), `"step":"set-read-only","instance":`) {
			a.Pause(t)
			paused = true
		}
	}
	a.Resume(t)
	var ee *exec.ExitError
	if !paused || !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out.String(), "window reached its bound") {
		t.Fatalf("exit %v (paused %v), want 1 naming the window:\n%s", err, paused, out.String())
	}
	var from, to time.Time
	f, _ := os.Open(logPath)
	defer f.Close()
	run, err := dbstate.ReadAuditRun(f, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range run.Records {
		switch {
		case r.Step == "set-read-only" && r.Result == "intent":
			from = r.Time
		case r.Step == "set-read-only" && r.Phase == "undo" && r.Result == "ok":
			to = r.Time
		}
	}
	if from.IsZero() || to.IsZero() {
		t.Fatalf("the audit log lacks set-read-only's intent or undo:\n%s", out.String())
	}
	t.Logf("the primary was read-only for %v (--max-window 2s), then writable again", to.Sub(from).Round(time.Millisecond))
	if p.QueryString(t, "SELECT @@read_only") != "0" {
		t.Fatalf("p still read-only:\n%s", out.String())
	}
	if l := p.QueryString(t, "SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'appall' AND JSON_VALUE(Priv, '$.account_locked') IN ('true', '1')"); l != "0" {
		t.Fatalf("appall still locked:\n%s", out.String())
	}
}
