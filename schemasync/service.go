package schemasync

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ServiceOptions are the service's collaborators. Every field is optional.
type ServiceOptions struct {
	// Logger receives the service's logs. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the service's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Fetcher sends the scanner's HTTP requests. Nil means a plain http.Client.
	Fetcher Fetcher
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Service runs schemasync on one node: it scans the endpoints every scan interval, feeds the observations to
// the State, and serves the resulting view over HTTP and as metrics. It is a thin adapter: every decision is
// the State's.
type Service struct {
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	scanMu sync.Mutex // one scan round at a time

	mu      sync.Mutex // guards cfg, state and scanner
	cfg     Config
	state   *State
	scanner *Scanner
	fetcher Fetcher
	scans   uint64 // completed scan rounds

	reg     prometheus.Registerer
	cluster *Cluster // nil when running alone

	snap      atomic.Pointer[snapshot]
	viewDirty atomic.Bool // observations arrived since the snapshot was computed
	refreshMu sync.Mutex
	ready     atomic.Bool
	reloaded  chan struct{}
}

// snapshot is the view served to readers, with lazily encoded JSON per schema.
type snapshot struct {
	view    *View
	encoded sync.Map // schemaKey -> []byte
}

// NewService validates cfg and returns a service that has not scanned yet.
func NewService(cfg Config, opts ServiceOptions) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		log:      opts.Logger,
		now:      opts.Now,
		cfg:      cfg,
		fetcher:  opts.Fetcher,
		reg:      opts.Registerer,
		reloaded: make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.state = NewState(cfg.stateRepositories(), cfg.MaxStaleness)
	s.scanner = NewScanner(cfg.Scan, s.fetcher)
	s.metrics = newMetrics(s)
	if opts.Registerer != nil {
		if err := s.metrics.register(opts.Registerer); err != nil {
			return nil, err
		}
	}
	s.refresh()
	return s, nil
}

// Config returns the configuration in force.
func (s *Service) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Reload replaces the configuration: repositories, intervals and scan bounds take effect at the next scan.
// Listen cannot change without a restart; the caller handles that.
func (s *Service) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.cfg = cfg
	s.state.SetRepositories(cfg.stateRepositories(), cfg.MaxStaleness)
	keep := map[string]bool{}
	for _, r := range cfg.Repositories {
		for _, e := range r.Endpoints {
			keep[e] = true
		}
	}
	old := s.scanner
	s.scanner = NewScanner(cfg.Scan, s.fetcher)
	old.mu.Lock()
	for u, c := range old.caches { // keep what the old scanner learnt
		if keep[u] {
			s.scanner.caches[u] = c
		}
	}
	old.mu.Unlock()
	s.mu.Unlock()
	s.refresh()
	select {
	case s.reloaded <- struct{}{}:
	default:
	}
	s.log.Info("configuration reloaded", "repositories", len(cfg.Repositories))
	return nil
}

// Observe feeds an observation from elsewhere (another node) to the state, which updates its held versions at
// once. The view is recomputed at the next read, so a burst of observations costs one view computation.
func (s *Service) Observe(o Observation) bool {
	s.mu.Lock()
	ok := s.state.Observe(o, s.now())
	s.mu.Unlock()
	if ok {
		s.viewDirty.Store(true)
	}
	return ok
}

// observationSeq returns the Seq of the observation the state holds from observer of endpoint.
func (s *Service) observationSeq(endpoint, observer string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.state.latest[obsKey{endpoint, observer}]
	if !ok {
		return 0, false
	}
	return o.Seq, true
}

// contentByHash finds the content of a successful observation the state holds, by its hash.
func (s *Service) contentByHash(hash string) (map[string][]Version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.state.latest {
		if o.Hash == hash && o.OK() {
			return o.Schemas, true
		}
	}
	return nil, false
}

// Cluster returns the running cluster, or nil when the node runs alone.
func (s *Service) Cluster() *Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cluster
}

// inScope reports whether this node scans endpoint: scan_from lists its name or datacenter, or has no entry.
func inScope(cfg *Config, r *RepositoryConfig, endpoint string) bool {
	from, ok := r.ScanFrom[endpoint]
	if !ok {
		from, ok = r.ScanFrom[strings.TrimSuffix(endpoint, "/")]
	}
	if !ok {
		return true
	}
	for _, f := range from {
		if f == cfg.Cluster.NodeName || (f == cfg.Cluster.Datacenter && f != "") {
			return true
		}
	}
	return false
}

