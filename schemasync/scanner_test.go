package schemasync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/refused"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// testScanConfig is the default scan configuration with a per-request timeout that keeps fault tests fast.
func testScanConfig() ScanConfig {
	c := DefaultScanConfig()
	c.Timeout = 2 * time.Second
	c.ReconfirmAfter = time.Hour // the cache tests reuse confirmations; TestScannerReconfirms sets its own
	return c
}

// serve starts an HTTP server on 127.0.0.1 for h and returns its base URL with a final "/".
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// scanOnce scans endpoint with a new scanner.
func scanOnce(t *testing.T, cfg ScanConfig, endpoint string) ScanResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return NewScanner(cfg, nil).Scan(ctx, "primary", endpoint)
}

func scan(t *testing.T, s *Scanner, endpoint string) ScanResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.Scan(ctx, "primary", endpoint)
}

// schemasOf is the Schemas map a scan should give: pairs of title and space-separated versions.
func schemasOf(pairs ...string) map[string][]Version {
	return sch(pairs...)
}

func assertSchemas(t *testing.T, res ScanResult, want map[string][]Version) {
	t.Helper()
	if res.Err != "" {
		t.Fatalf("scan of %s failed: %s", res.Endpoint, res.Err)
	}
	if res.Schemas == nil {
		t.Fatal("successful scan with nil Schemas")
	}
	if !reflect.DeepEqual(res.Schemas, want) {
		t.Fatalf("Schemas = %v, want %v", res.Schemas, want)
	}
}

func doc(title, version string) []byte { return schemarepo.Doc(title, version) }

func putAll(r *schemarepo.Repo, title string, versions ...string) {
	for _, v := range versions {
		r.Put(title, v, doc(title, v))
	}
}

