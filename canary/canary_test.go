package canary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync/client"
)

// TestRunPerStreamErrors runs one canary over streams that each break in their own way, next to a healthy one:
// each failure names its stream and step, and every other stream still runs.
func TestRunPerStreamErrors(t *testing.T) {
	repo := schemarepo.Demo()
	repo.Put("bad/no_example", "1.0.0", docWithout("bad/no_example", "1.0.0", "examples:\n  - $schema: /bad/no_example/1.0.0\n    meta:\n      dt: '2020-04-02T19:11:20.942Z'\n      stream: example.stream\n      domain: test.example.org\n"))
	repo.Put("bad/fragment", "1.0.0", []byte("title: bad/fragment\n$id: /bad/fragment/1.0.0\n$schema: https://json-schema.org/draft-07/schema#\ndescription: common fields, meant to be $ref'd\nproperties:\n  dt:\n    type: string\nexamples:\n  - dt: '2020-01-01T00:00:00Z'\n"))
	repo.Put("bad/no_meta", "1.0.0", docWithout("bad/no_meta", "1.0.0", "    meta:\n      dt: '2020-04-02T19:11:20.942Z'\n      stream: example.stream\n      domain: test.example.org\n", "f"))
	repo.Put("bad/extra_fields", "1.0.0", []byte(strings.Replace(string(schemarepo.Doc("bad/extra_fields", "1.0.0", "f")), "    f: example f\n", "    f: example f\n    leftover: 1\n", 1)))
	repo.Put("good/other", "1.0.0", schemarepo.Doc("good/other", "1.0.0", "x"))
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	streams := map[string]string{}
	for _, s := range []string{"good", "no_example", "fragment", "no_meta", "extra_fields", "down", "multi", "unknown", "not_served", "eventgate_500", "flaky"} {
		streams["s."+s] = "good/other"
	}
	g, good := intake(t, []string{base}, streams)
	multi := &scripted{statuses: []int{207}, bodies: []string{`{"invalid":[{"status":"invalid","context":{"message":"'page_title' is a required property"}}],"error":[]}`}}
	eg500 := &scripted{statuses: []int{500}, bodies: []string{`{"error":[{"status":"error","context":{"message":"Failed loading schema at /good/other/1.0.0"}}]}`}}
	flaky := &scripted{statuses: []int{503, 502, 201}, bodies: []string{"upstream connect error", "bad gateway"}}
	unserved := schemarepo.New() // schemasync says 1.0.0, but the schema hosts never had the title
	unserved.Put("bad/not_served", "1.0.0", schemarepo.Doc("bad/not_served", "1.0.0"))
	node2 := fakeSchemasync(t, unserved)

	cases := []struct {
		stream   string
		title    string
		dest     string
		step     Step
		sentinel error
		has      []string
		attempts int
	}{
		{stream: "s.good", title: "good/other", dest: good},
		{stream: "s.flaky", title: "good/other", dest: scriptedURL(t, flaky), attempts: 3},
		{stream: "s.no_example", title: "bad/no_example", dest: good, step: StepBuild, sentinel: ErrNoExample, has: []string{"stream s.no_example (bad/no_example@1.0.0): build-event: schema has no usable example: no examples"}},
		{stream: "s.fragment", title: "bad/fragment", dest: good, step: StepBuild, sentinel: ErrFragmentSchema, has: []string{"stream s.fragment", "schema is a fragment"}},
		{stream: "s.no_meta", title: "bad/no_meta", dest: good, step: StepBuild, sentinel: ErrNoMeta, has: []string{"stream s.no_meta", "example has no meta object"}},
		{stream: "s.extra_fields", title: "bad/extra_fields", dest: good, step: StepValidate, has: []string{"stream s.extra_fields", "additional properties 'leftover' not allowed"}},
		{stream: "s.down", title: "good/other", dest: closedURL(t), step: StepProduce, has: []string{"stream s.down", "connection refused", "after 3 attempts"}, attempts: 3},
		{stream: "s.multi", title: "good/other", dest: scriptedURL(t, multi), step: StepProduce, has: []string{"HTTP 207", "invalid: 'page_title' is a required property"}, attempts: 1},
		{stream: "s.eventgate_500", title: "good/other", dest: scriptedURL(t, eg500), step: StepProduce, has: []string{"HTTP 500", "error: Failed loading schema at /good/other/1.0.0"}, attempts: 1},
		{stream: "s.unknown", title: "no/such/title", dest: good, step: StepVersion, sentinel: client.ErrUnknownSchema, has: []string{"stream s.unknown (no/such/title): resolve-version"}},
	}
	var list []Stream
	for _, c := range cases {
		list = append(list, Stream{Name: c.stream, SchemaTitle: c.title, Destinations: []string{c.dest}})
	}
	cfg := testConfig(node.URL, []string{base}, list)
	results, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The schema-not-served case needs a schemasync that disagrees with the hosts: its own run.
	cfg2 := testConfig(node2.URL, []string{base, base + "/../nowhere"}, []Stream{{Name: "s.not_served", SchemaTitle: "bad/not_served", Destinations: []string{good}}})
	r2, err := Run(context.Background(), cfg2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		stream   string
		title    string
		dest     string
		step     Step
		sentinel error
		has      []string
		attempts int
	}{stream: "s.not_served", step: StepFetch, has: []string{"fetch-schema: no schema base URI served it", "bad/not_served/1.0.0: HTTP 404"}})
	results = append(results, r2...)

	byName := map[string]Result{}
	for _, r := range results {
		byName[r.Stream] = r
	}
	for _, c := range cases {
		t.Run(c.stream, func(t *testing.T) {
			r, ok := byName[c.stream]
			if !ok {
				t.Fatal("no result")
			}
			if c.step == "" {
				if !r.OK || r.Err != nil {
					t.Fatalf("failed: %v", r.Err)
				}
				if c.attempts > 0 && r.Deliveries[0].Attempts != c.attempts {
					t.Fatalf("attempts %d, want %d", r.Deliveries[0].Attempts, c.attempts)
				}
				return
			}
			if r.OK {
				t.Fatal("succeeded, want a failure")
			}
			var se *StreamError
			if !errors.As(r.Err, &se) || se.Stream != c.stream || se.Step != c.step || r.FailedStep != c.step {
				t.Fatalf("error %v (%T), want a *StreamError at step %s", r.Err, r.Err, c.step)
			}
			if c.sentinel != nil && !errors.Is(r.Err, c.sentinel) {
				t.Errorf("error %v does not wrap %v", r.Err, c.sentinel)
			}
			for _, s := range c.has {
				if !strings.Contains(r.Error, s) {
					t.Errorf("error %q lacks %q", r.Error, s)
				}
			}
			if c.attempts > 0 {
				if len(r.Deliveries) != 1 || r.Deliveries[0].Attempts != c.attempts {
					t.Fatalf("deliveries %+v, want %d attempts", r.Deliveries, c.attempts)
				}
				var ie *IntakeError
				if !errors.As(r.Err, &ie) {
					t.Errorf("error %v does not wrap an *IntakeError", r.Err)
				}
			}
		})
	}
	if s := g.Stats(); s.Accepted != 1 || s.Invalid+s.Errored != 0 {
		t.Fatalf("intake stats %+v: only the good stream's event should reach it, valid", s)
	}
}

