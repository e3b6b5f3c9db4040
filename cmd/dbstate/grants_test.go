package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// TestGrantsREADMELoop runs the loop the README shows, on a primary with one replica: show an existing server,
// save it as the desired file, plan (empty, exit 0), edit the file, plan (exit 1), apply without --yes (nothing
// changes, exit 2), apply --yes, plan again (empty, exit 0).
func TestGrantsREADMELoop(t *testing.T) {
	tp := dbtest.Build(t, "p p>r")
	p := tp.Get("p")
	p.Exec(t, "CREATE USER app@'10.%' IDENTIFIED BY 'app-pw'", "GRANT SELECT ON test.* TO app@'10.%'")
	tp.Get("r").WaitCaughtUp(t, p)
	dir := t.TempDir()
	cnf := filepath.Join(dir, "dbstate.cnf")
	os.WriteFile(cnf, []byte(fmt.Sprintf("[client]\nuser = %s\npassword = \"%s\"\n", dbtest.AdminUser, dbtest.AdminPassword)), 0o600)
	desired := filepath.Join(dir, "grants.yml")
	conn := []string{"--defaults-file", cnf, "--seed", p.Addr()}

	code, out, errs := runCLI(t, "grants", "show", "--defaults-file", cnf, "--instance", p.Addr())
	if code != 0 || !strings.Contains(out, "name: app") {
		t.Fatalf("show: exit %d\n%s%s", code, out, errs)
	}
	os.WriteFile(desired, []byte(out), 0o600)
	if code, out, errs := runCLI(t, append([]string{"grants", "plan", "--desired", desired}, conn...)...); code != 0 || !strings.Contains(out, "no changes") {
		t.Fatalf("plan after show: exit %d\n%s%s", code, out, errs)
	}
	// JSON output never holds the hashes.
	if code, out, _ := runCLI(t, "grants", "show", "--defaults-file", cnf, "--instance", p.Addr(), "--json"); code != 0 || strings.Contains(out, dbstate.NativePasswordHash("app-pw")[1:]) || !strings.Contains(out, "redacted") {
		t.Fatalf("show --json: exit %d\n%s", code, out)
	}
	// Edit: a new user with a password file, and one more grant for app.
	os.WriteFile(filepath.Join(dir, "report.pw"), []byte("rep0rt-pw\n"), 0o600)
	// The README's edit: append a user (users: is the last key show writes).
	edited := out + "  - name: report\n    host: \"10.0.%\"\n    auth: {password_file: report.pw}\n    grants:\n      - {privileges: [SELECT], on: \"test.*\"}\n"
	os.WriteFile(desired, []byte(edited), 0o600)
	code, out, errs = runCLI(t, append([]string{"grants", "plan", "--desired", desired}, conn...)...)
	if code != 1 || !strings.Contains(out, "CREATE USER `report`@`10.0.%`") || !strings.Contains(out, "Summary: 1 account to create, 0 to alter, 1 grant, 0 revokes, 0 to drop; 2 statements: 2 once on the primary (replicated)\n") || strings.Contains(out, "rep0rt-pw") {
		t.Fatalf("plan after edit: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, append([]string{"grants", "plan", "--desired", desired, "--json"}, conn...)...); code != 1 ||
		strings.Contains(out, dbstate.NativePasswordHash("rep0rt-pw")[1:]) || !strings.Contains(out, `"scope": "replicated"`) {
		t.Fatalf("plan --json: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, append([]string{"grants", "apply", "--desired", desired}, conn...)...); code != 2 || !strings.Contains(errs, "nothing changed") {
		t.Fatalf("apply without --yes: exit %d\n%s%s", code, out, errs)
	}
	audit := filepath.Join(dir, "audit.jsonl")
	if code, out, errs := runCLI(t, append([]string{"grants", "apply", "--desired", desired, "--yes", "--audit-log", audit}, conn...)...); code != 0 || !strings.Contains(out, "every instance verified") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, append([]string{"grants", "plan", "--desired", desired}, conn...)...); code != 0 {
		t.Fatalf("plan after apply: exit %d\n%s%s", code, out, errs)
	}
	if b, _ := os.ReadFile(audit); strings.Contains(string(b), "rep0rt-pw") || !strings.Contains(string(b), `"step":"create 1"`) {
		t.Fatalf("audit log:\n%s", b)
	}
	// An auth plugin the servers have not loaded is refused before anything runs, with the fix.
	os.WriteFile(filepath.Join(dir, "ed.yml"), []byte(edited+"  - {name: ed, host: '%', auth: {ed25519_password_file: report.pw}}\n"), 0o600)
	if code, out, errs := runCLI(t, append([]string{"grants", "plan", "--desired", filepath.Join(dir, "ed.yml")}, conn...)...); code != 1 || !strings.Contains(errs, "INSTALL SONAME 'auth_ed25519'") {
		t.Fatalf("ed25519 without the plugin: exit %d\n%s%s", code, out, errs)
	}
	// An audit log that cannot be written is a failure that says the changes were made, not a silent success.
	os.WriteFile(desired, []byte(edited+"  - {name: report2, host: '10.0.%', auth: {password_file: report.pw}}\n"), 0o600)
	if code, out, errs := runCLI(t, append([]string{"grants", "apply", "--desired", desired, "--yes", "--audit-log", "/dev/full"}, conn...)...); code != 1 ||
		!strings.Contains(errs, "the audit log is incomplete") || !strings.Contains(errs, "the plan itself succeeded") {
		t.Fatalf("apply with an unwritable audit log: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, append([]string{"grants", "plan", "--desired", desired}, conn...)...); code != 0 {
		t.Fatalf("plan after the apply with an unwritable audit log: exit %d\n%s%s", code, out, errs)
	}
	// A plan that cannot be printed is a failure, not exit 0 with nothing shown.
	if code := run(context.Background(), append([]string{"grants", "apply", "--desired", desired, "--dry-run"}, conn...), failingWriter{}, io.Discard); code != 1 {
		t.Fatalf("dry run to a stdout that fails: exit %d, want 1", code)
	}
	// Usage and config errors exit 2.
	for _, args := range [][]string{
		{"grants", "plan", "--defaults-file", cnf, "--seed", p.Addr()},
		{"grants", "plan", "--desired", filepath.Join(dir, "missing.yml"), "--defaults-file", cnf, "--seed", p.Addr()},
		{"grants", "check", "--desired", cnf},
		{"grants", "plan", "--desired", desired, "--defaults-file", cnf, "--seed", p.Addr(), "--instances", p.Addr()},
		{"grants", "plan", "--desired", desired, "--defaults-file", cnf, "--instances", "nohost"},
		{"grants", "plan", "--desired", desired, "--defaults-file", cnf, "--instances", p.Addr() + ",localhost:" + strconv.Itoa(p.Port)},
	} {
		if code, out, errs := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s%s", args, code, out, errs)
		}
	}
	if code, out, errs := runCLI(t, "grants", "check", "--desired", "../../examples/dbstate/grants.yml"); code != 0 {
		t.Fatalf("check example: exit %d\n%s%s", code, out, errs)
	}
}

// TestGrantsCheckHostileFiles: desired files that are not files, too large, or YAML alias bombs are refused with
// exit 2 after a bounded read; password files that are empty, directories or missing too.
func TestGrantsCheckHostileFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A billion-laughs file: 9^10 strings if the aliases were expanded.
	bomb := "protect:\n  - &a [x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'j'; i++ {
		prev := string(i - 1)
		bomb += fmt.Sprintf("  - &%c [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", i, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	write("empty.pw", "")
	os.Mkdir(filepath.Join(dir, "dir.pw"), 0o700)
	for name, path := range map[string]string{
		"/dev/zero":          "/dev/zero",
		"directory":          dir,
		"missing":            filepath.Join(dir, "missing.yml"),
		"alias bomb":         write("bomb.yml", bomb),
		"empty password":     write("e.yml", "users: [{name: a, host: h, auth: {password_file: empty.pw}}]\n"),
		"directory password": write("d.yml", "users: [{name: a, host: h, auth: {password_file: dir.pw}}]\n"),
		"missing password":   write("m.yml", "users: [{name: a, host: h, auth: {password_file: nope.pw}}]\n"),
		"devzero password":   write("z.yml", "users: [{name: a, host: h, auth: {password_file: /dev/zero}}]\n"),
	} {
		if code, out, errs := runCLI(t, "grants", "check", "--desired", path); code != 2 || !strings.HasPrefix(errs, "dbstate grants check: ") ||
			len(errs) > 4096 {
			t.Errorf("%s: exit %d\n%s%s", name, code, out, errs)
		}
	}
}

// TestGrantsREADMEExample: the desired-state file the README's grants section shows is valid as written.
func TestGrantsREADMEExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## dbstate grants")
	if !ok {
		t.Fatal("README has no dbstate grants section")
	}
	_, block, ok := strings.Cut(sec, "\n```yaml\n")
	if !ok {
		t.Fatal("the grants section shows no YAML file")
	}
	block, _, _ = strings.Cut(block, "\n```")
	if _, err := dbstate.ParseDesiredGrants([]byte(block)); err != nil {
		t.Fatalf("README desired file: %v", err)
	}
}

// failingWriter is a stdout that cannot be written (a closed pipe, a full disk).
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }
