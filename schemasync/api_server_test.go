package schemasync

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startAPIServer serves s's API with Server(cfg) on s.Listen, as cmd/schemasync does, until the test ends.
func startAPIServer(t *testing.T, s *Service, cfg APIConfig, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server(cfg, h)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(s.Listen(ln)) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawExchange sends req as it is on a new connection and reads one answer.
func rawExchange(t *testing.T, addr, req string) (*http.Response, string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // only bounds a broken server
	if _, err := io.WriteString(c, req); err != nil {
		return nil, "", err
	}
	method, _, _ := strings.Cut(req, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// instants are the parts of an answer that change with the time it is asked.
var instants = regexp.MustCompile(`"(generated_at|last_scan)":"[^"]*"|"age_seconds":[-0-9.e]+`)

// TestAPIServerAnswersAsHandler: the production server answers every request, the lookup it serves itself
// and those it hands on, hostile ones included, with the status, headers and body that net/http's own server
// gives for Handler.
func TestAPIServerAnswersAsHandler(t *testing.T) {
	fast, refAddr := fastAndReference(t)
	for _, tt := range []struct{ name, line string }{
		{"lookup", "GET /v1/repositories/primary/schemas/a/b HTTP/1.1"},
		{"lookup with a query", "GET /v1/repositories/primary/schemas/a/b?x=1&y HTTP/1.1"},
		{"lookup, HTTP/1.0", "GET /v1/repositories/primary/schemas/a/b HTTP/1.0"},
		{"unknown schema", "GET /v1/repositories/primary/schemas/no/such HTTP/1.1"},
		{"unknown repository", "GET /v1/repositories/nope/schemas/a/b HTTP/1.1"},
		{"escaped title", "GET /v1/repositories/primary/schemas/a%2Fb HTTP/1.1"},
		{"escaped letters", "GET /v1/repositories/prim%61ry/schemas/a/b HTTP/1.1"},
		{"bad escape", "GET /v1/repositories/primary/schemas/a%zz HTTP/1.1"},
		{"dot dot", "GET /v1/repositories/primary/schemas/x/../a/b HTTP/1.1"},
		{"double slash", "GET /v1/repositories/primary/schemas/a//b HTTP/1.1"},
		{"empty title", "GET /v1/repositories/primary/schemas/ HTTP/1.1"},
		{"absolute form", "GET http://x/v1/repositories/primary/schemas/a/b HTTP/1.1"},
		{"non-ASCII", "GET /v1/repositories/primary/schemas/\xc3\xa9 HTTP/1.1"},
		{"sub-delims net/url keeps raw", "GET /v1/repositories/primary/schemas/(a)!*' HTTP/1.1"},
		{"control byte in the query", "GET /v1/repositories/primary/schemas/a/b?x=\x01 HTTP/1.1"},
		{"HEAD", "HEAD /v1/repositories/primary/schemas/a/b HTTP/1.1"},
		{"POST", "POST /v1/repositories/primary/schemas/a/b HTTP/1.1"},
		{"DELETE state", "DELETE /v1/state HTTP/1.1"},
		{"lower-case method", "get /v1/repositories/primary/schemas/a/b HTTP/1.1"},
		{"unknown path", "GET /nothing HTTP/1.1"},
		{"state", "GET /v1/state HTTP/1.1"},
		{"healthz", "GET /healthz HTTP/1.1"},
		{"readyz", "GET /readyz HTTP/1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.line + "\r\nHost: x\r\nConnection: close\r\n\r\n"
			want, wantBody, err := rawExchange(t, refAddr, req)
			if err != nil {
				t.Fatalf("net/http: %v", err)
			}
			got, gotBody, err := rawExchange(t, fast, req)
			if err != nil {
				t.Fatalf("Server: %v", err)
			}
			if got.StatusCode != want.StatusCode {
				t.Fatalf("status %d, net/http %d (%s)", got.StatusCode, want.StatusCode, wantBody)
			}
			for _, h := range []string{"Content-Type", "Allow", "Location"} {
				if got.Header.Get(h) != want.Header.Get(h) {
					t.Errorf("%s %q, net/http %q", h, got.Header.Get(h), want.Header.Get(h))
				}
			}
			if g, w := instants.ReplaceAllString(gotBody, ""), instants.ReplaceAllString(wantBody, ""); g != w {
				t.Errorf("body\n%s\nnet/http's\n%s", g, w)
			}
		})
	}
	t.Run("metrics", func(t *testing.T) {
		got, body, err := rawExchange(t, fast, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
		if err != nil || got.StatusCode != http.StatusOK || !strings.Contains(body, "schemasync_") {
			t.Fatalf("/metrics: %v %v %.200s", err, got, body)
		}
	})
}

// TestAPIServerHostileRequests: the production server's own request bounds: headers over 16 KiB, a body over
// 64 KiB, and headers sent too slowly are refused or cut off.
func TestAPIServerHostileRequests(t *testing.T) {
	s := newTestService(t, svcConfig(serve(t, faultRepo())), ServiceOptions{})
	scanNow(t, s)
	cfg := s.Config().API
	cfg.ReadHeaderTimeout, cfg.ReadTimeout = 300*time.Millisecond, time.Second
	addr := startAPIServer(t, s, cfg, s.Handler())
	t.Run("headers over the bound", func(t *testing.T) {
		resp, _, err := rawExchange(t, addr, "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\nX-Big: "+
			strings.Repeat("a", apiMaxHeaderBytes)+"\r\n\r\n")
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%v %v; want 431", resp, err)
		}
	})
	t.Run("body over the bound", func(t *testing.T) {
		resp, _, err := rawExchange(t, addr, "POST /v1/state HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"+
			strings.Repeat("a", apiMaxBodyBytes+1))
		if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%v %v; want 413", resp, err)
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // only bounds a broken server
		_, err = io.Copy(io.Discard, c)                         // an error answer, if any, then the close
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a request whose headers never end was not cut off after %s", time.Since(start))
		}
	})
}

// TestAPIServerClose: Close ends idle keep-alive connections at once, and Serve returns nil.
func TestAPIServerClose(t *testing.T) {
	s := newTestService(t, svcConfig(serve(t, faultRepo())), ServiceOptions{})
	scanNow(t, s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server(s.Config().API, s.Handler())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(s.Listen(ln)) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second)) // the idle timeout (60 s) is not what closes it
	if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("an idle connection outlived Close: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}
