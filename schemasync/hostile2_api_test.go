package schemasync

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"
)

// fastAndReference serves one scanned service's API twice, with the production Server and with net/http's
// server, and returns both addresses.
func fastAndReference(t *testing.T) (fast, ref string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s := newTestService(t, svcConfig(serve(t, faultRepo())), ServiceOptions{Registerer: reg})
	scanNow(t, s)
	fast = startAPIServer(t, s, s.Config().API, s.Handler(reg))
	srv := httptest.NewServer(s.Handler(reg))
	t.Cleanup(srv.Close)
	return fast, strings.TrimPrefix(srv.URL, "http://")
}

// TestAPIServerAgreesOnHostileTargets: requests a hostile or broken client sends (odd targets, methods,
// encodings and framings) get from the production server the status, headers and body that net/http's own
// server gives for Handler, whichever of its two paths serves them.
func TestAPIServerAgreesOnHostileTargets(t *testing.T) {
	fast, refAddr := fastAndReference(t)
	const h = "\r\nHost: x\r\nConnection: close\r\n\r\n"
	for _, tt := range []struct{ name, req string }{
		{"OPTIONS *", "OPTIONS * HTTP/1.1" + h},
		{"GET *", "GET * HTTP/1.1" + h},
		{"OPTIONS a path", "OPTIONS /v1/state HTTP/1.1" + h},
		{"PUT the lookup", "PUT /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"POST /metrics", "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"},
		{"HEAD state", "HEAD /v1/state HTTP/1.1" + h},
		{"CONNECT", "CONNECT x:80 HTTP/1.1" + h},
		{"TRACE", "TRACE /v1/repositories/primary/schemas/a/b HTTP/1.1" + h},
		{"double-encoded title", "GET /v1/repositories/primary/schemas/a%252Fb HTTP/1.1" + h},
		{"encoded repo and title", "GET /v1/repositories/%70rimary/schemas/%61/%62 HTTP/1.1" + h},
		{"encoded slash in repo", "GET /v1/repositories/pri%2Fmary/schemas/a/b HTTP/1.1" + h},
		{"encoded NUL", "GET /v1/repositories/primary/schemas/a%00b HTTP/1.1" + h},
		{"encoded dot dot", "GET /v1/repositories/primary/schemas/x/%2e%2e/a/b HTTP/1.1" + h},
		{"absolute form, another host", "GET http://evil.example:99/v1/repositories/primary/schemas/a/b HTTP/1.1" + h},
		{"absolute form, https", "GET https://x/v1/repositories/primary/schemas/a/b HTTP/1.1" + h},
		{"absolute form with userinfo", "GET http://u:p@x/v1/repositories/primary/schemas/a/b HTTP/1.1" + h},
		{"fragment", "GET /v1/repositories/primary/schemas/a/b#frag HTTP/1.1" + h},
		{"trailing slash", "GET /v1/repositories/primary/schemas/a/b/ HTTP/1.1" + h},
		{"no Host, HTTP/1.1", "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nConnection: close\r\n\r\n"},
		{"no Host, HTTP/1.0", "GET /v1/repositories/primary/schemas/a/b HTTP/1.0\r\n\r\n"},
		{"two Hosts", "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n"},
		{"chunked and Content-Length", "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nConnection: close\r\n\r\n0\r\n\r\n"},
		{"bad Content-Length", "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n"},
		{"body on the lookup", "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"},
		{"space in the header name", "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\nX Y: z\r\nConnection: close\r\n\r\n"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"HTTP/1.2", "GET /v1/repositories/primary/schemas/a/b HTTP/1.2" + h},
		{"HTTP/9.9", "GET /v1/repositories/primary/schemas/a/b HTTP/9.9" + h},
		{"tab in the target", "GET /v1/repositories/primary/schemas/a\tb HTTP/1.1" + h},
		{"raw DEL in the target", "GET /v1/repositories/primary/schemas/a\x7fb HTTP/1.1" + h},
		{"raw ESC in the target", "GET /v1/repositories/primary/schemas/\x1b[31m HTTP/1.1" + h},
		{"long title", "GET /v1/repositories/primary/schemas/" + strings.Repeat("a", 8000) + " HTTP/1.1" + h},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want, wantBody, werr := rawExchange(t, refAddr, tt.req)
			got, gotBody, gerr := rawExchange(t, fast, tt.req)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("Server: %v; net/http: %v", gerr, werr)
			}
			if werr != nil {
				return
			}
			if got.StatusCode != want.StatusCode {
				t.Fatalf("status %d, net/http %d (%q; ours %q)", got.StatusCode, want.StatusCode, wantBody, gotBody)
			}
			for _, h := range []string{"Content-Type", "Allow", "Location", "Content-Length"} {
				if h == "Content-Length" && want.Close && want.Header.Get(h) == "" {
					continue // net/http frames an error answer by closing the connection; either framing is right
				}
				if got.Header.Get(h) != want.Header.Get(h) {
					t.Errorf("%s %q, net/http %q", h, got.Header.Get(h), want.Header.Get(h))
				}
			}
			if g, w := instants.ReplaceAllString(gotBody, ""), instants.ReplaceAllString(wantBody, ""); g != w {
				t.Errorf("body\n%q\nnet/http's\n%q", g, w)
			}
		})
	}
}

