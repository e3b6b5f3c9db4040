package schemasync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evenkeel/evenkeel/internal/origin"
	"github.com/evenkeel/evenkeel/internal/safetext"
)

// Fetcher sends HTTP requests to schema endpoints. *http.Client satisfies it; tests wrap it to inject faults.
type Fetcher interface {
	Do(*http.Request) (*http.Response, error)
}

var _ Fetcher = (*http.Client)(nil)

// ScanConfig bounds the work of one scan.
type ScanConfig struct {
	// Timeout bounds each HTTP request. Default 10s, or in a configuration file that does not set it the
	// endpoint timeout when that is shorter; a file's value above the endpoint timeout is a config error.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency bounds the requests in flight across all endpoints. Default 32.
	Concurrency int `yaml:"concurrency"`
	// EndpointConcurrency bounds the requests in flight to one endpoint, and the workers that walk its
	// directories (one goroutine per worker, never one per directory). Default 8.
	EndpointConcurrency int `yaml:"endpoint_concurrency"`
	// MaxBodyBytes caps one response body; a larger one fails the endpoint's scan. Default 8 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxDepth caps how deep directories nest below an endpoint (symlink loops end here). Default 32.
	MaxDepth int `yaml:"max_depth"`
	// MaxDirectories caps how many directories one endpoint may list. Default 100000.
	MaxDirectories int `yaml:"max_directories"`
	// MaxTitles caps how many schema titles one endpoint may serve; an endpoint that serves more is unknown,
	// with that reason. It bounds the memory, the API answers and the /metrics series one host can cause.
	// Default 20000.
	MaxTitles int `yaml:"max_titles"`
	// MaxTitleVersions caps the versions one schema title may list; an endpoint where one lists more is
	// unknown, with that reason, before any of them is confirmed. It bounds each schema's answer (which lists
	// every endpoint's versions) and the confirmations one directory can cost. Default 1000.
	MaxTitleVersions int `yaml:"max_title_versions"`
	// MaxVersions caps the versions one endpoint may list, all titles together; an endpoint that lists more
	// is unknown, with that reason. It bounds the confirmations (one GET each) of a scan, and the memory of an
	// endpoint's observation and listing cache. Default 200000.
	MaxVersions int `yaml:"max_versions"`
	// FullRescanEvery makes every Nth scan of an endpoint ignore its cache, to bound the effect of any
	// server that changes a directory without changing its mtime. Default 10; 1 disables the cache.
	FullRescanEvery int `yaml:"full_rescan_every"`
	// ReconfirmAfter is how old a confirmation (a GET of a version's extensionless file that answered 200)
	// may be before a scan asks again, even when the listing shows the file unchanged. The re-confirmation
	// is a one-byte ranged GET. An observation is dated by its oldest confirmation, so no version counts on
	// a confirmation older than max_staleness. Default 0: a quarter of max_staleness. A Scanner used on its
	// own treats 0 as "confirm every version on every scan".
	ReconfirmAfter time.Duration `yaml:"reconfirm_after"`
	// EndpointTimeout bounds one endpoint's whole scan, all its requests together; an endpoint that takes
	// longer is unknown for that round, with the reason. Default 0: the larger of scan_interval and
	// max_staleness/2, so that one slow host neither stalls the round nor lets the others go stale.
	EndpointTimeout time.Duration `yaml:"endpoint_timeout"`
}

// DefaultScanConfig returns the defaults documented on ScanConfig.
func DefaultScanConfig() ScanConfig {
	return ScanConfig{
		Timeout:             10 * time.Second,
		Concurrency:         32,
		EndpointConcurrency: 8,
		MaxBodyBytes:        8 << 20,
		MaxDepth:            32,
		MaxDirectories:      100000,
		MaxTitles:           20000,
		MaxTitleVersions:    1000,
		MaxVersions:         200000,
		FullRescanEvery:     10,
	}
}