func TestScannerLayouts(t *testing.T) {
	tests := []struct {
		name  string
		build func(r *schemarepo.Repo)
		want  map[string][]Version
	}{
		{"empty repository", func(r *schemarepo.Repo) {}, schemasOf()},
		{"nested titles", func(r *schemarepo.Repo) {
			putAll(r, "analytics/mediawiki/structured_task/article/link_suggestion_interaction", "1.0.0", "1.1.0")
			putAll(r, "mediawiki/page/change", "1.9.0", "1.10.0", "1.2.0")
			putAll(r, "test", "1.0.0")
		}, schemasOf(
			"analytics/mediawiki/structured_task/article/link_suggestion_interaction", "1.0.0 1.1.0",
			"mediawiki/page/change", "1.2.0 1.9.0 1.10.0",
			"test", "1.0.0")},
		{"title inside a title", func(r *schemarepo.Repo) {
			putAll(r, "a/b", "1.0.0")
			putAll(r, "a/b/c", "2.0.0")
		}, schemasOf("a/b", "1.0.0", "a/b/c", "2.0.0")},
		{"legacy json", func(r *schemarepo.Repo) {
			r.SetLegacy(true)
			putAll(r, "legacy/thing", "1.0.0", "1.9.0", "1.10.0")
		}, schemasOf("legacy/thing", "1.0.0 1.9.0 1.10.0")},
		{"pending version not counted", func(r *schemarepo.Repo) {
			putAll(r, "mediawiki/page/change", "1.0.0")
			r.PutPending("mediawiki/page/change", "1.1.0", doc("mediawiki/page/change", "1.1.0"))
			r.PutPending("only/pending", "1.0.0", doc("only/pending", "1.0.0"))
		}, schemasOf("mediawiki/page/change", "1.0.0")},
		{"stray files ignored", func(r *schemarepo.Repo) {
			putAll(r, "a/b/c", "1.0.0")
			r.PutFile("README.md", []byte("# readme\n"))
			r.PutFile("a/CHANGELOG.md", []byte("log\n"))
			r.PutFile("a/b/c/notes.txt", []byte("stray\n"))
			r.PutFile("a/b/c/foo.yaml", []byte("x: 1\n"))
			r.PutFile("a/b/c/v2.0.0", []byte("x\n"))
			r.PutFile("docs/guide/index.html", []byte("<html></html>\n"))
		}, schemasOf("a/b/c", "1.0.0")},
		{"synthetic", func(r *schemarepo.Repo) {
			for i := 0; i < 3; i++ {
				putAll(r, schemarepo.SyntheticTitle(i), "1.0.0", "1.1.0")
			}
		}, schemasOf(schemarepo.SyntheticTitle(0), "1.0.0 1.1.0", schemarepo.SyntheticTitle(1), "1.0.0 1.1.0",
			schemarepo.SyntheticTitle(2), "1.0.0 1.1.0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := schemarepo.New()
			tt.build(r)
			res := scanOnce(t, testScanConfig(), serve(t, r))
			assertSchemas(t, res, tt.want)
			if res.Repository != "primary" || res.Requests == 0 || res.Bytes == 0 || res.At.IsZero() || res.Seq == 0 {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// TestScannerHost scans a repository served under /repositories/<name>/jsonschema/ by a schema host.
func TestScannerHost(t *testing.T) {
	primary, secondary := schemarepo.New(), schemarepo.New()
	putAll(primary, "mediawiki/page/change", "1.0.0")
	secondary.SetLegacy(true)
	putAll(secondary, "legacy/thing", "1.0.0", "1.1.0")
	base := serve(t, schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": primary, "secondary": secondary}))
	assertSchemas(t, scanOnce(t, testScanConfig(), base+"repositories/primary/jsonschema/"),
		schemasOf("mediawiki/page/change", "1.0.0"))
	assertSchemas(t, scanOnce(t, testScanConfig(), base+"repositories/secondary/jsonschema/"),
		schemasOf("legacy/thing", "1.0.0 1.1.0"))
}

// fakeDir is a hand-written listing entry for handlers that are not a schemarepo.
type fakeEntry struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	MTime string `json:"mtime"`
	Size  *int64 `json:"size,omitempty"`
}

func fakeListing(entries ...fakeEntry) []byte {
	if entries == nil {
		entries = []fakeEntry{}
	}
	b, _ := json.Marshal(entries)
	return b
}

var fakeMTime = time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC).Format(http.TimeFormat)

func fakeDirEntry(name string) fakeEntry {
	return fakeEntry{Name: name, Type: "directory", MTime: fakeMTime}
}

func fakeFileEntry(name string) fakeEntry {
	n := int64(10)
	return fakeEntry{Name: name, Type: "file", MTime: fakeMTime, Size: &n}
}

// TestScannerConfirmation: a listed version counts only once its extensionless file answers 200.
func TestScannerConfirmation(t *testing.T) {
	tests := []struct {
		name    string
		entries []fakeEntry
		get     map[string]int // status of GET /t/<name>; absent: 200. HEAD always answers 200 (it lies).
		want    map[string][]Version
	}{
		{"yaml only", []fakeEntry{fakeFileEntry("1.0.0.yaml"), fakeFileEntry("1.0.0"), fakeFileEntry("1.1.0.yaml")},
			nil, schemasOf("t", "1.0.0")},
		{"json only", []fakeEntry{fakeFileEntry("1.0.0.json")}, nil, schemasOf()},
		{"extensionless listed, GET 404 while HEAD says 200", []fakeEntry{fakeFileEntry("1.0.0"), fakeFileEntry("1.1.0")},
			map[string]int{"1.1.0": 404}, schemasOf("t", "1.0.0")},
		{"GET 410", []fakeEntry{fakeFileEntry("1.0.0"), fakeFileEntry("1.1.0")},
			map[string]int{"1.1.0": 410}, schemasOf("t", "1.0.0")},
		{"GET 416: an empty file", []fakeEntry{fakeFileEntry("1.0.0"), fakeFileEntry("1.1.0")},
			map[string]int{"1.1.0": 416}, schemasOf("t", "1.0.0")},
		{"GET 206 to the ranged request", []fakeEntry{fakeFileEntry("1.0.0")},
			map[string]int{"1.0.0": 206}, schemasOf("t", "1.0.0")},
		{"dangling symlink", []fakeEntry{fakeFileEntry("1.0.0"), {Name: "1.1.0", Type: "other", MTime: fakeMTime}},
			nil, schemasOf("t", "1.0.0")},
		{"extensionless is a directory", []fakeEntry{fakeFileEntry("1.0.0"), fakeDirEntry("1.1.0")},
			nil, schemasOf("t", "1.0.0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gets atomic.Int64
			ep := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/":
					_, _ = w.Write(fakeListing(fakeDirEntry("t")))
				case r.URL.Path == "/t/":
					_, _ = w.Write(fakeListing(tt.entries...))
				case r.URL.Path == "/t/1.1.0/":
					_, _ = w.Write(fakeListing())
				case r.Method == http.MethodHead:
					w.WriteHeader(http.StatusOK)
				case strings.HasPrefix(r.URL.Path, "/t/"):
					gets.Add(1)
					if r.Header.Get("Range") != "bytes=0-0" {
						t.Errorf("confirmation without a one-byte Range: %q", r.Header.Get("Range"))
					}
					if code, ok := tt.get[strings.TrimPrefix(r.URL.Path, "/t/")]; ok {
						w.WriteHeader(code)
					}
				default:
					http.NotFound(w, r)
				}
			}))
			assertSchemas(t, scanOnce(t, testScanConfig(), ep), tt.want)
		})
	}
}