// exchangeAll sends req (several requests, pipelined, the first heads of them HEAD) on one connection and
// reads answers until the server closes it or max answers came; it returns each answer's status and body.
func exchangeAll(t *testing.T, addr, req string, heads, max int) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // only bounds a broken server
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []string
	for len(out) < max {
		var sent *http.Request
		if len(out) < heads {
			sent = &http.Request{Method: http.MethodHead}
		}
		resp, err := http.ReadResponse(br, sent)
		if err != nil {
			break
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, fmt.Sprintf("%d %s", resp.StatusCode, instants.ReplaceAllString(string(body), "")))
		if resp.Close {
			break
		}
	}
	return out
}

// TestAPIServerPipelining: requests pipelined on one connection, and framings a proxy in front might read
// differently (a body on a GET, a header name with a space), are answered one for one as net/http answers
// them: no request's bytes are read as the start of the next one.
func TestAPIServerPipelining(t *testing.T) {
	fast, refAddr := fastAndReference(t)
	const lookup = "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\n"
	const last = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	for _, tt := range []struct {
		name, req string
		heads     int
	}{
		{"three lookups", lookup + "\r\n" + lookup + "\r\n" + last, 0},
		{"lookup and state", lookup + "\r\nGET /v1/state HTTP/1.1\r\nHost: x\r\n\r\n" + last, 0},
		{"a body on a GET", lookup + "Content-Length: 3\r\n\r\nabc" + last, 0},
		{"a body on a GET that looks like a request", lookup + "Content-Length: 44\r\n\r\n" +
			"GET /v1/state HTTP/1.1\r\nHost: x\r\n\r\n" + "xxxxxxxxx" + last, 0},
		{"a chunked body on a GET", lookup + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + last, 0},
		{"a chunked body on the fallback", "GET /v1/state HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + last, 0},
		{"Content-Length with a space before the colon", lookup + "Content-Length : 3\r\n\r\nabc" + last, 0},
		{"HEAD then GET", "HEAD /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\n\r\n" + last, 1},
		{"HTTP/1.0 keep-alive", "GET /v1/repositories/primary/schemas/a/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + last, 0},
		{"HTTP/1.0 without keep-alive", "GET /v1/repositories/primary/schemas/a/b HTTP/1.0\r\n\r\n" + last, 0},
		{"Connection: close first", lookup + "Connection: close\r\n\r\n" + last, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := exchangeAll(t, refAddr, tt.req, tt.heads, 5)
			got := exchangeAll(t, fast, tt.req, tt.heads, 5)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("answers\n%q\nnet/http's\n%q", got, want)
			}
		})
	}
}

