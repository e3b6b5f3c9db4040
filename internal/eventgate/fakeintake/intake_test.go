package fakeintake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evenkeel/evenkeel/internal/eventgate"
)

const (
	pageTitle = "mediawiki/page/change"
	testTitle = "test/event"
)

// event renders the example of schemarepo.Doc(title, version, fields...) for stream, with overrides.
func event(title, version, stream string, fields ...string) map[string]any {
	ev := map[string]any{
		"$schema": "/" + title + "/" + version,
		"meta":    map[string]any{"stream": stream, "dt": "2026-11-22T07:00:00Z", "domain": "canary"},
	}
	for _, f := range fields {
		ev[f] = "x"
	}
	return ev
}

func post(t *testing.T, url string, events any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// countingHost serves a schemarepo host and counts GETs of schema files.
type countingHost struct {
	h    http.Handler
	hits atomic.Int64
}

func (c *countingHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.hits.Add(1)
	c.h.ServeHTTP(w, r)
}

func newIntake(t *testing.T, bases []string, reg prometheus.Registerer) (*Intake, string) {
	t.Helper()
	g, err := New(Config{
		SchemaBaseURIs: bases,
		Streams:        map[string]string{"mediawiki.page_change": pageTitle, "test.event": testTitle},
	}, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv.URL + "/v1/events"
}

func TestIntakeResponses(t *testing.T) {
	repo := schemarepo.Demo()
	host := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo}))
	defer host.Close()
	base := host.URL + "/repositories/primary/jsonschema"

	good := event(pageTitle, "1.1.0", "mediawiki.page_change", "page_title", "page_namespace")
	extra := event(pageTitle, "1.1.0", "mediawiki.page_change", "page_title", "page_namespace", "surprise")
	missingVersion := event(pageTitle, "9.9.9", "mediawiki.page_change", "page_title")
	wrongTitle := event(testTitle, "1.0.0", "mediawiki.page_change", "test")
	unknownStream := event(testTitle, "1.0.0", "no.such.stream", "test")
	noSchema := map[string]any{"meta": map[string]any{"stream": "test.event"}}
	noStream := map[string]any{"$schema": "/test/event/1.0.0", "meta": map[string]any{}}
	badDate := event(testTitle, "1.0.0", "test.event", "test")
	badDate["meta"].(map[string]any)["dt"] = "yesterday"

	tests := []struct {
		name        string
		query       string
		events      any
		wantStatus  int
		wantInvalid int
		wantError   int
		bodyHas     []string
	}{
		{name: "all accepted", events: []any{good, event(testTitle, "1.0.0", "test.event", "test")}, wantStatus: 201},
		{name: "one object, not an array", events: good, wantStatus: 201},
		{name: "hasty", query: "?hasty=true", events: []any{good, extra}, wantStatus: 202},
		{name: "all invalid", events: []any{extra, wrongTitle}, wantStatus: 400, wantInvalid: 2, bodyHas: []string{"additional properties 'surprise' not allowed", `schema title \"test/event\" is not allowed in stream \"mediawiki.page_change\"`}},
		{name: "some accepted, some invalid", events: []any{good, extra}, wantStatus: 207, wantInvalid: 1},
		{name: "some accepted, some errored", events: []any{good, missingVersion}, wantStatus: 207, wantError: 1, bodyHas: []string{"Failed loading schema at /mediawiki/page/change/9.9.9"}},
		{name: "all errored", events: []any{missingVersion}, wantStatus: 500, wantError: 1, bodyHas: []string{"Failed loading schema at /mediawiki/page/change/9.9.9", "HTTP 404"}},
		{name: "invalid and errored, none accepted", events: []any{extra, missingVersion}, wantStatus: 500, wantInvalid: 1, wantError: 1},
		{name: "unknown stream", events: []any{unknownStream}, wantStatus: 400, wantInvalid: 1, bodyHas: []string{`stream \"no.such.stream\" is not configured`}},
		{name: "no $schema", events: []any{noSchema}, wantStatus: 400, wantInvalid: 1, bodyHas: []string{"no $schema"}},
		{name: "no meta.stream", events: []any{noStream}, wantStatus: 400, wantInvalid: 1, bodyHas: []string{"no meta.stream"}},
		{name: "format date-time asserted", events: []any{badDate}, wantStatus: 400, wantInvalid: 1, bodyHas: []string{"/meta/dt"}},
		{name: "not an object", events: []any{"hello"}, wantStatus: 400, wantInvalid: 1, bodyHas: []string{"not a JSON object"}},
		{name: "empty array", events: []any{}, wantStatus: 400, bodyHas: []string{"no events"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := newIntake(t, []string{base}, nil)
			status, body := post(t, url+tt.query, tt.events)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", status, tt.wantStatus, body)
			}
			if status == 201 || status == 202 {
				if len(bytes.TrimSpace(body)) != 0 {
					t.Fatalf("body %q, want none", body)
				}
				return
			}
			for _, s := range tt.bodyHas {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %q: %s", s, body)
				}
			}
			if tt.wantInvalid+tt.wantError == 0 {
				return
			}
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(body, &keys); err != nil {
				t.Fatal(err)
			}
			if status == 207 && (keys["invalid"] == nil || keys["error"] == nil) {
				t.Errorf("207 body must carry both invalid and error: %s", body)
			}
			if status == 400 && keys["error"] != nil {
				t.Errorf("400 body must carry only invalid: %s", body)
			}
			r, err := eventgate.ParseResponse(body)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Invalid) != tt.wantInvalid || len(r.Error) != tt.wantError {
				t.Fatalf("invalid %d error %d, want %d and %d: %s", len(r.Invalid), len(r.Error), tt.wantInvalid, tt.wantError, body)
			}
		})
	}
}

