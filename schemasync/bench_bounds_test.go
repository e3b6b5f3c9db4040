package schemasync_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/nginxtest"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

// BenchmarkRescanCost: what a rescan of one unchanged endpoint costs, in requests and response bytes, at 200
// and 5,000 schemas (5 versions each): cold (a new scanner), warm with every confirmation younger than
// reconfirm_after (listings of unchanged leaf directories and confirmations reused), and warm when every
// confirmation is due (each version re-confirmed by a one-byte ranged GET: the steady state at the defaults,
// where reconfirm_after = max_staleness/4 = scan_interval).
func BenchmarkRescanCost(b *testing.B) {
	for _, n := range []int{200, 5000} {
		b.Run(fmt.Sprintf("schemas=%d", n), func(b *testing.B) {
			repos := benchFleet(b, 1, 1, n, 5)
			cfg := schemasync.DefaultScanConfig()
			cfg.FullRescanEvery = 1 << 30
			var coldBytes int64
			measure := func(b *testing.B, s *schemasync.Scanner, warm bool) {
				if warm {
					scanAll(b, s, repos)
				}
				var req, by int64
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if !warm {
						s = schemasync.NewScanner(cfg, nil)
					}
					req, by = scanAll(b, s, repos)
				}
				b.ReportMetric(float64(req), "requests/scan")
				b.ReportMetric(float64(by), "bytes/scan")
				if !warm {
					coldBytes = by
				} else if coldBytes > 0 {
					b.ReportMetric(100*float64(by)/float64(coldBytes), "%cold-bytes")
				}
			}
			b.Run("cold", func(b *testing.B) { measure(b, nil, false) })
			b.Run("warm-confirmations-fresh", func(b *testing.B) {
				c := cfg
				c.ReconfirmAfter = time.Hour
				measure(b, schemasync.NewScanner(c, nil), true)
			})
			b.Run("warm-every-confirmation-due", func(b *testing.B) {
				c := cfg
				c.ReconfirmAfter = 0 // a Scanner on its own re-confirms every version on every scan
				measure(b, schemasync.NewScanner(c, nil), true)
			})
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// vmRSS is this process's resident memory (0 if /proc cannot tell).
func vmRSS() uint64 {
	rss, _, _ := procMemory(os.Getpid())
	return rss
}

// BenchmarkServiceMemory: the heap a service holds after a scan of 8 endpoints (4 hosts × 2 repositories) ×
// 5,000 schemas × 5 versions, and then with one hostile endpoint more that serves max_titles (20,000) titles.
// The in-process schema hosts are built before the first measurement, so the figures are the service's own.
func BenchmarkServiceMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		repos := benchFleet(b, 4, 2, 5000, 5)
		hostile := schemarepo.SyntheticAt(schemasync.DefaultScanConfig().MaxTitles, 1, time.Now().Add(-time.Hour))
		hsrv := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"hostile": hostile}))
		b.Cleanup(hsrv.Close)
		hostileRepo := []schemasync.RepositoryConfig{{Name: "hostile", Endpoints: []string{hsrv.URL + "/repositories/hostile/jsonschema/"}}}
		// The in-process hosts render their listings on first use: let a throwaway scanner make them do so.
		scanAll(b, schemasync.NewScanner(schemasync.DefaultScanConfig(), nil), append(append([]schemasync.RepositoryConfig(nil), repos...), hostileRepo...))
		before := heapInUse()
		cfg := schemasync.DefaultConfig()
		cfg.Cluster.NodeName = "bench"
		cfg.Repositories = repos
		cfg.MaxStaleness = time.Hour
		cfg.Scan.Timeout = time.Minute
		svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.ScanOnce(context.Background()); err != nil {
			b.Fatal(err)
		}
		if !svc.View().Consistent() {
			b.Fatal("the fleet is not consistent")
		}
		fleet := heapInUse()
		cfg.Repositories = append(cfg.Repositories, hostileRepo...)
		if err := svc.Reload(cfg); err != nil {
			b.Fatal(err)
		}
		if err := svc.ScanOnce(context.Background()); err != nil {
			b.Fatal(err)
		}
		withHostile := heapInUse()
		runtime.KeepAlive(svc)
		mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
		b.ReportMetric(mib(fleet-before), "MiB-8x5000")
		b.ReportMetric(float64(fleet-before)/(8*5000), "bytes/schema/endpoint")
		b.ReportMetric(mib(withHostile-fleet), "MiB-hostile-at-cap")
		b.ReportMetric(mib(vmRSS()), "MiB-RSS-process")
	}
}

// wrkResult is one wrk run's requests/s and latency percentiles in milliseconds.
type wrkResult struct{ rps, p50, p99 float64 }

// wrkCPUsEnv names the CPUs (a taskset list such as "1" or "2-3") that wrk runs on, when set: make bench sets
// it, and runs the benchmark process itself on the other CPUs (taskset -c 0), so that server and load
// generator do not share cores.
const wrkCPUsEnv = "EVENKEEL_BENCH_WRK_CPUS"

// wrkCPUs is the value of wrkCPUsEnv, checked: "" when unset.
func wrkCPUs(b *testing.B) string {
	v := os.Getenv(wrkCPUsEnv)
	if strings.Trim(v, "0123456789,-") != "" {
		b.Fatalf("%s=%q: want a CPU list such as 1 or 2-3", wrkCPUsEnv, v)
	}
	return v
}