// TestAPIServerConnectionFlood: 10,000 connections against api.max_connections, each sending half a request
// and then nothing (slowloris). While they last, the open connections stay at the cap; once they end, a
// legitimate client is served at once and no connection stays counted.
func TestAPIServerConnectionFlood(t *testing.T) {
	sc := svcConfig(serve(t, faultRepo()))
	sc.API.MaxConnections = 64
	sc.API.ReadHeaderTimeout, sc.API.ReadTimeout = 300*time.Millisecond, time.Second
	s := newTestService(t, sc, ServiceOptions{})
	scanNow(t, s)
	cfg := s.Config().API
	addr := startAPIServer(t, s, cfg, s.Handler())
	const flood = 10000
	var (
		mu    sync.Mutex
		conns []net.Conn
		peak  atomic.Int64
		wg    sync.WaitGroup
		next  atomic.Int64
	)
	for w := 0; w < 100; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= flood {
				c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
				if err != nil {
					continue // the listen queue is full: the kernel drops the SYN
				}
				_, _ = io.WriteString(c, "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\n")
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				if n := s.apiConns.Load(); n > peak.Load() {
					peak.Store(n)
				}
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > int64(cfg.MaxConnections) {
		t.Fatalf("%d connections served at once, above max_connections %d", p, cfg.MaxConnections)
	}
	t.Logf("%d of %d flood connections were established; at most %d served at once", len(conns), flood, peak.Load())
	for _, c := range conns {
		_ = c.Close()
	}
	start := time.Now()
	resp, body, err := rawExchange(t, addr, "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(body, `"safe_version":"1.1.0"`) {
		t.Fatalf("after the flood: %v %v %.200s", resp, err, body)
	}
	t.Logf("a legitimate client was served %s after the flood ended", time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(10 * time.Second)
	for s.apiConns.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still counted open after the flood", s.apiConns.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAPIServerSlowClients: a request sent a byte at a time, each byte its own TCP segment, is served while
// it arrives within read_header_timeout; a body that trickles in is cut off at read_timeout, with net/http's
// answer, and the connection closed.
func TestAPIServerSlowClients(t *testing.T) {
	sc := svcConfig(serve(t, faultRepo()))
	sc.API.ReadHeaderTimeout, sc.API.ReadTimeout = 2*time.Second, 3*time.Second
	s := newTestService(t, sc, ServiceOptions{})
	scanNow(t, s)
	addr := startAPIServer(t, s, s.Config().API, s.Handler())
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.(*net.TCPConn).SetNoDelay(true)
		_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // only bounds a broken server
		return c, bufio.NewReader(c)
	}
	t.Run("one byte per segment", func(t *testing.T) {
		c, br := dial()
		req := "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		for i := 0; i < len(req); i++ {
			if _, err := c.Write([]byte{req[i]}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%v %v", resp, err)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		c, br := dial()
		if _, err := io.WriteString(c, "POST /v1/state HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 1000; i++ {
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("a trickling body: %s", resp.Status)
			}
			t.Logf("a trickling body: %s after %s", resp.Status, time.Since(start).Round(time.Millisecond))
		}
		if d := time.Since(start); d > 2*sc.API.ReadTimeout {
			t.Fatalf("a trickling body held the connection %s, read_timeout %s", d, sc.API.ReadTimeout)
		}
		_ = c.Close()
		<-done
	})
}

// TestNetHTTPAccepts: the request checks the production server makes before it serves anything, on requests
// fasthttp reads (a name with a non-ASCII byte or a parenthesis fasthttp refuses itself).
func TestNetHTTPAccepts(t *testing.T) {
	for _, tt := range []struct {
		name, req string
		want      int // 0: accepted
	}{
		{"plain", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", 0},
		{"HTTP/1.9", "GET / HTTP/1.9\r\nHost: x\r\n\r\n", 0},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", http.StatusHTTPVersionNotSupported},
		{"HTTP/0.9", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", http.StatusHTTPVersionNotSupported},
		{"token punctuation", "GET / HTTP/1.1\r\nHost: x\r\nX-a!#$%&'*+.^_`|~: 1\r\n\r\n", 0},
		{"space inside a name", "GET / HTTP/1.1\r\nHost: x\r\nX Y: 1\r\n\r\n", http.StatusBadRequest},
		{"colon in the value", "GET / HTTP/1.1\r\nHost: x\r\nX: a:b\r\n\r\n", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(tt.req))); err != nil {
				t.Fatalf("fasthttp does not read it: %v", err)
			}
			ok := netHTTPAccepts(&ctx)
			if ok != (tt.want == 0) || !ok && ctx.Response.StatusCode() != tt.want {
				t.Fatalf("accepted %v, status %d; want %d", ok, ctx.Response.StatusCode(), tt.want)
			}
		})
	}
}

// FuzzValidHeaderName: the production server's header-name rule is net/http's.
func FuzzValidHeaderName(f *testing.F) {
	for _, s := range []string{"Host", "X-Y", "X Y", "", "a:b", "\x00", "é", "!#$%&'*+-.^_`|~", "(", "\x7f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, name []byte) {
		if got, want := validHeaderName(name), httpguts.ValidHeaderFieldName(string(name)); got != want {
			t.Fatalf("validHeaderName(%q) = %v, net/http's rule %v", name, got, want)
		}
	})
}
