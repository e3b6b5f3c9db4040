package schemasync

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync/observation"
)

// Repository is the configuration the state needs: a repository's name and its endpoints' base URLs.
type Repository struct {
	Name      string
	Endpoints []string
}

// State is the pure core of schemasync. It holds the latest observation of each (endpoint, observer) and
// answers, for each (repository, title), the safe version and the dirty and stale flags. It does no I/O and
// reads no clock: the caller passes observations and the current time. It is not safe for concurrent use.
//
// The held versions change only in Observe, so the answers depend only on the observations and the times at
// which they were applied, never on how often View is called; View only reads.
//
// The decision rules, per repository and title:
//   - An observation is fresh while now - At <= maxStaleness.
//   - An endpoint is known when at least one observer's latest observation of it is fresh and succeeded.
//     A version is present on a known endpoint only if every such observation includes it. Failed and stale
//     observations say nothing about presence: they neither add nor remove a version.
//   - stale: some endpoint is unknown.
//   - dirty: the known endpoints (or the observers of one endpoint) disagree on the title's version set, or
//     some known endpoint lacks the title that another has.
//   - safe version, when every endpoint is known: the highest version present on all of them.
//   - safe version, when some endpoint is unknown: it never advances. It is the held version if every known
//     endpoint still has it; otherwise the highest version below it that every known endpoint has (a rollback
//     seen on a known endpoint lowers it at once); none when nothing was held.
//   - held version: the safe version as of the last observation applied to the repository. Observe records
//     it twice, at the time it is given: just before recording the observation (when some observation has
//     turned stale since the last time), and just after.
type State struct {
	maxStaleness time.Duration
	repos        []Repository
	endpointRepo map[string]string
	latest       map[obsKey]*Observation
	observers    map[string]int // endpoint -> observers in latest
	held         map[schemaKey]Version
	heldUntil    map[string]time.Time // repository -> when time alone can next change its safe versions (zero: never)
	lastOK       map[string]time.Time // endpoint -> At of its latest successful observation, kept after Forget
}

type obsKey struct{ endpoint, observer string }

// MaxObserversPerEndpoint bounds the observers whose observations of one endpoint the state holds: cluster
// members, normally a handful. Observations from more are ignored until old ones are forgotten.
const MaxObserversPerEndpoint = 256

// maxTitleBytes bounds a title: the scanner fails an endpoint whose directory paths are longer (PATH_MAX,
// which no real repository reaches); Observe rejects an observation (from a peer) that names a longer title,
// or any title no scan produces, and AdoptHeld ignores a held version of one.
const maxTitleBytes = observation.MaxTitleBytes

type schemaKey struct{ repo, title string }

// NewState returns a state for the given repositories. maxStaleness must be positive.
func NewState(repos []Repository, maxStaleness time.Duration) *State {
	s := &State{
		maxStaleness: maxStaleness,
		latest:       map[obsKey]*Observation{},
		observers:    map[string]int{},
		held:         map[schemaKey]Version{},
		heldUntil:    map[string]time.Time{},
		lastOK:       map[string]time.Time{},
	}
	s.SetRepositories(repos, maxStaleness)
	return s
}

// SetRepositories replaces the configuration (a config reload). Observations and held versions of endpoints
// and repositories that are no longer configured are dropped.
func (s *State) SetRepositories(repos []Repository, maxStaleness time.Duration) {
	s.maxStaleness = maxStaleness
	s.repos = make([]Repository, len(repos))
	s.endpointRepo = map[string]string{}
	for i, r := range repos {
		s.repos[i] = Repository{Name: r.Name, Endpoints: append([]string(nil), r.Endpoints...)}
		for _, e := range r.Endpoints {
			s.endpointRepo[e] = r.Name
		}
	}
	for k, o := range s.latest {
		if s.endpointRepo[k.endpoint] != o.Repository {
			s.drop(k)
		}
	}
	names := map[string]bool{}
	for _, r := range repos {
		names[r.Name] = true
	}
	for k := range s.held {
		if !names[k.repo] {
			delete(s.held, k)
		}
	}
	clear(s.heldUntil) // endpoints or max_staleness changed: bring the held versions up to date at the next Observe
	for e := range s.lastOK {
		if _, ok := s.endpointRepo[e]; !ok {
			delete(s.lastOK, e)
		}
	}
}

