package schemasync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/schemasync/gossip"
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
	// IgnoreScanFrom makes the node scan every endpoint, whatever scan_from says: for a one-shot scan, where
	// no other node fills in the endpoints that scan_from gives to others.
	IgnoreScanFrom bool
	// EndpointTimeout bounds each endpoint's whole scan, all its requests together: an endpoint whose scan
	// takes longer is unknown, with a reason that names the deadline. Zero means the larger of scan_interval
	// and max_staleness/2.
	EndpointTimeout time.Duration
}

// maxViewAge bounds how old the served view may be: the ages it reports and its generated_at lag the clock by
// at most this much.
const maxViewAge = time.Second

// Service runs schemasync on one node: it scans the endpoints every scan interval, feeds the observations to
// the State, and serves the resulting view over HTTP and as metrics. It is a thin adapter: every decision is
// the State's.
type Service struct {
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	scanMu sync.Mutex // one scan round at a time

	ignoreScanFrom  bool
	endpointTimeout time.Duration // 0: derived from the configuration

	mu      sync.Mutex // guards cfg, state, scanner, lastSeq and scans
	cfg     Config
	state   *State
	scanner *Scanner
	fetcher Fetcher
	lastSeq uint64 // Seq of this node's latest observation
	scans   uint64 // completed scan rounds

	reg     prometheus.Registerer
	cluster *gossip.Cluster // nil when running alone

	shared      atomic.Pointer[sharedState] // what push/pull sends, taken without ever waiting for mu
	sharedDirty atomic.Bool

	snap      atomic.Pointer[snapshot]
	viewDirty atomic.Bool // observations arrived since the snapshot was computed
	refreshMu sync.Mutex  // one view computation at a time, so that changes are logged once and in order
	ready     atomic.Bool
	reloaded  chan struct{}
	apiConns  atomic.Int64 // open API connections (see Listen)
}

// sharedState is what this node tells another in push/pull: its observations (shared, immutable) and its
// held versions in repositories with an unknown endpoint, as of at.
type sharedState struct {
	at   time.Time
	obs  []*Observation
	held []HeldVersion
	sets map[string]string
}

// sharedFor returns the state to send in push/pull at now. It never waits for the service's lock (memberlist
// calls it from its own goroutines, which must not block): when the state changed since the last one was
// taken, or that one is older than a second, it takes a new one only if the lock is free, and otherwise
// returns the last one. Ages are computed from each observation's At when the message is built, so an old
// snapshot never under-reports an age; it may only lack the newest observations, which broadcasts carry.
func (s *Service) sharedFor(now time.Time) *sharedState {
	cur := s.shared.Load()
	if cur == nil || s.sharedDirty.Load() || now.Sub(cur.at) > time.Second || now.Before(cur.at) {
		if s.mu.TryLock() {
			s.takeSharedLocked(now)
			s.mu.Unlock()
			cur = s.shared.Load()
		}
	}
	return cur
}

// takeSharedLocked takes the push/pull state; s.mu is held.
func (s *Service) takeSharedLocked(now time.Time) {
	s.sharedDirty.Store(false)
	st := &sharedState{at: now, obs: s.state.Observations(), held: s.state.HeldWhileStale(now)}
	if len(st.held) > 0 {
		st.sets = s.state.EndpointSets()
	}
	s.shared.Store(st)
}

// changed marks the view and the push/pull state out of date.
func (s *Service) changed() {
	s.sharedDirty.Store(true)
	s.viewDirty.Store(true)
}

// snapshot is the view served to readers, with each schema's answer encoded once, on first read.
type snapshot struct {
	view    *View
	answers []atomic.Pointer[answer] // by the schema's index in view.Schemas
}