// Validate checks every bound.
func (c ScanConfig) Validate() error {
	switch {
	case c.Timeout <= 0:
		return errors.New("scan.timeout must be positive")
	case c.Concurrency <= 0:
		return errors.New("scan.concurrency must be positive")
	case c.EndpointConcurrency <= 0:
		return errors.New("scan.endpoint_concurrency must be positive")
	case c.MaxBodyBytes <= 0:
		return errors.New("scan.max_body_bytes must be positive")
	case c.MaxDepth <= 0:
		return errors.New("scan.max_depth must be positive")
	case c.MaxDirectories <= 0:
		return errors.New("scan.max_directories must be positive")
	case c.MaxTitles <= 0:
		return errors.New("scan.max_titles must be positive")
	case c.MaxTitleVersions <= 0:
		return errors.New("scan.max_title_versions must be positive")
	case c.MaxVersions <= 0:
		return errors.New("scan.max_versions must be positive")
	case c.FullRescanEvery <= 0:
		return errors.New("scan.full_rescan_every must be positive")
	case c.ReconfirmAfter < 0:
		return errors.New("scan.reconfirm_after must not be negative (0 chooses a quarter of max_staleness)")
	case c.EndpointTimeout < 0:
		return errors.New("scan.endpoint_timeout must not be negative (0 chooses it from scan_interval and max_staleness)")
	case c.EndpointTimeout > 0 && c.Timeout > c.EndpointTimeout:
		return fmt.Errorf("scan.timeout (%s) must not exceed scan.endpoint_timeout (%s), the bound on all of an endpoint's requests together",
			c.Timeout, c.EndpointTimeout)
	}
	return nil
}

// racyWindow: nginx gives mtimes in whole seconds. A cached listing is trusted only if it was fetched at least
// this long after the directory's mtime, so that a change within the same second cannot hide behind it.
const racyWindow = 2 * time.Second

// Scanner scans schema endpoints. It keeps, per endpoint, the listings and confirmations of the previous scan,
// to avoid downloading what has not changed. It is safe for concurrent use, but one endpoint must not be
// scanned by two calls at once.
type Scanner struct {
	cfg   ScanConfig
	fetch Fetcher
	total chan struct{}
	now   func() time.Time // the clock that dates confirmations and decides their reuse; tests replace it

	mu     sync.Mutex
	caches map[string]*endpointCache
}

type endpointCache struct {
	scans int
	dirs  map[string]*cachedDir
}

// cachedDir is what one listing taught us.
type cachedDir struct {
	mtime     time.Time // the directory's mtime, from its parent's listing
	fetchedAt time.Time // the server's Date when the listing was fetched
	leaf      bool      // no subdirectories: only a leaf's listing may be reused on an unchanged mtime
	pending   bool      // some listed version was not confirmed: relist next time
	entries   []Entry   // only the entries the scan uses: directories and version-like names
	confirmed map[Version]confirmation
}

// confirmation is one GET of a version's extensionless file that answered 200.
type confirmation struct {
	mtime time.Time // the file's mtime in the listing at that time
	at    time.Time // when the request was sent (the scanner's clock)
}

// ScanResult is one endpoint's scan: the observation, plus what it cost.
type ScanResult struct {
	Observation
	// ConfirmedBefore is how long before the scan's start the oldest confirmation that the scan reused was
	// made (0 when it confirmed every version itself). The observation must be dated that much earlier.
	ConfirmedBefore time.Duration
	Duration        time.Duration
	Requests        int64 // HTTP requests sent
	Bytes           int64 // response body bytes read
	Reused          int64 // directory listings reused from the cache instead of downloaded
	Reconfirmed     int64 // versions confirmed again although their listing entry was unchanged
	// NotCounted is what the scan saw but did not count, by kind: listed versions whose file answered 401 or
	// 403, directories whose listing did, and directories whose name cannot be a title (see Warning).
	NotCounted NotCounted
}

// NotCounted counts, by kind, what a scan saw but did not count.
type NotCounted struct {
	RefusedFiles, RefusedDirectories, UnprintableNames int64
}

