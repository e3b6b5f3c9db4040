package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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

// ownLockAnnounced stands, in TestRecoverAfterKill9, for a kill right after fence-own-account announced its lock.
const ownLockAnnounced = "fence-own-account-lock-announced"

// TestRecoverAfterKill9: dbstate switchover runs in a subprocess and is killed (SIGKILL, by pid) as soon as its
// audit log shows that a step started, for every step of the plan (from its dry run), promote and every step
// after it included. The testbed has everything that makes each step exist: a second replica (move-replica,
// fence-replica, unfence-replica), an ENABLED event on the primary (disable-events, enable-events), a connected
// ALL PRIVILEGES session (fence-writers locks its account) and dbstate's own login bypassing read_only
// (fence-own-account). dbstate recover --audit-log FILE --yes then undoes the run (before the point where only
// going forward is safe) or finishes it (after), and afterwards: exactly one writable primary (the old one, or
// the candidate once the run passed that point), every other instance replicating from it with both threads
// running, no errant GTID and no other problem, nothing locked on any instance, the event ENABLED on the primary
// and SLAVESIDE_DISABLED on the replicas. When dbstate's login is locked on an old primary that replicates from
// no one, recover says so (exit 1) with the statements to run there; the test runs them with an account that
// the fence never locks (no READ ONLY ADMIN), and a second recover finishes. A last recover finds nothing.
// The subtests share one testbed: each switches from wherever the previous one left the primary.
func TestRecoverAfterKill9(t *testing.T) {
	tp := dbtest.Build(t, "p>a p>b")
	insts := []*dbtest.Instance{tp.Get("p"), tp.Get("a"), tp.Get("b")}
	p := insts[0]
	const appPw, opsPw = "app-pw-7", "ops-pw-3"
	p.Exec(t, "CREATE USER 'appall'@'127.0.0.1' IDENTIFIED BY '"+appPw+"'", "GRANT ALL PRIVILEGES ON *.* TO 'appall'@'127.0.0.1'",
		// A login that does not bypass read_only, so that the fence never locks it: the operator's way in.
		"CREATE USER 'ops'@'127.0.0.1' IDENTIFIED BY '"+opsPw+"'", "GRANT REPLICATION SLAVE ADMIN, SLAVE MONITOR ON *.* TO 'ops'@'127.0.0.1'",
		"CREATE EVENT test.evk_tick ON SCHEDULE EVERY 1 DAY DO SET @evk = 1")
	for _, r := range insts[1:] {
		r.WaitCaughtUp(t, p)
	}
	dir := t.TempDir()
	cnf := filepath.Join(dir, "my.cnf")
	if err := os.WriteFile(cnf, []byte("[client]\nuser="+dbtest.AdminUser+"\npassword=\""+dbtest.AdminPassword+"\"\nhost=127.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	replPw := dbtest.PasswordFile(t, dbtest.ReplPassword)
	recoverArgs := func(logPath string) []string {
		return []string{"recover", "--audit-log", logPath, "--defaults-file", cnf, "--repl-user", dbtest.ReplUser, "--repl-password-file", replPw, "--yes"}
	}
	locked := func(in *dbtest.Instance) string {
		return in.QueryString(t, "SELECT IFNULL(GROUP_CONCAT(CONCAT(User, '@', Host)), '') FROM mysql.global_priv "+
			"WHERE JSON_VALUE(Priv, '$.account_locked') IN ('true', '1') AND User <> 'mariadb.sys'") // locked by the installer
	}
	swArgs := func(x, y *dbtest.Instance) []string {
		return []string{"switchover", "--primary", x.Addr(), "--to", y.Addr(), "--defaults-file", cnf,
			"--repl-user", dbtest.ReplUser, "--repl-password-file", replPw, "--max-window", "2s"}
	}

	// Every step of the plan, from its dry run; the failure-only cleanup (unfence-writers) never starts in a run
	// that is killed, so there is no record to kill it at.
	code, out, errs := runCLI(t, append(swArgs(p, insts[1]), "--dry-run", "--json")...)
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errs)
	}
	var dry struct {
		Plan struct {
			Steps []struct {
				Name        string `json:"name"`
				FailureOnly bool   `json:"failure_only"`
			} `json:"steps"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(out), &dry); err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, s := range dry.Plan.Steps {
		if !s.FailureOnly && !slices.Contains(steps, s.Name) {
			steps = append(steps, s.Name)
		}
	}
	for _, want := range []string{"move-replica", "fence-replica", "fence-writers", "disable-events", "fence-own-account", "promote",
		"enable-events", "repoint-old-primary", "unfence-replica"} {
		if !slices.Contains(steps, want) {
			t.Fatalf("the plan has no step %s: %v", want, steps)
		}
	}

	// fence-own-account twice: killed at its start (before or after it unlocked dbstate's login on the
	// candidate, never after its lock on the old primary: recover goes back), and right after it announced
	// that lock (recover goes forward).
	if i := slices.Index(steps, "fence-own-account"); i >= 0 {
		steps = slices.Insert(steps, i+1, ownLockAnnounced)
	}
	opsCnf := filepath.Join(dir, "ops.cnf")
	if err := os.WriteFile(opsCnf, []byte("[client]\nuser=ops\npassword=\""+opsPw+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	primary, stranded := p, 0
	for k, step := range steps {
		t.Run("killed at "+step, func(t *testing.T) {
			x := primary
			var y, other *dbtest.Instance
			for _, in := range insts {
				switch {
				case in == x:
				case y == nil:
					y = in
				default:
					other = in
				}
			}
			app, err := sql.Open("mysql", "appall:"+appPw+"@tcp("+x.Addr()+")/")
			if err != nil {
				t.Fatal(err)
			}
			defer app.Close()
			if err := app.Ping(); err != nil { // a connected ALL PRIVILEGES session: the fence locks its account
				t.Fatal(err)
			}
			logPath := filepath.Join(dir, fmt.Sprintf("%02d-%s.audit", k, step))
			cmd := exec.Command(os.Args[0], append(swArgs(x, y), "--yes", "--audit-log", logPath)...)
			cmd.Env = append(os.Environ(), cliEnv+"=1")
			sout := &syncbuf.Buffer{}
			cmd.Stdout, cmd.Stderr = sout, sout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			mark := `"step":"` + step + `","instance":`
			if step == ownLockAnnounced {
				mark = `"step":"fence-own-account","instance":"` + x.Addr() + `","phase":"do","result":"intent"`
			}
			deadline := time.After(30 * time.Second)
		watch:
			for {
				b, _ := os.ReadFile(logPath)
				if strings.Contains(string(b), mark) {
					break watch
				}
				select {
				case err := <-exited:
					t.Fatalf("dbstate ended (%v) before step %s started:\n%s", err, step, sout.String())
				case <-deadline:
					cmd.Process.Kill()
					t.Fatalf("step %s never started:\n%s", step, sout.String())
				case <-time.After(time.Millisecond):
				}
			}
			_ = cmd.Process.Kill() // SIGKILL, by pid; after the last steps the run may have ended already
			<-exited
			b, _ := os.ReadFile(logPath)
			audit := string(b)
			lines := strings.Split(strings.TrimSpace(audit), "\n")
			t.Logf("killed after: %s", lines[len(lines)-1])
			// Past fence-own-account's announced lock (dbstate's login may be locked on x) or promote's start,
			// recover goes forward.
			forward := strings.Contains(audit, `"step":"fence-own-account","instance":"`+x.Addr()+`","phase":"do","result":"intent"`) ||
				strings.Contains(audit, `"step":"promote","instance":"`+y.Addr()+`","phase":"do","result":"start"`)

			// The dry run prints which way recover goes, and what it completes, first.
			dryArgs := append(slices.Clone(recoverArgs(logPath)[:len(recoverArgs(logPath))-1]), "--json")
			code, rout, rerr := runCLI(t, dryArgs...)
			var rp struct {
				Nothing bool `json:"nothing_to_recover"`
				Plan    struct {
					Preflight []struct{ Name string } `json:"preflight"`
					Steps     []struct{ Name string } `json:"steps"`
				} `json:"plan"`
			}
			if err := json.Unmarshal([]byte(rout), &rp); code != 0 || err != nil {
				t.Fatalf("recover dry run: exit %d (%v)\n%s%s", code, err, rout, rerr)
			}
			goesForward := slices.ContainsFunc(rp.Plan.Preflight, func(c struct{ Name string }) bool { return c.Name == "forward" })
			completes := slices.ContainsFunc(rp.Plan.Steps, func(s struct{ Name string }) bool { return s.Name == "complete-promote" || s.Name == "verify" })
			verified := slices.ContainsFunc(lines, func(l string) bool {
				return strings.Contains(l, `"step":"verify",`) && strings.Contains(l, `"phase":"do","result":"ok"`)
			})
			if want := forward && !verified; !rp.Nothing && (goesForward != want || completes != want) {
				t.Fatalf("recover dry run: forward %v, completing steps %v; want %v:\n%s", goesForward, completes, want, rout)
			}

			code, rout, rerr = runCLI(t, recoverArgs(logPath)...)
			if code == 1 && strings.Contains(rout+rerr, "out of reach") && stranded > 0 {
				// Again: this time recover repoints x itself, as the account that the fence never locks.
				stranded++
				t.Logf("recover: exit 1 (out of reach); again with --break-glass-defaults-file")
				code, rout, rerr = runCLI(t, append(recoverArgs(logPath), "--break-glass-defaults-file", opsCnf)...)
			} else if code == 1 && strings.Contains(rout+rerr, "out of reach") {
				// dbstate's login is locked on x, which replicates from no one: do what the error says, as an
				// account that the fence never locks, then recover again.
				stranded++
				t.Logf("recover: exit 1, as it says: %s", strings.TrimSpace(rerr))
				if !strings.Contains(rout+rerr, "MASTER_USE_GTID=current_pos; START SLAVE") || !strings.Contains(rout+rerr, "run dbstate recover") {
					t.Fatalf("the error does not say what to run:\n%s%s", rout, rerr)
				}
				ops, err := sql.Open("mysql", "ops:"+opsPw+"@tcp("+x.Addr()+")/")
				if err != nil {
					t.Fatal(err)
				}
				defer ops.Close()
				if _, err := ops.Exec(fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', "+
					"MASTER_USE_GTID=current_pos", y.Port, dbtest.ReplUser, dbtest.ReplPassword)); err != nil {
					t.Fatal(err)
				}
				if _, err := ops.Exec("START SLAVE"); err != nil {
					t.Fatal(err)
				}
				code, rout, rerr = runCLI(t, recoverArgs(logPath)...)
			}
			if code != 0 {
				t.Fatalf("recover: exit %d\n%s%s\naudit:\n%s", code, rout, rerr, audit)
			}
			t.Logf("recover: %s", lastLine(rout))
			want := x
			if forward {
				want = y
			}
			topo, err := dbstate.Discover(context.Background(), dbstate.NewClient(dbstate.Credentials{User: dbtest.AdminUser, Password: dbtest.AdminPassword}, 3*time.Second, nil),
				[]string{x.Addr(), y.Addr(), other.Addr()}, dbstate.DiscoverOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(topo.Problems) > 0 {
				t.Errorf("problems after recover: %v", topo.Problems)
			}
			for _, in := range insts {
				ro := in.QueryString(t, "SELECT @@read_only")
				ev := in.QueryString(t, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA='test' AND EVENT_NAME='evk_tick'")
				if l := locked(in); l != "" {
					t.Errorf("locked on %s after recover: %s", in.Addr(), l)
				}
				if in == want {
					if ro != "0" || ev != "ENABLED" {
						t.Errorf("the primary %s: read_only=%s, event %s", in.Addr(), ro, ev)
					}
					continue
				}
				st := in.SlaveStatus(t)
				if ro != "1" || ev != "SLAVESIDE_DISABLED" || st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" || st["Master_Port"] != strconv.Itoa(want.Port) {
					t.Errorf("%s: read_only=%s, event %s, io=%s sql=%s master port %s (want %d)", in.Addr(), ro, ev,
						st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Master_Port"], want.Port)
				}
			}
			if t.Failed() {
				t.Fatalf("recover output:\n%s%s\naudit:\n%s", rout, rerr, audit)
			}
			code, rout, rerr = runCLI(t, recoverArgs(logPath)...)
			if code != 0 || !strings.HasPrefix(rout, "nothing to recover") {
				t.Fatalf("second recover: exit %d\n%s%s", code, rout, rerr)
			}
			primary = want
		})
		if t.Failed() {
			return // the testbed is in an unknown state
		}
	}
	t.Logf("%d of %d kills left the old primary out of reach of dbstate's login (recovered as the error said, then with --break-glass-defaults-file)", stranded, len(steps))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
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
