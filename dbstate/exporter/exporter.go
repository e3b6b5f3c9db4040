// Package exporter serves the observed state of MariaDB fleets beside the desired state as Prometheus metrics:
// which instances answer, their role and read_only, replication threads, lag (apart from a configured delay) and
// errors, writable instances per cluster, errant GTIDs, and drift of runtime variables from a desired-variables
// document (dbstate.DesiredVars).
//
// # Model
//
// An Exporter keeps a set of targets: the instances found by dbstate.Discover from the seeds, rediscovered every
// DiscoveryInterval (every RefreshInterval while no seed answers: the seeds are then watched, down, and the
// exporter is not ready), plus the masters and replicas that each read names (or, with Config.Instances, exactly those
// instances and no discovery). Every RefreshInterval it reads each target in the background, with at most
// Parallel reads at once and each read bounded by InstanceTimeout, and keeps the result in a cache. A scrape only
// formats the cache: it does no I/O, so a slow or hung instance (SIGSTOPped, a dead network) never delays the
// metrics of the others or the scrape itself; its own metrics say it is down once its read times out, and a
// read still running is not started again. A hung read holds one of the Parallel slots until its timeout, so
// only when Parallel or more instances hang at once do the others' reads wait, by at most InstanceTimeout.
//
// An instance that discovery stops finding stays a target while it answers (a replica whose IO thread is down is
// not listed by SHOW SLAVE HOSTS, and that is exactly when it must be watched); one that neither answers nor is
// found is forgotten after ForgetAfter. Labels are bounded: instance (at most MaxInstances), cluster (the root
// primary of the instance's tree), version, role, and variable (only the variables the desired document names).
//
// # Grants drift
//
// With a desired-grants document (SetDesiredGrants), each read also runs dbstate.ReadGrants and the pure
// dbstate.DiffGrants against the document normalised for that server's privilege list, exactly as dbstate grants
// plan does (prune included: accounts prune would drop count, system and protected accounts do not), and exports
// dbstate_grants_drift_accounts{instance}: how many distinct accounts (users and roles) the diff would change, 0
// when the instance is in line. There is no per-account label. The grants read needs SELECT on mysql.* (the
// grant tables); when it fails (no such privilege, a grant dbstate cannot represent, a diff that would change
// the exporter's own account), no drift is exported for the instance (never a made-up 0),
// dbstate_grants_read_errors_total{instance} counts the failure, the first failure of each kind is logged once
// per instance at Warn, and the instance's other metrics are unaffected. Neither logs nor metrics carry
// passwords or hashes: the diff's statements are never logged.
package exporter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes an Exporter. Zero values mean the defaults of DefaultConfig.
type Config struct {
	// Seeds are the instances discovery starts from (host:port or socket path).
	Seeds []string
	// Instances, instead of Seeds, are exactly the instances to watch (host:port); there is no discovery.
	Instances []string
	// RefreshInterval is how often each instance is read. Default 10 s.
	RefreshInterval time.Duration
	// DiscoveryInterval is how often the tree is crawled again from the seeds. Default 1 minute.
	DiscoveryInterval time.Duration
	// InstanceTimeout bounds one instance's read; an instance that takes longer is reported down. Default 2 s.
	InstanceTimeout time.Duration
	// DiscoveryTimeout bounds one discovery. Default 30 s.
	DiscoveryTimeout time.Duration
	// Parallel is how many instances are read at once. Default 8.
	Parallel int
	// MaxInstances bounds the targets (and so the instance label). Default 200.
	MaxInstances int
	// ForgetAfter drops a target that discovery no longer finds and that has not answered for this long.
	// Default 1 hour.
	ForgetAfter time.Duration
	// Version is reported in dbstate_exporter_build_info. Default "devel".
	Version string
}

// DefaultConfig returns the defaults (without seeds).
func DefaultConfig() Config {
	return Config{RefreshInterval: 10 * time.Second, DiscoveryInterval: time.Minute, InstanceTimeout: 2 * time.Second,
		DiscoveryTimeout: 30 * time.Second, Parallel: 8, MaxInstances: 200, ForgetAfter: time.Hour, Version: "devel"}
}

