package canary

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// recorder is an intake that redirects /r<code> to /v1/events with that status, answers 201 on /v1/events
// whatever the method, and records every request it gets.
type recorder struct {
	mu   sync.Mutex
	reqs []string // "METHOD path body"
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r.Method+" "+r.URL.Path+" "+string(b))
	rec.mu.Unlock()
	switch r.URL.Path {
	case "/r301":
		http.Redirect(w, r, "/v1/events", http.StatusMovedPermanently)
	case "/r302":
		http.Redirect(w, r, "/v1/events", http.StatusFound)
	case "/r303":
		http.Redirect(w, r, "/v1/events", http.StatusSeeOther)
	case "/r307":
		http.Redirect(w, r, "/v1/events", http.StatusTemporaryRedirect)
	case "/r308":
		http.Redirect(w, r, "/v1/events", http.StatusPermanentRedirect)
	default:
		w.WriteHeader(http.StatusCreated)
	}
}

func (rec *recorder) requests() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.reqs...)
}

// TestIntakeRedirectKeepsThePost: a same-origin 307 or 308 is followed with the same method and the same
// body (the event arrives once, intact, at the target); a 301, 302 or 303, which an HTTP client follows with
// a GET without the body, is refused, and the error says the event was not accepted. On main, a 302 to a URL
// that answers 201 to anything counted as delivered, though the target only ever saw a GET without the event.
func TestIntakeRedirectKeepsThePost(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	for _, code := range []string{"301", "302", "303", "307", "308"} {
		for _, client := range []string{"default client", "caller's client"} {
			t.Run(code+" "+client, func(t *testing.T) {
				rec := &recorder{}
				srv := httptest.NewServer(rec)
				t.Cleanup(srv.Close)
				cfg := testConfig(node.URL, []string{base}, []Stream{{Name: "s", SchemaTitle: "test/event", Destinations: []string{srv.URL + "/r" + code}}})
				cfg.Retries = 0
				var opts Options
				if client != "default client" {
					opts.HTTPClient = &http.Client{} // follows any redirect its own way
				}
				res, err := Run(context.Background(), cfg, opts)
				if err != nil {
					t.Fatal(err)
				}
				reqs := rec.requests()
				var atTarget []string
				for _, r := range reqs {
					if strings.HasPrefix(r, "POST /v1/events ") || strings.HasPrefix(r, "GET /v1/events ") {
						atTarget = append(atTarget, r)
					}
				}
				if code == "307" || code == "308" {
					if !res[0].OK || len(atTarget) != 1 || !strings.HasPrefix(atTarget[0], "POST /v1/events [") {
						t.Fatalf("ok %v (%s); requests %q", res[0].OK, res[0].Error, reqs)
					}
					var evs []map[string]any
					if err := json.Unmarshal([]byte(strings.TrimPrefix(atTarget[0], "POST /v1/events ")), &evs); err != nil || len(evs) != 1 || evs[0]["$schema"] != "/test/event/"+res[0].Version {
						t.Fatalf("the redirected POST lost its body: %q (%v)", atTarget[0], err)
					}
					return
				}
				if res[0].OK || !strings.Contains(res[0].Error, "GET") || !strings.Contains(res[0].Error, "not accepted") {
					t.Fatalf("%s: ok %v, error %q; requests %q", code, res[0].OK, res[0].Error, reqs)
				}
				if client == "default client" && len(atTarget) != 0 {
					t.Fatalf("%s followed: %q", code, reqs)
				}
			})
		}
	}
}

// TestTitlesStayInTheirDirectory: a schema title (from the config or a stream config) with an empty, "." or
// ".." segment, or characters a terminal acts on, fails its stream at step config before any request; other
// characters that mean something in a URL ("?", "#", "%") are escaped, so that the title stays one path
// under the base URI. On main, "../../secondary/..." and "test/event?x=1" went to the schema host as written.
func TestTitlesStayInTheirDirectory(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.EscapedPath()+"|"+r.URL.RawQuery)
		mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(host.Close)
	base := host.URL + "/repositories/primary/jsonschema"
	bad := []string{"../../secondary/jsonschema/test/event", "test/./event", "test//event", "test/..", "test/\x1b[2Jevent", "test/\u202eevent"}
	var streams []Stream
	for i, title := range bad {
		streams = append(streams, Stream{Name: "bad" + string(rune('a'+i)), SchemaTitle: title, Destinations: []string{closedURL(t)}})
	}
	streams = append(streams, Stream{Name: "query", SchemaTitle: "test/event?x=1#y%2F", Destinations: []string{closedURL(t)}})
	for _, source := range []VersionSource{VersionLatest, VersionSafe} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		cfg := testConfig(fakeSchemasync(t).URL, []string{base}, nil)
		cfg.VersionSource = source
		for i, s := range streams {
			res := mustRunner(t, cfg).RunStream(context.Background(), s)
			if i < len(bad) {
				if res.OK || res.FailedStep != StepConfig || !strings.Contains(res.Error, "schema_title") || strings.ContainsAny(res.Error, "\x1b\u202e") {
					t.Errorf("%s: title %q: step %q, error %q; want a config failure, escaped", source, s.SchemaTitle, res.FailedStep, res.Error)
				}
			}
		}
		mu.Lock()
		for _, s := range seen {
			if s != "/repositories/primary/jsonschema/test/event%3Fx=1%23y%252F/latest|" {
				t.Errorf("%s: the schema host got %q", source, s)
			}
		}
		mu.Unlock()
	}
}