// hook wraps a handler: when on() is true and the request matches, fault answers it instead.
type hook struct {
	on    atomic.Bool
	match func(*http.Request) bool
	fault http.HandlerFunc
	next  http.Handler
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.on.Load() && h.match(r) {
		h.fault(w, r)
		return
	}
	h.next.ServeHTTP(w, r)
}

func faultRepo() *schemarepo.Repo {
	r := schemarepo.New()
	putAll(r, "a/b", "1.0.0", "1.1.0")
	putAll(r, "a/c/d", "1.0.0")
	putAll(r, "e", "2.0.0")
	return r
}

var faultRepoSchemas = schemasOf("a/b", "1.0.0 1.1.0", "a/c/d", "1.0.0", "e", "2.0.0")

func path(p string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.URL.Path == p }
}

// TestScannerFaults: every fault fails the endpoint's whole scan with a reason, and never gives a partial
// Schemas map. The same scanner scans the endpoint before (fine), during (faulty) and after (fine again).
func TestScannerFaults(t *testing.T) {
	bigListing := func(w http.ResponseWriter, r *http.Request) {
		var es []fakeEntry
		for i := 0; i < 50; i++ {
			es = append(es, fakeFileEntry(fmt.Sprintf("file%03d.txt", i)))
		}
		_, _ = w.Write(fakeListing(es...))
	}
	tests := []struct {
		name    string
		cfg     func(*ScanConfig)
		match   func(*http.Request) bool
		fault   http.HandlerFunc
		wantErr []string
	}{
		{"timeout on a listing", func(c *ScanConfig) { c.Timeout = 200 * time.Millisecond }, path("/a/c/"),
			func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}, []string{"/a/c/", "deadline exceeded"}},
		{"timeout on a confirmation", func(c *ScanConfig) { c.Timeout = 200 * time.Millisecond },
			func(r *http.Request) bool { return r.URL.Path == "/e/2.0.0" },
			func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}, []string{"GET", "/e/2.0.0"}},
		{"503 on a listing", nil, path("/a/c/d/"),
			func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusServiceUnavailable) },
			[]string{"/a/c/d/", "503"}},
		{"500 on the root listing", nil, path("/"),
			func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) },
			[]string{"500"}},
		{"404 on the root listing", nil, path("/"),
			func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, []string{"404"}},
		{"500 on a confirmation",
			nil, func(r *http.Request) bool { return r.URL.Path == "/a/b/1.1.0" },
			func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) },
			[]string{"GET", "/a/b/1.1.0", "500"}},
		{"502 on a confirmation",
			nil, func(r *http.Request) bool { return !strings.HasSuffix(r.URL.Path, "/") },
			func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) },
			[]string{"GET", "502"}},
		{"malformed listing JSON", nil, path("/a/b/"),
			func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`[{"name":"1.0.0","type":`)) },
			[]string{"/a/b/", "malformed"}},
		{"listing with a bad entry", nil, path("/a/"),
			func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`[{"name":"../etc","type":"directory"}]`))
			}, []string{"/a/", "invalid name"}},
		{"HTML page", nil, path("/"),
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html><head><title>Index of /</title></head><body><h1>Index of /</h1></body></html>"))
			}, []string{"malformed"}},
		{"null listing", nil, path("/a/"),
			func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("null")) },
			[]string{"/a/", "not a JSON array"}},
		{"redirect loop", nil, func(r *http.Request) bool { return r.URL.Path == "/a/" || r.URL.Path == "/loop/" },
			func(w http.ResponseWriter, r *http.Request) {
				to := "/loop/"
				if r.URL.Path == "/loop/" {
					to = "/a/"
				}
				http.Redirect(w, r, to, http.StatusFound)
			}, []string{"redirect"}},
		{"oversized body with Content-Length", func(c *ScanConfig) { c.MaxBodyBytes = 1000 }, path("/a/b/"),
			bigListing, []string{"/a/b/", "max_body_bytes"}},
		{"oversized chunked body", func(c *ScanConfig) { c.MaxBodyBytes = 1000 }, path("/a/b/"),
			func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte("[\n"))
				w.(http.Flusher).Flush()
				for i := 0; i < 50; i++ {
					_, _ = fmt.Fprintf(w, `{ "name":"f%03d", "type":"file", "size":1 },`+"\n", i)
					w.(http.Flusher).Flush()
				}
				_, _ = w.Write([]byte(`{ "name":"last", "type":"file", "size":1 }]`))
			}, []string{"/a/b/", "max_body_bytes"}},
		{"non-semver version-like name", nil, path("/a/b/"),
			func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(fakeListing(fakeFileEntry("1.0.0"), fakeFileEntry("1.0.0.yaml"), fakeFileEntry("1.2.yaml")))
			}, []string{"/a/b/", "1.2.yaml"}},
		{"leading-zero version", nil, path("/e/"),
			func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(fakeListing(fakeFileEntry("2.0.0"), fakeFileEntry("02.0.0")))
			}, []string{"/e/", "02.0.0"}},
		{"connection closed mid-response", nil, path("/a/c/d/"),
			func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n[{\"name\":"))
					conn.Close()
				}
			}, []string{"/a/c/d/"}},
		{"directory loop", func(c *ScanConfig) { c.MaxDepth = 6 },
			func(r *http.Request) bool {
				return strings.HasPrefix(r.URL.Path, "/a/c/") && strings.HasSuffix(r.URL.Path, "/")
			},
			func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(fakeListing(fakeDirEntry("self"), fakeFileEntry("README.md")))
			}, []string{"max_depth 6"}},
		{"too many directories", func(c *ScanConfig) { c.MaxDirectories = 20 },
			func(r *http.Request) bool {
				return strings.HasPrefix(r.URL.Path, "/a/") && strings.HasSuffix(r.URL.Path, "/")
			},
			func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/a/" {
					_, _ = w.Write(fakeListing())
					return
				}
				var es []fakeEntry
				for i := 0; i < 30; i++ {
					es = append(es, fakeDirEntry(fmt.Sprintf("d%02d", i)))
				}
				_, _ = w.Write(fakeListing(es...))
			}, []string{"max_directories 20"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testScanConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			cfg.FullRescanEvery = 1 // every scan asks the server everything
			h := &hook{match: tt.match, fault: tt.fault, next: faultRepo()}
			ep := serve(t, h)
			s := NewScanner(cfg, nil)
			assertSchemas(t, scan(t, s, ep), faultRepoSchemas)

			h.on.Store(true)
			start := time.Now()
			res := scan(t, s, ep)
			if res.Err == "" || res.OK() {
				t.Fatalf("faulty scan succeeded: %v", res.Schemas)
			}
			if res.Schemas != nil {
				t.Fatalf("failed scan carries a partial Schemas map %v (error %s)", res.Schemas, res.Err)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(res.Err, want) {
					t.Fatalf("error %q does not mention %q", res.Err, want)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("faulty scan took %s", d)
			}

			h.on.Store(false)
			assertSchemas(t, scan(t, s, ep), faultRepoSchemas)
		})
	}
}

