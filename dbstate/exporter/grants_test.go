package exporter_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/evenkeel/evenkeel/dbstate/exporter"
	"github.com/prometheus/client_golang/prometheus"
)

// exporterGrants is the desired-grants file of the exporter's grants tests: a role, a user with a password
// file, and prune (the accounts the test bed and the other subtests create are protected).
const exporterGrants = `
prune: true
protect: [dbstate@127.0.0.1, dbstate@localhost, repl@127.0.0.1, dbstate_exporter@127.0.0.1]
roles:
  - name: exp_read
    grants:
      - {privileges: [SELECT], on: "test.*"}
users:
  - name: exp_app
    host: "%"
    auth: {password_file: exp_app.pw}
    roles: [exp_read]
    default_role: exp_read
`

const expAppPassword = "exp-app-s3cret"

// testGrantsDrift runs on the shared bed of TestExporterShowsHandMadeDrift: the desired grants applied with
// dbstate's own plan give 0 everywhere; a grant made by hand on one replica, outside the binary log, shows as one
// drifted account there only, within one refresh; a reload of a broken file keeps the running one; an account
// without SELECT on mysql.* exports no drift, counts errors and keeps its other metrics.
func testGrantsDrift(t *testing.T, f *fixture, e *exporter.Exporter, c *dbstate.Client, p, r1 *dbtest.Instance, all []string) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "exp_app.pw"), []byte(expAppPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "grants.yml")
	if err := os.WriteFile(path, []byte(exporterGrants), 0o600); err != nil {
		t.Fatal(err)
	}
	readFile := func(p string) (string, error) { return dbstate.ReadPasswordFile(filepath.Join(dir, p)) }
	load := func() (*dbstate.DesiredGrants, func(string) (string, error), error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		d, err := dbstate.ParseDesiredGrants(data)
		return d, readFile, err
	}
	d, _, err := load()
	if err != nil {
		t.Fatal(err)
	}
	drift := func(m map[string]float64, addr string) (float64, bool) {
		v, ok := m[key("dbstate_grants_drift_accounts", "instance", addr)]
		return v, ok
	}
	defer func() {
		if err := e.SetDesiredGrants(nil, nil); err != nil {
			t.Error(err)
		}
	}()

	t.Run("before apply every instance drifts by the two accounts", func(t *testing.T) {
		if err := e.Reload(nil, load); err != nil {
			t.Fatal(err)
		}
		m := f.afterRefresh(all)
		for _, a := range all {
			if v, ok := drift(m, a); !ok || v != 2 {
				t.Errorf("%s: drift %v (present %v), want 2", a, v, ok)
			}
		}
	})
	t.Run("applied: in line everywhere", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		topo, err := dbstate.Discover(ctx, c, []string{p.Addr()}, dbstate.DiscoverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		target, err := dbstate.GrantsTargetFromTopology(topo)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := dbstate.PlanGrants(ctx, c, target, d, dbstate.GrantsOptions{ReadFile: readFile})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := plan.Execute(ctx, dbstate.ExecOptions{}); err != nil || !res.Verified {
			t.Fatalf("apply: %v %+v", err, res)
		}
		m := f.afterRefresh(all)
		for _, a := range all {
			if v, ok := drift(m, a); !ok || v != 0 {
				t.Errorf("%s: drift %v (present %v), want 0", a, v, ok)
			}
		}
	})
	t.Run("a grant made by hand on one replica", func(t *testing.T) {
		conn, err := r1.DB().Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"SET SESSION sql_log_bin=0", "GRANT INSERT ON test.* TO exp_read", "SET SESSION sql_log_bin=1"} {
			if _, err := conn.ExecContext(context.Background(), s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		conn.Close()
		m := f.afterRefresh(all)
		for _, a := range all {
			want := map[bool]float64{true: 1, false: 0}[a == r1.Addr()]
			if v, ok := drift(m, a); !ok || v != want {
				t.Errorf("%s: drift %v (present %v), want %v", a, v, ok, want)
			}
		}
	})
	t.Run("a broken file on reload keeps the running one", func(t *testing.T) {
		if err := os.WriteFile(path, []byte("prune: true\nusers: [{name: x, host: '%', grants: [{privileges: [NO_SUCH], on: '*.*'}]}]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.Reload(nil, load); !errors.Is(err, dbstate.ErrDesiredGrants) {
			t.Fatalf("reload of a broken file: %v", err)
		}
		m := f.afterRefresh(all)
		if m[key("dbstate_exporter_config_last_reload_successful")] != 0 {
			t.Error("a failed reload is not seen")
		}
		if v, ok := drift(m, r1.Addr()); !ok || v != 1 {
			t.Errorf("r1: drift %v (present %v), want 1 from the running file", v, ok)
		}
		if v, ok := drift(m, p.Addr()); !ok || v != 0 {
			t.Errorf("p: drift %v (present %v), want 0 from the running file", v, ok)
		}
		// A missing password file is refused at reload too, not on the next read.
		os.WriteFile(path, []byte(strings.Replace(exporterGrants, "exp_app.pw", "missing.pw", 1)), 0o600)
		if err := e.Reload(nil, load); err == nil || strings.Contains(err.Error(), expAppPassword) {
			t.Fatalf("reload with a missing password file: %v", err)
		}
		m = f.afterRefresh(all)
		if v, ok := drift(m, r1.Addr()); !ok || v != 1 {
			t.Errorf("r1 after a second broken reload: drift %v (present %v), want 1", v, ok)
		}
	})
	t.Run("an account without SELECT on mysql.* exports no drift and says so", func(t *testing.T) {
		// dbstate_exporter@127.0.0.1 is the least-privilege account of the docs without the grants read (the first
		// subtest creates it too; here it must exist when the subtest runs alone).
		p.Exec(t, "CREATE USER IF NOT EXISTS 'dbstate_exporter'@'127.0.0.1' IDENTIFIED BY 'exp-pw'",
			"GRANT SLAVE MONITOR, REPLICATION MASTER ADMIN ON *.* TO 'dbstate_exporter'@'127.0.0.1'")
		r1.WaitCaughtUp(t, p)
		lc := dbstate.NewClient(dbstate.Credentials{User: "dbstate_exporter", Password: "exp-pw"}, time.Second, nil)
		defer lc.Close()
		reg := prometheus.NewRegistry()
		var logs syncBuffer
		le, err := exporter.New(lc, exporter.Config{Instances: []string{r1.Addr()}, RefreshInterval: 100 * time.Millisecond,
			InstanceTimeout: 500 * time.Millisecond}, reg, newTextLogger(&logs))
		if err != nil {
			t.Fatal(err)
		}
		if err := le.SetDesiredGrants(d, readFile); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- le.Run(ctx) }()
		defer func() { cancel(); <-done }()
		lf := &fixture{t: t, reg: reg, e: le}
		lf.afterRefresh([]string{r1.Addr()})
		m := lf.afterRefresh([]string{r1.Addr()})
		if _, ok := drift(m, r1.Addr()); ok {
			t.Errorf("drift exported without the grants read: %v", m)
		}
		if m[key("dbstate_up", "instance", r1.Addr())] != 1 || m[key("dbstate_read_only", "instance", r1.Addr())] != 1 {
			t.Errorf("other metrics broken by the denied grants read: %v", m)
		}
		if m[key("dbstate_grants_read_errors_total", "instance", r1.Addr())] < 2 {
			t.Errorf("grants read errors not counted: %v", m)
		}
		out := logs.String()
		if n := strings.Count(out, "lacks SELECT on mysql.*"); n != 1 {
			t.Errorf("denied grants read logged %d times, want once:\n%s", n, out)
		}
	})
	t.Run("no password or hash in the metrics", func(t *testing.T) {
		hash := dbstate.NativePasswordHash(expAppPassword)
		for k := range f.get() {
			if strings.Contains(k, expAppPassword) || strings.Contains(k, hash) || strings.Contains(k, strings.TrimPrefix(hash, "*")) {
				t.Errorf("secret in metric %s", k)
			}
		}
	})
}

// syncBuffer is a strings.Builder that the exporter's goroutines may log to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