func TestRunHappyPathEvent(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	g, url := intake(t, []string{base}, map[string]string{"mediawiki.page_change.v1": "mediawiki/page/change"})
	fixed := time.Date(2026, 11, 22, 7, 0, 0, 123, time.FixedZone("CET", 3600))
	cfg := testConfig(node.URL, []string{base}, []Stream{{Name: "mediawiki.page_change.v1", SchemaTitle: "/mediawiki/page/change/", Destinations: []string{url, url}}})
	results, err := Run(context.Background(), cfg, Options{Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if !r.OK || r.Version != "1.1.0" || r.Repository != "primary" || len(r.Deliveries) != 2 || r.Deliveries[0].Status != 201 {
		t.Fatalf("result %+v", r)
	}
	rec := g.Received()
	if len(rec) != 2 {
		t.Fatalf("received %d events, want one per destination", len(rec))
	}
	var ev map[string]any
	if err := json.Unmarshal(rec[0].Event, &ev); err != nil {
		t.Fatal(err)
	}
	meta := ev["meta"].(map[string]any)
	if ev["$schema"] != "/mediawiki/page/change/1.1.0" || meta["stream"] != "mediawiki.page_change.v1" || meta["domain"] != "canary" || meta["dt"] != "2026-11-22T06:00:00Z" || ev["page_namespace"] != "example page_namespace" {
		t.Fatalf("event %v", ev)
	}
}

func TestDryRunPostsNothing(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	g, url := intake(t, []string{base}, map[string]string{"test.event": "test/event"})
	cfg := testConfig(node.URL, []string{base}, []Stream{{Name: "test.event", SchemaTitle: "test/event", Destinations: []string{url}}})
	cfg.DryRun = true
	results, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !results[0].OK || !results[0].DryRun || results[0].Event == nil || len(results[0].Deliveries) != 0 {
		t.Fatalf("result %+v", results[0])
	}
	if n := len(g.Received()); n != 0 {
		t.Fatalf("dry run posted %d events", n)
	}
}

// TestSchemasCompiledOncePerVersion: streams that share a schema version share one fetch and one compile, even
// on a cold start where they all ask at once (a slow schema host makes them overlap), and later runs reuse it.
func TestSchemasCompiledOncePerVersion(t *testing.T) {
	repo := schemarepo.Demo()
	host := schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		host.ServeHTTP(w, r)
	}))
	defer slow.Close()
	base := slow.URL + "/repositories/primary/jsonschema"
	node := fakeSchemasync(t, repo)
	names := map[string]string{}
	var streams []Stream
	for i := range 50 {
		name := fmt.Sprintf("s%02d", i)
		names[name] = "test/event"
		streams = append(streams, Stream{Name: name, SchemaTitle: "test/event"})
	}
	_, url := intake(t, []string{schemaHost(t, repo)}, names)
	for i := range streams {
		streams[i].Destinations = []string{url}
	}
	cfg := testConfig(node.URL, []string{base}, streams)
	cfg.Concurrency = 50
	r, err := NewRunner(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		res, err := r.Run(context.Background())
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		for _, s := range res {
			if !s.OK {
				t.Fatalf("run %d: %s: %s", i, s.Stream, s.Error)
			}
		}
	}
	if s := r.Stats(); s.SchemaFetches != 1 || s.Compiles != 1 || s.Validations != 150 {
		t.Fatalf("stats %+v, want 1 fetch, 1 compile, 150 validations", s)
	}
	repo.Put("test/event", "1.1.0", schemarepo.Doc("test/event", "1.1.0", "test"))
	if res, _ := r.Run(context.Background()); res[0].Version != "1.1.0" || !res[0].OK {
		t.Fatalf("after a rollout: %+v", res[0])
	}
	if s := r.Stats(); s.SchemaFetches != 2 || s.Compiles != 2 {
		t.Fatalf("stats after a rollout %+v, want 2 fetches, 2 compiles", s)
	}
	// A long-running Runner keeps one version per title, however many versions a schema goes through.
	for minor := 2; minor < 12; minor++ {
		v := fmt.Sprintf("1.%d.0", minor)
		repo.Put("test/event", v, schemarepo.Doc("test/event", v, "test"))
		if res, _ := r.Run(context.Background()); res[0].Version != v || !res[0].OK {
			t.Fatalf("after rollout %s: %+v", v, res[0])
		}
	}
	r.mu.Lock()
	n, e := len(r.cache), r.cache["test/event"]
	r.mu.Unlock()
	if n != 1 || e.version != "1.11.0" {
		t.Fatalf("cache holds %d entries (test/event at %q), want only test/event at 1.11.0", n, e.version)
	}
}

