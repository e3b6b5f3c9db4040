package schemasync

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// TestScannerReconfirms: a version file that starts answering 404 or 403 while its listing entry stays
// unchanged (a host that keeps mtimes, a chmod, a broken symlink target) stops counting once its confirmation
// is older than reconfirm_after, and the scan reports how old the confirmations it reused are, so that the
// observation is dated by them.
func TestScannerReconfirms(t *testing.T) {
	for _, code := range []int{http.StatusNotFound, http.StatusForbidden} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			r, _ := agedRepo(3, 2)
			title := schemarepo.SyntheticTitle(1)
			h := &hook{match: path("/" + title + "/1.1.0"), next: r,
				fault: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }}
			ep := serve(t, h)
			cfg := testScanConfig()
			cfg.FullRescanEvery = 1000
			cfg.ReconfirmAfter = 300 * time.Millisecond
			s := NewScanner(cfg, nil)
			clk := newFakeClock() // the scans' own duration must not age the confirmations
			s.now = clk.Now
			cold := scan(t, s, ep)
			if !cold.OK() || len(cold.Schemas[title]) != 2 || cold.ConfirmedBefore != 0 {
				t.Fatalf("cold scan: %s %v, confirmed before %s", cold.Err, cold.Schemas, cold.ConfirmedBefore)
			}
			h.on.Store(true)
			clk.Add(cfg.ReconfirmAfter / 3)
			warm := scan(t, s, ep)
			if !warm.OK() || len(warm.Schemas[title]) != 2 || warm.ConfirmedBefore <= 0 || warm.Reconfirmed != 0 {
				t.Fatalf("warm scan within reconfirm_after: %s %v, confirmed before %s, %d reconfirmed", warm.Err,
					warm.Schemas[title], warm.ConfirmedBefore, warm.Reconfirmed)
			}
			clk.Add(cfg.ReconfirmAfter)
			later := scan(t, s, ep)
			if !later.OK() || len(later.Schemas[title]) != 1 || later.Reconfirmed == 0 {
				t.Fatalf("after reconfirm_after: %s %v, %d reconfirmed; want only 1.0.0", later.Err,
					later.Schemas[title], later.Reconfirmed)
			}
			// A 403 is a file its host refuses to serve (to EventGate too): not present, and said so. A 404 is
			// a file not there yet, as during a git pull: not present, and not worth a warning.
			if code == http.StatusForbidden && !strings.Contains(later.Warning, "403") ||
				code == http.StatusNotFound && later.Warning != "" {
				t.Fatalf("after reconfirm_after, HTTP %d: warning %q", code, later.Warning)
			}
			if later.ConfirmedBefore >= cfg.ReconfirmAfter {
				t.Fatalf("a reused confirmation is %s old, above reconfirm_after", later.ConfirmedBefore)
			}
		})
	}
	t.Run("zero means every scan", func(t *testing.T) {
		r, _ := agedRepo(3, 2)
		cfg := testScanConfig()
		cfg.FullRescanEvery, cfg.ReconfirmAfter = 1000, 0
		s := NewScanner(cfg, nil)
		ep := serve(t, r)
		scan(t, s, ep)
		if warm := scan(t, s, ep); warm.Reconfirmed != 6 || warm.ConfirmedBefore != 0 {
			t.Fatalf("reconfirmed %d of 6, confirmed before %s", warm.Reconfirmed, warm.ConfirmedBefore)
		}
	})
}

// TestScannerRedirects: a redirect within the endpoint's scheme, host and port is followed; one to another
// port, host or scheme is refused, and the error says so.
func TestScannerRedirects(t *testing.T) {
	other, elsewhere := elsewhereHost(t)
	repo := faultRepo()
	for _, tt := range []struct {
		name string
		to   func(r *http.Request) string
		ok   bool
	}{
		{"same origin", func(r *http.Request) string { return "/moved" + r.URL.Path }, true},
		{"another port", func(r *http.Request) string { return other.URL + r.URL.Path }, false},
		{"another scheme", func(r *http.Request) string { return "https://" + r.Host + r.URL.Path }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ep := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if p, ok := strings.CutPrefix(r.URL.Path, "/moved"); ok {
					r.URL.Path = p
					repo.ServeHTTP(w, r)
					return
				}
				http.Redirect(w, r, tt.to(r), http.StatusFound)
			}))
			res := scanOnce(t, testScanConfig(), ep)
			if tt.ok {
				assertSchemas(t, res, faultRepoSchemas)
				return
			}
			if res.OK() || !strings.Contains(res.Err, "another origin") {
				t.Fatalf("off-origin redirect: %+v", res)
			}
			if elsewhere.Load() != 0 {
				t.Fatal("a request reached the other origin")
			}
		})
	}
}

