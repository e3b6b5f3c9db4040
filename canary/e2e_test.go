package canary

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/eventgate"
	"github.com/evenkeel/evenkeel/internal/eventgate/fakeintake"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

// roundRobin is the load balancer in front of the schema hosts: each request goes to the next host.
type roundRobin struct {
	backends []*httputil.ReverseProxy
	n        atomic.Uint64
}

func newRoundRobin(t testing.TB, hosts []string) *httptest.Server {
	t.Helper()
	rr := &roundRobin{}
	for _, h := range hosts {
		u, err := url.Parse(h)
		if err != nil {
			t.Fatal(err)
		}
		rr.backends = append(rr.backends, httputil.NewSingleHostReverseProxy(u))
	}
	srv := httptest.NewServer(rr)
	t.Cleanup(srv.Close)
	return srv
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := rr.n.Add(1) - 1
	rr.backends[i%uint64(len(rr.backends))].ServeHTTP(w, r)
}

// rollout is the incident's world: 4 schema hosts, hosts 0 and 2 already serving mediawiki/page/change 1.2.0,
// a real schemasync node scanning all four, and a round-robin load balancer over them.
type rollout struct {
	repos   []*schemarepo.Repo
	hosts   []string // host base URLs
	lb      string   // schema base URI through the load balancer
	node    *schemasync.Service
	nodeURL string
}

const pageTitle = "mediawiki/page/change"

func newRollout(t testing.TB) *rollout {
	t.Helper()
	r := &rollout{}
	base := schemarepo.Demo()
	cfg := schemasync.DefaultConfig()
	var endpoints []string
	for i := 0; i < 4; i++ {
		repo := base.Clone()
		if i%2 == 0 {
			repo.Put(pageTitle, "1.2.0", schemarepo.Doc(pageTitle, "1.2.0", "page_title", "page_namespace", "rev_id"))
		}
		srv := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo}))
		t.Cleanup(srv.Close)
		r.repos = append(r.repos, repo)
		r.hosts = append(r.hosts, srv.URL)
		endpoints = append(endpoints, srv.URL+"/repositories/primary/jsonschema/")
	}
	r.lb = newRoundRobin(t, r.hosts).URL + "/repositories/primary/jsonschema"
	cfg.Repositories = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: endpoints}}
	cfg.MaxStaleness = time.Hour
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.ScanOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	node := httptest.NewServer(svc.Handler())
	t.Cleanup(node.Close)
	r.node, r.nodeURL = svc, node.URL
	return r
}

var demoStreams = map[string]string{
	"eventgate-analytics.link_suggestion_interaction": "analytics/mediawiki/structured_task/article/link_suggestion_interaction",
	"mediawiki.page_change.v1":                        pageTitle,
	"test.event":                                      "test/event",
}

func (r *rollout) intake(t testing.TB) (*fakeintake.Intake, string) {
	return intake(t, []string{r.lb}, demoStreams)
}

func (r *rollout) config(source VersionSource, intakeURL string) Config {
	cfg := DefaultConfig()
	cfg.VersionSource = source
	cfg.Schemasync = []string{r.nodeURL}
	cfg.SchemaBaseURIs = []string{r.lb}
	cfg.RetryBackoff = time.Millisecond
	// One stream at a time keeps the load balancer's rotation, and so the test, deterministic.
	cfg.Concurrency = 1
	for name, title := range demoStreams {
		cfg.Streams = append(cfg.Streams, Stream{Name: name, SchemaTitle: title, Destinations: []string{intakeURL}})
	}
	return cfg
}

