package canary

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/evenkeel/evenkeel/internal/ctxwait"
	"github.com/evenkeel/evenkeel/internal/eventgate"
	"github.com/evenkeel/evenkeel/internal/origin"
	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync/client"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Step names the part of a stream's run that failed.
type Step string

// The steps of one stream's run, in order.
const (
	StepConfig   Step = "config"          // the stream cannot run as configured
	StepVersion  Step = "resolve-version" // schemasync (or latest) gave no version
	StepFetch    Step = "fetch-schema"    // no schema base URI served the schema
	StepBuild    Step = "build-event"     // no usable example in the schema
	StepValidate Step = "validate"        // the event does not validate against its own schema
	StepProduce  Step = "produce"         // an intake did not answer 201 or 202
)

// StreamError is one stream's failure: which stream, which step, and why.
type StreamError struct {
	Stream  string
	Step    Step
	Title   string
	Version string // when known
	Err     error
}

func (e *StreamError) Error() string {
	at := e.Title
	if e.Version != "" {
		at += "@" + e.Version
	}
	// Every URL in it is shown without credentials, and everything in it escaped for terminals and bounded,
	// whatever error carried it and whoever wrote its words (a schema host, a node, an intake, a stream config).
	return safetext.Clean(fmt.Sprintf("stream %s (%s): %s: %v", e.Stream, at, e.Step, e.Err), MaxErrorBytes)
}

func (e *StreamError) Unwrap() error { return e.Err }

// MaxErrorBytes bounds a StreamError's text (and so Result.Error).
const MaxErrorBytes = 16 << 10

// IntakeError is an intake's answer other than 201 or 202, with the messages its body gave.
type IntakeError struct {
	URL      string
	Status   int      // 0 when no answer came (connection error)
	Messages []string // from a 207/400/500 EventGate body
	Body     string   // the start of a body that was not EventGate's
	Attempts int
	Outcome  string // what became of the event: OutcomeRefused, OutcomeNotSent or OutcomeUnknown
	Err      error  // the transport error, when Status is 0
}

func (e *IntakeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s", e.URL)
	switch {
	case e.Status == 0:
		fmt.Fprintf(&b, ": %v", withoutURL(e.Err))
	case e.Err != nil:
		fmt.Fprintf(&b, ": HTTP %d, then reading the body failed: %v", e.Status, withoutURL(e.Err))
	case len(e.Messages) > 0:
		fmt.Fprintf(&b, ": HTTP %d: %s", e.Status, strings.Join(e.Messages, "; "))
	case e.Body != "":
		fmt.Fprintf(&b, ": HTTP %d: %s", e.Status, e.Body)
	default:
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	switch e.Outcome {
	case OutcomeRefused:
		b.WriteString("; the event was not accepted")
	case OutcomeNotSent:
		b.WriteString("; the event was not sent")
	case OutcomeUnknown:
		if e.Status != 0 || e.Err == nil {
			b.WriteString("; an earlier attempt was sent and got no answer: the intake may have accepted the event")
		} else {
			b.WriteString("; the event was sent and no answer came: the intake may have accepted it")
		}
	}
	// The transport error may quote the intake (a redirect's host): escape and bound the whole, as StreamError does.
	return safetext.Bound(safetext.Escape(b.String()), MaxErrorBytes)
}

func (e *IntakeError) Unwrap() error { return e.Err }

// withoutURL returns the cause inside a *url.Error (`Post "<url>": <cause>`), for messages that name the URL
// already. The error itself, with its *url.Error, stays in the chain for errors.Is and errors.As.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// FetchError is a schema that no base URI served.
type FetchError struct {
	Attempts []error // one per base URI
}

func (e *FetchError) Error() string {
	parts := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		parts[i] = a.Error()
	}
	return "no schema base URI served it: " + strings.Join(parts, "; ")
}

func (e *FetchError) Unwrap() []error { return e.Attempts }

