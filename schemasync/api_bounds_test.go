package schemasync

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// TestAPIMethodNotAllowed: a path the API serves, asked with another method, answers 405 with Allow; an
// unknown path answers 404.
func TestAPIMethodNotAllowed(t *testing.T) {
	s := newTestService(t, svcConfig("http://127.0.0.1:1/"), ServiceOptions{})
	h := s.Handler()
	for _, tt := range []struct {
		method, path string
		code         int
	}{
		{http.MethodPost, "/v1/state", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/v1/repositories/primary/schemas/a/b", http.StatusMethodNotAllowed},
		{http.MethodPut, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodPost, "/nothing", http.StatusNotFound},
		{http.MethodGet, "/nothing", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.code {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rec.Code, tt.code)
		}
		if tt.code == http.StatusMethodNotAllowed && !strings.Contains(rec.Header().Get("Allow"), "GET") {
			t.Errorf("%s %s: Allow %q", tt.method, tt.path, rec.Header().Get("Allow"))
		}
	}
}

// TestAPIServerBounds: the API server closes idle keep-alive connections after api.idle_timeout, and serves
// at most api.max_connections at once (a further one is served once another closes).
func TestAPIServerBounds(t *testing.T) {
	scfg := svcConfig("http://127.0.0.1:1/")
	scfg.API.IdleTimeout, scfg.API.MaxConnections = 200*time.Millisecond, 2
	s := newTestService(t, scfg, ServiceOptions{})
	cfg := scfg.API
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server(cfg, s.Handler())
	go func() { _ = srv.Serve(s.Listen(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	get := func(c net.Conn) error {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // only bounds a broken server; the third waits ~200 ms
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := get(c); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	third, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { third.Close() })
	// Until the idle timeout closes the first two, the third waits (the server does not accept it).
	if err := get(third); err != nil {
		t.Fatalf("the third connection was not served after the idle ones closed: %v", err)
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
			t.Fatalf("idle connection %d still open after idle_timeout: %v", i, err)
		}
	}
	if n := s.apiConns.Load(); n > 2 {
		t.Fatalf("%d connections counted open, above max_connections", n)
	}
}

// TestMetricsSchemaCap: /metrics exports per-schema series for at most api.metrics_max_schemas schemas and
// counts the rest.
func TestMetricsSchemaCap(t *testing.T) {
	ep := serve(t, schemarepo.Synthetic(30, 1))
	cfg := svcConfig(ep)
	cfg.API.MetricsMaxSchemas = 10
	reg := prometheus.NewRegistry()
	s := newTestService(t, cfg, ServiceOptions{Registerer: reg})
	scanNow(t, s)
	_, body := apiGet(t, s.Handler(reg), "/metrics")
	if n := strings.Count(body, "schemasync_schema_dirty{"); n != 10 {
		t.Fatalf("%d schema_dirty series, want 10", n)
	}
	if !strings.Contains(body, "schemasync_metrics_schemas_omitted 20") {
		t.Fatal("the omitted schemas are not counted")
	}
}
