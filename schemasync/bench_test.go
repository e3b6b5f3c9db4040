package schemasync_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

// benchFleet starts `hosts` loopback HTTP hosts, each serving `repos` synthetic repositories of n schemas ×
// m versions, with contents pulled an hour ago (see schemarepo.Fleet).
func benchFleet(b *testing.B, hosts, repos, n, m int) []schemasync.RepositoryConfig {
	b.Helper()
	var cfgs []schemasync.RepositoryConfig
	for r, eps := range schemarepo.Fleet(b, hosts, repos, n, m) {
		cfgs = append(cfgs, schemasync.RepositoryConfig{Name: fmt.Sprintf("repo%d", r), Endpoints: eps})
	}
	return cfgs
}

// scanAll scans every endpoint concurrently, as a service round does, and sums the costs.
func scanAll(b *testing.B, s *schemasync.Scanner, repos []schemasync.RepositoryConfig) (requests, bytes int64) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range repos {
		for _, e := range r.Endpoints {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := s.Scan(context.Background(), r.Name, e)
				if !res.OK() {
					b.Errorf("scan of %s failed: %s", e, res.Err)
				}
				mu.Lock()
				requests += res.Requests
				bytes += res.Bytes
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return requests, bytes
}

// BenchmarkScan: 2 repositories × 4 hosts (8 endpoints), 200 schemas × 5 versions each, over loopback HTTP.
// cold is a full scan by a new scanner; warm is a rescan of unchanged endpoints.
func BenchmarkScan(b *testing.B) {
	repos := benchFleet(b, 4, 2, 200, 5)
	cfg := schemasync.DefaultScanConfig()
	cfg.FullRescanEvery = 1 << 30         // measure the cache alone; production default rescans fully every 10th scan
	cfg.ReconfirmAfter = 30 * time.Second // a service's default (max_staleness/4): the warm rescans reuse confirmations; see BenchmarkRescanCost
	var coldBytes int64
	b.Run("cold", func(b *testing.B) {
		var req, by int64
		for i := 0; i < b.N; i++ {
			req, by = scanAll(b, schemasync.NewScanner(cfg, nil), repos)
		}
		coldBytes = by
		b.ReportMetric(float64(req), "requests/scan")
		b.ReportMetric(float64(by), "bytes/scan")
	})
	b.Run("warm", func(b *testing.B) {
		s := schemasync.NewScanner(cfg, nil)
		scanAll(b, s, repos)
		b.ResetTimer()
		var req, by int64
		for i := 0; i < b.N; i++ {
			req, by = scanAll(b, s, repos)
		}
		b.ReportMetric(float64(req), "requests/scan")
		b.ReportMetric(float64(by), "bytes/scan")
		if coldBytes > 0 {
			b.ReportMetric(100*float64(by)/float64(coldBytes), "%cold-bytes")
		}
	})
}

// BenchmarkScanGrowth: one endpoint's cold scan as the number of schemas grows (5 versions each).
func BenchmarkScanGrowth(b *testing.B) {
	for _, n := range []int{200, 1000, 5000} {
		b.Run(fmt.Sprintf("schemas=%d", n), func(b *testing.B) {
			repos := benchFleet(b, 1, 1, n, 5)
			cfg := schemasync.DefaultScanConfig()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				scanAll(b, schemasync.NewScanner(cfg, nil), repos)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/schema")
		})
	}
}

// apiNode starts a node that knows 400 schemas on 8 endpoints, serves its API on loopback with the production
// server (schemasync.Server on Service.Listen, the default API bounds), and returns its address and the
// request paths of its schemas.
func apiNode(b *testing.B) (svc *schemasync.Service, addr string, paths []string) {
	b.Helper()
	repos := benchFleet(b, 4, 2, 200, 5)
	cfg := schemasync.DefaultConfig()
	cfg.Repositories = repos
	cfg.MaxStaleness = time.Hour
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.ScanOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	// Served as cmd/schemasync serves it: the production server, its bounds, and the connection limit.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := schemasync.Server(cfg.API, svc.Handler())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(svc.Listen(ln)) }()
	b.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; err != nil {
			b.Errorf("serving the API: %v", err)
		}
	})
	for i := 0; i < 400; i++ {
		paths = append(paths, fmt.Sprintf("/v1/repositories/repo%d/schemas/%s", i%2, schemarepo.SyntheticTitle(i/2)))
	}
	return svc, ln.Addr().String(), paths
}

