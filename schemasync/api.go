package schemasync

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"github.com/evenkeel/evenkeel/internal/safetext"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StateResponse is the body of GET /v1/state and GET /v1/dirty.
type StateResponse struct {
	GeneratedAt time.Time      `json:"generated_at"`
	Node        string         `json:"node"`
	Ready       bool           `json:"ready"`
	Consistent  bool           `json:"consistent"`
	Endpoints   []EndpointView `json:"endpoints"`
	Schemas     []SchemaView   `json:"schemas"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Handler serves the API:
//
//	GET /v1/repositories/{repo}/schemas/{title...}   one schema (404 when unknown, 503 before the first scan)
//	GET /v1/state                                    every endpoint and schema
//	GET /v1/dirty                                    only the dirty or stale schemas, and unknown endpoints
//	GET /healthz                                     200 while the process serves
//	GET /readyz                                      200 after the first complete scan, else 503
//
// Every answer is for an instant at most about a second old (generated_at): the view is recomputed on read
// when it is older, or when an observation has arrived or turned stale since it was computed. gatherer, when not nil, is served at
// /metrics. A schema's answer is encoded once per view; the lookup is routed without the mux when its path
// needs no cleaning or unescaping (see lookupPath). Serve the handler with Server.
func (s *Service) Handler(gatherer ...prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/repositories/{repo}/schemas/{title...}", s.handleSchema)
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, r *http.Request) { s.handleState(w, r, false) })
	mux.HandleFunc("GET /v1/dirty", func(w http.ResponseWriter, r *http.Request) { s.handleState(w, r, true) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			http.Error(w, s.readiness(), http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /v1/members", s.handleMembers)
	mux.HandleFunc("GET /v1/internal/content/{hash}", s.handleContent)
	for _, g := range gatherer {
		if g != nil {
			mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// A path that GET serves, asked with another method: 405, not 404.
		get := r.Clone(r.Context())
		get.Method = http.MethodGet
		if _, pattern := mux.Handler(get); pattern != "/" && pattern != "" {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{Error: fmt.Sprintf("method %s not allowed: use GET",
				safetext.Bound(r.Method, 32))})
			return
		}
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("no such endpoint: %s %s",
			safetext.Bound(r.Method, 32), safetext.Bound(r.URL.Path, 200))})
	})
	return &apiHandler{svc: s, mux: mux}
}

// apiHandler is the API as a net/http handler: the lookup without the mux, the rest through it. Server
// recognises it and serves the lookup without net/http as well.
type apiHandler struct {
	svc *Service
	mux *http.ServeMux
}

func (h *apiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		if repo, title, ok := lookupPath(r.URL.Path, r.URL.RawPath); ok {
			h.svc.serveSchema(w, repo, title)
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// lookupPrefix starts the path of the one endpoint that is served without the mux.
const lookupPrefix = "/v1/repositories/"

// lookupPath splits a GET /v1/repositories/{repo}/schemas/{title...} path into repo and title without the
// mux's per-request matching. It takes only paths the mux would route there unchanged: clean (no empty, "."
// or ".." segment, which the mux redirects) and without escapes that decode to a different path (rawPath
// set, e.g. %2F); every other path goes through the mux, which answers it as before.
func lookupPath(path, rawPath string) (repo, title string, ok bool) {
	rest, found := strings.CutPrefix(path, lookupPrefix)
	if !found || rawPath != "" {
		return "", "", false
	}
	repo, title, found = strings.Cut(rest, "/schemas/")
	if !found || repo == "" || title == "" || strings.IndexByte(repo, '/') >= 0 || !cleanSegments(title) {
		return "", "", false
	}
	return repo, title, true
}

// cleanSegments reports whether p (a path remainder, which may end in "/") has no empty, "." or ".." segment.
func cleanSegments(p string) bool {
	for seg := range strings.SplitSeq(strings.TrimSuffix(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// Listen limits ln to api.max_connections connections at once (further ones wait in the kernel's listen
// queue until a served one closes), and counts the open ones in schemasync_api_connections.
func (s *Service) Listen(ln net.Listener) net.Listener {
	return netutil.LimitListener(&countingListener{Listener: ln, open: &s.apiConns}, s.Config().API.MaxConnections)
}

type countingListener struct {
	net.Listener
	open *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, open: l.open}, nil
}

type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// handleSchema serves a lookup that came through the mux (a path that needed cleaning or unescaping, or HEAD).
func (s *Service) handleSchema(w http.ResponseWriter, r *http.Request) {
	s.serveSchema(w, r.PathValue("repo"), r.PathValue("title"))
}

// serveSchema answers one lookup: a map read, and a write of bytes and header values encoded once per view.
func (s *Service) serveSchema(w http.ResponseWriter, repo, title string) {
	a, code, msg := s.lookup(repo, title)
	if a == nil {
		writeJSON(w, code, ErrorResponse{Error: msg})
		return
	}
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = a.length
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.body)
}

// lookup returns the answer for (repo, title) or, when there is none, the status and message to answer.
func (s *Service) lookup(repo, title string) (a *answer, code int, msg string) {
	if !s.ready.Load() {
		return nil, http.StatusServiceUnavailable, s.readiness()
	}
	a, ok, err := s.current().answer(repo, title)
	switch {
	case err != nil:
		return nil, http.StatusInternalServerError, err.Error()
	case !ok:
		return nil, http.StatusNotFound, fmt.Sprintf("schema %q not found in repository %q",
			safetext.Bound(title, 200), safetext.Bound(repo, 200))
	}
	return a, http.StatusOK, ""
}

// answer is one schema's encoded answer and its Content-Length value, made once per view and then only read.
type answer struct {
	body   []byte
	length []string
}

func newAnswer(body []byte) *answer {
	return &answer{body: body, length: []string{strconv.Itoa(len(body))}}
}

// contentTypeJSON is the Content-Type of every API answer but /metrics and the plain-text probes; assigned to
// headers as it is (net/http copies header values before it writes them), never modified.
var contentTypeJSON = []string{"application/json"}

// answer returns the encoded answer for (repo, title), encoding it on first use.
func (snap *snapshot) answer(repo, title string) (*answer, bool, error) {
	i, ok := snap.view.index[schemaKey{repo, title}]
	if !ok {
		return nil, false, nil
	}
	if a := snap.answers[i].Load(); a != nil {
		return a, true, nil
	}
	b, err := json.Marshal(&snap.view.Schemas[i])
	if err != nil {
		return nil, false, err
	}
	a := newAnswer(append(b, '\n'))
	if !snap.answers[i].CompareAndSwap(nil, a) {
		a = snap.answers[i].Load() // another reader encoded it first: serve the same bytes
	}
	return a, true, nil
}

func (s *Service) handleState(w http.ResponseWriter, _ *http.Request, onlyDirty bool) {
	v := s.View()
	resp := StateResponse{GeneratedAt: v.At.UTC(), Node: s.Config().Cluster.NodeName, Ready: s.Ready(),
		Consistent: s.Ready() && v.Consistent(), Endpoints: v.Endpoints, Schemas: v.Schemas}
	if onlyDirty {
		resp.Endpoints, resp.Schemas = []EndpointView{}, []SchemaView{}
		for _, e := range v.Endpoints {
			if e.State != EndpointOK {
				resp.Endpoints = append(resp.Endpoints, e)
			}
		}
		for _, sv := range v.Schemas {
			if sv.Dirty || sv.Stale {
				resp.Schemas = append(resp.Schemas, sv)
			}
		}
	}
	if resp.Schemas == nil {
		resp.Schemas = []SchemaView{}
	}
	if resp.Endpoints == nil {
		resp.Endpoints = []EndpointView{}
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	code, b := encodeJSON(code, v)
	writeRaw(w, code, b)
}

// encodeJSON is an answer's body, and its status (500 if v does not encode).
func encodeJSON(code int, v any) (int, []byte) {
	b, err := json.Marshal(v)
	if err != nil {
		return http.StatusInternalServerError, []byte("{\"error\":\"encoding the response failed\"}\n")
	}
	return code, append(b, '\n')
}

func writeRaw(w http.ResponseWriter, code int, b []byte) {
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// MembersResponse is the body of GET /v1/members.
type MembersResponse struct {
	Node    string       `json:"node"`
	Cluster bool         `json:"cluster"`
	Keys    []string     `json:"keys,omitempty"` // fingerprints of the installed gossip keys, primary first
	Members []MemberView `json:"members"`
}

func (s *Service) handleMembers(w http.ResponseWriter, _ *http.Request) {
	resp := MembersResponse{Node: s.Config().Cluster.NodeName, Members: []MemberView{}}
	if c := s.Cluster(); c != nil {
		resp.Cluster, resp.Members, resp.Keys = true, c.Members(), c.KeyFingerprints()
	} else {
		resp.Members = append(resp.Members, MemberView{Name: resp.Node, State: "alive", Self: true})
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleContent serves an observation's content by hash, for other nodes.
func (s *Service) handleContent(w http.ResponseWriter, r *http.Request) {
	schemas, ok := s.contentByHash(r.PathValue("hash"))
	if !ok {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "no observation with that content hash"})
		return
	}
	writeJSON(w, http.StatusOK, schemas)
}
