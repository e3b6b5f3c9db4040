package canary

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// post sends an empty POST with client to u and returns the transport error (nil if an answer came).
func post(ctx context.Context, client *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("[]"))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// quietTLSServer is an HTTPS intake answering 201, with a certificate no default client trusts. It does not log
// the handshakes that clients abort.
func quietTLSServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// hangUp listens on loopback and, for every connection, reads the request and then closes the connection
// without an answer: abruptly (RST) when reset is true, else with a FIN.
func hangUp(t *testing.T, reset bool) string {
	t.Helper()
	return rawServer(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		if reset {
			_ = c.(*net.TCPConn).SetLinger(0)
		}
	})
}

// rawServer listens on loopback and hands every connection to serve, one at a time, closing it after; it
// returns the /v1/events URL.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c)
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String() + "/v1/events"
}

// TestTransient classifies real transport errors, made against loopback servers, and intake answers: only
// what may pass (connection refused, reset or closed, timeouts; 429, 502, 503, 504, a 500 that is not
// EventGate's) is retried.
func TestTransient(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) }))
	defer plain.Close()
	tlsSrv := quietTLSServer(t)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection only after the body
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	bg := context.Background()
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(bg, 30*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	tlsPort := tlsSrv.URL[strings.LastIndex(tlsSrv.URL, ":"):]
	egBody := []byte(`{"error":[{"context":{"message":"Failed loading schema at /a/1.0.0"}}]}`)

	for _, tc := range []struct {
		name   string
		status int
		body   []byte
		err    func() error
		want   bool
	}{
		{name: "connection refused", err: func() error { return post(bg, &http.Client{}, closedURL(t)) }, want: true},
		{name: "connection closed before an answer", err: func() error { return post(bg, &http.Client{}, hangUp(t, false)) }, want: true},
		{name: "connection reset", err: func() error { return post(bg, &http.Client{}, hangUp(t, true)) }, want: true},
		{name: "request deadline", err: func() error { return post(short(), &http.Client{}, hang.URL) }, want: true},
		{name: "client timeout", err: func() error { return post(bg, &http.Client{Timeout: 30 * time.Millisecond}, hang.URL) }, want: true},
		{name: "DNS timeout", err: func() error {
			return &url.Error{Op: "Post", URL: "http://x", Err: &net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}}
		}, want: true},
		{name: "unknown certificate authority", err: func() error { return post(bg, &http.Client{}, tlsSrv.URL) }},
		{name: "certificate for another host", err: func() error { return post(bg, tlsSrv.Client(), "https://localhost"+tlsPort) }},
		{name: "HTTP server behind https", err: func() error { return post(bg, &http.Client{}, strings.Replace(plain.URL, "http:", "https:", 1)) }},
		{name: "unsupported scheme", err: func() error { return post(bg, &http.Client{}, "ftp://127.0.0.1/v1/events") }},
		{name: "no such host", err: func() error {
			return &url.Error{Op: "Post", URL: "http://x", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}
		}},
		{name: "cancelled", err: func() error { return post(cancelled, &http.Client{}, hang.URL) }},
		{name: "201", status: 201},
		{name: "207", status: 207},
		{name: "400", status: 400},
		{name: "404", status: 404},
		{name: "429", status: 429, want: true},
		{name: "500 EventGate verdict", status: 500, body: egBody},
		{name: "500 from a proxy", status: 500, body: []byte("<html>oops</html>"), want: true},
		{name: "501", status: 501},
		{name: "502", status: 502, want: true},
		{name: "503", status: 503, want: true},
		{name: "504", status: 504, want: true},
		{name: "505", status: 505},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.err != nil {
				if err = tc.err(); err == nil {
					t.Fatal("the request succeeded; the case needs an error")
				}
			}
			if got := transient(tc.status, tc.body, err); got != tc.want {
				t.Fatalf("transient(%d, %q, %v) = %v, want %v", tc.status, tc.body, err, got, tc.want)
			}
		})
	}
}

// TestProduceErrors: a certificate error is not retried; a refused connection is, and its message names the URL
// once (not again inside Go's `Post "<url>": ...`) while errors.Is and errors.As still see the cause.
func TestProduceErrors(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	tlsSrv := quietTLSServer(t)
	refused := closedURL(t)
	untrusted := tlsSrv.URL + "/v1/events"
	cfg := testConfig(node.URL, []string{base}, []Stream{
		{Name: "refused", SchemaTitle: "test/event", Destinations: []string{refused}},
		{Name: "untrusted", SchemaTitle: "test/event", Destinations: []string{untrusted}},
	})
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		r        Result
		url      string
		attempts int
		prefix   string
		is       error
	}{
		{r: res[0], url: refused, attempts: 3, prefix: "POST " + refused + ": dial tcp ", is: syscall.ECONNREFUSED},
		{r: res[1], url: untrusted, attempts: 1, prefix: "POST " + untrusted + ": tls: failed to verify certificate: x509: "},
	} {
		t.Run(tc.r.Stream, func(t *testing.T) {
			d := tc.r.Deliveries[0]
			if tc.r.OK || d.Attempts != tc.attempts {
				t.Fatalf("ok %v, %d attempts, want %d: %s", tc.r.OK, d.Attempts, tc.attempts, tc.r.Error)
			}
			if !strings.HasPrefix(d.Error, tc.prefix) || strings.Count(tc.r.Error, tc.url) != 1 || strings.Contains(d.Error, `Post "`) {
				t.Fatalf("delivery error %q, want it to start %q and name the URL once\nresult error %q", d.Error, tc.prefix, tc.r.Error)
			}
			var ue *url.Error
			var ie *IntakeError
			if !errors.As(tc.r.Err, &ie) || !errors.As(tc.r.Err, &ue) || (tc.is != nil && !errors.Is(tc.r.Err, tc.is)) {
				t.Fatalf("error chain of %v lacks *IntakeError, *url.Error or %v", tc.r.Err, tc.is)
			}
		})
	}
}
