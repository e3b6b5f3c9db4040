package schemasync

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAudit11ScannerOwnFetcherStaysOnOrigin: a Fetcher supplied by the caller may follow any redirect (a plain
// http.Client does). The scanner then still refuses an answer that came from another origin: the scan fails,
// saying so, and the other origin's listing never counts. Without the response check, only the default
// client's CheckRedirect would keep scans on their origin.
func TestAudit11ScannerOwnFetcherStaysOnOrigin(t *testing.T) {
	var elsewhere atomic.Int64
	repo := faultRepo()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		repo.ServeHTTP(w, r) // a whole, valid repository: taken, it would make a clean scan
	}))
	t.Cleanup(other.Close)
	ep := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	s := NewScanner(testScanConfig(), &http.Client{}) // follows up to 10 redirects, anywhere
	res := scan(t, s, ep)
	if res.OK() || !strings.Contains(res.Err, "another origin") {
		t.Fatalf("an answer from another origin was used: ok %v, err %q, schemas %v", res.OK(), res.Err, res.Schemas)
	}
	if elsewhere.Load() == 0 {
		t.Fatal("the test's client did not follow the redirect: it checks nothing")
	}
}

// TestAudit11ScannerRedactsEndpoint: a Scanner used on its own with an endpoint URL that carries credentials
// names the endpoint with *** in its result, and its error, so that neither the API nor metrics labels nor
// logs built from a ScanResult show the password; the credentials are still sent, in a header.
func TestAudit11ScannerRedactsEndpoint(t *testing.T) {
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		auth.Store(u + ":" + p)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	ep := strings.Replace(srv.URL, "http://", "http://reader:hunter2@", 1) + "/"
	res := scan(t, NewScanner(testScanConfig(), nil), ep)
	if got, _ := auth.Load().(string); got != "reader:hunter2" {
		t.Fatalf("credentials sent: %q", got)
	}
	if strings.Contains(res.Endpoint, "hunter2") || strings.Contains(res.Err, "hunter2") {
		t.Fatalf("the password shows in the result: endpoint %q, err %q", res.Endpoint, res.Err)
	}
	if !strings.Contains(res.Endpoint, "***@") {
		t.Fatalf("endpoint %q, want the credentials shown as ***", res.Endpoint)
	}
}

// TestAudit11ObservationDatedByOldestConfirmation: when a scan reuses confirmations (younger than
// reconfirm_after), the service dates the observation by the oldest of them, not by the scan's start: its
// age, and so its freshness, count from the last GET that confirmed a version. Dated by the scan's start, a
// version would count on a confirmation up to reconfirm_after older than max_staleness allows.
func TestAudit11ObservationDatedByOldestConfirmation(t *testing.T) {
	r, _ := agedRepo(3, 2)
	ep := serve(t, r)
	cfg := svcConfig(ep)
	cfg.Scan.FullRescanEvery = 1000
	cfg.Scan.ReconfirmAfter = 30 * time.Second
	clk := newFakeClock()
	s := newTestService(t, cfg, ServiceOptions{Now: clk.Now})
	s.mu.Lock()
	s.scanner.now = clk.Now // confirmations dated by the same clock
	s.mu.Unlock()
	t0 := clk.Now()
	scanNow(t, s)
	clk.Add(20 * time.Second)
	scanNow(t, s)
	e := endpointView(t, s.View(), ep)
	if e.State != EndpointOK || e.LastScan == nil {
		t.Fatalf("endpoint %s: %s", e.State, e.Reason)
	}
	if !e.LastScan.Equal(t0) {
		t.Fatalf("observation dated %s after the first scan, want the oldest confirmation it relies on (the first scan's start)",
			e.LastScan.Sub(t0))
	}
	if got := e.Observers[0].AgeSeconds; got < 20 {
		t.Fatalf("observation age %.1f s, want at least the 20 s of its oldest confirmation", got)
	}
	// Once reconfirm_after has passed, every version is confirmed again and the observation is as new as its scan.
	clk.Add(20 * time.Second)
	scanNow(t, s)
	if e := endpointView(t, s.View(), ep); e.LastScan == nil || !e.LastScan.Equal(t0.Add(40*time.Second)) {
		t.Fatalf("after reconfirm_after: last scan %v, want the scan's start", e.LastScan)
	}
}