// TestSharedFetchFailureIsNotCached: when the one shared fetch fails, every waiting stream gets its error and
// the next run fetches again.
func TestSharedFetchFailureIsNotCached(t *testing.T) {
	repo := schemarepo.Demo()
	host := schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo})
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		host.ServeHTTP(w, r)
	}))
	defer srv.Close()
	node := fakeSchemasync(t, repo)
	_, url := intake(t, []string{schemaHost(t, repo)}, map[string]string{"a": "test/event", "b": "test/event", "c": "test/event"})
	var streams []Stream
	for _, n := range []string{"a", "b", "c"} {
		streams = append(streams, Stream{Name: n, SchemaTitle: "test/event", Destinations: []string{url}})
	}
	r, err := NewRunner(testConfig(node.URL, []string{srv.URL + "/repositories/primary/jsonschema"}, streams), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res {
		if s.OK || s.FailedStep != StepFetch || !strings.Contains(s.Error, "HTTP 503") {
			t.Fatalf("%s: %+v", s.Stream, s)
		}
	}
	if n := r.Stats().SchemaFetches; n != 1 {
		t.Fatalf("%d fetches, want 1 shared", n)
	}
	down.Store(false)
	res, _ = r.Run(context.Background())
	for _, s := range res {
		if !s.OK {
			t.Fatalf("%s: %s", s.Stream, s.Error)
		}
	}
}

