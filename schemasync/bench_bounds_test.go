package schemasync_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

func vmRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
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

// wrkRun runs wrk with 2 threads and 50 connections for d against url and returns requests/s and the p99
// latency in milliseconds.
func wrkRun(b *testing.B, url string, d time.Duration) (float64, float64) {
	out, err := exec.Command("wrk", "-t2", "-c50", "-d"+d.String(), "--latency", url).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v: %s", err, out)
	}
	var rps, p99 float64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "99%":
			p99 = wrkMillis(f[1])
		}
	}
	if rps == 0 {
		b.Fatalf("no Requests/sec in wrk's output:\n%s", out)
	}
	return rps, p99
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

// BenchmarkAPIvsNginx: the safe-version lookup of one schema on a schemasync node, beside real nginx (one
// worker) serving the same answer as a static file, on the same machine, with the same load generator (wrk:
// 2 threads, 50 keep-alive connections, 5 s each) in the same run.
func BenchmarkAPIvsNginx(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Fatal("wrk not found: install the Debian package wrk (apt-get install wrk, or make deps)")
	}
	addr, paths := apiNode(b)
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
	ngx := nginxtest.Start(b, map[string]string{"static": dir})
	for i := 0; i < b.N; i++ {
		srps, sp99 := wrkRun(b, "http://"+addr+paths[0], 5*time.Second)
		nrps, np99 := wrkRun(b, ngx.URL+"/repositories/static/answer.json", 5*time.Second)
		b.ReportMetric(srps, "schemasync-req/s")
		b.ReportMetric(sp99, "schemasync-p99-ms")
		b.ReportMetric(nrps, "nginx-req/s")
		b.ReportMetric(np99, "nginx-p99-ms")
		b.ReportMetric(srps/nrps, "throughput-ratio")
	}
}