func (c *Config) defaults() {
	d := DefaultConfig()
	c.RefreshInterval = cmp.Or(c.RefreshInterval, d.RefreshInterval)
	c.DiscoveryInterval = cmp.Or(c.DiscoveryInterval, d.DiscoveryInterval)
	c.InstanceTimeout = cmp.Or(c.InstanceTimeout, d.InstanceTimeout)
	c.DiscoveryTimeout = cmp.Or(c.DiscoveryTimeout, d.DiscoveryTimeout)
	c.Parallel = cmp.Or(c.Parallel, d.Parallel)
	c.MaxInstances = cmp.Or(c.MaxInstances, d.MaxInstances)
	c.ForgetAfter = cmp.Or(c.ForgetAfter, d.ForgetAfter)
	c.Version = cmp.Or(c.Version, d.Version)
}

// Validate checks the configuration after defaults: seeds or instances (not both), positive durations and bounds.
func (c Config) Validate() error {
	c.defaults()
	switch {
	case len(c.Seeds) == 0 && len(c.Instances) == 0:
		return errors.New("exporter: no seeds and no instances")
	case len(c.Seeds) > 0 && len(c.Instances) > 0:
		return errors.New("exporter: seeds and instances are exclusive")
	case c.RefreshInterval < 0 || c.DiscoveryInterval < 0 || c.InstanceTimeout < 0 || c.DiscoveryTimeout < 0 || c.ForgetAfter < 0:
		return errors.New("exporter: intervals and timeouts must be positive")
	case c.Parallel < 0 || c.MaxInstances < 0:
		return errors.New("exporter: parallel and max instances must be positive")
	case len(c.Instances) > c.MaxInstances:
		return fmt.Errorf("exporter: %d instances, more than the bound %d", len(c.Instances), c.MaxInstances)
	}
	for _, a := range c.Instances {
		if _, err := dbstate.ParseInstance(a); err != nil {
			return fmt.Errorf("exporter: %w", err)
		}
	}
	return nil
}

// target is one watched instance and its last read.
type target struct {
	addr     string
	lastSeen time.Time // found by discovery (or configured)
	inFlight bool
	read     bool // at least one read finished
	up       bool
	err      string
	// last is the last successful read; kept while the instance is down, for its cluster and version labels.
	last     *dbstate.Instance
	vars     map[string]dbstate.SysVar // the desired variables' rows, from the last successful read
	varNames map[string]bool           // the names that read asked for (a reload may name others)
	// grantsDrift is the accounts the grants diff would change, valid when grantsGen is the exporter's current
	// grants generation (a reload makes it stale until the next read).
	grantsDrift  int
	grantsGen    uint64
	grantsLogged string // the kind of grants failure already logged at Warn ("" none)
	lastOK       time.Time
	lastRefresh  time.Time
	took         time.Duration
}

// Exporter watches instances and is a prometheus.Collector of their state.
type Exporter struct {
	c   *dbstate.Client
	cfg Config
	log *slog.Logger

	mu          sync.Mutex
	targets     map[string]*target
	desired     *dbstate.DesiredVars
	grants      *desiredGrants
	grantsGen   uint64
	discovered  bool
	discoTook   time.Duration
	discoOK     time.Time
	discoFlight bool
	wake        chan struct{}
	sem         chan struct{}
	wg          sync.WaitGroup

	refreshes *prometheus.CounterVec
	discovery *prometheus.CounterVec
	reloads   *prometheus.CounterVec
	reloadOK  prometheus.Gauge
	grantErrs *prometheus.CounterVec
	descs     descs
}

// New returns an Exporter that reads instances through c and registers its metrics with reg. logger may be nil.
// Nothing is read until Run.
func New(c *dbstate.Client, cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Exporter{c: c, cfg: cfg, log: logger, targets: map[string]*target{}, wake: make(chan struct{}, 1),
		sem: make(chan struct{}, cfg.Parallel), descs: newDescs()}
	e.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dbstate_instance_refreshes_total",
		Help: "Reads of the instance by the exporter, by result (success, failure)."}, []string{"instance", "result"})
	e.discovery = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dbstate_discovery_runs_total",
		Help: "Topology discoveries from the seeds, by result (success, failure)."}, []string{"result"})
	e.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dbstate_exporter_config_reloads_total",
		Help: "Loads of the desired files (at start and on SIGHUP), by result (success, failure)."}, []string{"result"})
	e.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dbstate_exporter_config_last_reload_successful",
		Help: "1 when the last load of the desired files succeeded (at start or on SIGHUP), 0 when it failed and the previous ones are still used."})
	e.reloadOK.Set(1)
	e.grantErrs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dbstate_grants_read_errors_total",
		Help: "Grants reads or diffs of the instance that failed (no SELECT on mysql.*, a grant dbstate cannot represent); no drift is exported for a failed read."}, []string{"instance"})
	for _, res := range []string{"success", "failure"} {
		e.reloads.WithLabelValues(res)
		e.discovery.WithLabelValues(res)
	}
	for _, col := range []prometheus.Collector{e, e.refreshes, e.discovery, e.reloads, e.reloadOK, e.grantErrs} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("exporter: register metrics: %w", err)
		}
	}
	now := time.Now()
	for _, a := range cfg.Instances {
		n, _ := dbstate.ParseInstance(a)
		e.targets[n] = &target{addr: n, lastSeen: now}
	}
	if len(cfg.Instances) > 0 {
		e.discovered = true
	}
	return e, nil
}