// Delivery is one POST to one intake.
type Delivery struct {
	URL      string   `json:"url"`
	Status   int      `json:"status,omitempty"`
	Attempts int      `json:"attempts"`
	Outcome  string   `json:"outcome"` // OutcomeAccepted, OutcomeRefused, OutcomeNotSent or OutcomeUnknown
	Error    string   `json:"error,omitempty"`
	Messages []string `json:"messages,omitempty"`
}

// Result is one stream's outcome.
type Result struct {
	Stream        string        `json:"stream"`
	SchemaTitle   string        `json:"schema_title"`
	Version       string        `json:"version,omitempty"`
	VersionSource VersionSource `json:"version_source"`
	Repository    string        `json:"repository,omitempty"` // schemasync repository that answered
	Stale         bool          `json:"stale,omitempty"`      // schemasync held the safe version: some endpoint is unknown
	Dirty         bool          `json:"dirty,omitempty"`      // schemasync: endpoints disagree (a rollout is in progress)
	OK            bool          `json:"ok"`
	DryRun        bool          `json:"dry_run,omitempty"`
	FailedStep    Step          `json:"failed_step,omitempty"`
	Error         string        `json:"error,omitempty"`
	Warnings      []string      `json:"warnings,omitempty"` // the schema disagrees with its path ($id, title): the path is used
	Event         any           `json:"event,omitempty"`    // the event built: in dry runs and failures
	Deliveries    []Delivery    `json:"deliveries,omitempty"`
	Started       time.Time     `json:"started"`
	Duration      time.Duration `json:"-"`
	Seconds       float64       `json:"duration_seconds"`
	Err           error         `json:"-"` // a *StreamError when !OK
}

// Doer is the part of *http.Client the canary uses.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

var _ Doer = (*http.Client)(nil)

// Options are a Runner's collaborators. The zero value is usable.
type Options struct {
	// HTTPClient sends every request (schemasync, schema hosts, intakes). Default: an *http.Client; each
	// request's deadline is Config.Timeout.
	HTTPClient Doer
	// Now is the clock for meta.dt and timestamps. Default: time.Now.
	Now func() time.Time
	// Logger gets one line per stream. Default: discard.
	Logger *slog.Logger
}

// Runner runs the canary. It caches compiled schemas across runs, one version per title (the newest one a run
// used: a title's older versions are dropped when a new one is cached, so the cache is bounded by the number of
// titles, not by how many versions a schema goes through over the Runner's life), and is safe for concurrent use.
type Runner struct {
	cfg    Config
	http   Doer
	now    func() time.Time
	log    *slog.Logger
	client *client.Client // nil in latest mode

	mu       sync.Mutex
	cache    map[string]cacheEntry // by title
	inflight map[schemaKey]*flight // the one load under way per title and version
	stats    Stats
}

// flight is a load of one compiled schema that concurrent callers share.
type flight struct {
	done      chan struct{} // closed when c and err are set
	c         *compiled
	err       error
	abandoned bool // the loader's context ended: err says nothing about the schema
}

// schemaKey names one version of one schema.
type schemaKey struct{ title, version string }

// cacheEntry is the one cached version of a title.
type cacheEntry struct {
	version string
	c       *compiled
}

type compiled struct {
	doc      any
	schema   *jsonschema.Schema
	warnings []string // where the document disagrees with its path (see pathMismatch)
}

// Stats counts the Runner's work, for benchmarks and tests.
type Stats struct {
	SchemaFetches int // schema documents fetched from base URIs
	Compiles      int // schemas compiled (cache misses; streams that share a schema share one)
	Validations   int // events validated
}