// Observe records o, applied at now, if it is newer (by Seq) than what the state holds from the same observer
// of the same endpoint (or, with the same Seq, if its outcome sorts first: see outcomeFirst), and updates the
// repository's held versions (see State). It reports whether o was recorded. Observations of endpoints that are not configured, that name the wrong repository, or that name a
// title no scan would (see observation.ValidTitle) are ignored.
func (s *State) Observe(o Observation, now time.Time) bool {
	if o.Observer == "" || s.endpointRepo[o.Endpoint] != o.Repository || o.Repository == "" {
		return false
	}
	k := obsKey{o.Endpoint, o.Observer}
	old, hadOld := s.latest[k]
	if hadOld && (old.Seq > o.Seq || old.Seq == o.Seq && !outcomeFirst(&o, old)) {
		return false
	}
	if !hadOld && s.observers[o.Endpoint] >= MaxObserversPerEndpoint {
		return false // a peer inventing observer names cannot grow the state without bound
	}
	if o.OK() && (!hadOld || o.Hash == "" || o.Hash != old.Hash) && observation.CheckContent(o.Schemas) != nil {
		return false // content from a peer; the scanner fails its own endpoint instead
	}
	repo := s.repo(o.Repository)
	if until, ok := s.heldUntil[repo.Name]; !ok || !until.IsZero() && !now.Before(until) {
		s.updateHeld(repo, now) // what a view just before o would have answered, had time alone changed it
	}
	cp := o
	s.latest[k] = &cp
	if !hadOld {
		s.observers[o.Endpoint]++
	}
	if o.OK() && o.At.After(s.lastOK[o.Endpoint]) {
		s.lastOK[o.Endpoint] = o.At
	}
	// Most observations only refresh a fresh one with the same outcome (the same content, or a failure
	// again). They change no endpoint's state, so no safe version: skip the recomputation. heldUntil is then
	// not extended, which only makes a later Observe recompute sooner.
	sameOutcome := hadOld && old.OK() == o.OK() && (!o.OK() || o.Hash != "" && old.Hash == o.Hash)
	if sameOutcome && now.Sub(old.At) <= s.maxStaleness && now.Sub(o.At) <= s.maxStaleness {
		return true
	}
	s.updateHeld(repo, now)
	return true
}

// outcomeFirst reports whether o's outcome sorts before old's. Two observations of one observer and endpoint
// with one Seq come only from a forger or a bug; every node keeping the one that sorts first keeps them alike,
// whatever order they arrived in.
func outcomeFirst(o, old *Observation) bool {
	return o.Hash+"\x00"+o.Err < old.Hash+"\x00"+old.Err
}