// SetDesiredVars replaces the desired-variables document (nil: no variable drift is exported). The next
// refresh of each instance reads the variables it names.
func (e *Exporter) SetDesiredVars(d *dbstate.DesiredVars) {
	e.mu.Lock()
	e.desired = d
	e.mu.Unlock()
	e.poke()
}

// ReloadDesiredVars is Reload of the variables only.
func (e *Exporter) ReloadDesiredVars(load func() (*dbstate.DesiredVars, error)) error {
	return e.Reload(load, nil)
}

// desiredGrants is a desired-grants document, with the way to read its password files and its normalisations
// by server privilege list (servers of one version share one).
type desiredGrants struct {
	doc      *dbstate.DesiredGrants
	readFile func(string) (string, error)
	mu       sync.Mutex
	norm     map[dbstate.ServerPrivileges]*dbstate.GrantState
}

func (g *desiredGrants) normalize(sp dbstate.ServerPrivileges) (*dbstate.GrantState, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st := g.norm[sp]; st != nil {
		return st, nil
	}
	st, err := g.doc.Normalize(sp, g.readFile)
	if err != nil {
		return nil, err
	}
	if len(g.norm) >= 16 { // a fleet runs few versions; bound it anyway
		clear(g.norm)
	}
	g.norm[sp] = st
	return st, nil
}

// SetDesiredGrants replaces the desired-grants document (nil: no grants drift is exported). readFile reads the
// password files the document names (see dbstate.DesiredGrants.Normalize). The document is normalised once
// against MariaDB's default privilege list here, so that a file whose password file is missing is refused
// before it replaces the running one; drift from the previous document is no longer exported, and the next
// read of each instance diffs against the new one.
func (e *Exporter) SetDesiredGrants(d *dbstate.DesiredGrants, readFile func(string) (string, error)) error {
	var g *desiredGrants
	if d != nil {
		g = &desiredGrants{doc: d, readFile: readFile, norm: map[dbstate.ServerPrivileges]*dbstate.GrantState{}}
		if _, err := g.normalize(dbstate.DefaultServerPrivileges()); err != nil {
			return fmt.Errorf("exporter: desired grants: %w", err)
		}
	}
	e.mu.Lock()
	e.grants = g
	e.grantsGen++
	e.mu.Unlock()
	e.poke()
	return nil
}

// GrantsLoader loads a desired-grants document and the function that reads its password files; a nil document
// and no error mean none.
type GrantsLoader func() (*dbstate.DesiredGrants, func(string) (string, error), error)

// Reload loads the desired files, the variables with vars and the grants with grants (a nil loader leaves that
// document as it is), and uses those that loaded. When either fails, that document is kept,
// dbstate_exporter_config_last_reload_successful turns 0 and one failure is counted, so that an alert sees a
// reload that did not take; the errors are returned for the caller to log.
func (e *Exporter) Reload(vars func() (*dbstate.DesiredVars, error), grants GrantsLoader) error {
	var errs []error
	if vars != nil {
		if d, err := vars(); err != nil {
			errs = append(errs, err)
		} else {
			e.SetDesiredVars(d)
		}
	}
	if grants != nil {
		d, read, err := grants()
		if err == nil {
			err = e.SetDesiredGrants(d, read)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		e.reloads.WithLabelValues("failure").Inc()
		e.reloadOK.Set(0)
		return err
	}
	e.reloads.WithLabelValues("success").Inc()
	e.reloadOK.Set(1)
	return nil
}

func (e *Exporter) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Exporter) isDiscovered() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.discovered
}

