//go:build !race

package schemasync

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestLookupAllocatesNothing: a lookup served by Server allocates nothing per request (the race detector's
// own allocations would count, hence the build tag). The view is recomputed at most once a second, whose
// allocations the average over many requests rounds away.
func TestLookupAllocatesNothing(t *testing.T) {
	s := newTestService(t, svcConfig(serve(t, faultRepo())), ServiceOptions{})
	scanNow(t, s)
	h := Server(s.Config().API, s.Handler()).srv.Handler
	var ctx fasthttp.RequestCtx
	// Read from the wire, as Server does, so that its checks of the version and the header names run.
	req := "GET /v1/repositories/primary/schemas/a/b HTTP/1.1\r\nHost: x\r\nUser-Agent: canary\r\nAccept: */*\r\n\r\n"
	if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(req))); err != nil {
		t.Fatal(err)
	}
	h(&ctx) // encodes the answer once
	if ctx.Response.StatusCode() != fasthttp.StatusOK {
		t.Fatalf("lookup: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if n := testing.AllocsPerRun(10000, func() {
		ctx.Response.Reset()
		h(&ctx)
	}); n != 0 {
		t.Fatalf("%v allocations per lookup, want 0", n)
	}
}
