package canary

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

func TestStreamConfigFromURL(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	g, url := intake(t, []string{base}, map[string]string{"test.event": "test/event"})
	var body string
	esc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body == "" {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	defer esc.Close()
	cfg := testConfig(node.URL, []string{base}, nil)
	cfg.StreamConfig = esc.URL + "/w/api.php?action=streamconfigs"
	cfg.Destinations = map[string][]string{"eventgate-main": {url}}

	tests := []struct {
		name    string
		body    string
		invalid bool
		errHas  string
	}{
		{name: "unreachable is not a config error", body: "", invalid: false, errHas: "HTTP 503"},
		{name: "not eventstreamconfig", body: `{"streams":[]}`, invalid: true, errHas: "not EventStreamConfig JSON"},
		{name: "nothing enabled", body: `{"streams":{"test.event":{"schema_title":"test/event"}}}`, invalid: true, errHas: "no stream has canary_events_enabled"},
		{name: "ok", body: `{"streams":{"test.event":{"schema_title":"test/event","destination_event_service":"eventgate-main","canary_events_enabled":true}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body = tt.body
			res, err := Run(context.Background(), cfg, Options{})
			if tt.errHas == "" {
				if err != nil || len(res) != 1 || !res[0].OK {
					t.Fatalf("err %v results %+v", err, res)
				}
				return
			}
			var sce *StreamConfigError
			if !errors.As(err, &sce) || sce.Invalid != tt.invalid || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err = %v (%T), want a *StreamConfigError invalid=%v containing %q", err, err, tt.invalid, tt.errHas)
			}
		})
	}
	if g.Stats().Accepted != 1 {
		t.Fatalf("intake %+v", g.Stats())
	}
}

func TestHastyAndStaleAreReported(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"repository":"primary","title":"test/event","safe_version":"1.0.0","latest_version":"1.0.0","dirty":false,"stale":true,"endpoints":[{"url":"http://h1/","state":"unknown","reason":"connection refused"}]}`))
	}))
	defer node.Close()
	g, url := intake(t, []string{base}, map[string]string{"test.event": "test/event"})
	cfg := testConfig(node.URL, []string{base}, []Stream{{Name: "test.event", SchemaTitle: "test/event", Destinations: []string{url}}})
	cfg.Hasty = true
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if !r.OK || !r.Stale || r.Deliveries[0].Status != http.StatusAccepted || g.Stats().Accepted != 1 {
		t.Fatalf("result %+v, intake %+v", r, g.Stats())
	}
}

func TestCancelledRunStopsRetrying(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	flaky := &scripted{statuses: []int{503}}
	cfg := testConfig(node.URL, []string{base}, []Stream{{Name: "test.event", SchemaTitle: "test/event", Destinations: []string{scriptedURL(t, flaky)}}})
	cfg.Retries, cfg.RetryBackoff = 10, 1<<40 // a retry would wait for ever
	r, err := NewRunner(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []Result)
	go func() {
		res, _ := r.Run(ctx)
		done <- res
	}()
	deadline := time.Now().Add(10 * time.Second)
	for flaky.n.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	res := <-done
	if res[0].OK || res[0].FailedStep != StepProduce || res[0].Deliveries[0].Attempts != 1 {
		t.Fatalf("result %+v", res[0])
	}
}

// TestStreamConfigRetries: a stream config URL that fails transiently is retried with the produce backoff; one
// that answers 404 is not; a refused connection is retried and its message names the URL once.
func TestStreamConfigRetries(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	_, url := intake(t, []string{base}, map[string]string{"test.event": "test/event"})
	const doc = `{"streams":{"test.event":{"schema_title":"test/event","destination_event_service":"eventgate-main","canary_events_enabled":true}}}`
	for _, tc := range []struct {
		name     string
		statuses []int
		url      string // instead of the scripted server
		requests int64
		errHas   string
	}{
		{name: "503 then 504 then ok", statuses: []int{503, 504, 200}, requests: 3},
		{name: "timeout then ok", statuses: []int{0, 200}, requests: 2},
		{name: "503 for ever", statuses: []int{503}, requests: 3, errHas: "HTTP 503 (after 3 attempts)"},
		{name: "404 is not retried", statuses: []int{404, 200}, requests: 1, errHas: ": HTTP 404"},
		{name: "connection refused", url: closedURL(t), errHas: "connection refused (after 3 attempts)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				status := tc.statuses[min(i, len(tc.statuses)-1)]
				switch status {
				case 0: // slower than the timeout
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
				case 200:
					_, _ = w.Write([]byte(doc))
				default:
					http.Error(w, "upstream connect error", status)
				}
			}))
			defer srv.Close()
			cfg := testConfig(node.URL, []string{base}, nil)
			cfg.StreamConfig = srv.URL + "/w/api.php?action=streamconfigs"
			if tc.url != "" {
				cfg.StreamConfig = tc.url
			}
			cfg.Destinations = map[string][]string{"eventgate-main": {url}}
			cfg.Timeout = time.Second // the one slow answer waits it out; every other request needs far less
			res, err := Run(context.Background(), cfg, Options{})
			if tc.url == "" && n.Load() != tc.requests {
				t.Errorf("%d requests, want %d", n.Load(), tc.requests)
			}
			if tc.errHas == "" {
				if err != nil || len(res) != 1 || !res[0].OK {
					t.Fatalf("err %v results %+v", err, res)
				}
				return
			}
			var sce *StreamConfigError
			if !errors.As(err, &sce) || sce.Invalid || !strings.Contains(err.Error(), tc.errHas) || strings.Count(err.Error(), cfg.StreamConfig) != 1 {
				t.Fatalf("err = %v, want a *StreamConfigError containing %q and the URL once", err, tc.errHas)
			}
		})
	}
}
