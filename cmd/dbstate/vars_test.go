package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

func TestVarsUsage(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "v.yml")
	os.WriteFile(good, []byte("variables: {max_connections: 500}\n"), 0o644)
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("variables: {max_connections: 500}\nvariable: {}\n"), 0o644)
	base := []string{"--user", "x"}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no --desired", append([]string{"vars", "plan", "--seed", "a:1"}, base...), "--desired is required"},
		{"no seed or instances", append([]string{"vars", "plan", "--desired", good}, base...), "either --seed or --instances"},
		{"both seed and instances", append([]string{"vars", "plan", "--desired", good, "--seed", "a:1", "--instances", "b:1"}, base...), "either --seed or --instances"},
		{"unknown key in the file", append([]string{"vars", "plan", "--desired", bad, "--instances", "a:1"}, base...), "field variable not found"},
		{"bad instance", append([]string{"vars", "plan", "--desired", good, "--instances", "a"}, base...), "want host:port"},
		{"parallel 0", append([]string{"vars", "apply", "--desired", good, "--instances", "a:1", "--parallel", "0"}, base...), "--parallel"},
		{"parallel negative", append([]string{"vars", "plan", "--desired", good, "--instances", "a:1", "--parallel", "-3"}, base...), "--parallel"},
		{"timeout 0", append([]string{"vars", "plan", "--desired", good, "--instances", "a:1", "--timeout", "0s"}, base...), "--timeout"},
		{"persist into a directory nobody may write (even root)", append([]string{"vars", "apply", "--desired", good, "--instances", "a:1", "--persist", "/proc/dbstate-vars.cnf"}, base...), "--persist /proc/dbstate-vars.cnf: cannot write"},
		{"persist onto a directory", append([]string{"vars", "apply", "--desired", good, "--instances", "a:1", "--persist", dir}, base...), "is a directory"},
		{"persist into a missing directory", append([]string{"vars", "apply", "--desired", good, "--instances", "a:1", "--persist", "/nonexistent/x.cnf"}, base...), "--persist"},
		{"exporter without --listen", []string{"exporter", "--user", "x", "--seed", "a:1"}, "--listen"},
		{"exporter with a missing --desired-grants", []string{"exporter", "--user", "x", "--seed", "a:1", "--listen", "127.0.0.1:0", "--desired-grants", filepath.Join(dir, "none.yml")}, "--desired: open"},
		{"exporter with a broken --desired-grants", []string{"exporter", "--user", "x", "--seed", "a:1", "--listen", "127.0.0.1:0", "--desired-grants", bad}, "field variables not found"},
		{"exporter refresh 0", []string{"exporter", "--user", "x", "--seed", "a:1", "--listen", "127.0.0.1:0", "--refresh-interval", "0s"}, "--refresh-interval"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tt.args...)
			if code != 2 || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, want 2 and %q in stderr\n%s%s", code, tt.want, out, errs)
			}
		})
	}
}

// TestReportPushIncomplete: a rollback that could not complete is loud, names the instance, its values and the
// statements, and exits 1.
func TestReportPushIncomplete(t *testing.T) {
	res := &dbstate.VarsResult{Outcome: dbstate.OutcomeRollbackIncomplete, Failures: []dbstate.InstanceFailure{{Instance: "db2:3306", Phase: "read-back", Error: "connection refused"}},
		Incomplete: []dbstate.IncompleteInstance{{Instance: "db2:3306", Reason: "connection refused",
			Values: map[string]string{"max_connections": "unknown"}, Statements: []string{"SET GLOBAL max_connections = 151;"}}}}
	var out, errs bytes.Buffer
	p := &dbstate.VarsPlan{Plan: &dbstate.Plan{}}
	code := reportPush(p, res, dbstate.ErrVarsRollbackIncomplete, false, &out, &errs)
	if code != 1 || !strings.Contains(out.String(), "ROLLBACK INCOMPLETE") || !strings.Contains(out.String(), "SET GLOBAL max_connections = 151;") ||
		!strings.Contains(out.String(), "db2:3306") || !strings.Contains(errs.String(), "rollback incomplete") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errs.String())
	}
}