// wrkRun runs wrk with 2 threads and 50 keep-alive connections for d against url, on the CPUs of wrkCPUsEnv
// if set.
func wrkRun(b *testing.B, url string, d time.Duration) wrkResult {
	args := []string{"wrk", "-t2", "-c50", "-d" + d.String(), "--latency", url}
	if cpus := wrkCPUs(b); cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v: %s", err, out)
	}
	var r wrkResult
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "50%":
			r.p50 = wrkMillis(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.p99 = wrkMillis(f[1])
		case len(f) >= 4 && f[0] == "Non-2xx":
			b.Fatalf("wrk got errors from %s:\n%s", url, out)
		}
	}
	if r.rps == 0 {
		b.Fatalf("no Requests/sec in wrk's output:\n%s", out)
	}
	return r
}

func wrkMillis(s string) float64 {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 0.001}, {"ms", 1}, {"s", 1000}, {"m", 60000}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f * u.ms
		}
	}
	return 0
}

// median of vs (which it sorts).
func median(vs []float64) float64 {
	sort.Float64s(vs)
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)/2]
}

// responseBytes is the size of url's whole answer as it comes off the wire: status line, headers and body.
func responseBytes(b *testing.B, url string) (head, body int) {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	dump, err := httputil.DumpResponse(resp, true)
	if err != nil {
		b.Fatal(err)
	}
	n := int(resp.ContentLength)
	return len(dump) - n, n
}

// BenchmarkAPIvsNginx: the safe-version lookup of one schema on a schemasync node, beside real nginx serving the
// same answer as a static file, on the same machine, with the same load generator (wrk: 2 threads, 50
// keep-alive connections, 5 s a run) in the same run. nginx runs with one worker and with two, and with
// keepalive_requests high enough that, like schemasync, it keeps every connection for the whole run.
// schemasync runs as in production: schemasync.Server on Service.Listen with the default API bounds, and Go's
// default GOMAXPROCS (the CPUs the process may use). wrk shares those CPUs with the server it loads, unless
// wrkCPUsEnv puts wrk on CPUs of its own (make bench runs it both ways). The same handler on net/http's own
// server (net/http in the table) shows what fasthttp gains. The servers are measured in turn,
// apiVsNginxRuns times, and the medians are reported (and printed as a table).
func BenchmarkAPIvsNginx(b *testing.B) {
	const apiVsNginxRuns, runFor = 3, 5 * time.Second
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Fatal("wrk not found: install the Debian package wrk (apt-get install wrk, or make deps)")
	}
	svc, addr, paths := apiNode(b)
	// The same handler on net/http's server with the same bounds: what the lookup costs without fasthttp.
	nethttpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	api := svc.Config().API
	nethttp := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: api.ReadHeaderTimeout, ReadTimeout: api.ReadTimeout,
		WriteTimeout: api.WriteTimeout, IdleTimeout: api.IdleTimeout, MaxHeaderBytes: 64 << 10}
	go func() { _ = nethttp.Serve(svc.Listen(nethttpLn)) }()
	b.Cleanup(func() { _ = nethttp.Close() })
	resp, err := http.Get("http://" + addr + paths[0])
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	dir := b.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "answer.json"), body, 0o644); err != nil {
		b.Fatal(err)
	}
	targets := []struct{ name, url string }{{"schemasync", "http://" + addr + paths[0]},
		{"net/http", "http://" + nethttpLn.Addr().String() + paths[0]}}
	workerCounts := []int{1, 2}
	if runtime.NumCPU() == 1 {
		workerCounts = []int{1} // the process has one CPU (make bench's second run): two workers there measure nothing
	}
	for _, workers := range workerCounts {
		ngx := nginxtest.StartWith(b, map[string]string{"static": dir}, nginxtest.Options{Workers: workers, KeepaliveRequests: 1 << 30})
		targets = append(targets, struct{ name, url string }{fmt.Sprintf("nginx-%dw", workers), ngx.URL + "/repositories/static/answer.json"})
	}
	for i := 0; i < b.N; i++ {
		rps, p50, p99 := make([][]float64, len(targets)), make([][]float64, len(targets)), make([][]float64, len(targets))
		for run := 0; run < apiVsNginxRuns; run++ {
			for t, tg := range targets {
				r := wrkRun(b, tg.url, runFor)
				rps[t], p50[t], p99[t] = append(rps[t], r.rps), append(p50[t], r.p50), append(p99[t], r.p99)
			}
		}
		var table strings.Builder
		cpus := fmt.Sprintf("servers and wrk share the %d CPUs", runtime.NumCPU())
		if c := wrkCPUs(b); c != "" {
			cpus = fmt.Sprintf("servers on %d CPU(s), wrk on CPU(s) %s", runtime.NumCPU(), c)
		}
		fmt.Fprintf(&table, "\nsafe-version lookup, wrk -t2 -c50 -d%s, median of %d runs; GOMAXPROCS %d; %s\n",
			runFor, apiVsNginxRuns, runtime.GOMAXPROCS(0), cpus)
		fmt.Fprintf(&table, "%-12s %12s %9s %9s %14s\n", "server", "requests/s", "p50 ms", "p99 ms", "answer bytes")
		var baseRPS, baseP99 float64
		for t, tg := range targets {
			mr, m50, m99 := median(rps[t]), median(p50[t]), median(p99[t])
			head, n := responseBytes(b, tg.url)
			fmt.Fprintf(&table, "%-12s %12.0f %9.2f %9.2f %7d + %-5d\n", tg.name, mr, m50, m99, head, n)
			b.ReportMetric(mr, tg.name+"-req/s")
			b.ReportMetric(m99, tg.name+"-p99-ms")
			if t == 0 {
				baseRPS, baseP99 = mr, m99
			} else if tg.name == "nginx-1w" {
				b.ReportMetric(baseRPS/mr, "throughput-vs-nginx-1w")
				b.ReportMetric(baseP99/m99, "p99-vs-nginx-1w")
			}
		}
		fmt.Fprint(os.Stdout, table.String())
	}
}