// Ready reports whether the exporter has discovered the topology (some seed answered) and read every target at
// least once.
func (e *Exporter) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.discovered || len(e.targets) == 0 {
		return false
	}
	for _, t := range e.targets {
		if !t.read {
			return false
		}
	}
	return true
}

// Run discovers and refreshes until ctx ends, then waits for the reads in flight (each bounded by
// InstanceTimeout) and returns nil.
func (e *Exporter) Run(ctx context.Context) error {
	refresh := time.NewTicker(e.cfg.RefreshInterval)
	defer refresh.Stop()
	disco := time.NewTicker(e.cfg.DiscoveryInterval)
	defer disco.Stop()
	if len(e.cfg.Seeds) > 0 {
		e.startDiscovery(ctx)
	}
	e.refreshAll(ctx)
	for {
		select {
		case <-ctx.Done():
			e.wg.Wait()
			return nil
		case <-refresh.C:
			if len(e.cfg.Seeds) > 0 && !e.isDiscovered() {
				e.startDiscovery(ctx)
			}
			e.refreshAll(ctx)
		case <-e.wake:
			e.refreshAll(ctx)
		case <-disco.C:
			if len(e.cfg.Seeds) > 0 {
				e.startDiscovery(ctx)
			}
		}
	}
}

func (e *Exporter) startDiscovery(ctx context.Context) {
	e.mu.Lock()
	if e.discoFlight {
		e.mu.Unlock()
		return
	}
	e.discoFlight = true
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.discover(ctx)
	}()
}

// discover crawls from the seeds and merges what it found into the targets.
func (e *Exporter) discover(ctx context.Context) {
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DiscoveryTimeout)
	topo, err := dbstate.Discover(dctx, e.c, e.cfg.Seeds, dbstate.DiscoverOptions{MaxInstances: e.cfg.MaxInstances, Parallel: e.cfg.Parallel})
	cancel()
	took := time.Since(start)
	e.mu.Lock()
	e.discoFlight = false
	e.discoTook = took
	if err != nil {
		e.mu.Unlock()
		if ctx.Err() == nil {
			e.discovery.WithLabelValues("failure").Inc()
			e.log.Warn("discovery failed", "err", err, "took", took)
		}
		return
	}
	now := time.Now()
	added, answered := 0, false
	for addr, in := range topo.Instances {
		if e.addTarget(addr, now) {
			added++
		}
		answered = answered || in.Error == ""
	}
	if !answered {
		// No seed answered: the topology is unknown. The seeds are watched (their dbstate_up is 0), the
		// exporter is not ready, and discovery is retried every refresh interval until one answers.
		e.discovery.WithLabelValues("failure").Inc()
		e.mu.Unlock()
		e.log.Warn("discovery failed: no seed answers", "seeds", len(e.cfg.Seeds), "took", took)
		if added > 0 {
			e.poke()
		}
		return
	}
	e.discovery.WithLabelValues("success").Inc()
	e.discoOK = now
	e.forget(now)
	e.discovered = true
	e.mu.Unlock()
	e.log.Debug("discovered", "instances", len(topo.Instances), "new", added, "took", took)
	if added > 0 {
		e.poke()
	}
}

// addTarget adds or refreshes a target (e.mu held). It reports whether the target is new.
func (e *Exporter) addTarget(addr string, seen time.Time) bool {
	if t, ok := e.targets[addr]; ok {
		if !seen.IsZero() {
			t.lastSeen = seen
		}
		return false
	}
	if len(e.targets) >= e.cfg.MaxInstances {
		e.log.Warn("instance not watched: more than the bound", "instance", addr, "max_instances", e.cfg.MaxInstances)
		return false
	}
	if seen.IsZero() {
		seen = time.Now()
	}
	e.targets[addr] = &target{addr: addr, lastSeen: seen}
	return true
}

// forget drops targets that discovery has not found and that have not answered for ForgetAfter (e.mu held).
func (e *Exporter) forget(now time.Time) {
	if len(e.cfg.Instances) > 0 {
		return
	}
	for a, t := range e.targets {
		if !t.up && now.Sub(t.lastSeen) > e.cfg.ForgetAfter && now.Sub(t.lastOK) > e.cfg.ForgetAfter {
			delete(e.targets, a)
			e.refreshes.DeleteLabelValues(a, "success")
			e.refreshes.DeleteLabelValues(a, "failure")
			e.grantErrs.DeleteLabelValues(a)
		}
	}
}

