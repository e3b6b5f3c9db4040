package schemasync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"golang.org/x/net/http/httpguts"
)

// API server limits beyond APIConfig's.
const (
	// apiMaxHeaderBytes bounds a request's line and headers (and is each connection's read buffer): a
	// larger request is answered 431. The API's requests are a path and a few headers.
	apiMaxHeaderBytes = 16 << 10
	// apiMaxBodyBytes bounds a request body. No endpoint reads one; a larger one is answered 413.
	apiMaxBodyBytes = 64 << 10
)

// APIServer serves the API (see Service.Handler) within the bounds of an APIConfig. The safe-version lookup
// (GET /v1/repositories/{repo}/schemas/{title...}), which canaries and deploy tools ask at high rates, is served
// by fasthttp from bytes encoded once per view, with no allocation per request; every other request is handed
// to the net/http handler, so that it answers exactly as Handler does (405s, /metrics, HEAD, paths to clean).
//
// Why not net/http alone: after our own overhead was removed (no mux, no per-request encoding or header
// formatting), a lookup through net/http still allocated 17 objects (2.3 KB) per request, all in net/http, and
// beside nginx on the same two cores it served 0.56-0.81x nginx's requests per second (one worker) with a p99
// near 10 ms; through fasthttp, which reuses its request and response objects per connection, the same
// lookup allocates nothing and serves about as much as nginx or more (BenchmarkAPIvsNginx). fasthttp is used
// only where it answers a request itself, for paths that net/http would route to the lookup unchanged (see
// rawLookupPath); anything else, well-formed or hostile, is answered by the net/http handler.
type APIServer struct {
	srv *fasthttp.Server

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open connections, for Close
}

// Server returns the API server for handler with the bounds of cfg: read_header_timeout for a request's
// headers, read_timeout for a whole request, write_timeout for an answer, idle_timeout between requests on
// a keep-alive connection, 16 KiB of request headers (431 beyond) and 64 KiB of body (413 beyond). Serve it
// on a listener limited by Service.Listen (api.max_connections): srv.Serve(svc.Listen(ln)). The lookup is
// served without net/http when handler is a Service's Handler. What net/http's server refuses or answers
// before any handler runs, it refuses and answers the same way (status, body, Connection: close): a version
// other than HTTP/1.x is 505, a header name that is not a token 400, OPTIONS * 200.
func Server(cfg APIConfig, handler http.Handler) *APIServer {
	a := &APIServer{conns: map[net.Conn]struct{}{}}
	fallback := netHTTPFallback(fasthttpadaptor.NewFastHTTPHandler(handler))
	serve, log := fallback, slog.New(slog.DiscardHandler)
	if h, ok := handler.(*apiHandler); ok {
		serve, log = func(ctx *fasthttp.RequestCtx) {
			if ctx.IsGet() {
				if repo, title, ok := rawLookupPath(ctx.RequestURI()); ok && netHTTPAccepts(ctx) {
					h.svc.serveSchemaFast(ctx, repo, title)
					return
				}
			}
			fallback(ctx)
		}, h.svc.log
	}
	bodyTimeout := cfg.ReadTimeout - cfg.ReadHeaderTimeout
	if bodyTimeout <= 0 {
		bodyTimeout = cfg.ReadTimeout
	}
	a.srv = &fasthttp.Server{
		Handler: serve,
		// fasthttp's read timeout runs from a connection's opening or, between keep-alive requests, from a
		// request's first byte, to the end of its headers; the body then gets the rest of read_timeout.
		ReadTimeout: cfg.ReadHeaderTimeout,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: bodyTimeout}
		},
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		ReadBufferSize:               apiMaxHeaderBytes,
		MaxRequestBodySize:           apiMaxBodyBytes,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		SecureErrorLogMessage:        true, // no request content in logs
		ErrorHandler:                 requestError,
		Logger:                       debugLogger{log},
		ConnState:                    a.track,
	}
	return a
}

// Serve serves connections from ln until Shutdown or Close; it returns nil after those, like
// http.Server.Serve's http.ErrServerClosed.
func (a *APIServer) Serve(ln net.Listener) error { return a.srv.Serve(ln) }

// Shutdown stops accepting, closes idle connections, and waits for the others to finish their request, until
// ctx ends (then it returns ctx's error and leaves them to Close).
func (a *APIServer) Shutdown(ctx context.Context) error { return a.srv.ShutdownWithContext(ctx) }

// Close stops accepting and closes every open connection at once.
func (a *APIServer) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := a.srv.ShutdownWithContext(ctx) // closes the listener and the idle connections, does not wait
	a.mu.Lock()
	for c := range a.conns {
		_ = c.Close()
	}
	a.mu.Unlock()
	if err == context.Canceled {
		err = nil
	}
	return err
}

// track keeps the set of open connections (called on each change of a connection's state, per request too: a
// switch, and a lock only when a connection opens or closes).
func (a *APIServer) track(c net.Conn, st fasthttp.ConnState) {
	switch st {
	case fasthttp.StateNew:
		a.mu.Lock()
		a.conns[c] = struct{}{}
		a.mu.Unlock()
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
	}
}