// NewRunner validates cfg and returns a Runner.
func NewRunner(cfg Config, opts Options) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, http: opts.HTTPClient, now: opts.Now, log: opts.Logger,
		cache: map[string]cacheEntry{}, inflight: map[schemaKey]*flight{}}
	if r.http == nil {
		// Redirects stay on the origin they were sent to: an intake's 307 must not post the event elsewhere.
		// Nor may one turn the POST into a GET without the event (301, 302, 303).
		stay := origin.Redirects(origin.MaxRedirects)
		r.http = &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if err := sameMethod(via[0], req); err != nil {
				return err
			}
			return stay(req, via)
		}}
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if cfg.VersionSource == VersionSafe {
		c, err := client.New(cfg.Schemasync, client.Options{HTTPClient: r.http, Timeout: cfg.Timeout, Logger: r.log})
		if err != nil {
			return nil, err
		}
		r.client = c
	}
	return r, nil
}

// Stats returns the counters so far.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Run runs the canary once with cfg: one Result per stream, sorted by stream name. The error is non-nil only
// when the streams cannot be known at all (a config that does not validate, a stream config that cannot be
// read); each stream's own failure is in its Result.
func Run(ctx context.Context, cfg Config, opts Options) ([]Result, error) {
	r, err := NewRunner(cfg, opts)
	if err != nil {
		return nil, err
	}
	return r.Run(ctx)
}

// Streams returns the configured streams: inline ones, or those read from the stream config.
func (r *Runner) Streams(ctx context.Context) ([]Stream, error) {
	if r.cfg.StreamConfig == "" {
		return append([]Stream(nil), r.cfg.Streams...), nil
	}
	data, attempts, err := r.readStreamConfig(ctx)
	if err != nil {
		return nil, &StreamConfigError{Source: r.cfg.StreamConfig, Attempts: attempts, Err: err}
	}
	streams, err := ParseStreamConfig(data, r.cfg.Destinations)
	if err != nil {
		return nil, &StreamConfigError{Source: r.cfg.StreamConfig, Invalid: true, Err: err}
	}
	if len(streams) == 0 {
		return nil, &StreamConfigError{Source: r.cfg.StreamConfig, Invalid: true, Err: errors.New("no stream has canary_events_enabled: true")}
	}
	return streams, nil
}

// StreamConfigError is a stream config that could not be read (Invalid false: perhaps try again later) or
// that is not usable (Invalid true: fix the config).
type StreamConfigError struct {
	Source   string
	Invalid  bool
	Attempts int // requests made, for a stream config URL
	Err      error
}

func (e *StreamConfigError) Error() string {
	msg := "stream config " + safetext.RedactURL(e.Source) + ": " + withoutURL(e.Err).Error()
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	// The decoder's error may quote the document: escape and bound it, and redact any URL in it.
	return safetext.Clean(msg, MaxErrorBytes)
}

func (e *StreamConfigError) Unwrap() error { return e.Err }

// readStreamConfig reads the stream config file, or GETs the stream config URL, retrying transient failures
// (see transient) as produce does: up to Config.Retries times, with the same backoff.
func (r *Runner) readStreamConfig(ctx context.Context) ([]byte, int, error) {
	u := r.cfg.StreamConfig
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		data, err := readFileBounded(u, MaxSchemaBytes)
		return data, 0, err
	}
	var data []byte
	var err error
	attempts := r.withRetries(ctx, func() (bool, int, []byte, error) {
		body, status, gerr := r.get(ctx, u)
		if gerr == nil && status == http.StatusOK {
			data, err = body, nil
			return true, status, body, nil
		}
		err = gerr
		if gerr == nil {
			err = fmt.Errorf("HTTP %d", status)
		}
		r.log.Debug("stream config: attempt failed", "url", safetext.RedactURL(u), "err", safetext.Clean(err.Error(), MaxErrorBytes))
		return false, status, body, gerr
	})
	if err != nil {
		return nil, attempts, err
	}
	return data, attempts, nil
}

// readFileBounded reads at most limit bytes of the file at path (which may be a device or a FIFO, whose size
// says nothing); a longer file is an error wrapping ErrTooLarge.
func readFileBounded(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%w: the file exceeds %d MiB", ErrTooLarge, limit>>20)
	}
	return data, nil
}