// refreshAll starts a read of every target that has none in flight.
func (e *Exporter) refreshAll(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	e.mu.Lock()
	var names []string
	if e.desired != nil {
		names = e.desired.Names()
	}
	grants, gen := e.grants, e.grantsGen
	var start []*target
	for _, t := range e.targets {
		if !t.inFlight {
			t.inFlight = true
			start = append(start, t)
		}
	}
	e.mu.Unlock()
	for _, t := range start {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			select {
			case e.sem <- struct{}{}:
			case <-ctx.Done():
				e.mu.Lock()
				t.inFlight = false
				e.mu.Unlock()
				return
			}
			defer func() { <-e.sem }()
			e.refresh(ctx, t, names, grants, gen)
		}()
	}
}

// refresh reads one instance, bounded by InstanceTimeout, and stores the result.
func (e *Exporter) refresh(ctx context.Context, t *target, names []string, grants *desiredGrants, gen uint64) {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, e.cfg.InstanceTimeout)
	defer cancel()
	in := e.c.ReadInstance(rctx, t.addr)
	var vars map[string]dbstate.SysVar
	err := error(nil)
	if in.Error != "" {
		err = errors.New(in.Error)
	} else if len(names) > 0 {
		db, derr := e.c.DB(t.addr)
		if derr == nil {
			vars, derr = dbstate.ReadVariables(rctx, db, names)
		}
		err = derr
	}
	drift, gerr := -1, error(nil)
	if err == nil && grants != nil {
		drift, gerr = e.grantsDrift(rctx, t.addr, grants)
	}
	took := time.Since(start)
	if ctx.Err() != nil {
		e.mu.Lock()
		t.inFlight = false
		e.mu.Unlock()
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t.inFlight, t.read, t.lastRefresh, t.took = false, true, time.Now(), took
	if err != nil {
		t.up, t.err = false, err.Error()
		e.refreshes.WithLabelValues(t.addr, "failure").Inc()
		e.log.Debug("instance read failed", "instance", t.addr, "err", err, "took", took)
		return
	}
	t.up, t.err, t.last, t.vars, t.lastOK = true, "", in, vars, t.lastRefresh
	t.varNames = map[string]bool{}
	for _, n := range names {
		t.varNames[n] = true
	}
	switch {
	case grants == nil:
		t.grantsGen, t.grantsLogged = 0, ""
	case gerr != nil:
		t.grantsGen = 0 // stale: nothing is exported
		e.grantErrs.WithLabelValues(t.addr).Inc()
		kind := "other"
		if dbstate.IsDenied(gerr) {
			kind = "denied"
		}
		if t.grantsLogged != kind {
			t.grantsLogged = kind
			if kind == "denied" {
				e.log.Warn("grants drift not exported: the exporter's account lacks SELECT on mysql.* (GRANT SELECT ON mysql.* TO it)",
					"instance", t.addr, "err", gerr)
			} else {
				e.log.Warn("grants drift not exported: grants read or diff failed", "instance", t.addr, "err", gerr)
			}
		} else {
			e.log.Debug("grants read failed", "instance", t.addr, "err", gerr)
		}
	default:
		t.grantsDrift, t.grantsGen, t.grantsLogged = drift, gen, ""
	}
	e.refreshes.WithLabelValues(t.addr, "success").Inc()
	// The master and replicas an instance names are watched too, so new instances appear before the next discovery.
	if len(e.cfg.Instances) == 0 {
		added := false
		if in.Master != "" {
			added = e.addTarget(in.Master, time.Time{}) || added
		}
		for _, r := range in.Replicas {
			added = e.addTarget(r, time.Time{}) || added
		}
		if added {
			e.poke()
		}
	}
}

// grantsDrift reads the instance's grants and counts the distinct accounts the diff against the desired state
// would change. The diff's statements (which hold password hashes) go nowhere.
func (e *Exporter) grantsDrift(ctx context.Context, addr string, grants *desiredGrants) (int, error) {
	db, err := e.c.DB(addr)
	if err != nil {
		return 0, err
	}
	actual, err := dbstate.ReadGrants(ctx, db)
	if err != nil {
		return 0, err
	}
	want, err := grants.normalize(actual.Privileges)
	if err != nil {
		return 0, err
	}
	d, err := dbstate.DiffGrants(want, actual)
	if err != nil {
		return 0, err
	}
	return DriftAccounts(d), nil
}