// NewScanner returns a scanner. A nil fetcher means an http.Client that follows at most 5 redirects, each
// within the endpoint's own scheme, host and port, and keeps as many idle connections per host as the scan
// may use (the default transport keeps 2, and would reconnect).
func NewScanner(cfg ScanConfig, f Fetcher) *Scanner {
	if f == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.EndpointConcurrency
		tr.MaxIdleConns = 2 * cfg.Concurrency
		f = &http.Client{Transport: tr, CheckRedirect: origin.Redirects(origin.MaxRedirects)}
	}
	return &Scanner{cfg: cfg, fetch: f, total: make(chan struct{}, cfg.Concurrency), now: time.Now,
		caches: map[string]*endpointCache{}}
}

// ErrRedirectOffOrigin is wrapped by the error of a scan request that was redirected to another scheme, host
// or port than the endpoint's.
var ErrRedirectOffOrigin = origin.ErrOffOrigin

// Forget drops the cache of every endpoint not in keep (after a config reload).
func (s *Scanner) Forget(keep map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for u := range s.caches {
		if !keep[u] {
			delete(s.caches, u)
		}
	}
}

// cachedDirectories counts the directories cached for endpoint (tests check the cache's bound).
func (s *Scanner) cachedDirectories(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ec := s.caches[endpoint]; ec != nil {
		return len(ec.dirs)
	}
	return 0
}

// Scan scans one endpoint: the base URL of one repository on one host, ending in "/". Any failure makes the
// whole observation failed, with the reason in Err (at most MaxReasonBytes; it names paths relative to the
// endpoint, never the endpoint's URL); it never makes a version look absent or present. The result's At is
// when the scan started and its Seq when it ended, by the wall clock; a Service replaces both with its own
// (its clock, and a sequence that stays increasing when the wall clock steps back).
func (s *Scanner) Scan(ctx context.Context, repo, endpoint string) ScanResult {
	return s.scan(ctx, repo, endpoint, nil)
}

// scan is Scan, with the credentials to send (nil: none).
func (s *Scanner) scan(ctx context.Context, repo, endpoint string, cred *url.Userinfo) ScanResult {
	start := s.now()
	s.mu.Lock()
	ec := s.caches[endpoint]
	if ec == nil {
		ec = &endpointCache{dirs: map[string]*cachedDir{}}
		s.caches[endpoint] = ec
	}
	ec.scans++
	useCache := s.cfg.FullRescanEvery > 1 && ec.scans%s.cfg.FullRescanEvery != 1
	old := ec.dirs
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &walk{
		s: s, ctx: ctx, cancel: cancel, base: endpoint, old: old, useCache: useCache, start: start, cred: cred,
		dirs: map[string]*cachedDir{}, partial: map[string]*cachedDir{}, named: 1,
		schemas: map[string][]Version{}, oldest: start,
	}
	w.cond = sync.NewCond(&w.mu)
	res := ScanResult{Observation: Observation{Repository: repo, Endpoint: endpoint}}
	if u, err := url.Parse(endpoint); err != nil || !strings.HasSuffix(endpoint, "/") || u.Host == "" {
		res.Err = "the endpoint is not a URL ending in /"
		res.Endpoint = safetext.RedactURL(endpoint)
	} else {
		// Credentials go in a header, never in the URL the requests (and their errors) carry. An endpoint
		// named with *** (see NormalizeEndpoint) has its credentials passed separately.
		if u.User != nil {
			if u.User.String() != safetext.Redacted && cred == nil {
				cred = u.User
			}
			u.User = nil
			w.base = u.String()
			res.Endpoint = safetext.RedactURL(endpoint)
		}
		w.baseURL, w.cred = u, cred
		w.run()
		if w.err != nil {
			res.Err = safetext.Bound(safetext.Escape(w.err.Error()), MaxReasonBytes) // a status line's bytes too
		} else {
			res.Warning = w.warning()
			res.NotCounted = NotCounted{RefusedFiles: int64(w.notes[noteRefusedFile].n),
				RefusedDirectories: int64(w.notes[noteRefusedDir].n), UnprintableNames: int64(w.notes[noteUnprintable].n)}
		}
	}
	if ctx.Err() != nil && res.Err == "" {
		res.Err = "scan cancelled"
	}
	end := s.now()
	res.At, res.Seq, res.Duration = start, uint64(max(end.UnixNano(), 0)), end.Sub(start)
	res.Requests, res.Bytes, res.Reused, res.Reconfirmed = w.requests.Load(), w.bytes.Load(), w.reused.Load(), w.reconfirmed.Load()
	s.mu.Lock()
	if res.Err == "" {
		res.Schemas = w.schemas
		res.ConfirmedBefore = start.Sub(w.oldest)
		ec.dirs = w.dirs
	} else {
		// Keep what a failed scan did: the directories it listed and confirmed in full, and those it listed
		// but confirmed only in part. Such a listing is trusted by the same rule as any other (its
		// directory's mtime is unchanged, outside the racy window); the next scan confirms only the versions
		// still unconfirmed. Otherwise a cold scan that cannot finish within the endpoint deadline would
		// start from nothing every time and never finish: the walk lists most directories before it
		// confirms their versions.
		merged := pruned(w.partial, ec.dirs, s.cfg.MaxDirectories)
		ec.dirs = merged
	}
	s.mu.Unlock()
	return res
}