// ScanOnce scans every configured endpoint once, concurrently, records the observations and refreshes the
// view. The node is ready after its first complete round. It returns ctx's error if ctx ends first.
func (s *Service) ScanOnce(ctx context.Context) error {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	s.mu.Lock()
	cfg, scanner := s.cfg, s.scanner
	s.mu.Unlock()

	type job struct{ repo, endpoint string }
	var jobs []job
	for i := range cfg.Repositories {
		r := &cfg.Repositories[i]
		for _, e := range r.Endpoints {
			if inScope(&cfg, r, e) {
				jobs = append(jobs, job{r.Name, e})
			}
		}
	}
	results := make([]ScanResult, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = scanner.Scan(ctx, j.repo, j.endpoint)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range results {
		if r := &results[i]; r.OK() {
			r.Hash = ContentHash(r.Schemas)
		}
	}
	s.mu.Lock()
	for i := range results {
		r := &results[i]
		r.Observer = cfg.Cluster.NodeName
		r.At = s.now() // the service's clock, which the state judges freshness by
		s.state.Observe(r.Observation, r.At)
		s.metrics.observeScan(r)
		if s.cluster != nil {
			s.cluster.publish(&r.Observation)
		}
	}
	s.scans++
	s.mu.Unlock()
	prev := s.snap.Load()
	s.refresh()
	s.logChanges(prev, s.snap.Load())
	if !s.ready.Swap(true) {
		s.log.Info("first scan complete: ready", "endpoints", len(jobs))
	}
	return nil
}

// Run scans every scan interval until ctx ends. The first scan starts at once.
func (s *Service) Run(ctx context.Context) error {
	for {
		start := time.Now()
		if err := s.ScanOnce(ctx); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err
		}
		wait := s.Config().ScanInterval - time.Since(start)
		if wait < 0 {
			s.log.Warn("scan took longer than scan_interval", "took", time.Since(start).Round(time.Millisecond))
			wait = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-s.reloaded:
			t.Stop()
		}
	}
}

// Ready reports whether the node serves a complete view: its first scan round has completed and, in a
// cluster, it has joined and merged another node's state.
func (s *Service) Ready() bool {
	if !s.ready.Load() {
		return false
	}
	c := s.Cluster()
	return c == nil || c.Ready()
}

// readiness explains Ready.
func (s *Service) readiness() string {
	switch {
	case !s.ready.Load():
		return "not ready: the first scan has not completed"
	case s.Cluster() != nil && !s.Cluster().joined.Load():
		return "not ready: not joined to the cluster yet"
	case s.Cluster() != nil && !s.Cluster().merged.Load():
		return "not ready: no state merged from another node yet"
	}
	return "ready"
}

// View returns the current view. It recomputes the view when time alone could have changed it (an observation
// turned stale), so that a version is never reported safe on an observation older than max_staleness.
func (s *Service) View() *View { return s.current().view }

func (s *Service) current() *snapshot {
	if snap := s.snap.Load(); s.fresh(snap) {
		return snap
	}
	s.refreshMu.Lock() // one reader recomputes; the others wait for its result
	defer s.refreshMu.Unlock()
	if snap := s.snap.Load(); s.fresh(snap) {
		return snap
	}
	s.refresh()
	return s.snap.Load()
}

func (s *Service) fresh(snap *snapshot) bool {
	return snap != nil && !s.viewDirty.Load() && (snap.view.ValidUntil.IsZero() || s.now().Before(snap.view.ValidUntil))
}

// refresh recomputes the view from the state and publishes it.
func (s *Service) refresh() {
	s.viewDirty.Store(false)
	s.mu.Lock()
	v := s.state.View(s.now())
	s.state.Forget(s.now(), 10*s.cfg.MaxStaleness+time.Hour)
	s.mu.Unlock()
	s.snap.Store(&snapshot{view: v})
}

// logChanges logs endpoints that changed state and schemas that turned dirty or clean between two views.
func (s *Service) logChanges(prev, cur *snapshot) {
	if prev == nil || cur == nil {
		return
	}
	before := map[string]string{}
	for _, e := range prev.view.Endpoints {
		before[e.URL] = e.State
	}
	for _, e := range cur.view.Endpoints {
		if b, ok := before[e.URL]; ok && b != e.State || !ok && e.State != EndpointOK {
			if e.State == EndpointOK {
				s.log.Info("endpoint ok", "repository", e.Repository, "endpoint", e.URL)
			} else {
				s.log.Warn("endpoint unknown", "repository", e.Repository, "endpoint", e.URL, "reason", e.Reason)
			}
		}
	}
	for _, sv := range cur.view.Schemas {
		old, ok := prev.view.Schema(sv.Repository, sv.Title)
		switch {
		case sv.Dirty && (!ok || !old.Dirty):
			s.log.Info("schema dirty", "repository", sv.Repository, "schema", sv.Title, "reasons", sv.Reasons)
		case !sv.Dirty && ok && old.Dirty:
			s.log.Info("schema clean", "repository", sv.Repository, "schema", sv.Title, "safe_version", versionString(sv.SafeVersion))
		}
	}
}

func versionString(v *Version) string {
	if v == nil {
		return ""
	}
	return v.String()
}
