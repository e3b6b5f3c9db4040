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
)

// Fetcher sends HTTP requests to schema endpoints. *http.Client satisfies it; tests wrap it to inject faults.
type Fetcher interface {
	Do(*http.Request) (*http.Response, error)
}

var _ Fetcher = (*http.Client)(nil)

// ScanConfig bounds the work of one scan.
type ScanConfig struct {
	// Timeout bounds each HTTP request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency bounds the requests in flight across all endpoints. Default 32.
	Concurrency int `yaml:"concurrency"`
	// EndpointConcurrency bounds the requests in flight to one endpoint. Default 8.
	EndpointConcurrency int `yaml:"endpoint_concurrency"`
	// MaxBodyBytes caps one response body; a larger one fails the endpoint's scan. Default 8 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxDepth caps how deep directories nest below an endpoint (symlink loops end here). Default 32.
	MaxDepth int `yaml:"max_depth"`
	// MaxDirectories caps how many directories one endpoint may list. Default 100000.
	MaxDirectories int `yaml:"max_directories"`
	// FullRescanEvery makes every Nth scan of an endpoint ignore its cache, to bound the effect of any
	// server that changes a directory without changing its mtime. Default 10; 1 disables the cache.
	FullRescanEvery int `yaml:"full_rescan_every"`
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
	case c.FullRescanEvery <= 0:
		return errors.New("scan.full_rescan_every must be positive")
	case c.EndpointTimeout < 0:
		return errors.New("scan.endpoint_timeout must not be negative (0 chooses it from scan_interval and max_staleness)")
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
	entries   []Entry
	confirmed map[Version]time.Time // confirmed versions -> mtime of their extensionless entry
}

// ScanResult is one endpoint's scan: the observation, plus what it cost.
type ScanResult struct {
	Observation
	Duration time.Duration
	Requests int64 // HTTP requests sent
	Bytes    int64 // response body bytes read
	Reused   int64 // directory listings reused from the cache instead of downloaded
}

// NewScanner returns a scanner. A nil fetcher means an http.Client that follows at most 5 redirects and keeps
// as many idle connections per host as the scan may use (the default transport keeps 2, and would reconnect).
func NewScanner(cfg ScanConfig, f Fetcher) *Scanner {
	if f == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.EndpointConcurrency
		tr.MaxIdleConns = 2 * cfg.Concurrency
		f = &http.Client{Transport: tr, CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects (a redirect loop?)")
			}
			return nil
		}}
	}
	return &Scanner{cfg: cfg, fetch: f, total: make(chan struct{}, cfg.Concurrency), caches: map[string]*endpointCache{}}
}

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

// Scan scans one endpoint: the base URL of one repository on one host, ending in "/". Any failure makes the
// whole observation failed, with the reason in Err; it never makes a version look absent or present. The
// result's At is when the scan started and its Seq when it ended, by the wall clock; a Service replaces both
// with its own (its clock, and a sequence that stays increasing when the wall clock steps back).
func (s *Scanner) Scan(ctx context.Context, repo, endpoint string) ScanResult {
	start := time.Now()
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
		s: s, ctx: ctx, cancel: cancel, base: endpoint, old: old, useCache: useCache,
		sem: make(chan struct{}, s.cfg.EndpointConcurrency), dirs: map[string]*cachedDir{},
		partial: map[string]*cachedDir{}, schemas: map[string][]Version{},
	}
	res := ScanResult{Observation: Observation{Repository: repo, Endpoint: endpoint}}
	if _, err := url.Parse(endpoint); err != nil || !strings.HasSuffix(endpoint, "/") {
		res.Err = fmt.Sprintf("endpoint %q is not a URL ending in /", endpoint)
	} else {
		w.wg.Add(1)
		go w.dir("", time.Time{}, 0)
		w.wg.Wait()
		if w.err != nil {
			res.Err = w.err.Error()
		}
	}
	if ctx.Err() != nil && res.Err == "" {
		res.Err = "scan cancelled"
	}
	end := time.Now()
	res.At, res.Seq, res.Duration = start, uint64(max(end.UnixNano(), 0)), end.Sub(start)
	res.Requests, res.Bytes, res.Reused = w.requests.Load(), w.bytes.Load(), w.reused.Load()
	s.mu.Lock()
	if res.Err == "" {
		res.Schemas = w.schemas
		ec.dirs = w.dirs
	} else {
		// Keep what a failed scan did: the directories it listed and confirmed in full, and those it listed
		// but confirmed only in part. Such a listing is trusted by the same rule as any other (its
		// directory's mtime is unchanged, outside the racy window); the next scan confirms only the versions
		// still unconfirmed. Otherwise a cold scan that cannot finish within the endpoint deadline would
		// start from nothing every time and never finish: the walk lists most directories before it
		// confirms their versions. w.partial holds every directory the walk listed, the complete ones too.
		merged := make(map[string]*cachedDir, len(ec.dirs)+len(w.partial))
		for rel, cd := range ec.dirs {
			merged[rel] = cd
		}
		for rel, cd := range w.partial {
			merged[rel] = cd
		}
		ec.dirs = merged
	}
	s.mu.Unlock()
	return res
}