// pruned is the cache after a failed scan: the tree of directories that the freshest listing of each parent
// names, starting at the root, taking this scan's listing of a directory (fresh) over the previous one's
// (old), and at most limit directories. A directory that no listing names any more is dropped, so a host
// whose listing changes on every scan, and whose scans always fail, cannot grow the cache beyond what one
// scan may list.
func pruned(fresh, old map[string]*cachedDir, limit int) map[string]*cachedDir {
	out := map[string]*cachedDir{}
	queue := []string{""}
	for len(queue) > 0 && len(out) < limit {
		rel := queue[0]
		queue = queue[1:]
		cd := fresh[rel]
		if cd == nil {
			cd = old[rel]
		}
		if cd == nil {
			continue
		}
		if _, dup := out[rel]; dup {
			continue
		}
		out[rel] = cd
		for _, e := range cd.entries {
			if e.Type == TypeDirectory {
				queue = append(queue, rel+e.Name+"/")
			}
		}
	}
	return out
}

// walk is the state of one endpoint scan: a queue of directories to list, worked by endpoint_concurrency
// goroutines.
type walk struct {
	s        *Scanner
	ctx      context.Context
	cancel   context.CancelFunc
	base     string
	baseURL  *url.URL
	cred     *url.Userinfo
	old      map[string]*cachedDir
	useCache bool
	start    time.Time

	requests, bytes, reused, reconfirmed atomic.Int64

	mu      sync.Mutex
	notes   [noteKinds]note // what the scan saw but did not count
	cond    *sync.Cond
	queue   []dirJob
	active  int
	err     error
	oldest  time.Time             // the oldest confirmation the scan relies on
	dirs    map[string]*cachedDir // directories listed and confirmed in full
	partial map[string]*cachedDir // every directory listed, complete or not (the same *cachedDir as in dirs)
	named   int                   // directories that listings of this scan named (the root too)
	listed  int                   // versions that listings of this scan named
	schemas map[string][]Version
}

type dirJob struct {
	rel   string
	mtime time.Time
	depth int
}

func (w *walk) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.cancel()
}

// run lists the root and every directory below it, with endpoint_concurrency workers, and returns when the
// queue is empty and every worker idle.
func (w *walk) run() {
	w.queue = append(w.queue, dirJob{})
	var wg sync.WaitGroup
	for i := 0; i < w.s.cfg.EndpointConcurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				w.mu.Lock()
				for len(w.queue) == 0 && w.active > 0 {
					w.cond.Wait()
				}
				if len(w.queue) == 0 {
					w.mu.Unlock()
					w.cond.Broadcast()
					return
				}
				j := w.queue[len(w.queue)-1]
				w.queue = w.queue[:len(w.queue)-1]
				w.active++
				w.mu.Unlock()
				w.dir(j.rel, j.mtime, j.depth)
				w.mu.Lock()
				w.active--
				w.mu.Unlock()
				w.cond.Broadcast()
			}
		}()
	}
	wg.Wait()
}