// rawClient is one keep-alive HTTP/1.1 connection driven by hand: a lean load generator that allocates nothing
// per request, so that on a small machine the client (which shares the process, and so the garbage collector,
// with the server it measures) neither starves the server nor adds its own GC pauses to the latencies.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
	req  []byte
}

func dialRaw(b *testing.B, addr string) *rawClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &rawClient{conn: c, r: bufio.NewReaderSize(c, 16<<10), req: make([]byte, 0, 512)}
}

// get sends GET path and reads the whole answer: a status line, headers with a Content-Length (net/http sets
// one for small bodies written at once), and the body.
func (c *rawClient) get(path string) error {
	c.req = append(append(append(c.req[:0], "GET "...), path...), " HTTP/1.1\r\nHost: bench\r\n\r\n"...)
	if _, err := c.conn.Write(c.req); err != nil {
		return err
	}
	status, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(status) < 12 || string(status[9:12]) != "200" {
		return fmt.Errorf("status line %q", status)
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		const cl = "content-length:"
		if len(line) > len(cl) && bytes.EqualFold(line[:len(cl)], []byte(cl)) {
			length = 0
			for _, ch := range bytes.TrimSpace(line[len(cl):]) {
				length = length*10 + int(ch-'0')
			}
		}
	}
	if length < 0 {
		return errors.New("answer without Content-Length")
	}
	_, err = c.r.Discard(length)
	return err
}

func percentile(all []time.Duration, p float64) float64 {
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) == 0 {
		return 0
	}
	return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000
}

// BenchmarkAPILookup measures GET /v1/repositories/{repo}/schemas/{title} over loopback from 50 concurrent
// keep-alive connections, two ways:
//   - max: closed loop, every client sends its next request as soon as the last answer arrives: the most
//     requests/s the node answers (latency there is queueing: 50 clients / throughput);
//   - rate=20000: open loop at a constant 20,000 requests/s offered, latency counted from when each request
//     was due (not when it was sent), so a stall is not hidden (no coordinated omission).
func BenchmarkAPILookup(b *testing.B) {
	const clients = 50
	_, addr, paths := apiNode(b)
	b.Run("max", func(b *testing.B) {
		conns := make([]*rawClient, clients)
		for i := range conns {
			conns[i] = dialRaw(b, addr)
		}
		lat := make([][]time.Duration, clients)
		for c := range lat {
			lat[c] = make([]time.Duration, 0, b.N/clients+1)
		}
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			n := b.N / clients
			if c < b.N%clients {
				n++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(c)))
				for i := 0; i < n; i++ {
					t0 := time.Now()
					if err := conns[c].get(paths[rng.Intn(len(paths))]); err != nil {
						b.Error(err)
						return
					}
					lat[c] = append(lat[c], time.Since(t0))
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		var all []time.Duration
		for _, l := range lat {
			all = append(all, l...)
		}
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
		b.ReportMetric(percentile(all, 0.50), "p50-ms")
		b.ReportMetric(percentile(all, 0.99), "p99-ms")
	})
	b.Run("rate=20000", func(b *testing.B) {
		const rate, dur = 20000, 3 * time.Second
		conns := make([]*rawClient, clients)
		for i := range conns {
			conns[i] = dialRaw(b, addr)
		}
		for i := 0; i < b.N; i++ {
			lat := make([][]time.Duration, clients)
			for c := range lat {
				lat[c] = make([]time.Duration, 0, int(dur.Seconds()*rate)/clients+1)
			}
			interval := time.Duration(clients) * time.Second / rate // each client's share of the rate
			start := time.Now()
			var wg sync.WaitGroup
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewSource(int64(c)))
					due := start.Add(time.Duration(c) * interval / clients)
					for due.Before(start.Add(dur)) {
						if d := time.Until(due); d > 0 {
							time.Sleep(d)
						}
						if err := conns[c].get(paths[rng.Intn(len(paths))]); err != nil {
							b.Error(err)
							return
						}
						lat[c] = append(lat[c], time.Since(due))
						due = due.Add(interval)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
			b.ReportMetric(percentile(all, 0.50), "p50-ms")
			b.ReportMetric(percentile(all, 0.99), "p99-ms")
		}
	})
}