// walk is the state of one endpoint scan.
type walk struct {
	s        *Scanner
	ctx      context.Context
	cancel   context.CancelFunc
	base     string
	old      map[string]*cachedDir
	useCache bool
	sem      chan struct{}
	wg       sync.WaitGroup

	requests, bytes, reused atomic.Int64

	mu      sync.Mutex
	err     error
	dirs    map[string]*cachedDir // directories listed and confirmed in full
	partial map[string]*cachedDir // every directory listed, complete or not (the same *cachedDir as in dirs)
	schemas map[string][]Version
}

func (w *walk) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.cancel()
}

// dir scans the directory at rel ("" for the endpoint's root, else "a/b/"), whose mtime its parent listed.
func (w *walk) dir(rel string, mtime time.Time, depth int) {
	defer w.wg.Done()
	if w.ctx.Err() != nil {
		return
	}
	if depth > w.s.cfg.MaxDepth {
		w.fail(fmt.Errorf("%s: directories nest deeper than max_depth %d (a symlink loop?)", w.base+rel, w.s.cfg.MaxDepth))
		return
	}
	w.mu.Lock()
	if len(w.dirs) >= w.s.cfg.MaxDirectories {
		w.mu.Unlock()
		w.fail(fmt.Errorf("%s: more than max_directories %d directories", w.base, w.s.cfg.MaxDirectories))
		return
	}
	w.dirs[rel] = nil // reserve the slot
	w.mu.Unlock()

	prev := w.old[rel]
	cd := &cachedDir{mtime: mtime, confirmed: map[Version]time.Time{}}
	if w.useCache && prev != nil && prev.leaf && !prev.pending && !mtime.IsZero() && prev.mtime.Equal(mtime) &&
		!prev.fetchedAt.Before(mtime.Add(racyWindow)) {
		cd.entries, cd.fetchedAt = prev.entries, prev.fetchedAt
		w.reused.Add(1)
	} else {
		body, date, err := w.get(w.base + escapePath(rel))
		if err != nil {
			w.fail(err)
			return
		}
		entries, err := ParseListing(body)
		if err != nil {
			w.fail(fmt.Errorf("%s: %w", w.base+rel, err))
			return
		}
		cd.entries, cd.fetchedAt = entries, date
	}

	cd.leaf = true
	listed := map[Version]bool{}
	files := map[string]Entry{}
	for _, e := range cd.entries {
		if e.Type == TypeDirectory {
			cd.leaf = false
			w.wg.Add(1)
			go w.dir(rel+e.Name+"/", e.MTime, depth+1)
			continue
		}
		files[e.Name] = e
		v, ok, err := versionEntry(e.Name)
		if err != nil {
			w.fail(fmt.Errorf("%s: %w", w.base+rel, err))
			return
		}
		if ok {
			listed[v] = true
		}
	}
	w.mu.Lock()
	w.partial[rel] = cd // confirmations below add to cd.confirmed; Scan reads it only after the walk ends
	w.mu.Unlock()
	if len(listed) > 0 {
		var present []Version
		for v := range listed {
			e, ok := files[v.String()]
			if !ok || e.Type != TypeFile {
				cd.pending = true // only X.Y.Z.yaml/json, or X.Y.Z dangling: not servable yet
				continue
			}
			if t, ok := prevConfirmed(prev, v); ok && t.Equal(e.MTime) && !e.MTime.IsZero() && w.useCache {
				cd.confirmed[v] = t
				present = append(present, v)
				continue
			}
			found, err := w.confirm(w.base + escapePath(rel) + v.String())
			if err != nil {
				w.fail(err)
				return
			}
			if !found {
				cd.pending = true
				continue
			}
			cd.confirmed[v] = e.MTime
			present = append(present, v)
		}
		if len(present) > 0 {
			sortVersions(present)
			w.mu.Lock()
			w.schemas[strings.TrimSuffix(rel, "/")] = present
			w.mu.Unlock()
		}
	}
	w.mu.Lock()
	w.dirs[rel] = cd
	w.mu.Unlock()
}