// enqueue adds a subdirectory to the walk, within max_directories.
func (w *walk) enqueue(rel string, mtime time.Time, depth int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.named >= w.s.cfg.MaxDirectories {
		if w.err == nil {
			w.err = fmt.Errorf("more than max_directories %d directories", w.s.cfg.MaxDirectories)
		}
		w.cancel()
		return false
	}
	w.named++
	w.queue = append(w.queue, dirJob{rel, mtime, depth})
	return true
}

// dir scans the directory at rel ("" for the endpoint's root, else "a/b/"), whose mtime its parent listed.
func (w *walk) dir(rel string, mtime time.Time, depth int) {
	if w.ctx.Err() != nil {
		return
	}
	if depth > w.s.cfg.MaxDepth {
		w.fail(fmt.Errorf("%s: directories nest deeper than max_depth %d (a symlink loop?)", relName(rel), w.s.cfg.MaxDepth))
		return
	}
	prev := w.old[rel]
	cd := &cachedDir{mtime: mtime, confirmed: map[Version]confirmation{}}
	var entries []Entry // the whole listing, or the cached part of one
	if w.useCache && prev != nil && prev.leaf && !prev.pending && !mtime.IsZero() && prev.mtime.Equal(mtime) &&
		!prev.fetchedAt.Before(mtime.Add(racyWindow)) {
		entries, cd.entries, cd.fetchedAt = prev.entries, prev.entries, prev.fetchedAt
		w.reused.Add(1)
	} else {
		body, date, err := w.get(rel)
		var refused *refusedError
		if errors.As(err, &refused) && rel != "" {
			// A directory its host will not list (chmod 000 on real nginx): nothing below it is served, to
			// EventGate either, as far as this scan can tell. Its schemas are absent, which can only lower a
			// safe version; the root refusing is a failed scan.
			w.note(noteRefusedDir, refused.msg)
			return
		}
		if err != nil {
			w.fail(err)
			return
		}
		if entries, err = ParseListing(body); err != nil {
			w.fail(fmt.Errorf("%s: %w", relName(rel), err))
			return
		}
		cd.entries, cd.fetchedAt = keptEntries(entries), date
	}

	cd.leaf = true
	listed := map[Version]bool{}
	files := map[string]Entry{}
	for _, e := range entries {
		if e.Type == TypeDirectory {
			cd.leaf = false
			if !safetext.Printable(e.Name) {
				// A control or format character (an ANSI escape, a bidirectional override) or bytes that are
				// not UTF-8: no schema's title, and one that every answer, label and terminal would carry. Its
				// schemas are absent from this endpoint, which can only lower a safe version.
				w.note(noteUnprintable, relName(rel+e.Name))
				continue
			}
			if len(rel)+len(e.Name) > maxTitleBytes { // a title every answer, label and peer would carry
				w.fail(fmt.Errorf("%s: a directory path longer than %d bytes", relName(rel+e.Name), maxTitleBytes))
				return
			}
			if !w.enqueue(rel+e.Name+"/", e.MTime, depth+1) {
				return
			}
			continue
		}
		files[e.Name] = e
		v, ok, err := versionEntry(e.Name)
		if err != nil {
			w.fail(fmt.Errorf("%s: %w", relName(rel), err))
			return
		}
		if ok {
			listed[v] = true
		}
	}
	if len(listed) > w.s.cfg.MaxTitleVersions {
		w.fail(fmt.Errorf("%s: lists %d versions, more than max_title_versions %d", relName(rel), len(listed),
			w.s.cfg.MaxTitleVersions))
		return
	}
	w.mu.Lock()
	w.listed += len(listed)
	over := w.listed > w.s.cfg.MaxVersions
	if !over {
		w.partial[rel] = cd // confirmations below add to cd.confirmed; Scan reads it only after the walk ends
	}
	w.mu.Unlock()
	if over {
		w.fail(fmt.Errorf("lists more than max_versions %d versions", w.s.cfg.MaxVersions))
		return
	}
	if len(listed) > 0 {
		var present []Version
		oldest := w.start
		for v := range listed {
			e, ok := files[v.String()]
			if !ok || e.Type != TypeFile {
				cd.pending = true // only X.Y.Z.yaml/json, or X.Y.Z dangling: not servable yet
				continue
			}
			if c, ok := prevConfirmed(prev, v); ok && c.mtime.Equal(e.MTime) && !e.MTime.IsZero() && w.useCache {
				if w.s.cfg.ReconfirmAfter > 0 && w.start.Sub(c.at) < w.s.cfg.ReconfirmAfter {
					cd.confirmed[v] = c
					present = append(present, v)
					oldest = minTime(oldest, c.at)
					continue
				}
				w.reconfirmed.Add(1)
			}
			sent := w.s.now()
			found, refusal, err := w.confirm(rel + v.String())
			if err != nil {
				w.fail(err)
				return
			}
			if !found {
				cd.pending = true
				if refusal != "" {
					w.note(noteRefusedFile, refusal)
				}
				continue
			}
			cd.confirmed[v] = confirmation{mtime: e.MTime, at: sent}
			present = append(present, v)
		}
		if len(present) > 0 {
			sortVersions(present)
			w.mu.Lock()
			w.oldest = minTime(w.oldest, oldest)
			w.schemas[strings.TrimSuffix(rel, "/")] = present
			over := len(w.schemas) > w.s.cfg.MaxTitles
			w.mu.Unlock()
			if over {
				w.fail(fmt.Errorf("serves more than max_titles %d schema titles", w.s.cfg.MaxTitles))
				return
			}
		}
	}
	w.mu.Lock()
	w.dirs[rel] = cd
	w.mu.Unlock()
}

