package canary

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// TestPushErrorsAreSafe: a Pushgateway URL with credentials that answers an error, with a body full of
// terminal escapes, gives an error without the credentials, escaped and bounded (the push library quotes its
// URL and the body whole).
func TestPushErrorsAreSafe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("\x1b]0;owned\x07\x1b[2J" + strings.Repeat("y", 100_000)))
	}))
	t.Cleanup(srv.Close)
	withCreds := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1)
	res := []Result{{Stream: "s", OK: true, Version: "1.0.0", Started: time.Unix(1_800_000_000, 0)}}
	err := Push(context.Background(), res, PushOptions{URL: withCreds, Job: "canary", Timeout: 2 * time.Second})
	if err == nil {
		t.Fatal("a push answered 500 succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "hunter2") || strings.Contains(msg, "user:") {
		t.Fatalf("credentials in the push error: %.300q", msg)
	}
	if strings.ContainsAny(msg, "\x1b\x07") || len(msg) > 2000 {
		t.Fatalf("push error not escaped or not bounded (%d bytes): %.300q", len(msg), msg)
	}
	if !strings.Contains(msg, "500") {
		t.Fatalf("push error %q does not say what the Pushgateway answered", msg)
	}
}

// TestSchemasyncCredentialsRedacted: a schemasync node URL with credentials that fails shows them as *** in
// the stream's error and the log.
func TestSchemasyncCredentialsRedacted(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadGateway)
	}))
	t.Cleanup(failing.Close)
	nodes := []string{
		strings.Replace(closedURL(t), "http://", "http://user:hunter2@", 1),
		strings.Replace(failing.URL, "http://", "http://user:hunter3@", 1),
	}
	var logs strings.Builder
	cfg := testConfig(nodes[0], []string{base}, []Stream{{Name: "s", SchemaTitle: "test/event", Destinations: []string{closedURL(t)}}})
	cfg.Schemasync = nodes
	res, err := Run(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	all := res[0].Error + res[0].Err.Error() + logs.String()
	if res[0].OK || strings.Contains(all, "hunter") || strings.Contains(all, "user:") {
		t.Fatalf("credentials shown: %q\n%s", res[0].Error, logs.String())
	}
}