// withRetries calls try until it succeeds, fails in a way that repeating cannot help (see transient), ctx
// ends, or Config.Retries retries are spent, with backoff between attempts. try reports whether it succeeded
// and, when it did not, the answer's status and body or the error, for transient. It returns the attempts made.
func (r *Runner) withRetries(ctx context.Context, try func() (ok bool, status int, body []byte, err error)) int {
	attempts := 0
	for attempt := 0; attempt <= r.cfg.Retries; attempt++ {
		if attempt > 0 && ctxwait.Sleep(ctx, backoff(r.cfg.RetryBackoff, attempt)) != nil {
			break
		}
		attempts++
		ok, status, body, err := try()
		if ok || !transient(status, body, err) || ctx.Err() != nil {
			break
		}
	}
	return attempts
}

// Run runs every stream once, concurrently up to Config.Concurrency.
func (r *Runner) Run(ctx context.Context) ([]Result, error) {
	streams, err := r.Streams(ctx)
	if err != nil {
		return nil, err
	}
	results := make([]Result, len(streams))
	sem := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = r.RunStream(ctx, s)
		}()
	}
	wg.Wait()
	sort.Slice(results, func(i, j int) bool { return results[i].Stream < results[j].Stream })
	return results, nil
}

// RunStream runs one stream: resolve the version, fetch and compile the schema, build, validate, produce.
func (r *Runner) RunStream(ctx context.Context, s Stream) Result {
	title := strings.Trim(s.SchemaTitle, "/")
	res := Result{Stream: s.Name, SchemaTitle: title, VersionSource: r.cfg.VersionSource, DryRun: r.cfg.DryRun, Started: r.now().UTC()}
	start := time.Now()
	fail := func(step Step, err error) Result {
		res.Err = &StreamError{Stream: s.Name, Step: step, Title: title, Version: res.Version, Err: err}
		res.FailedStep, res.Error = step, res.Err.Error()
		res.Duration = time.Since(start)
		res.Seconds = res.Duration.Seconds()
		r.log.Info("canary stream failed", "stream", s.Name, "step", step, "err", res.Error) // escaped, bounded, redacted
		return res
	}
	if s.Problem != "" {
		return fail(StepConfig, errors.New(s.Problem))
	}
	if err := s.validate(); err != nil {
		return fail(StepConfig, err)
	}

	var c *compiled
	switch r.cfg.VersionSource {
	case VersionLatest:
		doc, version, err := r.latest(ctx, title)
		if err != nil {
			return fail(StepVersion, err)
		}
		res.Version = version
		c, err = r.cached(ctx, schemaKey{title, version}, func() (*compiled, error) { return r.compile(title, version, "latest", doc) })
		if err != nil {
			return fail(StepFetch, err)
		}
	default:
		version, view, err := r.client.SafeVersion(ctx, r.cfg.SchemasyncRepositories, title)
		if view != nil {
			res.Repository, res.Stale, res.Dirty = view.Repository, view.Stale, view.Dirty
		}
		if err != nil {
			return fail(StepVersion, err)
		}
		res.Version = version
		if c, err = r.schema(ctx, title, version); err != nil {
			return fail(StepFetch, err)
		}
	}

	res.Warnings = c.warnings
	for _, w := range c.warnings {
		r.log.Warn("canary schema disagrees with its path", "stream", s.Name, "warning", w)
	}
	ev, err := BuildEvent(c.doc, title, res.Version, s.Name, r.now())
	if err != nil {
		return fail(StepBuild, err)
	}
	res.Event = ev
	r.mu.Lock()
	r.stats.Validations++
	r.mu.Unlock()
	if err := c.schema.Validate(ev); err != nil {
		return fail(StepValidate, fmt.Errorf("examples[0] as a canary event does not validate: %s", strings.Join(eventgate.ValidationMessages(err), "; ")))
	}
	if !r.cfg.DryRun {
		body, err := json.Marshal([]any{ev})
		if err != nil {
			return fail(StepBuild, err)
		}
		var errs []error
		for _, dest := range s.Destinations {
			d, err := r.produce(ctx, dest, body)
			res.Deliveries = append(res.Deliveries, d)
			if err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fail(StepProduce, err)
		}
	}
	res.OK = true
	if !r.cfg.DryRun {
		res.Event = nil // kept for dry runs and failures, where a reader wants to see it
	}
	res.Duration = time.Since(start)
	res.Seconds = res.Duration.Seconds()
	r.log.Info("canary stream ok", "stream", s.Name, "version", res.Version, "stale", res.Stale, "dry_run", r.cfg.DryRun)
	return res
}