// Kinds of what a scan saw but did not count, each summarised in the observation's Warning.
const (
	noteRefusedFile = iota // a listed version whose file answered 401 or 403
	noteRefusedDir         // a directory whose listing answered 401 or 403
	noteUnprintable        // a directory whose name cannot be a title
	noteKinds
)

var noteFormats = [noteKinds]string{
	noteRefusedFile: "%d listed version(s) not counted, their files refuse a GET: %s",
	noteRefusedDir:  "%d directory(s) not scanned, their listings refuse a GET: %s",
	noteUnprintable: "%d directory(s) skipped, their names hold a control character or are not UTF-8: %s",
}

// note is how often one kind of thing was seen, and the first of them by path, described: the walking workers
// meet them in any order, and a warning that named whichever came first would change from scan to scan.
type note struct {
	n     int
	first string
}

func (w *walk) note(kind int, what string) {
	w.mu.Lock()
	if w.notes[kind].n++; w.notes[kind].n == 1 || what < w.notes[kind].first {
		w.notes[kind].first = what
	}
	w.mu.Unlock()
}

// warning is a successful scan's Observation.Warning: what it saw but did not count.
func (w *walk) warning() string {
	var notes []string
	for kind, n := range w.notes {
		if n.n > 0 {
			notes = append(notes, fmt.Sprintf(noteFormats[kind], n.n, n.first))
		}
	}
	return safetext.Bound(safetext.Escape(strings.Join(notes, "; ")), MaxReasonBytes)
}

// keptEntries keeps the entries a later scan may reuse: directories and extensionless versions (X.Y.Z), so
// that the cache holds neither a host's stray files nor the X.Y.Z.yaml and X.Y.Z.json twins. A listing is
// reused only when none of its versions was pending, so every listed version then has its X.Y.Z entry; and
// a listing with a malformed version-like name fails its scan and is not cached.
func keptEntries(entries []Entry) []Entry {
	n := 0
	for _, e := range entries {
		if keepEntry(e) {
			n++
		}
	}
	out := make([]Entry, 0, n)
	for _, e := range entries {
		if keepEntry(e) {
			out = append(out, e)
		}
	}
	return out
}