// churnHost is a hostile host: every listing names directories it never named before, and one of them always
// fails, so no scan ever succeeds.
type churnHost struct{ n atomic.Int64 }

func (h *churnHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		if strings.HasSuffix(r.URL.Path, "/bad/") {
			http.Error(w, "no", http.StatusBadGateway)
			return
		}
		_, _ = w.Write(fakeListing(fakeFileEntry("1.0.0"), fakeFileEntry("1.0.0.yaml")))
		return
	}
	gen := h.n.Add(1)
	es := []fakeEntry{fakeDirEntry("bad")}
	for i := 0; i < 200; i++ {
		es = append(es, fakeDirEntry(fmt.Sprintf("g%d-%s-%03d", gen, strings.Repeat("x", 200), i)))
	}
	_, _ = w.Write(fakeListing(es...))
}

// TestScannerCacheBoundedUnderChurn: 100 failed scans of a host whose listing changes every time keep the
// cache at what one scan lists, and the heap under 64 MiB.
func TestScannerCacheBoundedUnderChurn(t *testing.T) {
	ep := serve(t, &churnHost{})
	cfg := testScanConfig()
	cfg.FullRescanEvery = 1000
	s := NewScanner(cfg, nil)
	var ms runtime.MemStats
	for i := 0; i < 100; i++ {
		if res := scan(t, s, ep); res.OK() {
			t.Fatal("a scan of the churning host succeeded")
		}
		if n := s.cachedDirectories(ep); n > 202 {
			t.Fatalf("scan %d: %d directories cached, more than one listing names", i+1, n)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	const bound = 64 << 20
	if ms.HeapInuse > bound {
		t.Fatalf("heap in use %d MiB after 100 scans, above %d MiB", ms.HeapInuse>>20, bound>>20)
	}
	t.Logf("heap in use after 100 churning scans: %d MiB; %d directories cached", ms.HeapInuse>>20, s.cachedDirectories(ep))
}

// TestScannerTitleCap: an endpoint that serves more titles than max_titles fails with that reason.
func TestScannerTitleCap(t *testing.T) {
	cfg := testScanConfig()
	cfg.MaxTitles = 10
	res := scanOnce(t, cfg, serve(t, schemarepo.Synthetic(30, 1)))
	if res.OK() || !strings.Contains(res.Err, "max_titles 10") {
		t.Fatalf("30 titles with max_titles 10: %+v", res.Err)
	}
	cfg.MaxTitles = 30
	if res := scanOnce(t, cfg, serve(t, schemarepo.Synthetic(30, 1))); !res.OK() {
		t.Fatalf("30 titles with max_titles 30: %s", res.Err)
	}
}

// TestScannerReasonBounded: a directory name of a megabyte does not make a reason of a megabyte, and the
// reason does not repeat the endpoint's URL.
func TestScannerReasonBounded(t *testing.T) {
	long := strings.Repeat("n", 1<<20)
	ep := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			_, _ = w.Write(fakeListing(fakeDirEntry(long)))
			return
		}
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	res := scanOnce(t, testScanConfig(), ep)
	if res.OK() || len(res.Err) > MaxReasonBytes || strings.Contains(res.Err, ep) {
		t.Fatalf("reason of %d bytes: %.200s", len(res.Err), res.Err)
	}
}

// TestScannerWarningNamesTheFirstByPath: when several listed files refuse a GET, the warning counts them and
// names the first by path, the same in every scan, whichever the walking workers meet first (it named the
// first met, so that an endpoint's reason changed between scans, and a test that expected one of two
// refused files in it failed one run in three).
func TestScannerWarningNamesTheFirstByPath(t *testing.T) {
	r, _ := agedRepo(12, 2)
	h := &hook{match: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/1.1.0") }, next: r,
		fault: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }}
	h.on.Store(true)
	ep := serve(t, h)
	want := `12 listed version(s) not counted, their files refuse a GET: GET "/` + schemarepo.SyntheticTitle(0) + `/1.1.0": HTTP 403`
	for i := 0; i < 5; i++ {
		res := scan(t, NewScanner(testScanConfig(), nil), ep)
		if !res.OK() || !strings.HasPrefix(res.Warning, want) {
			t.Fatalf("scan %d: %s, warning %q, want it to start %q", i, res.Err, res.Warning, want)
		}
	}
}
