package dbstate_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkSwitchoverWindow measures the write-unavailability window of a switchover on 1 primary + 3 replicas
// (loopback) under a writer at about 500 writes/s: the time from the last write acknowledged by the old primary to
// the first write acknowledged by the new one. It runs 5 switchovers, alternating p -> r1 -> p ..., and reports
// the median and max window and total switchover time. Run it with -benchtime 1x: it does its repetitions itself.
func BenchmarkSwitchoverWindow(b *testing.B) {
	const runs = 5
	tp := dbtest.PrimaryWithReplicas(b, 3)
	p, r1 := tp.Get("p"), tp.Get("r1")
	createAppAccounts(b, p)
	for _, r := range tp.Instances[1:] {
		r.WaitCaughtUp(b, p)
	}
	c := newClient(b)
	w := startWriter(b, "app", 500, tp.Instances...)
	w.waitAcks(b, 500)
	var windows, totals []time.Duration
	var rates []float64
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-4s %-18s %-18s %12s %12s %10s\n", "run", "from", "to", "window_ms", "total_ms", "writes/s")
	x, y := p, r1
	b.ResetTimer()
	for run := 1; run <= runs; run++ {
		before := len(w.Acks())
		rateStart := time.Now()
		w.waitAcks(b, 250)
		rate := float64(len(w.Acks())-before) / time.Since(rateStart).Seconds()
		start := time.Now()
		_, audit, err := switchover(b, c, x, y, dbstate.SwitchoverOptions{}, nil)
		total := time.Since(start)
		if err != nil {
			b.Fatalf("run %d: %v\n%s", run, err, audit)
		}
		w.waitAcks(b, 100)
		acks := w.Acks()[before:]
		win, ok := window(acks, x.Addr(), y.Addr())
		if !ok {
			b.Fatalf("run %d: no writes through both %s and %s", run, x.Name, y.Name)
		}
		windows, totals, rates = append(windows, win), append(totals, total), append(rates, rate)
		fmt.Fprintf(&table, "%-4d %-18s %-18s %12.1f %12.1f %10.0f\n", run, x.Name+" "+x.Addr(), y.Name+" "+y.Addr(), ms(win), ms(total), rate)
		x, y = y, x
	}
	b.StopTimer()
	w.Stop()
	for _, in := range tp.Instances { // x is the primary now
		if in != x {
			in.WaitCaughtUp(b, x)
		}
	}
	assertAcksEverywhere(b, w.Acks(), tp.Instances...)
	fmt.Fprintf(&table, "window median %.1f ms, max %.1f ms; total median %.1f ms, max %.1f ms\n",
		ms(median(windows)), ms(maxOf(windows)), ms(median(totals)), ms(maxOf(totals)))
	b.Log(table.String())
	b.ReportMetric(ms(median(windows)), "window_ms_median")
	b.ReportMetric(ms(maxOf(windows)), "window_ms_max")
	b.ReportMetric(ms(median(totals)), "total_ms_median")
	b.ReportMetric(ms(maxOf(totals)), "total_ms_max")
	sort.Float64s(rates)
	b.ReportMetric(rates[len(rates)/2], "writes_per_s_median")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDiscovery10 measures discovering a tree of 10 instances (a primary, 3 replicas, 2 replicas under each)
// from the primary: the median and max of 5 discoveries.
func BenchmarkDiscovery10(b *testing.B) {
	const runs = 5
	tp := dbtest.Build(b, "p p>a p>b p>c a>a1 a>a2 b>b1 b>b2 c>c1 c>c2")
	c := newClient(b)
	var ds []time.Duration
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-4s %8s %14s\n", "run", "found", "discovery_ms")
	b.ResetTimer()
	for run := 1; run <= runs; run++ {
		c.Close() // every run opens its connections afresh
		start := time.Now()
		topo, err := dbstate.Discover(context.Background(), c, []string{tp.Get("p").Addr()}, dbstate.DiscoverOptions{})
		d := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if len(topo.Instances) != 10 || len(topo.Problems) != 0 {
			b.Fatalf("found %d instances, problems %v", len(topo.Instances), topo.Problems)
		}
		ds = append(ds, d)
		fmt.Fprintf(&table, "%-4d %8d %14.1f\n", run, len(topo.Instances), ms(d))
	}
	b.StopTimer()
	fmt.Fprintf(&table, "discovery of 10 instances: median %.1f ms, max %.1f ms\n", ms(median(ds)), ms(maxOf(ds)))
	b.Log(table.String())
	b.ReportMetric(ms(median(ds)), "discovery_ms")
	b.ReportMetric(ms(maxOf(ds)), "discovery_ms_max")
	b.ReportMetric(0, "ns/op")
}