// latest reads <first base>/<title>/latest and the version its $id names: what the old job did.
func (r *Runner) latest(ctx context.Context, title string) (any, string, error) {
	u := schemaURL(r.cfg.SchemaBaseURIs[0], title, "latest")
	doc, err := r.fetchOne(ctx, u)
	if err != nil {
		return nil, "", err
	}
	v, err := versionFromID(doc, title)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", u, err)
	}
	return doc, v, nil
}

// schema returns the compiled schema of title at version, fetching it from the base URIs in order on a miss.
func (r *Runner) schema(ctx context.Context, title, version string) (*compiled, error) {
	return r.cached(ctx, schemaKey{title, version}, func() (*compiled, error) {
		ferr := &FetchError{}
		for _, base := range r.cfg.SchemaBaseURIs {
			u := schemaURL(base, title, version)
			doc, err := r.fetchOne(ctx, u)
			if err != nil {
				ferr.Attempts = append(ferr.Attempts, err)
				continue
			}
			return r.compile(title, version, u, doc)
		}
		return nil, ferr
	})
}

// cached returns the compiled schema k: from the cache, from the load of it already under way (streams
// that share a schema wait for one fetch and one compile), or from load, which it runs and caches. A failed
// load is not cached: the next run tries again. A waiter whose loader gave up because the loader's own context
// ended loads it itself. A loaded schema replaces the cached version of its title, if any.
func (r *Runner) cached(ctx context.Context, k schemaKey, load func() (*compiled, error)) (*compiled, error) {
	for {
		r.mu.Lock()
		if e, ok := r.cache[k.title]; ok && e.version == k.version {
			r.mu.Unlock()
			return e.c, nil
		}
		if f := r.inflight[k]; f != nil {
			r.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if f.abandoned && ctx.Err() == nil {
				continue
			}
			return f.c, f.err
		}
		f := &flight{done: make(chan struct{})}
		r.inflight[k] = f
		r.mu.Unlock()

		f.c, f.err = load()
		f.abandoned = f.err != nil && ctx.Err() != nil
		r.mu.Lock()
		delete(r.inflight, k)
		if f.err == nil {
			r.cache[k.title] = cacheEntry{version: k.version, c: f.c}
		}
		r.mu.Unlock()
		close(f.done)
		return f.c, f.err
	}
}

// compile compiles doc, fetched from from, as the schema of title at version.
func (r *Runner) compile(title, version, from string, doc any) (*compiled, error) {
	s, err := eventgate.Compile(schemaURL("https://schema.canary.invalid", title, version), doc)
	r.mu.Lock()
	r.stats.Compiles++
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return &compiled{doc: doc, schema: s, warnings: pathMismatch(doc, title, version)}, nil
}

func (r *Runner) fetchOne(ctx context.Context, u string) (any, error) {
	r.mu.Lock()
	r.stats.SchemaFetches++
	r.mu.Unlock()
	body, status, err := r.get(ctx, u)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", safetext.RedactURL(u), status)
	}
	doc, err := eventgate.DecodeDocument(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", safetext.RedactURL(u), err)
	}
	return doc, nil
}

// MaxSchemaBytes bounds a schema document (and the stream configuration) the canary reads. A schema's shape is
// bounded too, whatever its size: 64 levels deep and 65,536 nodes at most (internal/eventgate).
const MaxSchemaBytes = 16 << 20

