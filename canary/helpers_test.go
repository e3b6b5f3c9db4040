package canary

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evenkeel/evenkeel/internal/eventgate/fakeintake"
	"github.com/evenkeel/evenkeel/internal/refused"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// fakeSchemasync answers GET /v1/repositories/primary/schemas/<title> in schemasync's shape, computing the safe
// version (the highest version on every repo) from the hosts' repositories at request time.
func fakeSchemasync(t testing.TB, repos ...*schemarepo.Repo) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		title, ok := strings.CutPrefix(r.URL.Path, "/v1/repositories/primary/schemas/")
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"unknown repository"}`))
			return
		}
		count := map[string]int{}
		var latest string
		var endpoints []map[string]any
		for i, repo := range repos {
			vs := repo.Versions(title)
			for _, v := range vs {
				count[v]++
			}
			if len(vs) > 0 {
				if l := vs[len(vs)-1]; latest == "" || less(latest, l) {
					latest = l
				}
			}
			endpoints = append(endpoints, map[string]any{"url": "http://host" + string(rune('1'+i)) + "/", "state": "ok", "versions": vs})
		}
		if latest == "" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"unknown title"}`))
			return
		}
		var safe any
		for v, n := range count {
			if n == len(repos) && (safe == nil || less(safe.(string), v)) {
				safe = v
			}
		}
		dirty := false
		for _, n := range count {
			dirty = dirty || n != len(repos)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"repository": "primary", "title": title, "safe_version": safe, "latest_version": latest,
			"dirty": dirty, "stale": false, "endpoints": endpoints,
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func less(a, b string) bool {
	vs := []string{b, a}
	schemarepo.SortVersions(vs)
	return vs[0] == a && a != b
}

// schemaHost serves repo as the primary repository and returns the schema base URI.
func schemaHost(t testing.TB, repo *schemarepo.Repo) string {
	t.Helper()
	srv := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo}))
	t.Cleanup(srv.Close)
	return srv.URL + "/repositories/primary/jsonschema"
}

// intake starts an EventGate-compatible intake and returns it with its /v1/events URL.
func intake(t testing.TB, bases []string, streams map[string]string) (*fakeintake.Intake, string) {
	t.Helper()
	g, err := fakeintake.New(fakeintake.Config{SchemaBaseURIs: bases, Streams: streams}, fakeintake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv.URL + "/v1/events"
}

// scripted answers POSTs with the given statuses and bodies in turn (the last one repeats) and counts them.
type scripted struct {
	statuses []int
	bodies   []string
	n        atomic.Int64
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(s.n.Add(1)) - 1
	if i >= len(s.statuses) {
		i = len(s.statuses) - 1
	}
	w.WriteHeader(s.statuses[i])
	if i < len(s.bodies) {
		_, _ = w.Write([]byte(s.bodies[i]))
	}
}

func scriptedURL(t testing.TB, s *scripted) string {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL + "/v1/events"
}

// closedURL is an intake URL that refuses connections until the test ends.
func closedURL(t testing.TB) string {
	t.Helper()
	return refused.URL(t) + "/v1/events"
}

// docWithout returns schemarepo.Doc(title, version, fields...) with every occurrence of cut removed.
func docWithout(title, version, cut string, fields ...string) []byte {
	return []byte(strings.Replace(string(schemarepo.Doc(title, version, fields...)), cut, "", 1))
}

// testConfig is a safe-mode config with fast retries.
func testConfig(schemasync string, bases []string, streams []Stream) Config {
	cfg := DefaultConfig()
	cfg.Schemasync = []string{schemasync}
	cfg.SchemaBaseURIs = bases
	cfg.Streams = streams
	cfg.Timeout = 2e9
	cfg.RetryBackoff = 5e6
	return cfg
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
