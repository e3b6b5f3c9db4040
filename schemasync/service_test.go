package schemasync

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/internal/syncbuf"
)

// fakeClock is a service clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: stT0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// svcConfig is a single-node configuration for the endpoints, with test scan bounds.
func svcConfig(eps ...string) Config {
	cfg := DefaultConfig()
	cfg.Cluster.NodeName = "n1"
	cfg.ScanInterval = time.Second
	cfg.MaxStaleness = time.Minute
	cfg.Scan = testScanConfig()
	cfg.Scan.ReconfirmAfter = 0 // a quarter of max_staleness
	cfg.Scan.Timeout = time.Second
	cfg.Repositories = []RepositoryConfig{{Name: "primary", Endpoints: eps}}
	return cfg
}

func newTestService(t *testing.T, cfg Config, opts ServiceOptions) *Service {
	t.Helper()
	s, err := NewService(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func scanNow(t *testing.T, s *Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
}

func endpointView(t *testing.T, v *View, url string) EndpointView {
	t.Helper()
	for _, e := range v.Endpoints {
		if e.URL == url {
			return e
		}
	}
	t.Fatalf("endpoint %s not in the view", url)
	return EndpointView{}
}

// TestServiceDatesObservationsByScanStart: beside a slow host, a fast host's observation is dated by when its
// scan started (so its age is never under-reported), and recorded as soon as its scan ends, while the slow
// host's scan is still running.
func TestServiceDatesObservationsByScanStart(t *testing.T) {
	clk := newFakeClock()
	release := make(chan struct{})
	slow := &hook{match: func(*http.Request) bool { return true }, next: faultRepo(),
		fault: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
			clk.Add(3 * time.Second) // each slow answer takes 3 s of the service's clock
			faultRepo().ServeHTTP(w, r)
		}}
	slow.on.Store(true)
	fast, slowURL := serve(t, faultRepo()), serve(t, slow)
	cfg := svcConfig(fast, slowURL)
	cfg.Scan.Timeout = 10 * time.Second
	s := newTestService(t, cfg, ServiceOptions{Now: clk.Now})

	done := make(chan error, 1)
	go func() { done <- s.ScanOnce(context.Background()) }()
	deadline := time.Now().Add(4 * time.Second)
	for endpointView(t, s.View(), fast).State != EndpointOK {
		if time.Now().After(deadline) {
			t.Fatal("the fast endpoint's observation was not recorded while the slow one was still scanning")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Ready() {
		t.Fatal("ready before the first round completed")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Fatal("not ready after the first round")
	}
	v := s.View()
	if !clk.Now().After(stT0.Add(5 * time.Second)) {
		t.Fatalf("the slow host did not move the clock: %s", clk.Now())
	}
	for _, url := range []string{fast, slowURL} {
		e := endpointView(t, v, url)
		if e.State != EndpointOK || e.LastScan == nil || !e.LastScan.Equal(stT0) {
			t.Errorf("%s: state %s last_scan %v, want ok and the round's start %s", url, e.State, e.LastScan, stT0)
		}
		if age := e.Observers[0].AgeSeconds; age < clk.Now().Sub(stT0).Seconds() {
			t.Errorf("%s: age %.1fs, under the %.1fs since its scan started", url, age, clk.Now().Sub(stT0).Seconds())
		}
	}
}

// TestServiceEndpointDeadline: a host that answers each request just under the per-request timeout, over many
// directories, does not stall the round: its scan ends at the endpoint deadline, it is unknown with a reason
// that names the deadline, and the others are recorded and fine.
func TestServiceEndpointDeadline(t *testing.T) {
	big := schemarepo.New()
	for i := 0; i < 40; i++ {
		putAll(big, fmt.Sprintf("t%02d", i), "1.0.0")
	}
	slow := &hook{match: func(*http.Request) bool { return true }, next: big,
		fault: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(150 * time.Millisecond):
				big.ServeHTTP(w, r)
			case <-r.Context().Done():
			}
		}}
	slow.on.Store(true)
	fast, slowURL := serve(t, faultRepo()), serve(t, slow)
	cfg := svcConfig(fast, slowURL)
	cfg.Scan.Timeout = time.Second
	cfg.Scan.EndpointConcurrency = 2
	s := newTestService(t, cfg, ServiceOptions{EndpointTimeout: 500 * time.Millisecond})
	start := time.Now()
	scanNow(t, s)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the round took %s, past the endpoint deadline of 500ms", took)
	}
	v := s.View()
	e := endpointView(t, v, slowURL)
	if e.State != EndpointUnknown || !strings.Contains(e.Reason, "deadline of 500ms") {
		t.Errorf("slow endpoint: state %s reason %q, want unknown, naming the deadline of 500ms", e.State, e.Reason)
	}
	if e := endpointView(t, v, fast); e.State != EndpointOK {
		t.Errorf("fast endpoint: %s %s", e.State, e.Reason)
	}
	if !s.Ready() {
		t.Error("not ready after a complete round")
	}
}