func TestScannerConnectionRefused(t *testing.T) {
	ep := refused.URL(t) + "/"
	res := scanOnce(t, testScanConfig(), ep)
	if res.OK() || res.Schemas != nil {
		t.Fatalf("scan of a port that refuses connections: %+v", res)
	}
	if strings.Contains(res.Err, "http://") || !strings.Contains(res.Err, "refused") {
		t.Fatalf("error %q should say refused, without repeating the endpoint's URL (the observation names it)", res.Err)
	}
}

func TestScannerBadEndpoint(t *testing.T) {
	for _, ep := range []string{"http://127.0.0.1:1/no-slash", "http://[::1/", ""} {
		t.Run(ep, func(t *testing.T) {
			res := scanOnce(t, testScanConfig(), ep)
			if res.OK() || res.Schemas != nil || res.Requests != 0 {
				t.Fatalf("scan of %q: %+v", ep, res)
			}
		})
	}
}

func TestScannerCancelled(t *testing.T) {
	ep := serve(t, faultRepo())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := NewScanner(testScanConfig(), nil).Scan(ctx, "primary", ep)
	if res.OK() || res.Schemas != nil {
		t.Fatalf("cancelled scan: %+v", res)
	}
}

// inflight counts the requests a handler is serving at once.
type inflight struct {
	next      http.Handler
	delay     time.Duration
	mu        sync.Mutex
	cur, peak int
	shared    *inflight // also count here (a total across servers)
}

