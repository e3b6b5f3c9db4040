// Package fakeintake is an EventGate-compatible event intake, for tests, benchmarks and the demo only (EventGate
// itself is not packaged anywhere we can install it from); production code uses the protocol pieces in package
// eventgate, never this. It answers as EventGate does:
//
//   - POST /v1/events takes a JSON array of events (or one event object);
//   - each event's $schema is resolved against the schema base URIs in order, and the first that loads wins;
//   - only successful loads are cached, so a version missing on one host is retried on the next event;
//   - an event whose schema title differs from its stream's configured title, or whose stream is not
//     configured, is invalid;
//   - it answers 201 when all events are accepted, 202 for ?hasty=true, 400 {"invalid":[...]} when all are
//     invalid, 207 {"invalid":[...],"error":[...]} when some were accepted and some failed, and 500
//     {"error":[...]} when all failed and at least one errored, e.g.
//     {"error":[{"context":{"message":"Failed loading schema at /<title>/<version>"}}]}.
//
// Which outcome counts as "invalid" and which as "error": anything wrong with the event itself (not an object,
// no $schema, no meta.stream, an unknown stream, a schema title the stream does not allow, a validation
// failure) is invalid; failing to load or compile the schema is an error.
package fakeintake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/evenkeel/evenkeel/internal/eventgate"
)

// Doer is the part of *http.Client the intake uses to load schemas.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

var _ http.Handler = (*Intake)(nil)

// Config says where schemas come from and which streams exist.
type Config struct {
	// SchemaBaseURIs are tried in order for a relative $schema: base + $schema.
	SchemaBaseURIs []string
	// Streams maps each stream name to the schema title its events must declare. Other streams are rejected.
	Streams map[string]string
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if len(c.SchemaBaseURIs) == 0 {
		return errors.New("eventgate: no schema base URIs")
	}
	for _, b := range c.SchemaBaseURIs {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("eventgate: schema base URI %q is not an http(s) URL", b)
		}
	}
	for s, t := range c.Streams {
		if s == "" || strings.Trim(t, "/") == "" {
			return fmt.Errorf("eventgate: stream %q needs a name and a schema title", s)
		}
	}
	return nil
}

// Options are the intake's collaborators. The zero value is usable.
type Options struct {
	HTTPClient Doer                  // loads schemas; default: an *http.Client with a 5 s timeout
	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // eventgate_events_total{status}; default: none
}

// Received is one event as the intake saw it.
type Received struct {
	Stream  string          `json:"stream"`
	Schema  string          `json:"schema"`
	Status  string          `json:"status"` // "accepted", "invalid" or "error"
	Message string          `json:"message,omitempty"`
	Event   json.RawMessage `json:"event"`
}

// Stats counts events by outcome since the intake started (or since Reset).
type Stats struct {
	Accepted, Invalid, Errored int
	SchemaLoads                int // successful schema loads (cache misses that loaded)
}

// Intake is the http.Handler. It is safe for concurrent use.
type Intake struct {
	base    []string
	http    Doer
	log     *slog.Logger
	counter *prometheus.CounterVec

	mu       sync.Mutex
	streams  map[string]string
	cache    map[string]*loaded // $schema -> compiled schema; successful loads only
	received []Received
	stats    Stats
}

type loaded struct {
	title  string
	schema *jsonschema.Schema
}

// New returns an intake.
func New(cfg Config, opts Options) (*Intake, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Intake{http: opts.HTTPClient, log: opts.Logger, streams: map[string]string{}, cache: map[string]*loaded{}}
	for _, b := range cfg.SchemaBaseURIs {
		g.base = append(g.base, strings.TrimRight(b, "/"))
	}
	for s, t := range cfg.Streams {
		g.streams[s] = strings.Trim(t, "/")
	}
	if g.http == nil {
		g.http = &http.Client{Timeout: 5 * time.Second}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer != nil {
		g.counter = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_events_total",
			Help: "Events received by the test intake, by outcome (accepted, invalid, error).",
		}, []string{"status"})
		if err := opts.Registerer.Register(g.counter); err != nil {
			return nil, fmt.Errorf("eventgate: registering metrics: %w", err)
		}
	}
	return g, nil
}

