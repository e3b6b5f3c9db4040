package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// dbstate dies in the window of a switchover: after fence-writers locked an ALL PRIVILEGES account and
// set-read-only made the primary read-only. The "death" is a BeforeStep hook that never returns while the test
// looks: nothing of the run undoes anything meanwhile, exactly as after a kill -9, and the audit log holds what
// the process wrote up to then. recover --yes must leave nothing locked or read-only; a second recover finds
// nothing.
func TestRecoverAfterDeathInTheWindow(t *testing.T) {
	p, a, db, cnf := recoverTestbed(t)
	if err := db.Ping(); err != nil { // a connected session: fence-writers locks its account
		t.Fatal(err)
	}
	logPath := filepath.Join(filepath.Dir(cnf), "audit.jsonl")
	logf, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()

	c := dbstate.NewClient(dbstate.Credentials{User: dbtest.AdminUser, Password: dbtest.AdminPassword}, 3*time.Second, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := dbstate.Discover(ctx, c, []string{p.Addr()}, dbstate.DiscoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := dbstate.PlanSwitchover(ctx, c, topo, dbstate.SwitchoverOptions{Primary: p.Addr(), Candidate: a.Addr(),
		// The test reads as root over the socket: exempt, as the admin login (dbstate's) is.
		NeverLock:   []dbstate.Account{{User: "root", Host: "localhost"}, {User: dbtest.AdminUser, Host: "127.0.0.1"}, {User: dbtest.AdminUser, Host: "localhost"}},
		Replication: dbstate.Credentials{User: dbtest.ReplUser, Password: dbtest.ReplPassword}})
	if err != nil {
		t.Fatal(err)
	}
	dead, revive := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- plan.Execute(ctx, dbstate.ExecOptions{Audit: logf, BeforeStep: func(ctx context.Context, s *dbstate.Step) error {
			if s.Name == "kill-sessions" {
				close(dead)
				<-revive
				return errors.New("the test is over")
			}
			return nil
		}})
	}()
	select {
	case <-dead:
	case err := <-done:
		t.Fatalf("the switchover ended before the window: %v", err)
	}
	defer func() { close(revive); <-done }()

	locked := func() bool {
		v := p.QueryString(t, "SELECT IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') FROM mysql.global_priv WHERE User='appall'")
		return v == "true" || v == "1"
	}
	if !locked() || p.QueryString(t, "SELECT @@read_only") != "1" {
		t.Fatal("the premise is gone: the run did not lock appall and make p read-only")
	}
	code, out, errs := runCLI(t, "recover", "--audit-log", logPath, "--defaults-file", cnf)
	if code != 0 || !strings.Contains(out, "'appall'@'127.0.0.1'") || !strings.Contains(out, "lift-read-only") || !locked() {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errs)
	}
	t.Log("\n" + out)
	// Another writable instance (as a promotion the log does not show would leave): refused, named, nothing changed.
	a.Exec(t, "SET GLOBAL read_only=0")
	code, out, errs = runCLI(t, "recover", "--audit-log", logPath, "--defaults-file", cnf, "--yes")
	if code != 1 || !strings.Contains(out, "writable besides") || !strings.Contains(out, a.Addr()) || !locked() || p.QueryString(t, "SELECT @@read_only") != "1" {
		t.Fatalf("second writable: exit %d\n%s%s", code, out, errs)
	}
	a.Exec(t, "SET GLOBAL read_only=1")
	code, out, errs = runCLI(t, "recover", "--audit-log", logPath, "--defaults-file", cnf, "--yes")
	if code != 0 || !strings.Contains(out, "Done in") {
		t.Fatalf("recover --yes: exit %d\n%s%s", code, out, errs)
	}
	if locked() || p.QueryString(t, "SELECT @@read_only") != "0" || a.QueryString(t, "SELECT @@read_only") != "1" {
		t.Fatalf("after recover: appall locked=%v, p read_only=%s, a read_only=%s", locked(), p.QueryString(t, "SELECT @@read_only"), a.QueryString(t, "SELECT @@read_only"))
	}
	// The candidate's fence locked appall on a too (not binlogged): recover lifted it there.
	if v := a.QueryString(t, "SELECT IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') FROM mysql.global_priv WHERE User='appall'"); v == "true" || v == "1" {
		t.Fatalf("appall locked on a after recover: %s\n%s", a.QueryString(t, "SELECT Priv FROM mysql.global_priv WHERE User='appall'"), out)
	}
	code, out, errs = runCLI(t, "recover", "--audit-log", logPath, "--defaults-file", cnf, "--yes")
	if code != 0 || !strings.HasPrefix(out, "nothing to recover") {
		t.Fatalf("second recover: exit %d\n%s%s", code, out, errs)
	}
}

func TestRecoverUsage(t *testing.T) {
	code, _, errs := runCLI(t, "recover", "--audit-log", filepath.Join(t.TempDir(), "missing.jsonl"))
	if code != 2 || !strings.Contains(errs, "--audit-log") {
		t.Fatalf("missing log: exit %d\n%s", code, errs)
	}
	code, _, errs = runCLI(t, "recover")
	if code != 2 || !strings.Contains(errs, "--audit-log FILE is required") {
		t.Fatalf("no log: exit %d\n%s", code, errs)
	}
	// What comes from the log is cleaned for the terminal and checked before it is used: a hostile log changes
	// nothing and connects nowhere.
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.jsonl")
	os.WriteFile(clean, []byte(`{"run":"r\u001b[2J","phase":"plan","result":"start"}`+"\n"+`{"run":"r\u001b[2J","phase":"plan","result":"ok"}`+"\n"), 0o600)
	code, out, errs := runCLI(t, "recover", "--audit-log", clean)
	if code != 0 || !strings.HasPrefix(out, "nothing to recover") || strings.Contains(out, "\x1b") {
		t.Fatalf("clean run: exit %d\n%q%s", code, out, errs)
	}
	hostile := filepath.Join(dir, "hostile.jsonl")
	os.WriteFile(hostile, []byte(`{"run":"r","step":"fence-writers","instance":"x:1","phase":"do","result":"intent","fence":{"lock":[{"user":"a\u001b[2J","host":"%"}]}}`+"\n"), 0o600)
	code, out, errs = runCLI(t, "recover", "--audit-log", hostile, "--user", "nobody")
	if code != 2 || strings.Contains(out+errs, "\x1b") || !strings.Contains(errs, "nothing changed") {
		t.Fatalf("hostile account: exit %d\n%q%q", code, out, errs)
	}
}