// ErrTooLarge is wrapped by the error for a document larger than MaxSchemaBytes.
var ErrTooLarge = errors.New("too large")

func (r *Runner) get(ctx context.Context, u string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, 0, err // a *url.Error: callers that name the URL already use withoutURL
	}
	defer resp.Body.Close()
	if err := origin.CheckResponse(req.URL, resp); err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", safetext.RedactURL(u), err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxSchemaBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: reading body: %w", safetext.RedactURL(u), err)
	}
	if len(body) > MaxSchemaBytes {
		return nil, 0, fmt.Errorf("GET %s: %w: the body exceeds %d MiB", safetext.RedactURL(u), ErrTooLarge, MaxSchemaBytes>>20)
	}
	return body, resp.StatusCode, nil
}

// What became of an event sent to one intake (Delivery.Outcome).
const (
	OutcomeAccepted = "accepted" // the intake answered 201 or 202
	OutcomeRefused  = "refused"  // the intake answered otherwise (a redirect not followed included): not accepted
	OutcomeNotSent  = "not-sent" // no whole request reached the intake: not accepted
	OutcomeUnknown  = "unknown"  // the request was sent and no answer came: the intake may have accepted it
)

// produce POSTs body to one intake, retrying transient failures. An attempt whose fate is unknown keeps the
// delivery's outcome unknown unless a later attempt is accepted: the event may have arrived then.
func (r *Runner) produce(ctx context.Context, dest string, body []byte) (Delivery, error) {
	u := dest
	if r.cfg.Hasty {
		if strings.Contains(u, "?") {
			u += "&hasty=true"
		} else {
			u += "?hasty=true"
		}
	}
	d := Delivery{URL: safetext.RedactURL(dest)}
	var last *IntakeError
	mayHaveArrived := false
	d.Attempts = r.withRetries(ctx, func() (bool, int, []byte, error) {
		a := r.post(ctx, u, body)
		d.Status = a.status
		if a.err == nil && (a.status == http.StatusCreated || a.status == http.StatusAccepted) {
			last, d.Outcome = nil, OutcomeAccepted
			return true, a.status, a.body, nil
		}
		d.Outcome = a.outcome()
		mayHaveArrived = mayHaveArrived || d.Outcome == OutcomeUnknown
		if mayHaveArrived {
			d.Outcome = OutcomeUnknown
		}
		last = verdict(dest, a.status, a.body, a.err)
		return false, a.status, a.body, a.err
	})
	if last == nil {
		return d, nil
	}
	last.Attempts, last.Outcome = d.Attempts, d.Outcome
	d.Error, d.Messages = last.Error(), last.Messages
	return d, last
}

// attempt is one POST: the answer's status and body, or the error, and how far the request got.
type attempt struct {
	status   int
	body     []byte
	err      error
	answered bool // an answer came, perhaps one that does not count (a redirect refused, another origin)
	wrote    bool // the whole request was written to a connection
	traced   bool // the transport reported its progress (it asked for a connection), so wrote can be believed
}

// outcome is the attempt's Outcome, for an attempt that was not accepted.
func (a attempt) outcome() string {
	switch {
	case a.answered:
		return OutcomeRefused
	case a.wrote:
		return OutcomeUnknown
	case a.traced:
		return OutcomeNotSent // no connection (refused, DNS, TLS, ...), or the request was not written whole
	default:
		return OutcomeUnknown // a Doer that does not report how far the request got
	}
}