// requestError answers a request that could not be read, as net/http's server does: 431 for headers over the
// bound, 413 for a body over it, 408 when the client was too slow, 400 otherwise; the connection is closed.
func requestError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	code := http.StatusBadRequest
	switch {
	case errors.As(err, &small):
		code = http.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.As(err, &netErr) && netErr.Timeout():
		code = http.StatusRequestTimeout
	case strings.Contains(err.Error(), `invalid request uri "*"`):
		// net/http's mux answers a "*" target other than OPTIONS's: 400, no body.
		ctx.Response.Reset()
		ctx.SetStatusCode(http.StatusBadRequest)
		ctx.SetConnectionClose()
		return
	}
	detail := ""
	for _, d := range parseErrorDetails {
		if strings.Contains(err.Error(), d.fragment) {
			detail = d.detail
			break
		}
	}
	writePlainError(ctx, code, detail)
}

// parseErrorDetails map fasthttp's messages for requests it refuses while reading them to the detail that
// net/http's server answers for the same requests. They are matched on text, as fasthttp exports none of
// these errors: TestAPIServerAgreesOnHostileTargets fails if an upgrade of fasthttp changes one.
var parseErrorDetails = []struct{ fragment, detail string }{
	{"missing required host header", "missing required Host header"},
	{"invalid header key", "invalid header name"},
}

// writePlainError answers code with net/http's plain-text body for it ("400 Bad Request", or with a detail
// "400 Bad Request: invalid header name"), and closes the connection.
func writePlainError(ctx *fasthttp.RequestCtx, code int, detail string) {
	ctx.Response.Reset()
	ctx.SetStatusCode(code)
	ctx.SetContentType("text/plain; charset=utf-8")
	body := strconv.Itoa(code) + " " + http.StatusText(code)
	if detail != "" {
		body += ": " + detail
	}
	ctx.SetBodyString(body)
	ctx.SetConnectionClose()
}

// netHTTPFallback answers, as net/http's server does, the requests that fasthttp reads but net/http refuses
// or answers itself (see netHTTPAccepts; a request target that net/http cannot parse, which the adaptor would
// answer 500, is 400; OPTIONS * is 200 with no body), and hands the rest to next.
func netHTTPFallback(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if !netHTTPAccepts(ctx) {
			return
		}
		if _, err := url.ParseRequestURI(string(ctx.RequestURI())); err != nil {
			writePlainError(ctx, http.StatusBadRequest, "")
			return
		}
		if ctx.IsOptions() && string(ctx.RequestURI()) == "*" {
			ctx.SetStatusCode(http.StatusOK) // net/http's server answers OPTIONS * itself, before any handler
			return
		}
		next(ctx)
	}
}

// netHTTPAccepts answers, and returns false for, a request that net/http's server refuses before any handler
// runs but fasthttp reads: a version other than HTTP/1.x (505; fasthttp reads any HTTP/d.d as HTTP/1.0), or a
// header name that is not a token, such as "X Y" (fasthttp keeps it) or "Content-Length :" (fasthttp trims it
// and frames the body by it, where a proxy in front may not). It allocates nothing.
func netHTTPAccepts(ctx *fasthttp.RequestCtx) bool {
	if p := ctx.Request.Header.Protocol(); len(p) < 7 || string(p[:7]) != "HTTP/1." {
		writePlainError(ctx, http.StatusHTTPVersionNotSupported, "unsupported protocol version")
		return false
	}
	raw := ctx.Request.Header.RawHeaders()
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		name, _, _ := bytes.Cut(line, []byte(":"))
		if !validHeaderName(name) {
			writePlainError(ctx, http.StatusBadRequest, "invalid header name")
			return false
		}
	}
	return true
}

// validHeaderName reports whether name is an RFC 9110 token, as net/http requires of a header name.
func validHeaderName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// serveSchemaFast is serveSchema for fasthttp. repo and title may alias the request's buffer: they are only
// looked up and copied.
func (s *Service) serveSchemaFast(ctx *fasthttp.RequestCtx, repo, title string) {
	a, code, msg := s.lookup(repo, title)
	if a == nil {
		writeFastJSON(ctx, code, msg)
		return
	}
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSONBytes)
	ctx.Response.SetBodyRaw(a.body) // never modified: the answer is immutable
}

var contentTypeJSONBytes = []byte(contentTypeJSON[0])

func writeFastJSON(ctx *fasthttp.RequestCtx, code int, msg string) {
	code, b := encodeJSON(code, ErrorResponse{Error: msg})
	ctx.SetStatusCode(code)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSONBytes)
	ctx.SetBody(b)
}

// rawLookupPath is lookupPath for a raw request target: it takes the target only when every byte of its path
// is one that net/http leaves as it is (so the path net/http decodes is the same string, with no RawPath) and
// its query has no control byte (which net/http rejects). The strings returned alias uri.
func rawLookupPath(uri []byte) (repo, title string, ok bool) {
	path, query := uri, []byte(nil)
	for i, c := range uri {
		if c == '?' {
			path, query = uri[:i], uri[i+1:]
			break
		}
	}
	for _, c := range path {
		if !plainPathByte(c) {
			return "", "", false
		}
	}
	for _, c := range query {
		if c < 0x20 || c == 0x7f {
			return "", "", false
		}
	}
	if len(path) == 0 {
		return "", "", false
	}
	return lookupPath(unsafe.String(&path[0], len(path)), "")
}

// plainPathByte reports whether net/url keeps c unescaped in a path (so a path of such bytes decodes to itself).
func plainPathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '/', '$', '&', '+', ',', ':', ';', '=', '@':
		return true
	}
	return false
}

// debugLogger takes fasthttp's messages (a client that broke off, a request that timed out) at debug level:
// they are about clients, not about the service.
type debugLogger struct{ log *slog.Logger }

func (l debugLogger) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("api: " + fmt.Sprintf(format, args...))
	}
}