func (f *inflight) enter() {
	f.mu.Lock()
	f.cur++
	if f.cur > f.peak {
		f.peak = f.cur
	}
	f.mu.Unlock()
}

func (f *inflight) leave() {
	f.mu.Lock()
	f.cur--
	f.mu.Unlock()
}

func (f *inflight) max() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

func (f *inflight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.enter()
	defer f.leave()
	if f.shared != nil {
		f.shared.enter()
		defer f.shared.leave()
	}
	time.Sleep(f.delay)
	f.next.ServeHTTP(w, r)
}

func TestScannerConcurrencyBounds(t *testing.T) {
	tests := []struct {
		name                   string
		total, perEndpoint, ep int
	}{
		{"per endpoint", 32, 3, 2},
		{"total", 4, 3, 3},
		{"serial", 1, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testScanConfig()
			cfg.Concurrency, cfg.EndpointConcurrency = tt.total, tt.perEndpoint
			all := &inflight{}
			var counters []*inflight
			var eps []string
			for i := 0; i < tt.ep; i++ {
				c := &inflight{next: schemarepo.Synthetic(30, 2), delay: 2 * time.Millisecond, shared: all}
				counters = append(counters, c)
				eps = append(eps, serve(t, c))
			}
			s := NewScanner(cfg, nil)
			var wg sync.WaitGroup
			results := make([]ScanResult, len(eps))
			for i, ep := range eps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = scan(t, s, ep)
				}()
			}
			wg.Wait()
			for i, res := range results {
				if !res.OK() || len(res.Schemas) != 30 {
					t.Fatalf("endpoint %d: %s, %d schemas", i, res.Err, len(res.Schemas))
				}
				if m := counters[i].max(); m > tt.perEndpoint {
					t.Fatalf("endpoint %d saw %d requests in flight, above endpoint_concurrency %d", i, m, tt.perEndpoint)
				}
			}
			if m := all.max(); m > tt.total {
				t.Fatalf("%d requests in flight in total, above concurrency %d", m, tt.total)
			}
			t.Logf("peak in flight: total %d, per endpoint %d", all.max(), counters[0].max())
		})
	}
}

// agedRepo returns a synthetic repository whose modification times are an hour old, so that the scanner may
// trust its cache.
func agedRepo(n, m int) (*schemarepo.Repo, func(time.Time)) {
	var mu sync.Mutex
	now := time.Now().Add(-time.Hour)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	r := schemarepo.New()
	r.SetClock(clock)
	for i := 0; i < n; i++ {
		title := schemarepo.SyntheticTitle(i)
		for j := 0; j < m; j++ {
			v := fmt.Sprintf("1.%d.0", j)
			r.Put(title, v, doc(title, v))
		}
	}
	r.PutFile("README.md", []byte("readme\n"))
	return r, set
}

func TestScannerCache(t *testing.T) {
	r, setClock := agedRepo(40, 3)
	ep := serve(t, r)
	cfg := testScanConfig()
	cfg.FullRescanEvery = 1000
	s := NewScanner(cfg, nil)

	cold := scan(t, s, ep)
	if !cold.OK() || len(cold.Schemas) != 40 || cold.Reused != 0 {
		t.Fatalf("cold scan: %s, %d schemas, %d reused", cold.Err, len(cold.Schemas), cold.Reused)
	}
	warm := scan(t, s, ep)
	assertSchemas(t, warm, cold.Schemas)
	if warm.Requests*10 > cold.Requests || warm.Reused != 40 {
		t.Fatalf("warm scan sent %d requests (cold %d) and reused %d listings", warm.Requests, cold.Requests, warm.Reused)
	}
	if warm.Bytes*5 > cold.Bytes { // the non-leaf listings are always fetched
		t.Fatalf("warm scan read %d bytes, cold %d", warm.Bytes, cold.Bytes)
	}
	t.Logf("cold %d requests %d bytes; warm %d requests %d bytes", cold.Requests, cold.Bytes, warm.Requests, warm.Bytes)

	title := schemarepo.SyntheticTitle(7)
	want := func() map[string][]Version {
		out := map[string][]Version{}
		for k, v := range cold.Schemas {
			out[k] = v
		}
		return out
	}()

	// A new version, put now: found.
	setClock(time.Now())
	r.Put(title, "1.10.0", doc(title, "1.10.0"))
	want[title] = sch(title, "1.0.0 1.1.0 1.2.0 1.10.0")[title]
	assertSchemas(t, scan(t, s, ep), want)

	// Removed: gone.
	setClock(time.Now())
	r.Remove(title, "1.1.0")
	want[title] = sch(title, "1.0.0 1.2.0 1.10.0")[title]
	assertSchemas(t, scan(t, s, ep), want)

	// A whole title removed: gone.
	other := schemarepo.SyntheticTitle(12)
	setClock(time.Now())
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		r.Remove(other, v)
	}
	delete(want, other)
	assertSchemas(t, scan(t, s, ep), want)
}

// TestScannerRacyWindow: a change in the same second as the listing was fetched leaves the directory's mtime
// unchanged (nginx gives whole seconds). The next scan must not trust the cached listing.
func TestScannerRacyWindow(t *testing.T) {
	stamp := time.Now().Truncate(time.Second)
	r := schemarepo.New()
	r.SetClock(func() time.Time { return stamp }) // every change happens "in the same second"
	putAll(r, "a/b", "1.0.0")
	putAll(r, "c", "1.0.0")
	ep := serve(t, r)
	cfg := testScanConfig()
	cfg.FullRescanEvery = 1000
	s := NewScanner(cfg, nil)
	assertSchemas(t, scan(t, s, ep), schemasOf("a/b", "1.0.0", "c", "1.0.0"))
	putAll(r, "a/b", "1.1.0") // same mtime as before for a/b/
	assertSchemas(t, scan(t, s, ep), schemasOf("a/b", "1.0.0 1.1.0", "c", "1.0.0"))
	r.Remove("c", "1.0.0")
	putAll(r, "c", "2.0.0")
	assertSchemas(t, scan(t, s, ep), schemasOf("a/b", "1.0.0 1.1.0", "c", "2.0.0"))
}

// TestScannerPendingRelisted: a version listed before its file exists is relisted on the next scan even though
// the directory's mtime did not change, and counted once its file answers.
func TestScannerPendingRelisted(t *testing.T) {
	r, _ := agedRepo(2, 1)
	title := schemarepo.SyntheticTitle(1)
	r.PutPending(title, "1.1.0", doc(title, "1.1.0"))
	ep := serve(t, r)
	cfg := testScanConfig()
	cfg.FullRescanEvery = 1000
	s := NewScanner(cfg, nil)
	want := schemasOf(schemarepo.SyntheticTitle(0), "1.0.0", title, "1.0.0")
	assertSchemas(t, scan(t, s, ep), want)
	assertSchemas(t, scan(t, s, ep), want)
	r.Put(title, "1.1.0", doc(title, "1.1.0")) // the git pull finishes; the aged clock keeps the mtime
	want[title] = sch(title, "1.0.0 1.1.0")[title]
	assertSchemas(t, scan(t, s, ep), want)
}

func TestScannerFullRescanEvery(t *testing.T) {
	tests := []struct {
		every int
		full  []bool // per scan: whether it ignores the cache
	}{
		{1, []bool{true, true, true}},
		{3, []bool{true, false, false, true, false, false, true}},
		{10, []bool{true, false, false, false, false, false, false, false, false, false, true}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.every), func(t *testing.T) {
			r, _ := agedRepo(10, 2)
			ep := serve(t, r)
			cfg := testScanConfig()
			cfg.FullRescanEvery = tt.every
			s := NewScanner(cfg, nil)
			var cold int64
			for i, full := range tt.full {
				res := scan(t, s, ep)
				if !res.OK() || len(res.Schemas) != 10 {
					t.Fatalf("scan %d: %s", i+1, res.Err)
				}
				if i == 0 {
					cold = res.Requests
				}
				if gotFull := res.Reused == 0 && res.Requests == cold; gotFull != full {
					t.Fatalf("scan %d: %d requests, %d reused (cold %d); want full=%v", i+1, res.Requests, res.Reused,
						cold, full)
				}
			}
		})
	}
}

// TestScannerFailureKeepsCache: a failed scan leaves the cache of the last good one in place.
func TestScannerFailureKeepsCache(t *testing.T) {
	r, _ := agedRepo(20, 2)
	h := &hook{match: path("/synthetic/"), next: r,
		fault: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) }}
	ep := serve(t, h)
	cfg := testScanConfig()
	cfg.FullRescanEvery = 1000
	s := NewScanner(cfg, nil)
	cold := scan(t, s, ep)
	h.on.Store(true)
	if res := scan(t, s, ep); res.OK() || res.Schemas != nil {
		t.Fatalf("faulty scan: %+v", res)
	}
	h.on.Store(false)
	warm := scan(t, s, ep)
	assertSchemas(t, warm, cold.Schemas)
	if warm.Reused != 20 {
		t.Fatalf("after a failed scan, %d listings reused, want 20", warm.Reused)
	}
}