func TestVarsCLIOnRealTopology(t *testing.T) {
	tp := dbtest.Build(t, "p p>r")
	p, r := tp.Get("p"), tp.Get("r")
	dir := t.TempDir()
	cnf := filepath.Join(dir, "my.cnf")
	os.WriteFile(cnf, []byte("[client]\nuser="+dbtest.AdminUser+"\npassword=\""+dbtest.AdminPassword+"\"\n"), 0o600)
	vars := filepath.Join(dir, "vars.yml")
	os.WriteFile(vars, []byte(`
variables: {max_connections: 456, slow_query_log: yes, long_query_time: 3s, key_buffer_size: 4M}
groups:
  replica:
    instances: [`+r.Addr()+`]
    variables: {max_connections: 789}
`), 0o644)
	persist := filepath.Join(dir, "90-dbstate.cnf")
	audit := filepath.Join(dir, "audit.jsonl")
	seed := []string{"--defaults-file", cnf, "--seed", p.Addr()}

	t.Run("plan shows changes and exits 1", func(t *testing.T) {
		code, out, errs := runCLI(t, append([]string{"vars", "plan", "--desired", vars}, seed...)...)
		if code != 1 || !strings.Contains(out, "300 -> 456") || !strings.Contains(out, "300 -> 789") || !strings.Contains(out, "OFF -> ON") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("the example file plans on any topology", func(t *testing.T) {
		code, out, errs := runCLI(t, append([]string{"vars", "plan", "--desired", "../../examples/dbstate/vars.yml", "--json"}, seed...)...)
		var o struct {
			Plan struct {
				Instances []struct{ Instance string }
			}
		}
		if code != 1 || json.Unmarshal([]byte(out), &o) != nil || len(o.Plan.Instances) != 2 {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("apply without --yes changes nothing", func(t *testing.T) {
		code, _, errs := runCLI(t, append([]string{"vars", "apply", "--desired", vars}, seed...)...)
		if code != 2 || !strings.Contains(errs, "--yes") || p.QueryString(t, "SELECT @@GLOBAL.max_connections") != "300" {
			t.Fatalf("exit %d\n%s", code, errs)
		}
	})
	t.Run("apply, persist, then the plan is empty", func(t *testing.T) {
		code, out, errs := runCLI(t, append([]string{"vars", "apply", "--desired", vars, "--yes", "--persist", persist, "--audit-log", audit}, seed...)...)
		if code != 0 || !strings.Contains(out, "Applied everywhere: 8 values on 2 instances") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		if r.QueryString(t, "SELECT @@GLOBAL.max_connections") != "789" || p.QueryString(t, "SELECT @@GLOBAL.key_buffer_size") != "4194304" {
			t.Fatal("values not applied")
		}
		frag, _ := os.ReadFile(persist)
		for _, want := range []string{"[mariadbd]\n", "key_buffer_size = 4194304\n", "slow_query_log = ON\n", "long_query_time = 3.000000\n", "# max_connections differs by instance"} {
			if !strings.Contains(string(frag), want) {
				t.Errorf("fragment lacks %q:\n%s", want, frag)
			}
		}
		if log, _ := os.ReadFile(audit); !strings.Contains(string(log), `"phase":"read-back"`) {
			t.Errorf("audit:\n%s", log)
		}
		code, out, errs = runCLI(t, append([]string{"vars", "plan", "--desired", vars}, seed...)...)
		if code != 0 || !strings.Contains(out, "Nothing to change") {
			t.Fatalf("second plan: exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("a push the replica refuses rolls back everywhere and exits 1", func(t *testing.T) {
		os.Remove(persist)
		code, out, errs := runCLI(t, append([]string{"vars", "apply", "--desired", "../../examples/dbstate/vars-fails-on-replicas.yml", "--yes", "--persist", persist, "--audit-log", audit}, seed...)...)
		if code != 1 || !strings.Contains(out, "Rolled back everywhere") || !strings.Contains(errs, "rolled back everywhere") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		if p.QueryString(t, "SELECT @@GLOBAL.slave_parallel_threads") != "0" || p.QueryString(t, "SELECT @@GLOBAL.max_connections") != "456" {
			t.Fatal("primary not restored")
		}
		if _, err := os.Stat(persist); err == nil {
			t.Fatal("--persist written after a rollback")
		}
	})
	t.Run("rejected variables exit 2 and name instance and reason", func(t *testing.T) {
		rej := filepath.Join(dir, "rej.yml")
		os.WriteFile(rej, []byte("variables: {max_connections: 5, datadir: /tmp}\n"), 0o644)
		code, out, errs := runCLI(t, append([]string{"vars", "apply", "--yes", "--desired", rej}, seed...)...)
		if code != 2 || !strings.Contains(errs, p.Addr()+": max_connections: 5 is below the minimum 10") ||
			!strings.Contains(errs, "datadir: not dynamic") || !strings.Contains(errs, "nothing was sent") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("a group names an instance outside the tree (warned) and one as localhost (the same instance)", func(t *testing.T) {
		g := filepath.Join(dir, "groups.yml")
		_, port, _ := net.SplitHostPort(r.Addr())
		os.WriteFile(g, []byte("variables: {max_connections: 456}\ngroups:\n  gone: {instances: [\"db9.example:3306\"], variables: {max_connections: 600}}\n"+
			"  local: {instances: [\"localhost:"+port+"\"], variables: {max_connections: 700}}\n"), 0o644)
		code, out, errs := runCLI(t, append([]string{"vars", "plan", "--desired", g}, seed...)...)
		if code != 1 || !strings.Contains(out, "warning: group gone names db9.example:3306, which is not among the instances planned") ||
			!strings.Contains(out, "-> 700") || strings.Contains(out, "-> 600") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("no password in any output, log or audit record, with --json and debug logs", func(t *testing.T) {
		const secret = "Wr0ng-s3cret-'\"pw"
		pwf := filepath.Join(dir, "pw")
		os.WriteFile(pwf, []byte(secret+"\n"), 0o600)
		for _, args := range [][]string{
			{"vars", "plan", "--json", "--desired", vars, "--seed", p.Addr()},
			{"vars", "apply", "--yes", "--json", "--desired", vars, "--instances", p.Addr() + "," + r.Addr(), "--audit-log", audit},
		} {
			args = append(args, "--user", dbtest.AdminUser, "--password-file", pwf, "--log-level", "debug", "--log-format", "json")
			var out, errs bytes.Buffer
			code := run(context.Background(), args, &out, &errs)
			logged, _ := os.ReadFile(audit)
			if code == 0 || strings.Contains(out.String()+errs.String()+string(logged), secret) || !strings.Contains(errs.String(), "Access denied") {
				t.Fatalf("%v: exit %d (want a refused login, the password never shown)\n%s%s", args, code, out.String(), errs.String())
			}
		}
		if logged, _ := os.ReadFile(audit); strings.Contains(string(logged), dbtest.AdminPassword) {
			t.Fatalf("the audit log holds the password:\n%s", logged)
		}
	})
	t.Run("an unreachable instance fails planning with exit 1, and nothing is sent", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		dead := l.Addr().String()
		l.Close()
		code, out, errs := runCLI(t, "vars", "apply", "--yes", "--defaults-file", cnf, "--desired", vars, "--timeout", "2s",
			"--instances", p.Addr()+","+dead)
		if code != 1 || !strings.Contains(errs, "instance unreachable: "+dead) || strings.Contains(out, "Applied") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("exporter: metrics, health, SIGHUP reload, graceful stop", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		dv := filepath.Join(dir, "exporter-vars.yml")
		os.WriteFile(dv, []byte("variables: {max_connections: 456}\n"), 0o644)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errs bytes.Buffer
		done := make(chan int)
		go func() {
			done <- run(ctx, []string{"exporter", "--defaults-file", cnf, "--seed", p.Addr(), "--listen", addr, "--desired-vars", dv,
				"--refresh-interval", "100ms", "--instance-timeout", "1s"}, &out, &errs)
		}()
		get := func(path string) (int, string) { return httpGet(addr, path) }
		waitFor := func(what string, ok func() bool) {
			waitUntil(t, what, ok, func() string { cancel(); <-done; return errs.String() })
		}
		waitFor("/readyz", func() bool { code, _ := get("/readyz"); return code == 200 })
		if code, body := get("/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("/healthz: %d %q", code, body)
		}
		_, metrics := get("/metrics")
		for _, want := range []string{
			`dbstate_up{instance="` + p.Addr() + `"} 1`, `dbstate_up{instance="` + r.Addr() + `"} 1`,
			`dbstate_variable_drift{instance="` + r.Addr() + `",variable="max_connections"} 1`, // r has 789
			`dbstate_variable_drift{instance="` + p.Addr() + `",variable="max_connections"} 0`,
			`dbstate_writable_instances{cluster="` + p.Addr() + `"} 1`, "dbstate_exporter_build_info{", "go_goroutines",
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		os.WriteFile(dv, []byte("variables: {max_connections: 456, slow_query_log: 'OFF'}\n"), 0o644)
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		waitFor("drift of slow_query_log after SIGHUP", func() bool {
			_, m := get("/metrics")
			return strings.Contains(m, `dbstate_variable_drift{instance="`+p.Addr()+`",variable="slow_query_log"} 1`)
		})
		// A broken file on SIGHUP keeps the running one, is logged, and shows in the reload metric.
		os.WriteFile(dv, []byte("variables: {max_connections: 456\n"), 0o644)
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		waitFor("the failed reload in the metrics", func() bool {
			_, m := get("/metrics")
			return strings.Contains(m, "dbstate_exporter_config_last_reload_successful 0") &&
				strings.Contains(m, `dbstate_exporter_config_reloads_total{result="failure"} 1`) &&
				strings.Contains(m, `dbstate_variable_drift{instance="`+p.Addr()+`",variable="slow_query_log"} 1`)
		})
		cancel()
		if code := <-done; code != 0 || !strings.Contains(errs.String(), "reloaded") || !strings.Contains(errs.String(), "stopped") ||
			!strings.Contains(errs.String(), "reload failed; keeping the running desired files") {
			t.Fatalf("exit %d\n%s", code, errs.String())
		}
	})
	t.Run("a push whose audit log cannot be written exits 1 and says it was applied", func(t *testing.T) {
		v := filepath.Join(dir, "audit-full.yml")
		os.WriteFile(v, []byte("variables: {key_buffer_size: 8M}\n"), 0o644)
		code, out, errs := runCLI(t, append([]string{"vars", "apply", "--desired", v, "--yes", "--audit-log", "/dev/full"}, seed...)...)
		if code != 1 || !strings.Contains(errs, "the audit log is incomplete") || !strings.Contains(errs, "the plan itself succeeded") ||
			p.QueryString(t, "SELECT @@GLOBAL.key_buffer_size") != "8388608" {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
	})
}

// TestReadmeVarsCommands runs the README's dbstate vars commands, as written, against a primary with three
// replicas: the quickstart addresses (127.0.0.1:3306-3309) and dbstate.cnf are rewritten to the test's, in the
// commands and in the example desired files they name.
func TestReadmeVarsCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### dbstate vars and exporter")
	section, _, _ = strings.Cut(section, "\n## ")
	if !ok {
		t.Fatal("README has no dbstate vars section")
	}
	var cmds []string
	for _, l := range strings.Split(section, "\n") {
		if strings.HasPrefix(l, "bin/dbstate vars ") {
			cmds = append(cmds, l)
		}
	}
	want := []int{1, 0, 0, 1} // plan (changes), apply, plan (nothing), the push that fails on the replicas
	if len(cmds) != len(want) {
		t.Fatalf("README vars commands: %q", cmds)
	}
	tp := dbtest.PrimaryWithReplicas(t, 3)
	dir := t.TempDir()
	cnf := filepath.Join(dir, "dbstate.cnf")
	os.WriteFile(cnf, []byte("[client]\nuser="+dbtest.AdminUser+"\npassword=\""+dbtest.AdminPassword+"\"\n"), 0o600)
	ports := strings.NewReplacer("127.0.0.1:3306", tp.Get("p").Addr(), "127.0.0.1:3307", tp.Get("r1").Addr(),
		"127.0.0.1:3308", tp.Get("r2").Addr(), "127.0.0.1:3309", tp.Get("r3").Addr())
	for _, f := range []string{"vars.yml", "vars-fails-on-replicas.yml", "grants.yml", "shop.pw", "oncall.pw", "migrations.pw"} {
		b, err := os.ReadFile("../../examples/dbstate/" + f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), []byte(ports.Replace(string(b))), 0o644)
	}
	paths := strings.NewReplacer("examples/dbstate/", dir+"/", "dbstate.cnf", cnf, "audit.jsonl", filepath.Join(dir, "audit.jsonl"),
		"90-dbstate-vars.cnf", filepath.Join(dir, "90-dbstate-vars.cnf"))
	for k, line := range cmds {
		args := strings.Fields(paths.Replace(ports.Replace(strings.TrimPrefix(line, "bin/dbstate "))))
		code, out, errs := runCLI(t, args...)
		if code != want[k] {
			t.Fatalf("%s: exit %d, want %d\n%s%s", line, code, want[k], out, errs)
		}
		if k == 1 && (!strings.Contains(out, "Applied everywhere: 24 values on 4 instances") || strings.Contains(out, "warning: group")) {
			t.Fatalf("%s:\n%s", line, out)
		}
		if k == 3 && !strings.Contains(out, "Rolled back everywhere") {
			t.Fatalf("%s:\n%s", line, out)
		}
	}
	if r := tp.Get("r2").QueryString(t, "SELECT @@GLOBAL.max_connections"); r != "1000" {
		t.Fatalf("replica max_connections %s, want the group's 1000", r)
	}

	// The exporter's commands, as written (its default 10 s refresh included): readyz, the metrics the README
	// greps for, a hand-made change on 127.0.0.1:3307 and its drift within the README's sleep of 11 s.
	var exp, grantsExp, set, grep string
	for _, l := range strings.Split(section, "\n") {
		switch {
		case strings.HasPrefix(l, "bin/dbstate exporter ") && strings.Contains(l, "--desired-grants "):
			grantsExp = strings.TrimSuffix(strings.TrimSpace(l), " &")
		case strings.HasPrefix(l, "bin/dbstate exporter "):
			exp = strings.TrimSuffix(strings.TrimSpace(l), " &")
		case strings.HasPrefix(l, "mariadb --defaults-file=dbstate.cnf "):
			set = l
		case strings.HasPrefix(l, "sleep 11; curl"):
			grep = l[strings.Index(l, "grep '")+len("grep '") : len(l)-1]
		}
	}
	if exp == "" || grantsExp == "" || !strings.Contains(set, "-P 3307 -e 'SET GLOBAL max_connections = 999'") || grep == "" {
		t.Fatalf("README exporter commands: %q %q %q", exp, set, grep)
	}
	_, metrics, wait, stop := startReadmeExporter(t, paths.Replace(ports.Replace(strings.TrimPrefix(exp, "bin/dbstate "))))
	wait("/readyz", func() bool { return metrics("/readyz") == "ready\n" })
	r1 := tp.Get("r1")
	if m := metrics("/metrics"); !strings.Contains(m, `dbstate_up{instance="`+r1.Addr()+`"} 1`) ||
		!strings.Contains(m, `dbstate_writable_instances{cluster="`+tp.Get("p").Addr()+`"} 1`) || !strings.Contains(m, "dbstate_variable_drift{") {
		t.Fatalf("metrics:\n%s", m)
	}
	r1.Exec(t, "SET GLOBAL max_connections = 999")
	drift := ports.Replace(grep) + " 1"
	wait(drift, func() bool { return strings.Contains(metrics("/metrics"), drift) })
	stop()

	// The exporter with the example desired grants, not applied here: every instance drifts, none is absent.
	_, metrics, wait, stop = startReadmeExporter(t, paths.Replace(ports.Replace(strings.TrimPrefix(grantsExp, "bin/dbstate "))))
	for _, in := range tp.Instances {
		series := `dbstate_grants_drift_accounts{instance="` + in.Addr() + `"} `
		wait(series, func() bool {
			m := metrics("/metrics")
			return strings.Contains(m, series) && !strings.Contains(m, series+"0\n")
		})
	}
	if m := metrics("/metrics"); strings.Contains(m, "dbstate_grants_read_errors_total{") {
		t.Fatalf("grants read errors with an account that has SELECT on mysql.*:\n%s", m)
	}
	stop()
}

// startReadmeExporter runs `dbstate exporter` with the arguments of a README line (its 127.0.0.1:9104 replaced
// by a free port) and returns the address, a GET of a path's body ("" unless 200), a wait that fails the test
// with the exporter's log, and stop, which ends it and checks exit 0.
func startReadmeExporter(t *testing.T, line string) (string, func(string) string, func(string, func() bool), func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	args := strings.Fields(strings.ReplaceAll(line, "127.0.0.1:9104", listen))
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuf
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &out, &errs) }()
	metrics := func(path string) string {
		if code, body := httpGet(listen, path); code == 200 {
			return body
		}
		return ""
	}
	stopped := false
	stopLog := func() string {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
		return errs.String()
	}
	t.Cleanup(func() { stopLog() })
	wait := func(what string, ok func() bool) { waitUntil(t, what, ok, stopLog) }
	stop := func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("exporter exit %d\n%s", code, errs.String())
		}
	}
	return listen, metrics, wait, stop
}

// syncBuf is a bytes.Buffer that the exporter's goroutines may write while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// httpGet returns the status and body of GET http://addr/path (0 and the error when it fails).
func httpGet(addr, path string) (int, string) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitUntil polls ok for up to 25 s (the README's exporter refreshes every 10 s); on failure it calls stop, which
// ends what runs and returns its log, and fails the test with it.
func waitUntil(t *testing.T, what string, ok func() bool, stop func() string) {
	t.Helper()
	for deadline := time.Now().Add(25 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 25s\n%s", what, stop())
		}
	}
}