func TestIntakeBaseURIOrderFirstThatLoadsWins(t *testing.T) {
	// The first base lacks 1.1.0; the second has it. A third, which also has it, must never be asked.
	behind := schemarepo.New()
	behind.Put(pageTitle, "1.0.0", schemarepo.Doc(pageTitle, "1.0.0", "page_title"))
	ahead := schemarepo.Demo()
	h1 := &countingHost{h: schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": behind})}
	h2 := &countingHost{h: schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": ahead})}
	h3 := &countingHost{h: schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": ahead.Clone()})}
	var bases []string
	for _, h := range []*countingHost{h1, h2, h3} {
		s := httptest.NewServer(h)
		defer s.Close()
		bases = append(bases, s.URL+"/repositories/primary/jsonschema/")
	}
	g, url := newIntake(t, bases, nil)
	if st, body := post(t, url, []any{event(pageTitle, "1.1.0", "mediawiki.page_change", "page_title", "page_namespace")}); st != 201 {
		t.Fatalf("status %d: %s", st, body)
	}
	if h1.hits.Load() != 1 || h2.hits.Load() != 1 || h3.hits.Load() != 0 {
		t.Fatalf("hits %d %d %d, want 1 1 0", h1.hits.Load(), h2.hits.Load(), h3.hits.Load())
	}
	// 1.0.0 is on the first base: it wins, the others are not asked.
	if st, body := post(t, url, []any{event(pageTitle, "1.0.0", "mediawiki.page_change", "page_title")}); st != 201 {
		t.Fatalf("status %d: %s", st, body)
	}
	if h1.hits.Load() != 2 || h2.hits.Load() != 1 {
		t.Fatalf("hits %d %d, want 2 1", h1.hits.Load(), h2.hits.Load())
	}
	if s := g.Stats(); s.Accepted != 2 || s.SchemaLoads != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestIntakeCachesSuccessfulLoadsOnly(t *testing.T) {
	repo := schemarepo.New()
	repo.Put(pageTitle, "1.0.0", schemarepo.Doc(pageTitle, "1.0.0", "page_title"))
	host := &countingHost{h: schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo})}
	srv := httptest.NewServer(host)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	g, url := newIntake(t, []string{srv.URL + "/repositories/primary/jsonschema"}, reg)
	ev := []any{event(pageTitle, "1.1.0", "mediawiki.page_change", "page_title")}

	for i := 0; i < 2; i++ { // not there yet: each attempt asks again
		if st, body := post(t, url, ev); st != 500 || !strings.Contains(string(body), "Failed loading schema at /mediawiki/page/change/1.1.0") {
			t.Fatalf("attempt %d: status %d body %s", i, st, body)
		}
	}
	if host.hits.Load() != 2 {
		t.Fatalf("hits %d, want 2: failures must not be cached", host.hits.Load())
	}
	repo.Put(pageTitle, "1.1.0", schemarepo.Doc(pageTitle, "1.1.0", "page_title"))
	for i := 0; i < 3; i++ {
		if st, body := post(t, url, ev); st != 201 {
			t.Fatalf("after rollout, attempt %d: status %d body %s", i, st, body)
		}
	}
	if host.hits.Load() != 3 {
		t.Fatalf("hits %d, want 3: a success must be cached", host.hits.Load())
	}
	// A rollback does not matter any more: the loaded schema is cached, as EventGate's is.
	repo.Remove(pageTitle, "1.1.0")
	if st, _ := post(t, url, ev); st != 201 {
		t.Fatalf("status %d after rollback, want 201 from the cache", st)
	}
	s := g.Stats()
	if s.Accepted != 4 || s.Errored != 2 || s.Invalid != 0 {
		t.Fatalf("stats %+v", s)
	}
	if got := testutil.ToFloat64(g.counter.WithLabelValues("error")); got != 2 {
		t.Fatalf("eventgate_events_total{status=error} = %v", got)
	}
	rec := g.Received()
	if len(rec) != 6 || rec[0].Status != "error" || rec[5].Status != "accepted" || rec[5].Stream != "mediawiki.page_change" {
		t.Fatalf("received %+v", rec)
	}
	g.Reset()
	if len(g.Received()) != 0 || g.Stats().Accepted != 0 {
		t.Fatal("Reset kept events")
	}
}

func TestIntakeTitleFromSchemaDocument(t *testing.T) {
	// The schema at /test/event/1.0.0 says it is "mediawiki/page/change": the document's title is what counts.
	repo := schemarepo.New()
	doc := strings.Replace(string(schemarepo.Doc(testTitle, "1.0.0", "test")), "title: test/event", "title: mediawiki/page/change", 1)
	repo.Put(testTitle, "1.0.0", []byte(doc))
	srv := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo}))
	defer srv.Close()
	_, url := newIntake(t, []string{srv.URL + "/repositories/primary/jsonschema"}, nil)
	st, body := post(t, url, []any{event(testTitle, "1.0.0", "test.event", "test")})
	if st != 400 || !strings.Contains(string(body), `schema title \"mediawiki/page/change\" is not allowed in stream \"test.event\"`) {
		t.Fatalf("status %d body %s", st, body)
	}
}

func TestIntakeConcurrentPosts(t *testing.T) {
	repo := schemarepo.Demo()
	srv := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo}))
	defer srv.Close()
	g, url := newIntake(t, []string{srv.URL + "/repositories/primary/jsonschema"}, nil)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal([]any{event(testTitle, "1.0.0", "test.event", "test")})
			resp, err := http.Post(url, "application/json", bytes.NewReader(b))
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if s := g.Stats(); s.Accepted != 20 {
		t.Fatalf("stats %+v", s)
	}
}

func TestIntakeRoutes(t *testing.T) {
	_, url := newIntake(t, []string{"http://127.0.0.1:1/"}, nil)
	base := strings.TrimSuffix(url, "/v1/events")
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"healthz", "GET", "/healthz", 200},
		{"GET events", "GET", "/v1/events", 405},
		{"other path", "POST", "/v2/events", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader("[]"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{SchemaBaseURIs: []string{"http://h/"}, Streams: map[string]string{"s": "t"}}, true},
		{"no bases", Config{}, false},
		{"relative base", Config{SchemaBaseURIs: []string{"/x"}}, false},
		{"stream without title", Config{SchemaBaseURIs: []string{"http://h/"}, Streams: map[string]string{"s": "/"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
