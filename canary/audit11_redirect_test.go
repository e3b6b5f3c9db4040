package canary

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// TestAudit11IntakeRedirectOwnClient: with an HTTP client of the caller's (Options.HTTPClient) that follows
// any redirect, an intake's 307 to another origin still does not count: the 201 that the other origin answers
// is not a success, and the error says why. Without the response check only the default client's
// CheckRedirect would refuse it.
func TestAudit11IntakeRedirectOwnClient(t *testing.T) {
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
		http.Redirect(w, r, other.URL+"/v1/events", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirecting.Close)
	cfg := testConfig(node.URL, []string{base}, []Stream{
		{Name: "away", SchemaTitle: "test/event", Destinations: []string{redirecting.URL + "/v1/events"}},
	})
	res, err := Run(context.Background(), cfg, Options{HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	if elsewhere.Load() == 0 {
		t.Fatal("the test's client did not follow the redirect: it checks nothing")
	}
	if res[0].OK || !strings.Contains(res[0].Error, "another origin") {
		t.Fatalf("a 201 from another origin counted: ok %v, error %q", res[0].OK, res[0].Error)
	}
}