// SetStream allows (or, with an empty title, removes) a stream.
func (g *Intake) SetStream(stream, title string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if title == "" {
		delete(g.streams, stream)
		return
	}
	g.streams[stream] = strings.Trim(title, "/")
}

// Received returns a copy of every event received so far, in arrival order.
func (g *Intake) Received() []Received {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Received(nil), g.received...)
}

// Stats returns the counters.
func (g *Intake) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats
}

// Reset forgets received events and zeroes the counters; the schema cache stays.
func (g *Intake) Reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.received, g.stats = nil, Stats{}
}

// maxBody bounds a request body.
const maxBody = 10 << 20

func (g *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		_, _ = io.WriteString(w, "ok\n")
		return
	case r.URL.Path != "/v1/events":
		http.NotFound(w, r)
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeResult(w, http.StatusBadRequest, eventgate.Response{Invalid: []eventgate.Entry{{Status: "invalid", Context: eventgate.EntryContext{Message: "reading request body: " + err.Error()}}}})
		return
	}
	if len(body) > maxBody {
		writeResult(w, http.StatusRequestEntityTooLarge, eventgate.Response{Invalid: []eventgate.Entry{{Status: "invalid", Context: eventgate.EntryContext{Message: "request body too large"}}}})
		return
	}
	events, err := splitEvents(body)
	if err != nil {
		writeResult(w, http.StatusBadRequest, eventgate.Response{Invalid: []eventgate.Entry{{Status: "invalid", Context: eventgate.EntryContext{Message: err.Error()}}}})
		return
	}
	var resp eventgate.Response
	accepted := 0
	for _, raw := range events {
		rec := g.process(r.Context(), raw)
		g.record(rec)
		switch rec.Status {
		case "accepted":
			accepted++
		case "invalid":
			resp.Invalid = append(resp.Invalid, rec.entry())
		default:
			resp.Error = append(resp.Error, rec.entry())
		}
	}
	switch {
	case r.URL.Query().Get("hasty") == "true":
		w.WriteHeader(http.StatusAccepted)
	case accepted == len(events):
		w.WriteHeader(http.StatusCreated)
	case accepted > 0:
		writeResult(w, http.StatusMultiStatus, resp)
	case len(resp.Error) == 0:
		writeResult(w, http.StatusBadRequest, resp)
	default:
		writeResult(w, http.StatusInternalServerError, resp)
	}
}

// splitEvents accepts a JSON array of events or one event.
func splitEvents(body []byte) ([]json.RawMessage, error) {
	var probe json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, fmt.Errorf("request body is not JSON: %v", err)
	}
	var events []json.RawMessage
	if len(probe) > 0 && probe[0] == '[' {
		if err := json.Unmarshal(probe, &events); err != nil {
			return nil, fmt.Errorf("request body is not a JSON array of events: %v", err)
		}
	} else {
		events = []json.RawMessage{probe}
	}
	if len(events) == 0 {
		return nil, errors.New("request body holds no events")
	}
	return events, nil
}

func (rec Received) entry() eventgate.Entry {
	return eventgate.Entry{Status: rec.Status, Event: rec.Event, Context: eventgate.EntryContext{Message: rec.Message}}
}

func (g *Intake) record(rec Received) {
	g.mu.Lock()
	g.received = append(g.received, rec)
	switch rec.Status {
	case "accepted":
		g.stats.Accepted++
	case "invalid":
		g.stats.Invalid++
	default:
		g.stats.Errored++
	}
	g.mu.Unlock()
	if g.counter != nil {
		g.counter.WithLabelValues(rec.Status).Inc()
	}
	if rec.Status != "accepted" {
		g.log.Info("event rejected", "stream", rec.Stream, "schema", rec.Schema, "status", rec.Status, "reason", rec.Message)
	}
}