// HeldWhileStale returns the held versions of the repositories that have an unknown endpoint at now: the only
// ones another node cannot compute from the observations alone.
func (s *State) HeldWhileStale(now time.Time) []HeldVersion {
	var out []HeldVersion
	for i := range s.repos {
		repo := &s.repos[i]
		var until time.Time
		if _, allKnown, _ := s.endpointStates(repo, now, s.byEndpoint(repo.Name), &until, false); allKnown {
			continue
		}
		for k, v := range s.held {
			if k.repo == repo.Name {
				out = append(out, HeldVersion{Repository: k.repo, Title: k.title, Version: v})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Repository != out[j].Repository {
			return out[i].Repository < out[j].Repository
		}
		return out[i].Title < out[j].Title
	})
	return out
}

// EndpointSetHash names a repository's set of endpoints, whatever their order: two nodes adopt each other's
// held versions of a repository only when its hashes are equal.
func EndpointSetHash(endpoints []string) string {
	sorted := append([]string(nil), endpoints...)
	sort.Strings(sorted)
	h := sha256.New()
	for _, e := range sorted {
		h.Write([]byte(e))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// EndpointSets returns EndpointSetHash of every configured repository's endpoints, by repository name.
func (s *State) EndpointSets() map[string]string {
	out := make(map[string]string, len(s.repos))
	for _, r := range s.repos {
		out[r.Name] = EndpointSetHash(r.Endpoints)
	}
	return out
}

// AdoptHeld takes held versions from another node, at now, for the (repository, title)s this state holds none
// for: a node that restarts while an endpoint is down has observations but no history, and would otherwise
// answer "no safe version" where its peers answer the version they held. Each adopted version is then lowered,
// like any held version, by what this state's known endpoints serve. It reports whether anything was adopted.
// The peer's held version carries the same guarantee as the peer's own answer: every endpoint was confirmed,
// by a fresh observation, to serve it before the endpoint became unknown. That holds here only for the same
// endpoints: sets gives the peer's EndpointSetHash per repository, and a repository whose endpoint set
// differs from this node's (a configuration rollout half done) adopts nothing.
func (s *State) AdoptHeld(hv []HeldVersion, sets map[string]string, now time.Time) bool {
	adopted := map[string]bool{}
	equal := map[string]bool{}
	for _, r := range s.repos {
		equal[r.Name] = sets[r.Name] == EndpointSetHash(r.Endpoints)
	}
	for _, h := range hv {
		k := schemaKey{h.Repository, h.Title}
		if !equal[h.Repository] || !observation.ValidTitle(h.Title) {
			continue
		}
		if _, ok := s.held[k]; ok {
			continue
		}
		s.held[k] = h.Version
		adopted[h.Repository] = true
	}
	for name := range adopted {
		s.updateHeld(s.repo(name), now)
	}
	return len(adopted) > 0
}

func (s *State) repo(name string) *Repository {
	for i := range s.repos {
		if s.repos[i].Name == name {
			return &s.repos[i]
		}
	}
	return nil
}

// updateHeld records, for every title of repo, the safe version at now as the held version.
func (s *State) updateHeld(repo *Repository, now time.Time) {
	byEndpoint := s.byEndpoint(repo.Name)
	var validUntil time.Time
	eps, allKnown, titles := s.endpointStates(repo, now, byEndpoint, &validUntil, false)
	for title := range titles {
		common, anyKnown := commonVersions(title, eps)
		k := schemaKey{repo.Name, title}
		held, hasHeld := s.held[k]
		if safe := safeVersion(common, anyKnown, allKnown, held, hasHeld); safe != nil {
			s.held[k] = *safe
		} else {
			delete(s.held, k)
		}
	}
	s.heldUntil[repo.Name] = validUntil
}

// byEndpoint groups the observations of repository repo ("" for every repository) by endpoint.
func (s *State) byEndpoint(repo string) map[string][]*Observation {
	out := map[string][]*Observation{}
	for _, o := range s.latest {
		if repo == "" || o.Repository == repo {
			out[o.Endpoint] = append(out[o.Endpoint], o)
		}
	}
	return out
}

// Observations returns the latest observation of every (endpoint, observer), sorted by endpoint then observer.
// The slice is new; the observations are shared and must not be modified.
func (s *State) Observations() []*Observation {
	out := make([]*Observation, 0, len(s.latest))
	for _, o := range s.latest {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Endpoint != out[j].Endpoint {
			return out[i].Endpoint < out[j].Endpoint
		}
		return out[i].Observer < out[j].Observer
	})
	return out
}

// Forget drops observations whose age exceeds keep: those of nodes that are long gone.
func (s *State) Forget(now time.Time, keep time.Duration) {
	for k, o := range s.latest {
		if now.Sub(o.At) > keep {
			s.drop(k)
		}
	}
}

func (s *State) drop(k obsKey) {
	delete(s.latest, k)
	if s.observers[k.endpoint]--; s.observers[k.endpoint] <= 0 {
		delete(s.observers, k.endpoint)
	}
}

// View is what the state answers at one instant.
type View struct {
	// At is the instant the view answers for.
	At time.Time `json:"generated_at"`
	// ValidUntil is the first instant at which the view can change by the passage of time alone (an
	// observation turns stale). Zero when no observation can turn stale.
	ValidUntil time.Time      `json:"-"`
	Schemas    []SchemaView   `json:"schemas"`
	Endpoints  []EndpointView `json:"endpoints"`
	index      map[schemaKey]int
}

// SchemaView is the answer for one (repository, title).
type SchemaView struct {
	Repository string `json:"repository"`
	Title      string `json:"title"`
	// GeneratedAt is the instant the answer is for (the view's At): ages in it are as of then.
	GeneratedAt time.Time `json:"generated_at"`
	// SafeVersion is the highest version present on every endpoint; nil when there is none.
	SafeVersion *Version `json:"safe_version"`
	// LatestVersion is the highest version present on any known endpoint.
	LatestVersion *Version `json:"latest_version"`
	Dirty         bool     `json:"dirty"`
	Stale         bool     `json:"stale"`
	// Reasons says why the schema is dirty or stale, one short sentence each.
	Reasons   []string         `json:"reasons,omitempty"`
	Endpoints []SchemaEndpoint `json:"endpoints"`
}

// Endpoint states.
const (
	EndpointOK      = "ok"
	EndpointUnknown = "unknown"
)

// SchemaEndpoint is one endpoint's part of a SchemaView.
type SchemaEndpoint struct {
	URL   string `json:"url"`
	State string `json:"state"`
	// Reason says why the endpoint is unknown.
	Reason string `json:"reason,omitempty"`
	// Versions are the versions present on the endpoint (empty when unknown or when it lacks the title).
	Versions []Version `json:"versions"`
	Latest   *Version  `json:"latest"`
	// LastScan is when the freshest fresh successful scan of the endpoint started, by this node's clock; nil
	// while the endpoint is unknown.
	LastScan *time.Time `json:"last_scan"`
	// Observers are the observers of the endpoint, without their errors (Reason says why the endpoint is
	// unknown; the View's Endpoints list every observer with its error): at most MaxSchemaObservers of them,
	// the fresh successful ones first, in name order. ObserversOmitted counts the others.
	Observers        []ObserverView `json:"observers"`
	ObserversOmitted int            `json:"observers_omitted,omitempty"`
}

// MaxSchemaObservers bounds the observers each endpoint of a schema answer lists, so that an answer, repeated
// for every schema in /v1/state, does not grow with the observers (up to MaxObserversPerEndpoint, which a peer
// holding the gossip key can fill) or their errors.
const MaxSchemaObservers = 16

// ObserverView is one observer's latest observation of an endpoint.
type ObserverView struct {
	Node       string  `json:"node"`
	OK         bool    `json:"ok"`
	Fresh      bool    `json:"fresh"`
	AgeSeconds float64 `json:"age_seconds"`
	Error      string  `json:"error,omitempty"`
}

// EndpointView is one endpoint's status, independent of schemas.
type EndpointView struct {
	Repository string `json:"repository"`
	URL        string `json:"url"`
	State      string `json:"state"`
	// Reason says why the endpoint is unknown or, while it is ok, what a fresh scan saw but did not count
	// (listed versions whose files refuse a GET).
	Reason   string     `json:"reason,omitempty"`
	LastScan *time.Time `json:"last_scan"`
	// LastSuccessfulScan is when the latest successful scan of the endpoint by any node started, fresh or
	// not; nil until one succeeds.
	LastSuccessfulScan *time.Time     `json:"last_successful_scan"`
	Schemas            int            `json:"schemas"`
	Observers          []ObserverView `json:"observers"`
}

// Schema returns the view of one (repository, title).
func (v *View) Schema(repo, title string) (*SchemaView, bool) {
	i, ok := v.index[schemaKey{repo, title}]
	if !ok {
		return nil, false
	}
	return &v.Schemas[i], true
}

// Consistent reports whether no schema is dirty or stale and no endpoint is unknown.
func (v *View) Consistent() bool {
	for _, e := range v.Endpoints {
		if e.State != EndpointOK {
			return false
		}
	}
	for _, s := range v.Schemas {
		if s.Dirty || s.Stale {
			return false
		}
	}
	return true
}

// endpointState is the per-endpoint part of a view computation.
type endpointState struct {
	url       string
	known     bool
	reason    string
	distinct  []*Observation // the fresh successful observations, one per distinct content (Hash)
	lastScan  *time.Time
	observers []ObserverView
	// brief is observers as a schema answer lists them (see SchemaEndpoint.Observers); omitted counts the rest.
	brief   []ObserverView
	omitted int
}

// View computes the answer at now. It only reads the state.
func (s *State) View(now time.Time) *View {
	v := &View{At: now, index: map[schemaKey]int{}}
	byEndpoint := s.byEndpoint("")
	for i := range s.repos {
		repo := &s.repos[i]
		eps, allKnown, titles := s.endpointStates(repo, now, byEndpoint, &v.ValidUntil, true)
		for _, es := range eps {
			ev := EndpointView{Repository: repo.Name, URL: es.url, State: EndpointOK, Reason: es.reason,
				LastScan: es.lastScan, Observers: es.observers}
			if t, ok := s.lastOK[es.url]; ok {
				ev.LastSuccessfulScan = &t
			}
			if !es.known {
				ev.State = EndpointUnknown
			} else {
				ev.Schemas = len(intersectTitles(es.distinct))
			}
			v.Endpoints = append(v.Endpoints, ev)
		}
		names := make([]string, 0, len(titles))
		for t := range titles {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, title := range names {
			sv, keep := s.schemaView(repo.Name, title, eps, allKnown)
			if !keep {
				continue
			}
			sv.GeneratedAt = now
			v.index[schemaKey{repo.Name, title}] = len(v.Schemas)
			v.Schemas = append(v.Schemas, sv)
		}
	}
	return v
}

// endpointStates evaluates repo's endpoints at now: which are known, on which observations, and why the others
// are not. It also returns every title that any observation of the repository names or that has a held
// version, and lowers *validUntil to the first instant after now at which an observation turns stale. With
// views, it fills in the observer views and reasons that a View shows.
func (s *State) endpointStates(repo *Repository, now time.Time, byEndpoint map[string][]*Observation,
	validUntil *time.Time, views bool) (eps []*endpointState, allKnown bool, titles map[string]bool) {
	eps = make([]*endpointState, len(repo.Endpoints))
	titles = map[string]bool{}
	listed := map[string]bool{} // content hashes whose titles are in titles: observers mostly see the same
	allKnown = true
	for i, url := range repo.Endpoints {
		obs := byEndpoint[url]
		sort.Slice(obs, func(a, b int) bool { return obs[a].Observer < obs[b].Observer })
		es := &endpointState{url: url}
		if views {
			es.observers = []ObserverView{}
		}
		var failed, staleOK, warned *Observation
		seen := map[string]bool{}
		for _, o := range obs {
			fresh := now.Sub(o.At) <= s.maxStaleness
			if exp := o.At.Add(s.maxStaleness + time.Nanosecond); fresh && exp.After(now) &&
				(validUntil.IsZero() || exp.Before(*validUntil)) {
				*validUntil = exp
			}
			if views {
				es.observers = append(es.observers, ObserverView{
					Node: o.Observer, OK: o.OK(), Fresh: fresh, AgeSeconds: now.Sub(o.At).Seconds(),
					Error: safetext.Escape(o.Err),
				})
			}
			if o.Hash == "" || !listed[o.Hash] {
				for t := range o.Schemas {
					titles[t] = true
				}
				listed[o.Hash] = o.Hash != ""
			}
			switch {
			case o.OK() && fresh:
				if o.Warning != "" && warned == nil {
					warned = o
				}
				if o.Hash == "" || !seen[o.Hash] {
					es.distinct = append(es.distinct, o)
					seen[o.Hash] = o.Hash != ""
				}
				if es.lastScan == nil || o.At.After(*es.lastScan) {
					at := o.At
					es.lastScan = &at
				}
			case !o.OK() && fresh:
				failed = o
			case o.OK():
				if staleOK == nil || o.At.After(staleOK.At) {
					staleOK = o
				}
			}
		}
		es.known = len(es.distinct) > 0
		if !es.known {
			allKnown = false
		}
		if views {
			es.brief, es.omitted = briefObservers(es.observers)
			switch {
			// A peer's error and name are escaped here too: gossip bounds them, and JSON leaves DEL and
			// format characters (U+202E) as they are.
			case es.known && warned != nil:
				es.reason = safetext.Escape(fmt.Sprintf("scan by %s: %s", warned.Observer, warned.Warning))
			case es.known:
			case failed != nil:
				es.reason = safetext.Escape(fmt.Sprintf("scan by %s failed: %s", failed.Observer, failed.Err))
			case staleOK != nil:
				es.reason = fmt.Sprintf("stale: last successful scan %s ago, more than max_staleness %s",
					now.Sub(staleOK.At).Round(time.Second), s.maxStaleness)
			case len(obs) > 0:
				es.reason = "stale: no successful scan within max_staleness"
			default:
				es.reason = "not scanned yet"
			}
		}
		eps[i] = es
	}
	for k := range s.held {
		if k.repo == repo.Name {
			titles[k.title] = true
		}
	}
	return eps, allKnown, titles
}

// briefObservers returns at most MaxSchemaObservers of all (sorted by name), without their errors: the fresh
// successful ones first, the others after, each kept in name order; and how many it left out.
func briefObservers(all []ObserverView) ([]ObserverView, int) {
	keep := make([]bool, len(all))
	n := 0
	for _, first := range []bool{true, false} {
		for i, o := range all {
			if n < MaxSchemaObservers && !keep[i] && (o.OK && o.Fresh) == first {
				keep[i] = true
				n++
			}
		}
	}
	out := make([]ObserverView, 0, n)
	for i, o := range all {
		if keep[i] {
			o.Error = ""
			out = append(out, o)
		}
	}
	return out, len(all) - n
}

func intersectTitles(obs []*Observation) map[string]bool {
	out := map[string]bool{}
	for t := range obs[0].Schemas {
		in := true
		for _, o := range obs[1:] {
			if _, ok := o.Schemas[t]; !ok {
				in = false
				break
			}
		}
		if in {
			out[t] = true
		}
	}
	return out
}

// presentOn returns the versions of title present on a known endpoint: those in every fresh successful
// observation of it (none when some such observation lacks the title). disagree reports whether those
// observations differ on the title's versions.
func presentOn(es *endpointState, title string) (present []Version, disagree bool) {
	has := true
	for j, o := range es.distinct {
		vs, ok := o.Schemas[title]
		if !ok {
			has = false
		}
		if j == 0 {
			present = vs
			continue
		}
		if !equalVersions(present, vs) {
			disagree = true
		}
		present = intersect(present, vs)
	}
	if !has {
		present = nil
	}
	return present, disagree
}

// commonVersions returns the versions of title present on every known endpoint, and whether any endpoint is
// known.
func commonVersions(title string, eps []*endpointState) (common []Version, anyKnown bool) {
	for _, es := range eps {
		if !es.known {
			continue
		}
		present, _ := presentOn(es, title)
		if !anyKnown {
			common, anyKnown = present, true
		} else {
			common = intersect(common, present)
		}
	}
	return common, anyKnown
}

// safeVersion decides a title's safe version from the versions on every known endpoint and the held version
// (see State). It is the one rule that both View and the held-version update apply.
func safeVersion(common []Version, anyKnown, allKnown bool, held Version, hasHeld bool) *Version {
	if allKnown {
		if len(common) == 0 {
			return nil
		}
		top := common[len(common)-1]
		return &top
	}
	if !hasHeld {
		return nil
	}
	if !anyKnown { // no endpoint known: hold
		return &held
	}
	// A rollback seen on a known endpoint lowers it at once; the version coming back while an endpoint is
	// still unknown does not raise it again, which would be advancing while stale.
	for i := len(common) - 1; i >= 0; i-- {
		if common[i].Compare(held) <= 0 {
			c := common[i]
			return &c
		}
	}
	return nil
}

// schemaView decides one (repository, title). keep is false when the title has gone from every endpoint.
func (s *State) schemaView(repo, title string, eps []*endpointState, allKnown bool) (SchemaView, bool) {
	sv := SchemaView{Repository: repo, Title: title, Endpoints: make([]SchemaEndpoint, len(eps))}
	var first, common []Version // the first known endpoint's set, to detect disagreement; the versions on all
	firstSet, anyHas, anyLacks, differ := false, false, false, false
	var lacking, unknown []string
	for i, es := range eps {
		se := SchemaEndpoint{URL: es.url, State: EndpointOK, Versions: []Version{}, LastScan: es.lastScan,
			Observers: es.brief, ObserversOmitted: es.omitted}
		if !es.known {
			se.State, se.Reason = EndpointUnknown, es.reason
			unknown = append(unknown, es.url)
			sv.Endpoints[i] = se
			continue
		}
		present, disagree := presentOn(es, title)
		if disagree {
			sv.Dirty = true
			sv.Reasons = append(sv.Reasons, fmt.Sprintf("observers of %s disagree", es.url))
		}
		if len(present) > 0 {
			anyHas = true
			se.Versions = present
			l := present[len(present)-1]
			se.Latest = &l
			if sv.LatestVersion == nil || sv.LatestVersion.Less(l) {
				lv := l
				sv.LatestVersion = &lv
			}
		} else {
			anyLacks = true
			lacking = append(lacking, es.url)
		}
		if !firstSet {
			first, common, firstSet = present, present, true
		} else {
			differ = differ || !equalVersions(first, present)
			common = intersect(common, present)
		}
		sv.Endpoints[i] = se
	}
	if !anyHas && len(unknown) == 0 {
		return sv, false // gone from every endpoint
	}
	if anyHas && anyLacks {
		sv.Dirty = true
		sv.Reasons = append(sv.Reasons, "missing on "+strings.Join(lacking, ", "))
	} else if differ {
		sv.Dirty = true
		sv.Reasons = append(sv.Reasons, "versions differ between endpoints")
	}
	held, hasHeld := s.held[schemaKey{repo, title}]
	sv.SafeVersion = safeVersion(common, firstSet, allKnown, held, hasHeld)
	if !allKnown {
		sv.Stale = true
		sv.Reasons = append(sv.Reasons, "no fresh successful scan of "+strings.Join(unknown, ", ")+
			"; the safe version is held, not advanced")
	}
	return sv, true
}

func equalVersions(a, b []Version) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// intersect merges two ascending lists into their (new) ascending intersection.
func intersect(a, b []Version) []Version {
	out := make([]Version, 0, min(len(a), len(b)))
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch c := a[i].Compare(b[j]); {
		case c == 0:
			out = append(out, a[i])
			i++
			j++
		case c < 0:
			i++
		default:
			j++
		}
	}
	return out
}
