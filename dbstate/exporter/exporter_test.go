package exporter_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/evenkeel/evenkeel/dbstate/exporter"
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	// The driver logs connections that hung instances break to a global logger.
	mysql.SetLogger(log.New(io.Discard, "", 0))
}

// samples gathers reg into "name{k="v",...}" -> value, labels sorted by name.
func samples(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

func key(name string, labels ...string) string {
	var ls []string
	for k := 0; k+1 < len(labels); k += 2 {
		ls = append(ls, fmt.Sprintf("%s=%q", labels[k], labels[k+1]))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

type fixture struct {
	t   *testing.T
	reg *prometheus.Registry
	e   *exporter.Exporter
}

func (f *fixture) get() map[string]float64 { return samples(f.t, f.reg) }

// refreshes is how many reads of addr ended with result.
func (f *fixture) refreshes(addr, result string) float64 {
	return f.get()[key("dbstate_instance_refreshes_total", "instance", addr, "result", result)]
}

// afterRefresh waits until every address in ok has had two more successful reads, and every address in failed
// one more failed read, than now: a read that started after the caller's change has then ended everywhere.
func (f *fixture) afterRefresh(ok []string, failed ...string) map[string]float64 {
	f.t.Helper()
	base := map[string]float64{}
	for _, a := range ok {
		base[a] = f.refreshes(a, "success")
	}
	for _, a := range failed {
		base[a] = f.refreshes(a, "failure")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := true
		for _, a := range ok {
			done = done && f.refreshes(a, "success") >= base[a]+2
		}
		for _, a := range failed {
			done = done && f.refreshes(a, "failure") >= base[a]+1
		}
		if done {
			return f.get()
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("no refresh of %v (ok) / %v (failed) in 30s:\n%v", ok, failed, f.get())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func expect(t *testing.T, m map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		got, ok := m[k]
		if !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

func without(all []string, drop ...string) []string {
	var out []string
	for _, a := range all {
		keep := true
		for _, d := range drop {
			keep = keep && a != d
		}
		if keep {
			out = append(out, a)
		}
	}
	return out
}

// TestExporterShowsHandMadeDrift makes drift by hand on a primary with three replicas, one fault at a time, and
// checks that each shows after one refresh while the other instances' metrics keep coming.
func TestExporterShowsHandMadeDrift(t *testing.T) {
	tp := dbtest.PrimaryWithReplicas(t, 3)
	p, r1, r2, r3 := tp.Get("p"), tp.Get("r1"), tp.Get("r2"), tp.Get("r3")
	c := dbstate.NewClient(dbstate.Credentials{User: dbtest.AdminUser, Password: dbtest.AdminPassword}, time.Second, nil)
	t.Cleanup(func() { c.Close() })
	reg := prometheus.NewRegistry()
	d, err := dbstate.ParseDesiredVars(strings.NewReader("variables: {max_connections: 300, slow_query_log: 'OFF', wait_timeout: 8h, no_such_var: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := exporter.New(c, exporter.Config{Seeds: []string{p.Addr()}, RefreshInterval: 100 * time.Millisecond,
		InstanceTimeout: 500 * time.Millisecond, DiscoveryInterval: time.Second}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.SetDesiredVars(d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	f := &fixture{t: t, reg: reg, e: e}
	all := []string{p.Addr(), r1.Addr(), r2.Addr(), r3.Addr()}
	cl := p.Addr()
	deadline := time.Now().Add(30 * time.Second)
	for !e.Ready() || len(f.get()) == 0 || f.get()[key("dbstate_instances")] != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("not ready with 4 instances after 30s: %v", f.get())
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Run("the least-privilege account of the docs reads everything", func(t *testing.T) {
		p.Exec(t, "CREATE USER 'dbstate_exporter'@'127.0.0.1' IDENTIFIED BY 'exp-pw'",
			"GRANT SLAVE MONITOR, REPLICATION MASTER ADMIN ON *.* TO 'dbstate_exporter'@'127.0.0.1'")
		r1.WaitCaughtUp(t, p)
		lc := dbstate.NewClient(dbstate.Credentials{User: "dbstate_exporter", Password: "exp-pw"}, time.Second, nil)
		defer lc.Close()
		for _, in := range []*dbtest.Instance{p, r1} {
			got := lc.ReadInstance(context.Background(), in.Addr())
			if got.Error != "" || (in == r1 && got.Replication == nil) || (in == p && len(got.Replicas) != 3) {
				t.Fatalf("%s: %+v", in.Name, got)
			}
			db, _ := lc.DB(in.Addr())
			vs, err := dbstate.ReadVariables(context.Background(), db, []string{"max_connections", "slow_query_log"})
			if err != nil || len(vs) != 2 {
				t.Fatalf("%s: %v %v", in.Name, vs, err)
			}
		}
	})
	t.Run("baseline", func(t *testing.T) {
		m := f.afterRefresh(all)
		want := map[string]float64{
			key("dbstate_writable_instances", "cluster", cl):                                    1,
			key("dbstate_instance_role", "instance", p.Addr(), "role", "primary"):               1,
			key("dbstate_instance_role", "instance", r1.Addr(), "role", "replica"):              1,
			key("dbstate_variable_drift", "instance", r1.Addr(), "variable", "max_connections"): 0,
			key("dbstate_variable_drift", "instance", r1.Addr(), "variable", "wait_timeout"):    0, // 8h is 28800 s, the default
			key("dbstate_variable_invalid", "instance", r1.Addr(), "variable", "no_such_var"):   1,
			key("dbstate_errant_gtid", "instance", r1.Addr()):                                   0,
			key("dbstate_replication_sql_running", "instance", r1.Addr()):                       1,
			key("dbstate_replication_lag_seconds", "instance", r1.Addr()):                       0,
			key("dbstate_desired_variables"):                                                    4,
		}
		for _, a := range all {
			want[key("dbstate_up", "instance", a)] = 1
			want[key("dbstate_read_only", "instance", a)] = map[bool]float64{true: 0, false: 1}[a == p.Addr()]
		}
		expect(t, m, want)
		if m[key("dbstate_instance_info", "instance", r2.Addr(), "cluster", cl, "version", r2.QueryString(t, "SELECT @@version"))] != 1 {
			t.Errorf("instance_info: %v", m)
		}
		if _, ok := m[key("dbstate_errant_gtid", "instance", p.Addr())]; ok {
			t.Error("errant_gtid for the primary, which has no master")
		}
	})
	t.Run("grants drift", func(t *testing.T) { testGrantsDrift(t, f, e, c, p, r1, all) })
	t.Run("a changed variable", func(t *testing.T) {
		r1.Exec(t, "SET GLOBAL max_connections = 301")
		m := f.afterRefresh(all)
		expect(t, m, map[string]float64{
			key("dbstate_variable_drift", "instance", r1.Addr(), "variable", "max_connections"): 1,
			key("dbstate_variable_drift", "instance", r2.Addr(), "variable", "max_connections"): 0,
		})
	})
	t.Run("a stopped replica", func(t *testing.T) {
		r1.StopSQLThread(t)
		m := f.afterRefresh(all)
		expect(t, m, map[string]float64{
			key("dbstate_replication_sql_running", "instance", r1.Addr()): 0,
			key("dbstate_replication_io_running", "instance", r1.Addr()):  1,
			key("dbstate_replication_sql_running", "instance", r2.Addr()): 1,
		})
		if _, ok := m[key("dbstate_replication_lag_seconds", "instance", r1.Addr())]; ok {
			t.Error("lag shown while Seconds_Behind_Master is NULL")
		}
	})
	t.Run("a second writable instance", func(t *testing.T) {
		r2.Exec(t, "SET GLOBAL read_only = 0")
		m := f.afterRefresh(all)
		expect(t, m, map[string]float64{
			key("dbstate_writable_instances", "cluster", cl): 2,
			key("dbstate_read_only", "instance", r2.Addr()):  0,
		})
	})
	t.Run("an errant transaction", func(t *testing.T) {
		r3.ErrantTransaction(t)
		m := f.afterRefresh(all)
		expect(t, m, map[string]float64{
			key("dbstate_errant_gtid", "instance", r3.Addr()): 1,
			key("dbstate_errant_gtid", "instance", r2.Addr()): 0,
		})
	})
	t.Run("a hung instance (SIGSTOP) is down after its timeout, and the others keep coming", func(t *testing.T) {
		pid := r2.Pid()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		resumed := false
		resume := func() {
			if !resumed {
				resumed = true
				syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		defer resume()
		m := f.afterRefresh(without(all, r2.Addr()), r2.Addr())
		expect(t, m, map[string]float64{key("dbstate_up", "instance", r2.Addr()): 0, key("dbstate_up", "instance", r1.Addr()): 1,
			key("dbstate_writable_instances", "cluster", cl): 1})
		// While it hangs, the others are read again and again: a hung read never holds them up.
		m = f.afterRefresh(without(all, r2.Addr()))
		if m[key("dbstate_up", "instance", r2.Addr())] != 0 {
			t.Errorf("hung instance up: %v", m)
		}
		if _, ok := m[key("dbstate_instance_info", "instance", r2.Addr(), "cluster", cl, "version", p.QueryString(t, "SELECT @@version"))]; !ok {
			t.Error("the down instance lost its info labels")
		}
		resume()
		f.afterRefresh(all)
	})
	parent := t // the new instance must outlive its subtest
	t.Run("a new replica appears without a restart", func(t *testing.T) {
		extra := dbtest.Start(parent, 1)[0]
		extra.ReplicateFrom(t, p)
		deadline := time.Now().Add(30 * time.Second)
		for f.get()[key("dbstate_up", "instance", extra.Addr())] != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("new replica not watched after 30s: %v", f.get())
			}
			time.Sleep(50 * time.Millisecond)
		}
		m := f.get()
		if m[key("dbstate_instance_role", "instance", extra.Addr(), "role", "replica")] != 1 || m[key("dbstate_instances")] != 5 {
			t.Errorf("new replica: %v", m)
		}
		all = append(all, extra.Addr())
	})
	t.Run("a killed instance", func(t *testing.T) {
		r3.Kill(t)
		m := f.afterRefresh(without(all, r3.Addr()), r3.Addr())
		expect(t, m, map[string]float64{
			key("dbstate_up", "instance", r3.Addr()): 0,
			key("dbstate_up", "instance", p.Addr()):  1,
			key("dbstate_up", "instance", r1.Addr()): 1,
			key("dbstate_up", "instance", r2.Addr()): 1,
		})
		if _, ok := m[key("dbstate_errant_gtid", "instance", r3.Addr())]; ok {
			t.Error("errant_gtid shown for a down instance")
		}
		// Rediscovery no longer finds r3 (its master no longer lists it); it stays watched, and down.
		m = f.afterRefresh(without(all, r3.Addr()))
		if m[key("dbstate_instances")] != 5 || m[key("dbstate_up", "instance", r3.Addr())] != 0 {
			t.Errorf("killed instance forgotten: %v", m)
		}
	})
}
