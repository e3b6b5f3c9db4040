package canary

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// TestIntakeRedirects: an intake's 307 to another origin is refused, the event is not posted there, and the
// error says why; a 307 within the intake's origin is followed. A caller's client that follows the redirect
// anyway still gets no success from the other origin.
func TestIntakeRedirects(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(other.Close)
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/v1/events", http.StatusTemporaryRedirect)
		case "/near":
			http.Redirect(w, r, "/v1/events", http.StatusTemporaryRedirect)
		case "/v1/events":
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(redirecting.Close)
	cfg := testConfig(node.URL, []string{base}, []Stream{
		{Name: "away", SchemaTitle: "test/event", Destinations: []string{redirecting.URL + "/away"}},
		{Name: "near", SchemaTitle: "test/event", Destinations: []string{redirecting.URL + "/near"}},
	})
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].OK || !strings.Contains(res[0].Error, "another origin") || elsewhere.Load() != 0 {
		t.Fatalf("off-origin 307: ok %v, %d posts elsewhere, error %q", res[0].OK, elsewhere.Load(), res[0].Error)
	}
	if !res[1].OK {
		t.Fatalf("same-origin 307: %s", res[1].Error)
	}

	// With a client of the caller's (Options.HTTPClient) that follows any redirect, the 201 that the other
	// origin answers still does not count: the response check refuses it, not only the default client's
	// CheckRedirect.
	res, err = Run(context.Background(), cfg, Options{HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	if elsewhere.Load() == 0 {
		t.Fatal("the caller's client did not follow the redirect: it checks nothing")
	}
	if res[0].OK || !strings.Contains(res[0].Error, "another origin") {
		t.Fatalf("with the caller's client, a 201 from another origin counted: ok %v, error %q", res[0].OK, res[0].Error)
	}
}

// TestIntakeSlowBodyAfter201: an intake that answers 201 and then sends its body slowly accepted the events.
func TestIntakeSlowBodyAfter201(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusCreated)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	cfg := testConfig(node.URL, []string{base}, []Stream{{Name: "s", SchemaTitle: "test/event", Destinations: []string{slow.URL}}})
	cfg.Timeout = 2 * time.Second // reading the slow body would take it all and fail
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].OK || res[0].Deliveries[0].Status != http.StatusCreated {
		t.Fatalf("201 with a slow body: %+v", res[0])
	}
}

// TestIntakeErrorsAreSafe: an intake's body is escaped for terminals and bounded, and credentials in the
// intake's URL never appear in errors or results.
func TestIntakeErrorsAreSafe(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	evil := scriptedURL(t, &scripted{statuses: []int{400}, bodies: []string{"\x1b]0;owned\x07\x1b[2J" + strings.Repeat("x", 5000)}})
	withCreds := strings.Replace(evil, "http://", "http://user:hunter2@", 1)
	cfg := testConfig(node.URL, []string{base}, []Stream{{Name: "s", SchemaTitle: "test/event", Destinations: []string{withCreds}}})
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.OK || strings.ContainsAny(r.Error, "\x1b\x07") || len(r.Error) > 1000 {
		t.Fatalf("error not escaped or not bounded (%d bytes): %q", len(r.Error), r.Error)
	}
	for _, s := range []string{r.Error, r.Deliveries[0].URL, r.Deliveries[0].Error} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "user:") {
			t.Fatalf("credentials in %q", s)
		}
	}
	if !strings.Contains(r.Deliveries[0].URL, "***@") {
		t.Fatalf("delivery URL %q, want the credentials shown as ***", r.Deliveries[0].URL)
	}
}

// TestSchemaTooLarge: a schema over 16 MiB is reported as too large, not as a YAML syntax error.
func TestSchemaTooLarge(t *testing.T) {
	repo := schemarepo.Demo()
	node := fakeSchemasync(t, repo)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("title: test/event\n"))
		chunk := []byte("# " + strings.Repeat("x", 1<<16) + "\n")
		for n := 0; n <= MaxSchemaBytes; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(big.Close)
	cfg := testConfig(node.URL, []string{big.URL}, []Stream{{Name: "s", SchemaTitle: "test/event", Destinations: []string{closedURL(t)}}})
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].OK || !strings.Contains(res[0].Error, "too large") || strings.Contains(strings.ToLower(res[0].Error), "yaml") {
		t.Fatalf("error %q, want too large", res[0].Error)
	}
}

// TestSchemaHostCredentialsRedacted: a schema base URI with credentials that fails shows them as *** in the
// stream's error and the log.
func TestSchemaHostCredentialsRedacted(t *testing.T) {
	repo := schemarepo.Demo()
	node := fakeSchemasync(t, repo)
	refused := strings.Replace(closedURL(t), "http://", "http://user:hunter2@", 1)
	var logs strings.Builder
	cfg := testConfig(node.URL, []string{refused}, []Stream{{Name: "s", SchemaTitle: "test/event", Destinations: []string{closedURL(t)}}})
	res, err := Run(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].OK || strings.Contains(res[0].Error+logs.String(), "hunter2") || strings.Contains(res[0].Err.Error(), "hunter2") {
		t.Fatalf("credentials shown: %q\n%s", res[0].Error, logs.String())
	}
}