func keepEntry(e Entry) bool {
	if e.Type == TypeDirectory {
		return true
	}
	_, err := ParseVersion(e.Name)
	return err == nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// relName names a path below the endpoint in an error: quoted, escaped and bounded.
func relName(rel string) string {
	return safetext.Quote(safetext.Bound("/"+rel, 160))
}

func prevConfirmed(prev *cachedDir, v Version) (confirmation, bool) {
	if prev == nil {
		return confirmation{}, false
	}
	c, ok := prev.confirmed[v]
	return c, ok
}

func (w *walk) acquire() error {
	select {
	case w.s.total <- struct{}{}:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

func (w *walk) release() { <-w.s.total }

// request sends one request for rel (a path below the endpoint), with the endpoint's credentials, and checks
// that the answer came from the endpoint's origin (whatever the Fetcher did with redirects).
func (w *walk) request(ctx context.Context, method, rel string, header http.Header) (*http.Response, error) {
	u := w.base + safetext.EscapePath(rel) // titles keep the unescaped names
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, relName(rel), err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if w.cred != nil {
		pw, _ := w.cred.Password()
		req.SetBasicAuth(w.cred.Username(), pw)
	}
	w.requests.Add(1)
	resp, err := w.s.fetch.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it repeats the URL, which the observation already names
		}
		return nil, fmt.Errorf("%s %s: %w", method, relName(rel), err)
	}
	if err := origin.CheckResponse(w.baseURL, resp); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %w", method, relName(rel), err)
	}
	return resp, nil
}

// get fetches a listing. It returns the body and the server's Date (zero when absent).
func (w *walk) get(rel string) ([]byte, time.Time, error) {
	if err := w.acquire(); err != nil {
		return nil, time.Time{}, err
	}
	defer w.release()
	ctx, cancel := context.WithTimeout(w.ctx, w.s.cfg.Timeout)
	defer cancel()
	resp, err := w.request(ctx, http.MethodGet, rel, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	name := relName(rel)
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		msg := fmt.Sprintf("GET %s: HTTP %s", name, safetext.Bound(resp.Status, 80))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return nil, time.Time{}, &refusedError{msg}
		}
		return nil, time.Time{}, errors.New(msg)
	}
	if resp.ContentLength > w.s.cfg.MaxBodyBytes {
		return nil, time.Time{}, fmt.Errorf("GET %s: body of %d bytes exceeds max_body_bytes %d", name, resp.ContentLength, w.s.cfg.MaxBodyBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, w.s.cfg.MaxBodyBytes+1))
	w.bytes.Add(int64(len(body)))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("GET %s: reading body: %w", name, err)
	}
	if int64(len(body)) > w.s.cfg.MaxBodyBytes {
		return nil, time.Time{}, fmt.Errorf("GET %s: body exceeds max_body_bytes %d", name, w.s.cfg.MaxBodyBytes)
	}
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	return body, date, nil
}

// refusedError is a listing that answered 401 or 403: the host will not serve that directory.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// confirmProbeBytes bounds what a confirmation reads of a body: a host that ignores the Range header sends
// the whole file, of which the scanner reads this much before closing the connection.
const confirmProbeBytes = 4096

// confirm asks whether the extensionless version file answers a GET, as EventGate's request would: 200 (or
// 206 to the one-byte range it asks for) means it exists; 404, 410 or 416 (an empty file) mean not yet; 401 or
// 403 (a file its server may not read, such as a chmod 000 one behind an unchanged listing) mean it is not
// served, and refusal says so. Any other answer is an error: it says nothing either way. A GET, not a HEAD: a
// host may answer the two differently, and EventGate sends a GET.
func (w *walk) confirm(rel string) (found bool, refusal string, err error) {
	if err := w.acquire(); err != nil {
		return false, "", err
	}
	defer w.release()
	ctx, cancel := context.WithTimeout(w.ctx, w.s.cfg.Timeout)
	defer cancel()
	resp, err := w.request(ctx, http.MethodGet, rel, http.Header{"Range": {"bytes=0-0"}})
	if err != nil {
		return false, "", err
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, confirmProbeBytes))
	w.bytes.Add(n)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
		return true, "", nil
	case http.StatusNotFound, http.StatusGone, http.StatusRequestedRangeNotSatisfiable:
		return false, "", nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return false, fmt.Sprintf("GET %s: HTTP %s", relName(rel), safetext.Bound(resp.Status, 80)), nil
	default:
		return false, "", fmt.Errorf("GET %s: HTTP %s", relName(rel), safetext.Bound(resp.Status, 80))
	}
}