// process decides one event.
func (g *Intake) process(ctx context.Context, raw json.RawMessage) Received {
	rec := Received{Event: raw, Status: "invalid"}
	doc, err := eventgate.DecodeDocument(raw)
	if err != nil {
		rec.Message = "event is not JSON: " + err.Error()
		return rec
	}
	ev, ok := doc.(map[string]any)
	if !ok {
		rec.Message = "event is not a JSON object"
		return rec
	}
	rec.Schema, _ = ev["$schema"].(string)
	if meta, ok := ev["meta"].(map[string]any); ok {
		rec.Stream, _ = meta["stream"].(string)
	}
	switch {
	case rec.Schema == "":
		rec.Message = "event has no $schema"
		return rec
	case rec.Stream == "":
		rec.Message = "event has no meta.stream"
		return rec
	}
	g.mu.Lock()
	want, known := g.streams[rec.Stream]
	g.mu.Unlock()
	if !known {
		rec.Message = fmt.Sprintf("stream %q is not configured", rec.Stream)
		return rec
	}
	l, err := g.load(ctx, rec.Schema)
	if err != nil {
		rec.Status, rec.Message = "error", err.Error()
		return rec
	}
	if l.title != want {
		rec.Message = fmt.Sprintf("schema title %q is not allowed in stream %q (it takes %q)", l.title, rec.Stream, want)
		return rec
	}
	if err := l.schema.Validate(doc); err != nil {
		rec.Message = fmt.Sprintf("event does not validate against %s: %s", rec.Schema, strings.Join(eventgate.ValidationMessages(err), "; "))
		return rec
	}
	rec.Status, rec.Message = "accepted", ""
	return rec
}

// LoadError is a schema that no base URI served. Its message is EventGate's.
type LoadError struct {
	Schema   string
	Attempts []error // one per base URI tried
}

func (e *LoadError) Error() string {
	parts := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		parts[i] = a.Error()
	}
	return fmt.Sprintf("Failed loading schema at %s (%s)", e.Schema, strings.Join(parts, "; "))
}

func (e *LoadError) Unwrap() []error { return e.Attempts }

// load resolves schemaURI against the base URIs in order; the first that loads and compiles wins and is cached.
func (g *Intake) load(ctx context.Context, schemaURI string) (*loaded, error) {
	g.mu.Lock()
	l := g.cache[schemaURI]
	g.mu.Unlock()
	if l != nil {
		return l, nil
	}
	var candidates []string
	if u, err := url.Parse(schemaURI); err == nil && u.IsAbs() {
		candidates = []string{schemaURI}
	} else {
		for _, b := range g.base {
			candidates = append(candidates, b+"/"+strings.TrimLeft(schemaURI, "/"))
		}
	}
	lerr := &LoadError{Schema: schemaURI}
	for _, c := range candidates {
		l, err := g.fetch(ctx, c)
		if err != nil {
			lerr.Attempts = append(lerr.Attempts, err)
			continue
		}
		if l.title == "" {
			l.title = titleFromURI(schemaURI)
		}
		g.mu.Lock()
		g.cache[schemaURI] = l
		g.stats.SchemaLoads++
		g.mu.Unlock()
		return l, nil
	}
	return nil, lerr
}

func (g *Intake) fetch(ctx context.Context, u string) (*loaded, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	doc, err := eventgate.DecodeDocument(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	s, err := eventgate.Compile(u, doc)
	if err != nil {
		return nil, err
	}
	l := &loaded{schema: s}
	if m, ok := doc.(map[string]any); ok {
		l.title, _ = m["title"].(string)
		l.title = strings.Trim(l.title, "/")
	}
	return l, nil
}

// titleFromURI is the title part of /<title>/<version>.
func titleFromURI(s string) string {
	if u, err := url.Parse(s); err == nil {
		s = u.Path
	}
	s = strings.Trim(s, "/")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[:i]
	}
	return s
}

// writeResult writes the body EventGate answers with (see the package doc): 400 {"invalid":[...]}, 207 with both lists
// (possibly empty), 500 {"error":[...]} plus "invalid" when some events were invalid too.
func writeResult(w http.ResponseWriter, status int, r eventgate.Response) {
	body := map[string][]eventgate.Entry{}
	if len(r.Invalid) > 0 || status == http.StatusMultiStatus {
		body["invalid"] = append([]eventgate.Entry{}, r.Invalid...)
	}
	if len(r.Error) > 0 || status == http.StatusMultiStatus {
		body["error"] = append([]eventgate.Entry{}, r.Error...)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
