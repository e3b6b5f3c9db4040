package gossip_test

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
	"github.com/prometheus/client_golang/prometheus"
)

func pct(ds []time.Duration, p float64) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[int(float64(len(s)-1)*p)].Microseconds()) / 1000
}

// BenchmarkPropagation: N nodes on real loopback sockets, default gossip timings; only node0 scans. Each trial changes an endpoint,
// node0 scans, and the time from the end of that scan to the moment the last node's view (what its API serves)
// shows the change is one sample. 20 trials per size.
func BenchmarkPropagation(b *testing.B) {
	for _, size := range []int{3, 10, 30} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			const title = "mediawiki/page/change"
			repos, eps := startHosts(b, 2)
			scanFrom := map[string][]string{eps[0]: {"node0"}, eps[1]: {"node0"}}
			nodes := startCluster(b, size, eps, false, same(nodeOpts{scanFrom: scanFrom, defaults: true}))
			ctx := context.Background()
			for _, n := range nodes {
				_ = n.svc.ScanOnce(ctx)
			}
			waitAllSafe(b, nodes, title, "1.1.0")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var samples []time.Duration
				for trial := 0; trial < 20; trial++ {
					v := fmt.Sprintf("1.%d.0", 2+trial+20*i)
					for _, r := range repos {
						r.Put(title, v, schemarepo.Doc(title, v))
					}
					if err := nodes[0].svc.ScanOnce(ctx); err != nil {
						b.Fatal(err)
					}
					t0 := time.Now()
					pending := map[int]bool{}
					for j := 1; j < size; j++ {
						pending[j] = true
					}
					for len(pending) > 0 && time.Since(t0) < 30*time.Second {
						for j := range pending {
							if safeOf(nodes[j], title) == v {
								delete(pending, j)
							}
						}
						time.Sleep(time.Millisecond)
					}
					if len(pending) > 0 {
						b.Fatalf("%d nodes never saw %s", len(pending), v)
					}
					samples = append(samples, time.Since(t0))
				}
				b.ReportMetric(pct(samples, 0.5), "p50-ms")
				b.ReportMetric(pct(samples, 0.99), "p99-ms")
			}
		})
	}
}

// BenchmarkDetection: 5 nodes, each scanning every endpoint every scan_interval. Each trial changes one
// endpoint at a random moment; a sample is the time until every node reports the schema dirty. 5 trials per
// interval.
func BenchmarkDetection(b *testing.B) {
	for _, interval := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		b.Run(fmt.Sprintf("scan_interval=%s", interval), func(b *testing.B) {
			const title = "mediawiki/page/change"
			repos, eps := startHosts(b, 2)
			nodes := startCluster(b, 5, eps, true, same(nodeOpts{interval: interval, stale: 10 * interval, defaults: true}))
			waitAllSafe(b, nodes, title, "1.1.0")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var samples []time.Duration
				for trial := 0; trial < 5; trial++ {
					time.Sleep(time.Duration(trial+1) * interval / 7) // a different phase each trial
					v := fmt.Sprintf("1.%d.0", 2+trial+5*i)
					t0 := time.Now()
					repos[0].Put(title, v, schemarepo.Doc(title, v))
					eventually(b, 30*time.Second, "every node reports dirty", func() bool {
						for _, n := range nodes {
							sv, ok := n.svc.View().Schema("primary", title)
							if !ok || !sv.Dirty {
								return false
							}
						}
						return true
					})
					samples = append(samples, time.Since(t0))
					repos[1].Put(title, v, schemarepo.Doc(title, v)) // complete the rollout
					eventually(b, 30*time.Second, "every node clean again", func() bool {
						for _, n := range nodes {
							if sv, ok := n.svc.View().Schema("primary", title); !ok || sv.Dirty {
								return false
							}
						}
						return true
					})
				}
				b.ReportMetric(pct(samples, 0.5), "p50-ms")
				b.ReportMetric(pct(samples, 1), "max-ms")
			}
		})
	}
}

// BenchmarkClusterCost: 10 nodes in one process, 8 endpoints (2 repositories × 4 hosts), 1,000 schemas × 5
// versions each, every node scanning every endpoint every 5s, measured over 20s after the first scans: CPU
// and heap per node, and gossip plus content-fetch bytes per second per node.
func BenchmarkClusterCost(b *testing.B) {
	const nodesN, measure = 10, 20 * time.Second
	var repos []schemasync.RepositoryConfig
	for r, eps := range schemarepo.Fleet(b, 4, 2, 1000, 5) {
		repos = append(repos, schemasync.RepositoryConfig{Name: fmt.Sprintf("repo%d", r), Endpoints: eps})
	}
	regs := make([]*prometheus.Registry, nodesN)
	nodes := startCluster(b, nodesN, nil, true, func(i int) nodeOpts {
		regs[i] = prometheus.NewRegistry()
		return nodeOpts{repos: repos, reg: regs[i], interval: 5 * time.Second, stale: 30 * time.Second, defaults: true}
	})
	// Steady state: every node has a fresh successful scan of every endpoint. Ten nodes' first, cold scans share
	// this machine's cores, and some run into the endpoint deadline before finishing; what each completed is
	// kept, so the next rounds finish.
	start := time.Now()
	eventually(b, 180*time.Second, "every node sees every endpoint up", func() bool {
		for _, n := range nodes {
			if !n.svc.Ready() {
				return false
			}
			for _, e := range n.svc.View().Endpoints {
				if e.State != schemasync.EndpointOK {
					return false
				}
			}
		}
		return true
	})
	b.Logf("steady state after %s", time.Since(start).Round(time.Second))
	gossipBytes := func() float64 {
		total := 0.0
		for _, r := range regs {
			mfs, _ := r.Gather()
			for _, mf := range mfs {
				switch mf.GetName() {
				case "schemasync_gossip_bytes_total", "schemasync_content_fetch_bytes_total":
					for _, m := range mf.GetMetric() {
						sent := mf.GetName() == "schemasync_content_fetch_bytes_total"
						for _, l := range m.GetLabel() {
							sent = sent || (l.GetName() == "direction" && l.GetValue() == "sent")
						}
						if sent {
							total += m.GetCounter().GetValue()
						}
					}
				}
			}
		}
		return total
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bytes0, cpu0, t0 := gossipBytes(), cpu(), time.Now()
		time.Sleep(measure)
		elapsed := time.Since(t0).Seconds()
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric((cpu()-cpu0).Seconds()/elapsed/nodesN*100, "%cpu/node")
		b.ReportMetric(float64(ms.HeapInuse)/nodesN/(1<<20), "heap-MiB/node")
		b.ReportMetric((gossipBytes()-bytes0)/elapsed/nodesN, "gossip-B/s/node")
	}
}

// waitAllSafe waits (up to a minute) until every node reports v as title's safe version.
func waitAllSafe(b *testing.B, nodes []*testNode, title, v string) {
	b.Helper()
	eventually(b, 60*time.Second, "all nodes agree", func() bool {
		for _, n := range nodes {
			if safeOf(n, title) != v {
				return false
			}
		}
		return true
	})
}