func TestScannerForget(t *testing.T) {
	r, _ := agedRepo(5, 1)
	ep := serve(t, r)
	cfg := testScanConfig()
	cfg.FullRescanEvery = 1000
	s := NewScanner(cfg, nil)
	scan(t, s, ep)
	s.Forget(map[string]bool{ep: true})
	if res := scan(t, s, ep); res.Reused != 5 {
		t.Fatalf("kept endpoint lost its cache: %d reused", res.Reused)
	}
	s.Forget(map[string]bool{})
	if res := scan(t, s, ep); res.Reused != 0 || !res.OK() {
		t.Fatalf("forgotten endpoint still cached: %d reused", res.Reused)
	}
}

func TestScanConfigValidate(t *testing.T) {
	if err := DefaultScanConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mut  func(*ScanConfig)
		want string
	}{
		{"timeout", func(c *ScanConfig) { c.Timeout = 0 }, "timeout"},
		{"concurrency", func(c *ScanConfig) { c.Concurrency = 0 }, "concurrency"},
		{"endpoint concurrency", func(c *ScanConfig) { c.EndpointConcurrency = -1 }, "endpoint_concurrency"},
		{"max body", func(c *ScanConfig) { c.MaxBodyBytes = 0 }, "max_body_bytes"},
		{"max depth", func(c *ScanConfig) { c.MaxDepth = 0 }, "max_depth"},
		{"max directories", func(c *ScanConfig) { c.MaxDirectories = 0 }, "max_directories"},
		{"full rescan", func(c *ScanConfig) { c.FullRescanEvery = 0 }, "full_rescan_every"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultScanConfig()
			tt.mut(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error about %s", err, tt.want)
			}
		})
	}
}

// TestScannerStateRollout runs the scanner and the state together over HTTP: a skewed rollout to 4 hosts, one
// of which lists the new version before its file is there, then goes down. Each scan must equal what the host
// serves, and S1 must hold at every step.
func TestScannerStateRollout(t *testing.T) {
	const title = "mediawiki/page/change"
	base := schemarepo.New()
	putAll(base, title, "1.0.0")
	putAll(base, "test/event", "1.0.0")
	var repos []*schemarepo.Repo
	var hooks []*hook
	var eps []string
	for i := 0; i < 4; i++ {
		r := base.Clone()
		h := &hook{match: func(*http.Request) bool { return true }, next: r,
			fault: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }}
		repos, hooks, eps = append(repos, r), append(hooks, h), append(eps, serve(t, h))
	}
	st := NewState([]Repository{{Name: "primary", Endpoints: eps}}, stMaxStale)
	s := NewScanner(testScanConfig(), nil)
	truth := groundTruth{}
	step := func(what, safe string, dirty, stale bool) {
		t.Helper()
		for i, ep := range eps {
			res := scan(t, s, ep)
			if res.OK() { // what the scan saw must be exactly what the host serves
				for _, ti := range repos[i].Titles() {
					var got []string
					for _, v := range res.Schemas[ti] {
						got = append(got, v.String())
					}
					if want := repos[i].Versions(ti); strings.Join(got, " ") != strings.Join(want, " ") {
						t.Fatalf("%s: host %d: scanned %s as %v, it serves %v", what, i, ti, got, want)
					}
				}
			}
			res.Observer = "n1"
			if !st.Observe(res.Observation, time.Now()) {
				t.Fatalf("%s: observation of host %d not recorded", what, i)
			}
			truth[ep] = map[string]truthSnap{"n1": {at: res.At, ok: res.OK(), schemas: res.Schemas}}
		}
		now := time.Now()
		v := st.View(now)
		checkS1(t, v, truth, now)
		sv, ok := v.Schema("primary", title)
		if !ok {
			t.Fatalf("%s: %s not in the view", what, title)
		}
		got := ""
		if sv.SafeVersion != nil {
			got = sv.SafeVersion.String()
		}
		if got != safe || sv.Dirty != dirty || sv.Stale != stale {
			t.Fatalf("%s: safe %q dirty %v stale %v; want %q %v %v (%q)", what, got, sv.Dirty, sv.Stale, safe, dirty,
				stale, sv.Reasons)
		}
	}
	step("start", "1.0.0", false, false)
	for i := 0; i < 3; i++ {
		putAll(repos[i], title, "1.1.0")
		step(fmt.Sprint("1.1.0 on ", i+1, " hosts"), "1.0.0", true, false)
	}
	repos[3].PutPending(title, "1.1.0", doc(title, "1.1.0"))
	step("1.1.0 listed on host 4 before its file", "1.0.0", true, false)
	putAll(repos[0], title, "1.2.0")
	hooks[3].on.Store(true)
	step("host 4 down", "1.0.0", true, true)
	putAll(repos[3], title, "1.1.0")
	step("host 4 still down", "1.0.0", true, true)
	hooks[3].on.Store(false)
	step("host 4 back with 1.1.0", "1.1.0", true, false)
	for i := 1; i < 4; i++ {
		putAll(repos[i], title, "1.2.0")
	}
	step("1.2.0 everywhere", "1.2.0", false, false)
	repos[2].Remove(title, "1.2.0")
	step("1.2.0 rolled back on host 3", "1.1.0", true, false)
}

