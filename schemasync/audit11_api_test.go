package schemasync

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// auditAPIServer serves s's API on 127.0.0.1 within cfg's bounds, until the test ends, and returns its address.
func auditAPIServer(t *testing.T, s *Service) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server(s.Config().API, s.Handler())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(s.Listen(ln)) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().String()
}

// auditGet sends GET path on c and reads the answer's status, within d.
func auditGet(c net.Conn, path string, d time.Duration) (int, error) {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Body.Close()
}

// TestAudit11IdleTimeoutIsItsOwnBound: api.idle_timeout closes an idle keep-alive connection by itself, not
// by falling back on the read timeouts: with those at a minute, an idle connection still closes within
// seconds of its 200 ms idle_timeout.
func TestAudit11IdleTimeoutIsItsOwnBound(t *testing.T) {
	cfg := svcConfig("http://127.0.0.1:1/")
	cfg.API.IdleTimeout = 200 * time.Millisecond
	cfg.API.ReadHeaderTimeout, cfg.API.ReadTimeout, cfg.API.WriteTimeout = time.Minute, time.Minute, time.Minute
	addr := auditAPIServer(t, newTestService(t, cfg, ServiceOptions{}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code, err := auditGet(c, "/healthz", 10*time.Second); err != nil || code != http.StatusOK {
		t.Fatalf("GET /healthz: %d %v", code, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // bounds only a broken server
	if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Fatalf("an idle connection was still open 10 s after its idle_timeout of 200 ms: %v", err)
	}
}

// TestAudit11MaxConnectionsHeld: with api.max_connections connections open and idle, a further one is not
// served (it waits in the listen queue) until one of them closes; then it is.
func TestAudit11MaxConnectionsHeld(t *testing.T) {
	cfg := svcConfig("http://127.0.0.1:1/")
	cfg.API.MaxConnections, cfg.API.IdleTimeout = 2, time.Minute
	s := newTestService(t, cfg, ServiceOptions{})
	addr := auditAPIServer(t, s)
	var open []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if code, err := auditGet(c, "/healthz", 10*time.Second); err != nil || code != http.StatusOK {
			t.Fatalf("connection %d: %d %v", i, code, err)
		}
		open = append(open, c)
	}
	third, err := net.Dial("tcp", addr) // the kernel completes the handshake; the server does not accept it
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	// A server that keeps its bound never answers here while both connections are open, however long this
	// waits; one that does not keep it answers at once.
	if code, err := auditGet(third, "/healthz", 500*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection was served while max_connections 2 were open: %d %v", code, err)
	}
	if n := s.apiConns.Load(); n != 2 {
		t.Fatalf("%d connections counted open, want 2", n)
	}
	open[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil {
		t.Fatalf("the waiting connection was not served once one closed: %v", err)
	}
	resp.Body.Close()
}

// TestAudit11WriteTimeout: a client that asks for a large answer (/v1/state of 25,000 schemas, about 10 MB)
// and never reads it holds its connection only until api.write_timeout: the server then gives up on the
// answer and closes the connection, so the client gets less than the whole body.
func TestAudit11WriteTimeout(t *testing.T) {
	const ep = "http://127.0.0.1:1/"
	cfg := svcConfig(ep)
	cfg.API.WriteTimeout = 300 * time.Millisecond
	s := newTestService(t, cfg, ServiceOptions{})
	schemas := map[string][]Version{}
	for i := 0; i < 25000; i++ {
		schemas[fmt.Sprintf("group%02d/schema%05d", i%50, i)] = []Version{MustParseVersion("1.0.0")}
	}
	if !s.Observe(Observation{Repository: "primary", Endpoint: ep, Observer: "peer", Seq: 1, At: time.Now(),
		Schemas: schemas, Hash: ContentHash(schemas)}) {
		t.Fatal("observation not recorded")
	}
	addr := auditAPIServer(t, s)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /v1/state HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Once the answer starts (the view of 25,000 schemas takes a while to encode), the client reads nothing
	// for much longer than write_timeout.
	br := bufio.NewReaderSize(c, 16)
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := br.Peek(1); err != nil {
		t.Fatalf("no answer: %v", err)
	}
	time.Sleep(2 * time.Second)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return // cut off before even the headers: the bound held
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ContentLength < 8<<20 {
		t.Fatalf("the answer is only %d bytes: the test needs one larger than the socket buffers", resp.ContentLength)
	}
	if err == nil && n == resp.ContentLength {
		t.Fatalf("the whole answer of %d bytes arrived 2 s after write_timeout (300 ms) should have cut it off", n)
	}
	t.Logf("got %d of %d bytes: %v", n, resp.ContentLength, err)
}