// DriftAccounts is the number of distinct accounts (users and roles) a grants diff changes.
func DriftAccounts(d *dbstate.GrantDiff) int {
	seen := map[dbstate.AccountKey]bool{}
	for _, c := range d.Changes {
		seen[c.Account] = true
	}
	return len(seen)
}

type descs struct {
	up, info, role, readOnly, ioRunning, sqlRunning, behind, delay, lag, ioErrno, sqlErrno, writable, errant,
	drift, invalid, grantsDrift, lastRefresh, refreshDur, discoDur, discoLast, instances, desiredVars, build *prometheus.Desc
}

func newDescs() descs {
	i := []string{"instance"}
	d := prometheus.NewDesc
	return descs{
		up:       d("dbstate_up", "1 when the instance's last read succeeded within the timeout, 0 when it failed or timed out.", i, nil),
		info:     d("dbstate_instance_info", "The instance's cluster (the root primary of its replication tree) and server version, from its last successful read; always 1.", []string{"instance", "cluster", "version"}, nil),
		role:     d("dbstate_instance_role", "1 for the instance's role: primary (replicates from no one) or replica.", []string{"instance", "role"}, nil),
		readOnly: d("dbstate_read_only", "The instance's read_only: 1 read-only, 0 writable.", i, nil),
		ioRunning: d("dbstate_replication_io_running",
			"1 when the replica's IO thread runs (Slave_IO_Running=Yes), 0 otherwise (No, Connecting, Preparing).", i, nil),
		sqlRunning: d("dbstate_replication_sql_running", "1 when the replica's SQL thread runs, 0 otherwise.", i, nil),
		behind: d("dbstate_replication_seconds_behind_master",
			"Seconds_Behind_Master as the replica reports it, a configured MASTER_DELAY included; absent while it is NULL.", i, nil),
		delay: d("dbstate_replication_sql_delay_seconds", "The replica's configured MASTER_DELAY (SQL_Delay).", i, nil),
		lag: d("dbstate_replication_lag_seconds",
			"How far the replica is behind beyond its configured delay: Seconds_Behind_Master minus SQL_Delay, at least 0; absent while Seconds_Behind_Master is NULL.", i, nil),
		ioErrno:  d("dbstate_replication_last_io_errno", "Last_IO_Errno of the replica (0: none).", i, nil),
		sqlErrno: d("dbstate_replication_last_sql_errno", "Last_SQL_Errno of the replica (0: none).", i, nil),
		writable: d("dbstate_writable_instances", "Instances of the cluster that answer and are writable (read_only=0); more than 1 is a split.", []string{"cluster"}, nil),
		errant: d("dbstate_errant_gtid",
			"GTIDs (one per domain) the instance logged that its master does not have; absent while the master's state is unknown.", i, nil),
		drift: d("dbstate_variable_drift",
			"1 when the variable's observed value differs from the desired one (both normalised), 0 when they agree; only variables the desired file names.", []string{"instance", "variable"}, nil),
		invalid: d("dbstate_variable_invalid",
			"1 when the desired file names a variable the instance does not know, cannot set at runtime, or whose value it does not allow.", []string{"instance", "variable"}, nil),
		grantsDrift: d("dbstate_grants_drift_accounts",
			"Accounts (users and roles) that dbstate grants apply would change on the instance to match the desired-grants file, 0 when in line; absent while the grants read fails.", i, nil),
		lastRefresh: d("dbstate_instance_last_refresh_timestamp_seconds", "When the exporter's last read of the instance ended (successful or not).", i, nil),
		refreshDur:  d("dbstate_instance_refresh_duration_seconds", "How long the exporter's last read of the instance took.", i, nil),
		discoDur:    d("dbstate_discovery_duration_seconds", "How long the last topology discovery took.", nil, nil),
		discoLast:   d("dbstate_discovery_last_success_timestamp_seconds", "When the last successful discovery ended.", nil, nil),
		instances:   d("dbstate_instances", "Instances the exporter watches.", nil, nil),
		desiredVars: d("dbstate_desired_variables", "Variables named in the desired-variables file (0 without one).", nil, nil),
		build:       d("dbstate_exporter_build_info", "Build information; always 1.", []string{"version", "goversion"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	d := e.descs
	for _, x := range []*prometheus.Desc{d.up, d.info, d.role, d.readOnly, d.ioRunning, d.sqlRunning, d.behind, d.delay,
		d.lag, d.ioErrno, d.sqlErrno, d.writable, d.errant, d.drift, d.invalid, d.grantsDrift, d.lastRefresh, d.refreshDur, d.discoDur,
		d.discoLast, d.instances, d.desiredVars, d.build} {
		ch <- x
	}
}

// cluster is the root of addr's tree through the last known Master links.
func (e *Exporter) cluster(addr string) string {
	seen := map[string]bool{}
	cur := addr
	for !seen[cur] {
		seen[cur] = true
		t, ok := e.targets[cur]
		if !ok || t.last == nil || t.last.Master == "" {
			return cur
		}
		if _, known := e.targets[t.last.Master]; !known {
			return t.last.Master
		}
		cur = t.last.Master
	}
	return cur // a loop: any member names it
}

// boundLabel keeps a label value the server chose (its version string) to 64 bytes of valid UTF-8.
func boundLabel(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "")
	}
	return s
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector from the cache: it does no I/O.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.descs
	g := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	g(d.build, 1, e.cfg.Version, runtime.Version())
	g(d.instances, float64(len(e.targets)))
	if e.desired != nil {
		g(d.desiredVars, float64(len(e.desired.Names())))
	} else {
		g(d.desiredVars, 0)
	}
	if e.discoTook > 0 {
		g(d.discoDur, e.discoTook.Seconds())
	}
	if !e.discoOK.IsZero() {
		g(d.discoLast, float64(e.discoOK.UnixNano())/1e9)
	}
	addrs := make([]string, 0, len(e.targets))
	for a := range e.targets {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	writable := map[string]int{}
	for _, a := range addrs {
		t := e.targets[a]
		if !t.read {
			continue
		}
		g(d.up, boolGauge(t.up), a)
		g(d.lastRefresh, float64(t.lastRefresh.UnixNano())/1e9, a)
		g(d.refreshDur, t.took.Seconds(), a)
		if t.last == nil {
			continue
		}
		cl := e.cluster(a)
		if _, ok := writable[cl]; !ok {
			writable[cl] = 0
		}
		g(d.info, 1, a, cl, boundLabel(t.last.Version))
		if !t.up {
			continue // the rest is the current state: not known while down
		}
		in := t.last
		if !in.ReadOnly {
			writable[cl]++
		}
		g(d.readOnly, boolGauge(in.ReadOnly), a)
		role := "primary"
		if r := in.Replication; r != nil {
			role = "replica"
			g(d.ioRunning, boolGauge(r.IORunning == "Yes"), a)
			g(d.sqlRunning, boolGauge(r.SQLRunning == "Yes"), a)
			g(d.delay, float64(r.SQLDelay), a)
			if r.SecondsBehind != nil {
				g(d.behind, float64(*r.SecondsBehind), a)
				g(d.lag, float64(max(0, *r.SecondsBehind-r.SQLDelay)), a)
			}
			g(d.ioErrno, float64(r.LastIOErrno), a)
			g(d.sqlErrno, float64(r.LastSQLErrno), a)
			if m, ok := e.targets[in.Master]; ok && m.up && m.last != nil {
				g(d.errant, float64(len(dbstate.Errant(in.GTIDBinlogPos, in.ServerID, m.last.GTIDCurrentPos))), a)
			}
		}
		g(d.role, 1, a, role)
		if e.desired != nil {
			e.collectDrift(ch, a, t)
		}
		if e.grants != nil && t.grantsGen == e.grantsGen {
			g(d.grantsDrift, float64(t.grantsDrift), a)
		}
	}
	for cl, n := range writable {
		g(d.writable, float64(n), cl)
	}
}

// collectDrift compares the desired variables of one instance with its last read, normalised and validated as
// dbstate vars plan does (dbstate.DiffVars).
func (e *Exporter) collectDrift(ch chan<- prometheus.Metric, addr string, t *target) {
	if t.vars == nil {
		return
	}
	want := e.desired.For(addr)
	for n := range want {
		if !t.varNames[n] {
			delete(want, n) // named by a reload after this read: not known yet
		}
	}
	changes, issues := dbstate.DiffVars(addr, want, t.vars)
	for _, c := range changes {
		ch <- prometheus.MustNewConstMetric(e.descs.drift, prometheus.GaugeValue, boolGauge(c.Changed), addr, c.Variable)
	}
	for _, is := range issues {
		ch <- prometheus.MustNewConstMetric(e.descs.invalid, prometheus.GaugeValue, 1, addr, is.Variable)
	}
}