// NewService normalises (Config.Normalize) and validates cfg and returns a service that has not scanned yet.
// Credentials files are read by LoadConfig (Config.LoadFiles); a cfg built in code carries the credentials
// its URLs hold.
func NewService(cfg Config, opts ServiceOptions) (*Service, error) {
	cfg = cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		log:             opts.Logger,
		now:             opts.Now,
		ignoreScanFrom:  opts.IgnoreScanFrom,
		endpointTimeout: opts.EndpointTimeout,
		cfg:             cfg,
		fetcher:         opts.Fetcher,
		reg:             opts.Registerer,
		reloaded:        make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.state = NewState(cfg.stateRepositories(), cfg.MaxStaleness)
	s.scanner = NewScanner(cfg.scanConfig(), s.fetcher)
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
	cfg = cfg.Normalize()
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
	s.scanner = NewScanner(cfg.scanConfig(), s.fetcher)
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
		s.changed()
	}
	return ok
}

// contentByHash finds the content of a successful observation the state holds, by its hash (for the API,
// which serves it to other nodes, and for gossip).
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

// Cluster returns the running cluster, or nil when the node runs alone or its cluster has left.
func (s *Service) Cluster() *gossip.Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clusterLocked()
}

// clusterLocked is the cluster this node gossips in, nil once it has left; s.mu is held.
func (s *Service) clusterLocked() *gossip.Cluster {
	if s.cluster != nil && s.cluster.Left() {
		s.cluster = nil
	}
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

// ScanOnce scans every configured endpoint once (those that scan_from gives to this node, unless
// IgnoreScanFrom), concurrently. Each endpoint's observation is dated by when its scan started and recorded as
// soon as its scan ends (a read of the view then sees it); the round refreshes the view once at its end. Each
// scan is bounded by the endpoint timeout (see ServiceOptions.EndpointTimeout). The node is ready after its first complete round. It returns ctx's error
// if ctx ends first; the scans that ctx cut short are not recorded.
func (s *Service) ScanOnce(ctx context.Context) error {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	s.mu.Lock()
	cfg, scanner := s.cfg, s.scanner
	s.mu.Unlock()
	limit := s.endpointTimeoutFor(&cfg)

	type job struct{ repo, endpoint string }
	var jobs []job
	for i := range cfg.Repositories {
		r := &cfg.Repositories[i]
		for _, e := range r.Endpoints {
			if s.ignoreScanFrom || inScope(&cfg, r, e) {
				jobs = append(jobs, job{r.Name, e})
			}
		}
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.scanEndpoint(ctx, scanner, cfg.Cluster.NodeName, j.repo, j.endpoint, cfg.credential(j.endpoint), limit)
		}()
	}
	wg.Wait()
	if s.viewDirty.Load() {
		s.refresh() // and log what changed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.scans++
	s.mu.Unlock()
	if !s.ready.Swap(true) {
		s.log.Info("first scan complete: ready", "endpoints", len(jobs))
	}
	return nil
}

// errEndpointDeadline is the cause of an endpoint scan's context when the endpoint timeout ends it.
var errEndpointDeadline = errors.New("endpoint scan deadline exceeded")

// endpointTimeoutFor is the bound on one endpoint's whole scan: ServiceOptions.EndpointTimeout, else
// scan.endpoint_timeout, else the larger of scan_interval and max_staleness/2. A slow endpoint then delays the
// next round by at most that, and the round's other endpoints, whose observations are dated by their scans'
// starts, are rescanned well within max_staleness.
func (s *Service) endpointTimeoutFor(cfg *Config) time.Duration {
	if s.endpointTimeout > 0 {
		return s.endpointTimeout
	}
	return cfg.endpointTimeout()
}

// scanEndpoint scans one endpoint within limit and records its observation, dated by the scan's start.
func (s *Service) scanEndpoint(ctx context.Context, scanner *Scanner, node, repo, endpoint string, cred *url.Userinfo,
	limit time.Duration) {
	start := s.now()
	ectx, cancel := context.WithTimeoutCause(ctx, limit, errEndpointDeadline)
	r := scanner.scan(ectx, repo, endpoint, cred)
	cancel()
	if !r.OK() {
		if ctx.Err() != nil {
			return // cut short from outside (shutdown): it says nothing about the endpoint
		}
		if errors.Is(context.Cause(ectx), errEndpointDeadline) {
			r.Err = fmt.Sprintf("scan did not finish within the endpoint scan deadline of %s", limit)
		}
	} else {
		r.Hash = ContentHash(r.Schemas)
	}
	r.Observer = node
	// The service's clock, which the state judges freshness by, and the oldest confirmation the scan relied
	// on: the age is never under-reported, so no version counts on a GET older than max_staleness.
	r.At = start.Add(-r.ConfirmedBefore)
	s.mu.Lock()
	now := s.now()
	// Strictly increasing even when the wall clock steps back (NTP), or the state would reject this node's
	// new scans for the length of the step.
	s.lastSeq = max(s.lastSeq+1, uint64(max(now.UnixNano(), 0)))
	r.Seq = s.lastSeq
	recorded := s.state.Observe(r.Observation, now)
	s.metrics.observeScan(&r)
	if c := s.clusterLocked(); recorded && c != nil {
		c.Publish(&r.Observation) // never blocks: it queues
	}
	held, heldOK := s.state.latest[obsKey{endpoint, node}]
	configured := s.state.endpointRepo[endpoint] == repo
	s.mu.Unlock()
	switch {
	case recorded:
		// Readers recompute the view when they next read it; the round refreshes it once at its end. A view
		// per endpoint would cost a full recomputation per endpoint (8 per round in a typical fleet).
		s.changed()
	case configured:
		var heldSeq uint64
		if heldOK {
			heldSeq = held.Seq
		}
		s.log.Warn("the state rejected this node's own observation: it holds a newer one", "repository", repo,
			"endpoint", endpoint, "seq", r.Seq, "held_seq", heldSeq)
	default:
		s.log.Debug("observation dropped: the endpoint is no longer configured", "endpoint", endpoint)
	}
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
	c := s.Cluster()
	switch {
	case !s.ready.Load():
		return "not ready: the first scan has not completed"
	case c != nil && !c.Joined():
		return "not ready: not joined to the cluster yet"
	case c != nil && !c.Merged():
		return "not ready: no state merged from another node yet"
	}
	return "ready"
}

// View returns the current view. It recomputes the view when time alone could have changed it (an observation
// turned stale), so that a version is never reported safe on an observation older than max_staleness.
func (s *Service) View() *View { return s.current().view }

// A view that is only older than maxViewAge, and still right, is recomputed by one reader while the others go
// on reading it; one that could be wrong (new observations, or one turned stale) makes every reader wait for
// the recomputation.
func (s *Service) current() *snapshot {
	snap := s.snap.Load()
	if s.valid(snap) {
		if s.young(snap) {
			return snap
		}
		if !s.refreshMu.TryLock() {
			return snap // another reader recomputes it
		}
		defer s.refreshMu.Unlock()
		if cur := s.snap.Load(); cur != snap && s.valid(cur) {
			return cur
		}
		s.refreshLocked()
		return s.snap.Load()
	}
	s.refreshMu.Lock() // one reader recomputes; the others wait for its result
	defer s.refreshMu.Unlock()
	if snap := s.snap.Load(); s.valid(snap) && s.young(snap) {
		return snap
	}
	s.refreshLocked()
	return s.snap.Load()
}

// valid reports whether snap still answers correctly: no observation arrived and none turned stale since.
func (s *Service) valid(snap *snapshot) bool {
	return snap != nil && !s.viewDirty.Load() && (snap.view.ValidUntil.IsZero() || s.now().Before(snap.view.ValidUntil))
}

// young reports whether snap is less than maxViewAge old (a clock stepped back makes it old too).
func (s *Service) young(snap *snapshot) bool {
	age := s.now().Sub(snap.view.At)
	return age >= 0 && age < maxViewAge
}

// refresh recomputes the view from the state, publishes it, and logs what changed.
func (s *Service) refresh() {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	s.refreshLocked()
}

func (s *Service) refreshLocked() {
	s.viewDirty.Store(false)
	s.mu.Lock()
	now := s.now()
	v := s.state.View(now)
	s.state.Forget(now, forgetAfter(s.cfg.MaxStaleness)) // the bound gossip ages are checked against
	if s.clusterLocked() != nil {
		s.takeSharedLocked(now)
	}
	s.mu.Unlock()
	cur := &snapshot{view: v, answers: make([]atomic.Pointer[answer], len(v.Schemas))}
	prev := s.snap.Swap(cur)
	s.logChanges(prev, cur)
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