func (r *Runner) post(ctx context.Context, u string, body []byte) (a attempt) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var wrote, traced atomic.Bool // set by the transport's goroutines
	defer func() { a.wrote, a.traced = wrote.Load(), a.traced || traced.Load() }()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn: func(string) { traced.Store(true) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return attempt{err: err, traced: true} // nothing was sent
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		// A response comes with an error only when a redirect was refused: the intake answered.
		return attempt{err: err, answered: resp != nil}
	}
	defer resp.Body.Close()
	if err := origin.CheckResponse(req.URL, resp); err != nil {
		return attempt{err: err, answered: true} // the event reached another origin: that answer does not count
	}
	if err := sameMethod(req, resp.Request); err != nil {
		return attempt{err: err, answered: true} // a Doer supplied by the caller followed a 302 with a GET: that answer does not count
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusAccepted {
		// Accepted: the status says everything. The body is not read, so that one sent slowly cannot turn
		// the success into a timeout.
		return attempt{status: resp.StatusCode, answered: true}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return attempt{status: resp.StatusCode, body: b, err: err, answered: true}
}

// ErrMethodChanged is wrapped by the error of a POST that was redirected with 301, 302 or 303, which an
// HTTP client follows with a GET that carries no event: the intake did not accept the event.
var ErrMethodChanged = errors.New("redirect would resend the POST as a GET without the event")

// sameMethod returns an error wrapping ErrMethodChanged when next (a redirect of sent, or the request that
// an answer came from) does not use sent's method.
func sameMethod(sent, next *http.Request) error {
	if next == nil || next.Method == sent.Method {
		return nil
	}
	status := 0
	if next.Response != nil {
		status = next.Response.StatusCode
	}
	return fmt.Errorf("HTTP %d: %w: not followed, the event was not accepted (only 307 and 308 keep the POST)", status, ErrMethodChanged)
}

// verdict explains an answer other than 201/202.
// The intake's words (messages, body) are escaped for terminals and bounded.
func verdict(u string, status int, body []byte, err error) *IntakeError {
	e := &IntakeError{URL: safetext.RedactURL(u), Status: status, Err: err}
	if status == 0 || err != nil {
		return e
	}
	if parsed, perr := eventgate.ParseResponse(body); perr == nil {
		for i, m := range parsed.Messages() {
			if i == 20 {
				e.Messages = append(e.Messages, fmt.Sprintf("(%d more)", len(parsed.Messages())-i))
				break
			}
			e.Messages = append(e.Messages, safetext.Escape(safetext.Bound(m, 500)))
		}
		return e
	}
	e.Body = safetext.Escape(safetext.Bound(strings.TrimSpace(string(body)), 300))
	return e
}

// transient says whether a failed request is worth repeating: no answer because of a connection or timeout
// error that may pass (see transientNetError), 429, 502, 503, 504, or a 500 that is not an EventGate verdict (a
// 500 with {"error":[...]} is one: the intake decided about the event). Every other status, 501 and 505
// included, would be answered the same way again.
func transient(status int, body []byte, err error) bool {
	switch status {
	case 0:
		return transientNetError(err)
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusInternalServerError:
		_, perr := eventgate.ParseResponse(body)
		return perr != nil
	default:
		return false
	}
}

// transientNetError says whether a request that got no answer may get one if repeated: the connection was
// refused, reset, aborted or closed before an answer, the host or network was unreachable, or something timed
// out (a temporary DNS failure included). Certificate, TLS and protocol errors (an HTTP server behind an
// https:// URL), unknown hosts, URLs the client cannot use, and cancellation are not: they fail the same way
// again.
func transientNetError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var (
		verify      *tls.CertificateVerificationError
		unknownAuth x509.UnknownAuthorityError
		invalid     x509.CertificateInvalidError
		hostname    x509.HostnameError
		record      tls.RecordHeaderError
		alert       tls.AlertError
		dns         *net.DNSError
		netErr      net.Error
	)
	switch {
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &verify), errors.As(err, &unknownAuth),
		errors.As(err, &invalid), errors.As(err, &hostname), errors.As(err, &record), errors.As(err, &alert):
		return false
	case errors.As(err, &dns):
		return dns.IsTimeout || dns.IsTemporary
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &netErr):
		return netErr.Timeout() // e.g. http.Client.Timeout, a TLS handshake timeout
	default:
		return false
	}
}

func backoff(base time.Duration, attempt int) time.Duration {
	d := base << (attempt - 1)
	if d > 10*time.Second || d < 0 {
		d = 10 * time.Second
	}
	return d
}