func TestServiceEndpointTimeoutDefault(t *testing.T) {
	tests := []struct {
		interval, stale, want time.Duration
	}{
		{30 * time.Second, 2 * time.Minute, time.Minute},
		{30 * time.Second, 35 * time.Second, 30 * time.Second},
		{100 * time.Millisecond, 5 * time.Second, 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		cfg := svcConfig("http://h.test/")
		cfg.ScanInterval, cfg.MaxStaleness = tt.interval, tt.stale
		s := newTestService(t, cfg, ServiceOptions{})
		if got := s.endpointTimeoutFor(&cfg); got != tt.want {
			t.Errorf("interval %s, max_staleness %s: endpoint timeout %s, want %s", tt.interval, tt.stale, got, tt.want)
		}
	}
	cfg := svcConfig("http://h.test/")
	cfg.Scan.EndpointTimeout = 5 * time.Second
	s := newTestService(t, cfg, ServiceOptions{})
	if cfg := s.Config(); s.endpointTimeoutFor(&cfg) != 5*time.Second {
		t.Error("scan.endpoint_timeout ignored")
	}
	s = newTestService(t, cfg, ServiceOptions{EndpointTimeout: time.Second})
	if cfg := s.Config(); s.endpointTimeoutFor(&cfg) != time.Second {
		t.Error("ServiceOptions.EndpointTimeout does not override scan.endpoint_timeout")
	}
}

// TestServiceIgnoreScanFrom: scan_from gives an endpoint to another node; a node alone with IgnoreScanFrom
// (the one-shot scan) scans it anyway, and a node without it leaves it to the other node.
func TestServiceIgnoreScanFrom(t *testing.T) {
	a, b := serve(t, faultRepo()), serve(t, faultRepo())
	cfg := svcConfig(a, b)
	cfg.Repositories[0].ScanFrom = map[string][]string{b: {"other-node"}}
	cfg.Cluster.Nodes = map[string]string{cfg.Cluster.NodeName: "", "other-node": ""}
	alone := newTestService(t, cfg, ServiceOptions{IgnoreScanFrom: true})
	scanNow(t, alone)
	if v := alone.View(); !v.Consistent() {
		t.Fatalf("with IgnoreScanFrom the view is not consistent: %+v", v.Endpoints)
	}
	scoped := newTestService(t, cfg, ServiceOptions{})
	scanNow(t, scoped)
	if e := endpointView(t, scoped.View(), b); e.State != EndpointUnknown || e.Reason != "not scanned yet" {
		t.Fatalf("without IgnoreScanFrom, %s: %s %q, want left to the other node", b, e.State, e.Reason)
	}
}

// TestServiceSeqSurvivesClockStepBack: after the wall clock steps back, the node's new scans are still
// recorded (their Seq keeps increasing).
func TestServiceSeqSurvivesClockStepBack(t *testing.T) {
	clk := newFakeClock()
	r := faultRepo()
	ep := serve(t, r)
	var logs syncbuf.Buffer
	s := newTestService(t, svcConfig(ep), ServiceOptions{Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	clk.Add(time.Hour)
	scanNow(t, s)
	clk.Add(-30 * time.Minute) // NTP steps the clock back
	putAll(r, "a/b", "1.2.0")
	scanNow(t, s)
	sv, ok := s.View().Schema("primary", "a/b")
	if !ok || sv.SafeVersion == nil || sv.SafeVersion.String() != "1.2.0" {
		t.Fatalf("after the clock stepped back, the new scan was not recorded: %+v", sv)
	}
	if strings.Contains(logs.String(), "rejected") {
		t.Fatalf("unexpected rejection:\n%s", logs.String())
	}

	// Should the state ever hold a newer observation of its own (a previous life's, say), the rejection is
	// logged at warn.
	seq, _ := (*gossipDelegate)(s).Seq(ep, "n1")
	s.Observe(Observation{Repository: "primary", Endpoint: ep, Observer: "n1", Seq: seq + 1<<62, At: clk.Now(),
		Schemas: faultRepoSchemas})
	scanNow(t, s)
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "rejected this node's own observation") {
		t.Fatalf("no warning for a rejected own observation:\n%s", out)
	}
}

// TestServiceViewAge: the served view, and the encoded per-schema answer, are at most about a second old:
// generated_at and ages move with the clock even when no observation arrives.
func TestServiceViewAge(t *testing.T) {
	clk := newFakeClock()
	ep := serve(t, faultRepo())
	s := newTestService(t, svcConfig(ep), ServiceOptions{Now: clk.Now})
	scanNow(t, s)
	h := s.Handler()
	get := func() string {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/repositories/primary/schemas/a/b", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		return rec.Body.String()
	}
	first := get()
	if !strings.Contains(first, `"generated_at":"`+stT0.Format(time.RFC3339Nano)+`"`) {
		t.Fatalf("answer lacks generated_at %s: %s", stT0.Format(time.RFC3339Nano), first)
	}
	clk.Add(500 * time.Millisecond)
	if again := get(); again != first {
		t.Fatalf("within a second the cached answer changed:\n%s\n%s", first, again)
	}
	clk.Add(time.Second)
	later := get()
	want := clk.Now()
	if !strings.Contains(later, `"generated_at":"`+want.Format(time.RFC3339Nano)+`"`) ||
		!strings.Contains(later, `"age_seconds":1.5`) {
		t.Fatalf("1.5 s later, the answer is not regenerated (want generated_at %s, age 1.5):\n%s",
			want.Format(time.RFC3339Nano), later)
	}
	if v := s.View(); !v.At.Equal(want) || v.Endpoints[0].Observers[0].AgeSeconds != 1.5 {
		t.Fatalf("view at %s, age %v; want %s and 1.5", v.At, v.Endpoints[0].Observers[0].AgeSeconds, want)
	}
}

// TestServiceLastSuccessMetrics: once an endpoint has been scanned successfully, its last successful scan
// time and observation age stay exported while its scans fail, with the age growing, so that an alert on
// time() - last_successful_scan can fire. An endpoint never scanned successfully has neither.
func TestServiceLastSuccessMetrics(t *testing.T) {
	clk := newFakeClock()
	down := &hook{match: func(*http.Request) bool { return true }, next: faultRepo(),
		fault: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }}
	never := &hook{match: func(*http.Request) bool { return true }, next: faultRepo(),
		fault: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }}
	never.on.Store(true)
	ep, neverURL := serve(t, down), serve(t, never)
	reg := prometheus.NewRegistry()
	s := newTestService(t, svcConfig(ep, neverURL), ServiceOptions{Now: clk.Now, Registerer: reg})
	scanNow(t, s)
	down.on.Store(true)
	for i := 0; i < 3; i++ {
		clk.Add(time.Minute)
		scanNow(t, s)
	}
	values := map[string]map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" {
					if values[mf.GetName()] == nil {
						values[mf.GetName()] = map[string]float64{}
					}
					values[mf.GetName()][l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	last := values["schemasync_endpoint_last_successful_scan_timestamp_seconds"]
	age := values["schemasync_endpoint_observation_age_seconds"]
	if got, ok := last[ep]; !ok || got != float64(stT0.Unix()) {
		t.Errorf("last successful scan of %s = %v (present %v), want %d", ep, got, ok, stT0.Unix())
	}
	if got, ok := age[ep]; !ok || got != 180 {
		t.Errorf("observation age of %s = %v (present %v), want 180", ep, got, ok)
	}
	if _, ok := last[neverURL]; ok {
		t.Errorf("an endpoint never scanned successfully has a last successful scan time")
	}
	if _, ok := age[neverURL]; ok {
		t.Errorf("an endpoint never scanned successfully has an observation age")
	}
	if up := values["schemasync_endpoint_up"][ep]; up != 0 {
		t.Errorf("endpoint_up = %v for a failing endpoint", up)
	}
}

// TestServiceRedactsCredentials: an endpoint URL with user:password is scanned with those credentials, and the
// password appears nowhere the service prints or exports it: the API, /metrics, the log.
func TestServiceRedactsCredentials(t *testing.T) {
	repo := schemarepo.Demo()
	host := schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "reader" || p != "hunter2" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		host.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	good := strings.Replace(srv.URL, "http://", "http://reader:hunter2@", 1) + "/repositories/primary/jsonschema/"
	bad := strings.Replace(srv.URL, "http://", "http://reader:wrong-hunter3@", 1) + "/repositories/secondary/jsonschema/"
	cfg := svcConfig(good)
	cfg.Repositories = append(cfg.Repositories, RepositoryConfig{Name: "secondary", Endpoints: []string{bad}})
	var logs syncbuf.Buffer
	reg := prometheus.NewRegistry()
	s := newTestService(t, cfg, ServiceOptions{Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	scanNow(t, s)
	v := s.View()
	if sv, ok := v.Schema("primary", "mediawiki/page/change"); !ok || sv.SafeVersion == nil {
		t.Fatalf("the scan with credentials did not see the schema: %+v", v.Endpoints)
	}
	h := s.Handler(reg)
	var out strings.Builder
	for _, p := range []string{"/v1/state", "/v1/repositories/primary/schemas/mediawiki/page/change", "/metrics"} {
		_, body := apiGet(t, h, p)
		out.WriteString(body)
	}
	out.WriteString(logs.String())
	for _, secret := range []string{"hunter2", "hunter3", "reader:"} {
		if strings.Contains(out.String(), secret) {
			t.Fatalf("%q appears in the API, metrics or log", secret)
		}
	}
	if !strings.Contains(out.String(), "***@") {
		t.Fatal("the endpoints are not shown with *** for their credentials")
	}
}