// TestScannerEscapesNames: directory names that need escaping in a URL are fetched escaped, and reported by
// their real names: a stray directory named "issue #1" does not break the endpoint, and one named "a%2Fb" is
// not mistaken for a/b.
func TestScannerEscapesNames(t *testing.T) {
	for _, name := range []string{"issue #1", "what?", "50%", "a%2Fb", "space dir"} {
		t.Run(name, func(t *testing.T) {
			r := schemarepo.New()
			r.Put("a/b", "1.0.0", schemarepo.Doc("a/b", "1.0.0"))
			r.PutFile(name+"/readme.txt", []byte("stray"))
			res := scanOnce(t, DefaultScanConfig(), serve(t, r))
			if !res.OK() {
				t.Fatalf("scan failed: %s", res.Err)
			}
			if len(res.Schemas) != 1 || len(res.Schemas["a/b"]) != 1 {
				t.Errorf("schemas = %v, want only a/b 1.0.0", res.Schemas)
			}
		})
	}
	t.Run("a title that needs escaping", func(t *testing.T) {
		r := schemarepo.New()
		r.Put("odd name/x#y", "1.0.0", schemarepo.Doc("odd name/x#y", "1.0.0"))
		res := scanOnce(t, DefaultScanConfig(), serve(t, r))
		if !res.OK() || len(res.Schemas["odd name/x#y"]) != 1 {
			t.Errorf("schemas = %v (err %q), want odd name/x#y 1.0.0", res.Schemas, res.Err)
		}
	})
}

// TestScannerKeepsProgressOfAFailedScan: a scan that fails (here one slow directory answers 503; in a service,
// a cold scan cut off by the endpoint deadline) keeps the directories it did list in full, so the next scan
// starts from them instead of from nothing. The failed scan's observation itself stays failed.
func TestScannerKeepsProgressOfAFailedScan(t *testing.T) {
	r, _ := agedRepo(40, 3)
	bad := "/" + schemarepo.SyntheticTitle(39) + "/"
	var failing atomic.Bool
	failing.Store(true)
	// The slow directory answers only once every other directory's versions were confirmed (39 x 3 GETs of
	// extensionless files), however long the others take on a loaded machine.
	var confirms atomic.Int64
	othersDone := make(chan struct{})
	ep := serve(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if failing.Load() && req.URL.Path == bad {
			select {
			case <-othersDone:
			case <-req.Context().Done():
			}
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		r.ServeHTTP(w, req)
		if p := req.URL.Path; failing.Load() && !strings.HasSuffix(p, "/") && strings.HasPrefix(p, "/synthetic/") &&
			!strings.HasPrefix(p, bad) && confirms.Add(1) == 39*3 {
			close(othersDone)
		}
	}))
	cfg := testScanConfig()
	cfg.FullRescanEvery = 1000
	s := NewScanner(cfg, nil)

	failed := scan(t, s, ep)
	if failed.OK() || len(failed.Schemas) != 0 {
		t.Fatalf("the first scan must fail as a whole: err %q, %d schemas", failed.Err, len(failed.Schemas))
	}
	failing.Store(false)
	next := scan(t, s, ep)
	if !next.OK() || len(next.Schemas) != 40 {
		t.Fatalf("second scan: %s, %d schemas", next.Err, len(next.Schemas))
	}
	if next.Reused < 30 {
		t.Fatalf("the second scan reused %d listings: the failed scan's progress was thrown away", next.Reused)
	}
}