func mustRunner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	cfg.Streams = []Stream{{Name: "placeholder", SchemaTitle: "x", Destinations: []string{"http://127.0.0.1:1/"}}}
	r, err := NewRunner(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStreamConfigTitlesAndNamesChecked: a stream config's entry whose title or name a terminal would act on
// is listed with a Problem (and its name escaped), so that check-config shows it and a run fails only it.
func TestStreamConfigTitlesAndNamesChecked(t *testing.T) {
	doc := `{"streams":{"ok":{"schema_title":"test/event","destination_event_service":"eg","canary_events_enabled":true},` +
		`"dots":{"schema_title":"../x","destination_event_service":"eg","canary_events_enabled":true},` +
		`"n\u001b[2J":{"schema_title":"test/event","destination_event_service":"eg","canary_events_enabled":true}}}`
	streams, err := ParseStreamConfig([]byte(doc), map[string][]string{"eg": {"http://eg/v1/events"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range streams {
		got[s.Name] = s.Problem
	}
	if len(got) != 3 || got["ok"] != "" || !strings.Contains(got["dots"], "schema_title") || !strings.Contains(got[`n\x1b[2J`], "name") {
		t.Fatalf("streams %q", got)
	}
}

// TestDeliveryErrorsAreEscaped: what an intake puts in a redirect (a host with a bidirectional override) or
// a status line reaches Delivery.Error and Result.Error escaped, in --json too.
func TestDeliveryErrorsAreEscaped(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://ev\u202eil.example:8080/v1/events")
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(node.URL, []string{base}, []Stream{{Name: "s", SchemaTitle: "test/event", Destinations: []string{srv.URL}}})
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(res)
	if res[0].OK || len(res[0].Deliveries) != 1 || strings.Contains(res[0].Error+res[0].Deliveries[0].Error+string(js), "\u202e") {
		t.Fatalf("ok %v, error %q, deliveries %+v", res[0].OK, res[0].Error, res[0].Deliveries)
	}
	if !strings.Contains(res[0].Deliveries[0].Error, `\u202e`) {
		t.Fatalf("delivery error %q does not show the escaped host", res[0].Deliveries[0].Error)
	}
}

// TestIntakeHugeAndHTMLAnswers: a 201 followed by an endless body is accepted without reading it; an HTML
// error page (a proxy's 502) is retried and then reported bounded and escaped; a 400 whose body is invalid
// UTF-8 is reported escaped. (Held on main.)
func TestIntakeHugeAndHTMLAnswers(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		chunk := []byte(strings.Repeat("x", 1<<16))
		for i := 0; i < 1<<14; i++ { // up to 1 GiB, until the client goes away
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)
	html := &scripted{statuses: []int{http.StatusBadGateway}, bodies: []string{"<html><head><title>502 Bad Gateway</title></head><body>\x1b[31m" + strings.Repeat("<p>proxy</p>", 10000) + "</body></html>"}}
	utf := &scripted{statuses: []int{http.StatusBadRequest}, bodies: []string{"bad \xff\xfe\xc3 body"}}
	cfg := testConfig(node.URL, []string{base}, []Stream{
		{Name: "a-endless", SchemaTitle: "test/event", Destinations: []string{endless.URL}},
		{Name: "b-html", SchemaTitle: "test/event", Destinations: []string{scriptedURL(t, html)}},
		{Name: "c-utf8", SchemaTitle: "test/event", Destinations: []string{scriptedURL(t, utf)}},
	})
	cfg.Retries = 2
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].OK || res[0].Deliveries[0].Outcome != OutcomeAccepted {
		t.Fatalf("201 with an endless body: %+v", res[0])
	}
	d := res[1].Deliveries[0]
	if res[1].OK || d.Attempts != 3 || d.Outcome != OutcomeRefused || len(d.Error) > 1000 || strings.Contains(d.Error, "\x1b") || !strings.Contains(d.Error, "502 Bad Gateway") {
		t.Fatalf("HTML 502: %d attempts, outcome %s, error (%d bytes) %q", d.Attempts, d.Outcome, len(d.Error), d.Error)
	}
	if e := res[2].Deliveries[0].Error; res[2].OK || !strings.Contains(e, `bad \xff\xfe\xc3 body`) {
		t.Fatalf("invalid UTF-8: %q", e)
	}
}