// TestRolloutLatestIsRejectedSafeIsNot is the incident and its cure, end to end.
func TestRolloutLatestIsRejectedSafeIsNot(t *testing.T) {
	ctx := context.Background()
	r := newRollout(t)

	t.Run("latest: the incident", func(t *testing.T) {
		g, url := r.intake(t)
		runner, err := NewRunner(r.config(VersionLatest, url), Options{})
		if err != nil {
			t.Fatal(err)
		}
		rejectedRuns := 0
		for i := 0; i < 20; i++ {
			res, err := runner.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rejected := false
			for _, s := range res {
				if !s.OK {
					rejected = true
					if s.Stream != "mediawiki.page_change.v1" || s.Version != "1.2.0" || s.FailedStep != StepProduce ||
						!strings.Contains(s.Error, "HTTP 500: error: Failed loading schema at /mediawiki/page/change/1.2.0") {
						t.Fatalf("run %d: unexpected failure %+v", i, s)
					}
				}
			}
			if rejected {
				rejectedRuns++
			}
		}
		if rejectedRuns == 0 {
			t.Fatal("latest mode: no run of 20 was rejected; the incident did not reproduce")
		}
		t.Logf("latest: %d of 20 runs rejected; intake %+v", rejectedRuns, g.Stats())
	})

	t.Run("safe: the cure", func(t *testing.T) {
		g, url := r.intake(t)
		runner, err := NewRunner(r.config(VersionSafe, url), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			res, err := runner.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range res {
				if !s.OK {
					t.Fatalf("run %d: stream %s rejected in safe mode: %s", i, s.Stream, s.Error)
				}
				if s.Stream == "mediawiki.page_change.v1" && (s.Version != "1.1.0" || !s.Dirty) {
					t.Fatalf("run %d: page_change at %s dirty=%v, want 1.1.0 while the rollout is uneven", i, s.Version, s.Dirty)
				}
			}
		}
		st := g.Stats()
		if st.Accepted != 60 || st.Invalid != 0 || st.Errored != 0 {
			t.Fatalf("intake %+v, want 60 accepted and nothing rejected", st)
		}
		assertAllValidate(t, r, g.Received())
	})

	t.Run("safe advances once the rollout completes", func(t *testing.T) {
		for _, i := range []int{1, 3} {
			r.repos[i].Put(pageTitle, "1.2.0", schemarepo.Doc(pageTitle, "1.2.0", "page_title", "page_namespace", "rev_id"))
		}
		if err := r.node.ScanOnce(ctx); err != nil {
			t.Fatal(err)
		}
		g, url := r.intake(t)
		res, err := Run(ctx, r.config(VersionSafe, url), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range res {
			if !s.OK || (s.Stream == "mediawiki.page_change.v1" && (s.Version != "1.2.0" || s.Dirty)) {
				t.Fatalf("after the rollout: %+v", s)
			}
		}
		assertAllValidate(t, r, g.Received())
	})
}

// assertAllValidate checks every received event against its declared schema, fetched from host 0 directly.
func assertAllValidate(t *testing.T, r *rollout, received []fakeintake.Received) {
	t.Helper()
	if len(received) == 0 {
		t.Fatal("the intake received nothing")
	}
	compiled := map[string]interface{ Validate(any) error }{}
	for _, rec := range received {
		if rec.Status != "accepted" {
			t.Fatalf("event %s: %s (%s)", rec.Schema, rec.Status, rec.Message)
		}
		s := compiled[rec.Schema]
		if s == nil {
			resp, err := http.Get(r.hosts[0] + "/repositories/primary/jsonschema" + rec.Schema)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			doc, err := eventgate.DecodeDocument(body)
			if err != nil {
				t.Fatal(err)
			}
			sch, err := eventgate.Compile("http://check/"+rec.Schema, doc)
			if err != nil {
				t.Fatal(err)
			}
			compiled[rec.Schema], s = sch, sch
		}
		ev, err := eventgate.DecodeDocument(rec.Event)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(ev); err != nil {
			t.Fatalf("event for %s does not validate: %v", rec.Schema, err)
		}
		var m map[string]any
		_ = json.Unmarshal(rec.Event, &m)
		if m["meta"].(map[string]any)["domain"] != "canary" {
			t.Fatalf("event %s", rec.Event)
		}
	}
}