// TestSharedFetchOfACancelledRun: a run that waits on a fetch started by another run, whose context is then
// cancelled, does not take that cancellation as its own failure: it fetches the schema itself.
func TestSharedFetchOfACancelledRun(t *testing.T) {
	repo := schemarepo.Demo()
	host := schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo})
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 { // the first fetch hangs until its run is cancelled
			<-r.Context().Done()
			return
		}
		host.ServeHTTP(w, r)
	}))
	defer srv.Close()
	node := fakeSchemasync(t, repo)
	_, url := intake(t, []string{schemaHost(t, repo)}, map[string]string{"a": "test/event"})
	r, err := NewRunner(testConfig(node.URL, []string{srv.URL + "/repositories/primary/jsonschema"},
		[]Stream{{Name: "a", SchemaTitle: "test/event", Destinations: []string{url}}}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan []Result)
	go func() {
		res, _ := r.Run(ctx)
		first <- res
	}()
	for requests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan []Result)
	go func() {
		res, _ := r.Run(context.Background())
		second <- res
	}()
	time.Sleep(100 * time.Millisecond) // let the second run wait on the first one's fetch
	cancel()
	if res := <-first; res[0].OK {
		t.Fatalf("the cancelled run succeeded: %+v", res[0])
	}
	if res := <-second; !res[0].OK {
		t.Fatalf("the second run failed: %s", res[0].Error)
	}
}

func TestNoSafeVersionIsAClearError(t *testing.T) {
	a := schemarepo.New()
	a.Put("x/y", "1.0.0", schemarepo.Doc("x/y", "1.0.0"))
	b := schemarepo.New()
	b.Put("x/y", "2.0.0", schemarepo.Doc("x/y", "2.0.0"))
	node := fakeSchemasync(t, a, b)
	cfg := testConfig(node.URL, []string{schemaHost(t, a)}, []Stream{{Name: "x", SchemaTitle: "x/y", Destinations: []string{closedURL(t)}}})
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].OK || !errors.Is(res[0].Err, client.ErrNoSafeVersion) || res[0].FailedStep != StepVersion || !res[0].Dirty {
		t.Fatalf("result %+v", res[0])
	}
}

func TestLatestModeReadsFirstBaseURI(t *testing.T) {
	ahead := schemarepo.Demo()
	ahead.Put("test/event", "1.1.0", schemarepo.Doc("test/event", "1.1.0", "test", "extra"))
	behind := schemarepo.Demo()
	// The canary reads latest from the host that is ahead; the intake only knows the one behind.
	g, url := intake(t, []string{schemaHost(t, behind)}, map[string]string{"test.event": "test/event"})
	cfg := DefaultConfig()
	cfg.VersionSource = VersionLatest
	cfg.SchemaBaseURIs = []string{schemaHost(t, ahead), schemaHost(t, behind)}
	cfg.Streams = []Stream{{Name: "test.event", SchemaTitle: "test/event", Destinations: []string{url}}}
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.OK || r.Version != "1.1.0" || r.FailedStep != StepProduce || !strings.Contains(r.Error, "HTTP 500: error: Failed loading schema at /test/event/1.1.0") {
		t.Fatalf("result %+v", r)
	}
	if s := g.Stats(); s.Errored != 1 {
		t.Fatalf("intake %+v", s)
	}
}

func TestStreamConfigProblemsFailOnlyThatStream(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	_, url := intake(t, []string{base}, map[string]string{"test.event": "test/event"})
	dir := t.TempDir()
	path := dir + "/streams.json"
	writeFile(t, path, `{"streams":{
		"test.event":{"schema_title":"test/event","destination_event_service":"eventgate-main","canary_events_enabled":true,"topic_prefixes":["eqiad."]},
		"orphan":{"schema_title":"test/event","destination_event_service":"eventgate-nowhere","canary_events_enabled":true},
		"quiet":{"schema_title":"test/event","destination_event_service":"eventgate-main","canary_events_enabled":false}}}`)
	cfg := testConfig(node.URL, []string{base}, nil)
	cfg.StreamConfig = path
	cfg.Destinations = map[string][]string{"eventgate-main": {url}}
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Stream != "orphan" || res[0].FailedStep != StepConfig || !strings.Contains(res[0].Error, `"eventgate-nowhere" has no URLs`) || !res[1].OK {
		t.Fatalf("results %+v", res)
	}
}