func prevConfirmed(prev *cachedDir, v Version) (time.Time, bool) {
	if prev == nil {
		return time.Time{}, false
	}
	t, ok := prev.confirmed[v]
	return t, ok
}

func (w *walk) acquire() error {
	select {
	case w.sem <- struct{}{}:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	select {
	case w.s.total <- struct{}{}:
		return nil
	case <-w.ctx.Done():
		<-w.sem
		return w.ctx.Err()
	}
}

func (w *walk) release() { <-w.s.total; <-w.sem }

// get fetches a listing. It returns the body and the server's Date (zero when absent).
func (w *walk) get(u string) ([]byte, time.Time, error) {
	if err := w.acquire(); err != nil {
		return nil, time.Time{}, err
	}
	defer w.release()
	ctx, cancel := context.WithTimeout(w.ctx, w.s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	w.requests.Add(1)
	resp, err := w.s.fetch.Do(req)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, time.Time{}, fmt.Errorf("GET %s: HTTP %s", u, resp.Status)
	}
	if resp.ContentLength > w.s.cfg.MaxBodyBytes {
		return nil, time.Time{}, fmt.Errorf("GET %s: body of %d bytes exceeds max_body_bytes %d", u, resp.ContentLength, w.s.cfg.MaxBodyBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, w.s.cfg.MaxBodyBytes+1))
	w.bytes.Add(int64(len(body)))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("GET %s: reading body: %w", u, err)
	}
	if int64(len(body)) > w.s.cfg.MaxBodyBytes {
		return nil, time.Time{}, fmt.Errorf("GET %s: body exceeds max_body_bytes %d", u, w.s.cfg.MaxBodyBytes)
	}
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	return body, date, nil
}

// confirm asks whether the extensionless version file answers 200 (it exists) or 404/410 (not yet). Any other
// answer is an error: it says nothing either way.
func (w *walk) confirm(u string) (bool, error) {
	if err := w.acquire(); err != nil {
		return false, err
	}
	defer w.release()
	ctx, cancel := context.WithTimeout(w.ctx, w.s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false, fmt.Errorf("HEAD %s: %w", u, err)
	}
	w.requests.Add(1)
	resp, err := w.s.fetch.Do(req)
	if err != nil {
		return false, fmt.Errorf("HEAD %s: %w", u, err)
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	w.bytes.Add(n)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound, http.StatusGone:
		return false, nil
	default:
		return false, fmt.Errorf("HEAD %s: HTTP %s", u, resp.Status)
	}
}

// escapePath escapes each segment of a relative directory path ("a/b c/") for a URL. Titles keep the
// unescaped names: a directory named "a%2Fb" is the title "a%2Fb", fetched as a%252Fb, never as a/b.
func escapePath(rel string) string {
	if rel == "" {
		return ""
	}
	parts := strings.Split(strings.TrimSuffix(rel, "/"), "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/") + "/"
}
