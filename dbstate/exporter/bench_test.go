package exporter_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/evenkeel/evenkeel/dbstate/exporter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func pct(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkExporterScrape measures HTTP scrapes of /metrics (loopback, promhttp) of an exporter watching a
// primary with 5 replicas and a desired-variables file of 10 variables: 200 scrapes with every instance healthy,
// then 200 with one replica hung by SIGSTOP (spread over its first read timeouts), and how stale the other
// instances' reads got while it hung. Run it with -benchtime 1x.
func BenchmarkExporterScrape(b *testing.B) {
	const scrapes = 200
	const timeout = time.Second
	const interval = 200 * time.Millisecond
	tp := dbtest.PrimaryWithReplicas(b, 5)
	c := dbstate.NewClient(dbstate.Credentials{User: dbtest.AdminUser, Password: dbtest.AdminPassword}, time.Second, nil)
	b.Cleanup(func() { c.Close() })
	reg := prometheus.NewRegistry()
	e, err := exporter.New(c, exporter.Config{Seeds: []string{tp.Get("p").Addr()}, RefreshInterval: interval, InstanceTimeout: timeout}, reg, nil)
	if err != nil {
		b.Fatal(err)
	}
	d, err := dbstate.ParseDesiredVars(strings.NewReader("variables: {max_connections: 400, slow_query_log: ON, long_query_time: 2s, wait_timeout: 1h, interactive_timeout: 1h, key_buffer_size: 2M, sql_mode: STRICT_TRANS_TABLES, optimizer_switch: mrr=on, net_read_timeout: 40s, max_allowed_packet: 32M}\n"))
	if err != nil {
		b.Fatal(err)
	}
	e.SetDesiredVars(d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	b.Cleanup(srv.Close)
	scrape := func() (time.Duration, string) {
		start := time.Now()
		resp, err := http.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return time.Since(start), string(body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !e.Ready() || strings.Count(func() string { _, s := scrape(); return s }(), "dbstate_up{") != 6 {
		if time.Now().After(deadline) {
			b.Fatal("not ready with 6 instances")
		}
		time.Sleep(20 * time.Millisecond)
	}
	staleness := func() time.Duration { // the oldest last read among the instances that answer
		m := samples(b, reg)
		worst := time.Duration(0)
		for k, v := range m {
			if strings.HasPrefix(k, "dbstate_instance_last_refresh_timestamp_seconds{") && !strings.Contains(k, tp.Get("r5").Addr()) {
				worst = max(worst, time.Since(time.Unix(0, int64(v*1e9))))
			}
		}
		return worst
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-34s %7s %8s %8s %8s %14s\n", "scrape of /metrics (6 instances)", "scrapes", "p50_ms", "p99_ms", "max_ms", "others_stale_ms")
	run := func(name, unit string) {
		var ds []time.Duration
		var stale time.Duration
		for range scrapes {
			d, body := scrape()
			if !strings.Contains(body, "dbstate_variable_drift{") {
				b.Fatalf("scrape without drift metrics:\n%s", body)
			}
			ds = append(ds, d)
			stale = max(stale, staleness())
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Fprintf(&table, "%-34s %7d %8.2f %8.2f %8.2f %14.0f\n", name, scrapes, msf(pct(ds, .5)), msf(pct(ds, .99)), msf(pct(ds, 1)), msf(stale))
		b.ReportMetric(msf(pct(ds, .5)), unit+"_p50_ms")
		b.ReportMetric(msf(pct(ds, 1)), unit+"_max_ms")
	}
	b.ResetTimer()
	run("all healthy", "healthy")
	hung := tp.Get("r5")
	pid := hung.Pid()
	syscall.Kill(pid, syscall.SIGSTOP)
	defer syscall.Kill(pid, syscall.SIGCONT)
	run("one hung (SIGSTOP)", "one_hung")
	m := samples(b, reg)
	if m[key("dbstate_up", "instance", hung.Addr())] != 0 {
		b.Fatalf("the hung instance is not down after %d scrapes", scrapes)
	}
	b.StopTimer()
	syscall.Kill(pid, syscall.SIGCONT)
	fmt.Fprintf(&table, "instance timeout %v, refresh interval %v; the hung instance was reported down (dbstate_up 0)\n", timeout, interval)
	b.Log(table.String())
	b.ReportMetric(0, "ns/op")
}
