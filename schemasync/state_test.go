package schemasync

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"
)

// The state tests run on a fixed clock and never touch a socket.

const (
	stRepo     = "primary"
	stMaxStale = 2 * time.Minute
)

var stT0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// stEndpoints returns n endpoint URLs.
func stEndpoints(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("http://schema%d.test:8190/repositories/primary/jsonschema/", 1001+i)
	}
	return out
}

// sch builds an observation's Schemas from pairs: title, space-separated versions (in any order).
func sch(pairs ...string) map[string][]Version {
	out := map[string][]Version{}
	for i := 0; i+1 < len(pairs); i += 2 {
		vs := []Version{}
		for _, f := range strings.Fields(pairs[i+1]) {
			vs = append(vs, MustParseVersion(f))
		}
		sortVersions(vs)
		out[pairs[i]] = vs
	}
	return out
}

// truthSnap is what one observer's latest accepted observation of an endpoint said, recorded independently of
// the State, to check S1 against.
type truthSnap struct {
	at      time.Time
	ok      bool
	schemas map[string][]Version
}

// groundTruth is, per endpoint and observer, the latest observation the state accepted: what the endpoint was
// confirmed to serve, and when.
type groundTruth map[string]map[string]truthSnap

// checkS1 checks guarantee S1 against the ground truth: every safe version that is reported and not marked
// stale is in every endpoint's confirmed set, as shown by at least one fresh successful observation of the
// endpoint, and by every fresh successful observation of it.
func checkS1(t *testing.T, v *View, truth groundTruth, now time.Time) {
	t.Helper()
	for _, sv := range v.Schemas {
		if sv.SafeVersion == nil || sv.Stale {
			continue
		}
		safe := *sv.SafeVersion
		if len(sv.Endpoints) == 0 {
			t.Fatalf("S1: %s/%s safe %s with no endpoints", sv.Repository, sv.Title, safe)
		}
		for _, ep := range sv.Endpoints {
			confirmed := false
			for observer, snap := range truth[ep.URL] {
				if !snap.ok || now.Sub(snap.at) > stMaxStale {
					continue
				}
				confirmed = true
				if !containsVersion(snap.schemas[sv.Title], safe) {
					t.Fatalf("S1 violated at %s: %s/%s safe %s (not stale), but the fresh observation of %s by %s "+
						"holds %v", now.Sub(stT0), sv.Repository, sv.Title, safe, ep.URL, observer, snap.schemas[sv.Title])
				}
			}
			if !confirmed {
				t.Fatalf("S1 violated at %s: %s/%s safe %s (not stale), but %s has no fresh successful observation",
					now.Sub(stT0), sv.Repository, sv.Title, safe, ep.URL)
			}
			if ep.State != EndpointOK {
				t.Fatalf("%s/%s not stale but endpoint %s is %s", sv.Repository, sv.Title, ep.URL, ep.State)
			}
		}
	}
}

func containsVersion(vs []Version, v Version) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// stHarness feeds a State on a fixed clock, records the ground truth of what it accepted, and checks S1 and
// "never advances while stale" on every view.
type stHarness struct {
	t     *testing.T
	s     *State
	eps   []string
	now   time.Time
	truth groundTruth
	held  map[string]*Version // title -> the safe version of the last view with every endpoint known
	seq   uint64
}

func newHarness(t *testing.T, n int) *stHarness {
	eps := stEndpoints(n)
	return &stHarness{
		t: t, s: NewState([]Repository{{Name: stRepo, Endpoints: eps}}, stMaxStale), eps: eps, now: stT0,
		truth: groundTruth{}, held: map[string]*Version{},
	}
}

// observe applies o at the harness's now and, when the state records it, checks S1 on the view right after:
// every step is checked, not only those that a test looks at.
func (h *stHarness) observe(o Observation) bool {
	h.t.Helper()
	if !h.s.Observe(o, h.now) {
		return false
	}
	if h.truth[o.Endpoint] == nil {
		h.truth[o.Endpoint] = map[string]truthSnap{}
	}
	h.truth[o.Endpoint][o.Observer] = truthSnap{at: o.At, ok: o.OK(), schemas: o.Schemas}
	h.view()
	return true
}

// ok records a successful scan of endpoint i by observer, finished at the harness's now.
func (h *stHarness) ok(i int, observer string, schemas map[string][]Version) {
	h.t.Helper()
	h.seq++
	if !h.observe(Observation{Repository: stRepo, Endpoint: h.eps[i], Observer: observer,
		Seq: h.seq, At: h.now, Schemas: schemas}) {
		h.t.Fatalf("observation of endpoint %d by %s at %s was not recorded", i, observer, h.now.Sub(stT0))
	}
}

// fail records a failed scan of endpoint i by observer.
func (h *stHarness) fail(i int, observer, reason string) {
	h.t.Helper()
	h.seq++
	if !h.observe(Observation{Repository: stRepo, Endpoint: h.eps[i], Observer: observer,
		Seq: h.seq, At: h.now, Err: reason}) {
		h.t.Fatalf("failed observation of endpoint %d by %s was not recorded", i, observer)
	}
}

// okAll records a successful scan of every endpoint by "n1" with the same content.
func (h *stHarness) okAll(schemas map[string][]Version) {
	for i := range h.eps {
		h.ok(i, "n1", schemas)
	}
}

func (h *stHarness) advance(d time.Duration) { h.now = h.now.Add(d) }

// view computes the view at now and checks S1, and that no stale schema's safe version is above the safe
// version of the last view in which every endpoint was known (the held version): while some endpoint is
// unknown, the safe version never advances past what every endpoint was last confirmed to serve.
func (h *stHarness) view() *View {
	h.t.Helper()
	v := h.s.View(h.now)
	checkS1(h.t, v, h.truth, h.now)
	seen := map[string]bool{}
	for _, sv := range v.Schemas {
		seen[sv.Title] = true
		if !sv.Stale {
			h.held[sv.Title] = sv.SafeVersion
			continue
		}
		if sv.SafeVersion != nil {
			held := h.held[sv.Title]
			if held == nil || held.Less(*sv.SafeVersion) {
				h.t.Fatalf("at %s: %s is stale and its safe version %s is above the held version %v",
					h.now.Sub(stT0), sv.Title, sv.SafeVersion, held)
			}
		}
	}
	if allKnown(v) {
		for title := range h.held {
			if !seen[title] {
				delete(h.held, title)
			}
		}
	}
	return v
}

func allKnown(v *View) bool {
	for _, e := range v.Endpoints {
		if e.State != EndpointOK {
			return false
		}
	}
	return true
}

// want asserts one schema's safe version ("" for none) and flags.
func (h *stHarness) want(v *View, title, safe string, dirty, stale bool) *SchemaView {
	h.t.Helper()
	sv, ok := v.Schema(stRepo, title)
	if !ok {
		h.t.Fatalf("at %s: %s missing from the view", h.now.Sub(stT0), title)
	}
	got := ""
	if sv.SafeVersion != nil {
		got = sv.SafeVersion.String()
	}
	if got != safe || sv.Dirty != dirty || sv.Stale != stale {
		h.t.Fatalf("at %s: %s: safe %q dirty %v stale %v; want safe %q dirty %v stale %v (reasons %q)",
			h.now.Sub(stT0), title, got, sv.Dirty, sv.Stale, safe, dirty, stale, sv.Reasons)
	}
	return sv
}

const stTitle = "mediawiki/page/change"

func TestStateAllAgree(t *testing.T) {
	tests := []struct {
		name     string
		versions string
		safe     string
		latest   string
	}{
		{"one version", "1.0.0", "1.0.0", "1.0.0"},
		{"several", "1.0.0 1.1.0 1.2.0", "1.2.0", "1.2.0"},
		{"numeric order", "1.9.0 1.10.0 1.2.0", "1.10.0", "1.10.0"},
		{"major", "1.99.99 2.0.0", "2.0.0", "2.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 4)
			h.okAll(sch(stTitle, tt.versions))
			v := h.view()
			sv := h.want(v, stTitle, tt.safe, false, false)
			if sv.LatestVersion == nil || sv.LatestVersion.String() != tt.latest {
				t.Fatalf("latest %v, want %s", sv.LatestVersion, tt.latest)
			}
			if !v.Consistent() {
				t.Fatal("view not consistent")
			}
			for _, ep := range sv.Endpoints {
				if ep.State != EndpointOK || ep.Latest == nil || ep.Latest.String() != tt.latest ||
					ep.LastScan == nil || !ep.LastScan.Equal(stT0) {
					t.Fatalf("endpoint %+v", ep)
				}
			}
			if len(v.Endpoints) != 4 || v.Endpoints[0].Schemas != 1 {
				t.Fatalf("endpoints %+v", v.Endpoints)
			}
		})
	}
}

func TestStateSkewedRollout(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
	}{
		{"minor", "1.0.0", "1.1.0"},
		{"1.9.0 to 1.10.0", "1.9.0", "1.10.0"},
		{"1.99.99 to 2.0.0", "1.99.99", "2.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 4)
			content := []string{tt.old, tt.old, tt.old, tt.old}
			scanAll := func() {
				for i, c := range content {
					h.ok(i, "n1", sch(stTitle, c, "other/schema", "1.0.0"))
				}
			}
			scanAll()
			h.want(h.view(), stTitle, tt.old, false, false)
			for i := range content {
				h.advance(30 * time.Second)
				content[i] = tt.old + " " + tt.new
				scanAll()
				v := h.view()
				if i < len(content)-1 {
					sv := h.want(v, stTitle, tt.old, true, false)
					if sv.LatestVersion.String() != tt.new {
						t.Fatalf("latest %s, want %s", sv.LatestVersion, tt.new)
					}
					if v.Consistent() {
						t.Fatal("a partial rollout is consistent")
					}
				} else {
					h.want(v, stTitle, tt.new, false, false)
				}
				h.want(v, "other/schema", "1.0.0", false, false)
			}
		})
	}
}

func TestStateRollback(t *testing.T) {
	h := newHarness(t, 4)
	h.okAll(sch(stTitle, "1.0.0 1.1.0 1.2.0"))
	h.want(h.view(), stTitle, "1.2.0", false, false)
	h.advance(10 * time.Second)
	h.ok(2, "n1", sch(stTitle, "1.0.0 1.1.0"))
	sv := h.want(h.view(), stTitle, "1.1.0", true, false)
	if !strings.Contains(strings.Join(sv.Reasons, ";"), "differ") {
		t.Fatalf("reasons %q", sv.Reasons)
	}
	// A hole in the middle: the safe version is the highest common one, not the lowest latest.
	h.advance(10 * time.Second)
	h.ok(1, "n1", sch(stTitle, "1.0.0 1.2.0"))
	h.ok(2, "n1", sch(stTitle, "1.0.0 1.1.0 1.2.0"))
	h.want(h.view(), stTitle, "1.2.0", true, false)
	h.ok(2, "n1", sch(stTitle, "1.0.0 1.1.0"))
	h.want(h.view(), stTitle, "1.0.0", true, false)
}

func TestStateEndpointDown(t *testing.T) {
	h := newHarness(t, 4)
	h.okAll(sch(stTitle, "1.0.0"))
	h.want(h.view(), stTitle, "1.0.0", false, false)

	h.advance(30 * time.Second)
	h.fail(3, "n1", "GET http://schema1004.test:8190/: connection refused")
	for i := 0; i < 3; i++ {
		h.ok(i, "n1", sch(stTitle, "1.0.0 1.1.0"))
	}
	v := h.view()
	sv := h.want(v, stTitle, "1.0.0", false, true)
	if sv.Endpoints[3].State != EndpointUnknown || !strings.Contains(sv.Endpoints[3].Reason, "connection refused") {
		t.Fatalf("endpoint 3: %+v", sv.Endpoints[3])
	}
	if sv.LatestVersion.String() != "1.1.0" {
		t.Fatalf("latest %s", sv.LatestVersion)
	}
	if v.Endpoints[3].State != EndpointUnknown || v.Consistent() {
		t.Fatalf("endpoint view %+v", v.Endpoints[3])
	}

	// The others gain yet another version: still held.
	h.advance(30 * time.Second)
	h.fail(3, "n1", "timeout")
	for i := 0; i < 3; i++ {
		h.ok(i, "n1", sch(stTitle, "1.0.0 1.1.0 1.2.0"))
	}
	h.want(h.view(), stTitle, "1.0.0", false, true)

	// It comes back with everything: the safe version advances.
	h.advance(30 * time.Second)
	h.okAll(sch(stTitle, "1.0.0 1.1.0 1.2.0"))
	h.want(h.view(), stTitle, "1.2.0", false, false)
}

func TestStateDownThenRollback(t *testing.T) {
	tests := []struct {
		name       string
		known      string // what a known endpoint rolls back to
		wantSafe   string
		wantDirty  bool
		wantLatest string
	}{
		{"below held", "1.0.0 1.1.0", "1.1.0", true, "1.2.0"},
		{"hole at held", "1.0.0 1.1.0 1.3.0", "1.1.0", true, "1.3.0"},
		{"down to the oldest", "0.9.0", "0.9.0", true, "1.2.0"},
		{"nothing at or below held", "1.3.0", "", true, "1.3.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 3)
			h.okAll(sch(stTitle, "0.9.0 1.0.0 1.1.0 1.2.0"))
			h.want(h.view(), stTitle, "1.2.0", false, false)
			h.advance(30 * time.Second)
			h.fail(2, "n1", "HTTP 503")
			h.ok(0, "n1", sch(stTitle, "0.9.0 1.0.0 1.1.0 1.2.0"))
			h.ok(1, "n1", sch(stTitle, tt.known))
			sv := h.want(h.view(), stTitle, tt.wantSafe, tt.wantDirty, true)
			if sv.LatestVersion.String() != tt.wantLatest {
				t.Fatalf("latest %s, want %s", sv.LatestVersion, tt.wantLatest)
			}
		})
	}
}

func TestStateStaleness(t *testing.T) {
	h := newHarness(t, 3)
	h.okAll(sch(stTitle, "1.0.0"))
	h.want(h.view(), stTitle, "1.0.0", false, false)
	h.advance(time.Minute)
	for i := 0; i < 2; i++ {
		h.ok(i, "n1", sch(stTitle, "1.0.0 1.1.0"))
	}
	// Endpoint 2 was last scanned at stT0. Exactly at max_staleness it is still fresh.
	h.now = stT0.Add(stMaxStale)
	v := h.view()
	h.want(v, stTitle, "1.0.0", true, false)
	if want := stT0.Add(stMaxStale + time.Nanosecond); !v.ValidUntil.Equal(want) {
		t.Fatalf("ValidUntil %s, want %s", v.ValidUntil, want)
	}
	// One nanosecond later it is stale: held, never advanced.
	h.now = v.ValidUntil
	v = h.view()
	sv := h.want(v, stTitle, "1.0.0", false, true)
	if sv.Endpoints[2].State != EndpointUnknown || !strings.Contains(sv.Endpoints[2].Reason, "stale") {
		t.Fatalf("endpoint 2: %+v", sv.Endpoints[2])
	}
	if sv.Endpoints[2].Observers[0].Fresh {
		t.Fatal("stale observer reported fresh")
	}
	// The next expiry is that of the scans at stT0+1m.
	if want := stT0.Add(time.Minute + stMaxStale + time.Nanosecond); !v.ValidUntil.Equal(want) {
		t.Fatalf("ValidUntil %s, want %s", v.ValidUntil, want)
	}
	// Others gain more: still held.
	h.advance(10 * time.Second)
	for i := 0; i < 2; i++ {
		h.ok(i, "n1", sch(stTitle, "1.0.0 1.1.0 1.2.0"))
	}
	h.want(h.view(), stTitle, "1.0.0", false, true)
	// A known endpoint rolls back below the held version: lowered at once.
	h.ok(1, "n1", sch(stTitle, "0.1.0"))
	h.want(h.view(), stTitle, "", true, true)
	// Everything fresh again.
	h.advance(time.Second)
	h.okAll(sch(stTitle, "1.0.0 1.1.0 1.2.0"))
	h.want(h.view(), stTitle, "1.2.0", false, false)

	// With every observation stale, nothing is known and the view is valid forever.
	h.advance(stMaxStale + time.Nanosecond)
	v = h.view()
	h.want(v, stTitle, "1.2.0", false, true)
	if !v.ValidUntil.IsZero() {
		t.Fatalf("ValidUntil %s with every observation stale", v.ValidUntil)
	}
}

func TestStateValidUntilIsFirstExpiry(t *testing.T) {
	h := newHarness(t, 3)
	offsets := []time.Duration{50 * time.Second, 10 * time.Second, 30 * time.Second}
	for i, d := range offsets {
		h.now = stT0.Add(d)
		h.ok(i, "n1", sch(stTitle, "1.0.0"))
	}
	h.now = stT0.Add(time.Minute)
	v := h.view()
	if want := stT0.Add(10*time.Second + stMaxStale + time.Nanosecond); !v.ValidUntil.Equal(want) {
		t.Fatalf("ValidUntil %s, want %s", v.ValidUntil, want)
	}
	// Just before it the view is unchanged; at it, it changes.
	h.now = v.ValidUntil.Add(-time.Nanosecond)
	h.want(h.view(), stTitle, "1.0.0", false, false)
	h.now = v.ValidUntil
	h.want(h.view(), stTitle, "1.0.0", false, true)
}

func TestStateFlapping(t *testing.T) {
	h := newHarness(t, 3)
	h.okAll(sch(stTitle, "1.0.0"))
	h.want(h.view(), stTitle, "1.0.0", false, false)
	versions := "1.0.0"
	for step := 1; step <= 20; step++ {
		h.advance(15 * time.Second)
		// The others gain a version every 4 steps; the flapping endpoint only ever has what it had at its last
		// successful scan.
		if step%4 == 0 {
			versions += fmt.Sprintf(" 1.%d.0", step/4)
		}
		h.ok(0, "n1", sch(stTitle, versions))
		h.ok(1, "n1", sch(stTitle, versions))
		flapContent := "1.0.0"
		if step >= 12 {
			flapContent = versions // it catches up late
		}
		if step%2 == 0 {
			h.fail(2, "n1", "connection reset")
		} else {
			h.ok(2, "n1", sch(stTitle, flapContent))
		}
		v := h.view()
		sv, _ := v.Schema(stRepo, stTitle)
		if step%2 == 0 && !sv.Stale {
			t.Fatalf("step %d: flapping endpoint failed but not stale", step)
		}
		if step < 12 && sv.SafeVersion.String() != "1.0.0" {
			t.Fatalf("step %d: safe %s above what the flapping endpoint confirmed", step, sv.SafeVersion)
		}
	}
}

func TestStateListingAheadOfFiles(t *testing.T) {
	// The scanner leaves out a listed version whose extensionless file is not served yet: the observation of
	// that endpoint simply lacks it.
	h := newHarness(t, 2)
	h.okAll(sch(stTitle, "1.0.0"))
	h.advance(30 * time.Second)
	h.ok(0, "n1", sch(stTitle, "1.0.0 1.1.0"))
	h.ok(1, "n1", sch(stTitle, "1.0.0")) // 1.1.0 listed but not yet confirmed
	h.want(h.view(), stTitle, "1.0.0", true, false)
	// A new title whose only version is pending on one endpoint.
	h.ok(0, "n1", sch(stTitle, "1.0.0 1.1.0", "new/title", "1.0.0"))
	h.want(h.view(), "new/title", "", true, false)
	h.advance(30 * time.Second)
	h.okAll(sch(stTitle, "1.0.0 1.1.0", "new/title", "1.0.0"))
	v := h.view()
	h.want(v, stTitle, "1.1.0", false, false)
	h.want(v, "new/title", "1.0.0", false, false)
}

func TestStateObservers(t *testing.T) {
	tests := []struct {
		name string
		// per observer of endpoint 0: "" for a failed scan, "stale:<versions>" for an old one
		obs       map[string]string
		safe      string
		dirty     bool
		stale     bool
		endpoint0 string // the versions present on endpoint 0
	}{
		{"agree", map[string]string{"a": "1.0.0 1.1.0", "b": "1.0.0 1.1.0"}, "1.1.0", false, false, "1.0.0 1.1.0"},
		{"one lacks the newest", map[string]string{"a": "1.0.0 1.1.0", "b": "1.0.0"}, "1.0.0", true, false, "1.0.0"},
		{"disjoint", map[string]string{"a": "1.0.0 1.1.0", "b": "1.1.0 1.2.0"}, "1.1.0", true, false, "1.1.0"},
		{"failed observer beside a fresh ok one", map[string]string{"a": "1.0.0 1.1.0", "b": ""}, "1.1.0", false, false,
			"1.0.0 1.1.0"},
		{"stale observer ignored", map[string]string{"a": "1.0.0 1.1.0", "b": "stale:1.0.0"}, "1.1.0", false, false,
			"1.0.0 1.1.0"},
		{"all observers failed", map[string]string{"a": "", "b": ""}, "", false, true, ""},
		{"all observers stale", map[string]string{"a": "stale:1.0.0 1.1.0", "b": "stale:1.0.0 1.1.0"}, "", false, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 2)
			observers := make([]string, 0, len(tt.obs))
			for o := range tt.obs {
				observers = append(observers, o)
			}
			sort.Strings(observers)
			for _, o := range observers {
				if c, ok := strings.CutPrefix(tt.obs[o], "stale:"); ok {
					h.now = stT0.Add(-stMaxStale - time.Second)
					h.ok(0, o, sch(stTitle, c))
					h.now = stT0
				}
			}
			for _, o := range observers {
				switch c := tt.obs[o]; {
				case c == "":
					h.fail(0, o, "timeout")
				case !strings.HasPrefix(c, "stale:"):
					h.ok(0, o, sch(stTitle, c))
				}
			}
			h.ok(1, "a", sch(stTitle, "1.0.0 1.1.0"))
			v := h.view()
			sv := h.want(v, stTitle, tt.safe, tt.dirty, tt.stale)
			var got []string
			for _, x := range sv.Endpoints[0].Versions {
				got = append(got, x.String())
			}
			if strings.Join(got, " ") != tt.endpoint0 {
				t.Fatalf("endpoint 0 versions %q, want %q", got, tt.endpoint0)
			}
			if len(sv.Endpoints[0].Observers) != len(tt.obs) {
				t.Fatalf("observers %+v", sv.Endpoints[0].Observers)
			}
		})
	}
}

func TestStateTitleMissingOrGone(t *testing.T) {
	h := newHarness(t, 3)
	h.okAll(sch(stTitle, "1.0.0", "old/title", "1.0.0"))
	h.want(h.view(), "old/title", "1.0.0", false, false)

	h.advance(10 * time.Second)
	h.ok(0, "n1", sch(stTitle, "1.0.0", "old/title", "1.0.0", "new/title", "1.0.0"))
	h.ok(1, "n1", sch(stTitle, "1.0.0", "new/title", "1.0.0"))
	h.ok(2, "n1", sch(stTitle, "1.0.0", "new/title", "1.0.0"))
	v := h.view()
	sv := h.want(v, "old/title", "", true, false)
	if !strings.Contains(strings.Join(sv.Reasons, ";"), "missing on") {
		t.Fatalf("reasons %q", sv.Reasons)
	}
	h.want(v, "new/title", "1.0.0", false, false)

	h.advance(10 * time.Second)
	h.okAll(sch(stTitle, "1.0.0", "new/title", "1.0.0"))
	v = h.view()
	if _, ok := v.Schema(stRepo, "old/title"); ok {
		t.Fatal("a title gone from every endpoint is still in the view")
	}
	if len(v.Schemas) != 2 {
		t.Fatalf("schemas %+v", v.Schemas)
	}
	// It comes back on one endpoint while another is down: no safe version, nothing held.
	h.advance(10 * time.Second)
	h.ok(0, "n1", sch(stTitle, "1.0.0", "old/title", "1.0.0"))
	h.ok(1, "n1", sch(stTitle, "1.0.0", "old/title", "1.0.0"))
	h.fail(2, "n1", "refused")
	h.want(h.view(), "old/title", "", false, true)
}

func TestStateObserveRules(t *testing.T) {
	eps := stEndpoints(2)
	o := func(ep, observer string, seq uint64, versions string) Observation {
		return Observation{Repository: stRepo, Endpoint: ep, Observer: observer, Seq: seq, At: stT0,
			Schemas: sch(stTitle, versions)}
	}
	tests := []struct {
		name string
		o    Observation
		want bool
	}{
		{"first", o(eps[0], "n1", 10, "1.0.0"), true},
		{"newer seq", o(eps[0], "n1", 11, "1.0.0 1.1.0"), true},
		{"same seq", o(eps[0], "n1", 11, "1.0.0"), false},
		{"older seq", o(eps[0], "n1", 5, "1.0.0"), false},
		{"other observer, lower seq", o(eps[0], "n2", 1, "1.0.0 1.1.0"), true},
		{"unconfigured endpoint", o("http://elsewhere.test/", "n1", 100, "9.0.0"), false},
		{"wrong repository", Observation{Repository: "secondary", Endpoint: eps[1], Observer: "n1", Seq: 100, At: stT0}, false},
		{"no repository", Observation{Endpoint: eps[1], Observer: "n1", Seq: 100, At: stT0}, false},
		{"no observer", o(eps[1], "", 100, "9.0.0"), false},
		{"second endpoint", o(eps[1], "n1", 1, "1.0.0 1.1.0"), true},
	}
	s := NewState([]Repository{{Name: stRepo, Endpoints: eps}}, stMaxStale)
	for _, tt := range tests {
		if got := s.Observe(tt.o, stT0); got != tt.want {
			t.Errorf("%s: Observe = %v, want %v", tt.name, got, tt.want)
		}
	}
	obs := s.Observations()
	if len(obs) != 3 {
		t.Fatalf("observations %+v", obs)
	}
	if obs[0].Endpoint != eps[0] || obs[0].Observer != "n1" || obs[0].Seq != 11 || obs[1].Observer != "n2" ||
		obs[2].Endpoint != eps[1] {
		t.Fatalf("observations not the latest, or not sorted: %+v %+v %+v", obs[0], obs[1], obs[2])
	}
	v := s.View(stT0)
	sv, _ := v.Schema(stRepo, stTitle)
	if sv.SafeVersion == nil || sv.SafeVersion.String() != "1.1.0" || sv.Dirty || sv.Stale {
		t.Fatalf("view %+v", sv)
	}
	if _, ok := v.Schema(stRepo, "9.0.0"); ok {
		t.Fatal("ignored observation leaked into the view")
	}

	// Observe copies the observation's struct: changing the caller's copy changes nothing.
	in := o(eps[1], "n1", 2, "1.0.0")
	s.Observe(in, stT0)
	in.Err = "changed"
	if s.View(stT0).Endpoints[1].State != EndpointOK {
		t.Fatal("the state shares the caller's observation")
	}
}

func TestStateSetRepositories(t *testing.T) {
	eps := stEndpoints(3)
	s := NewState([]Repository{{Name: stRepo, Endpoints: eps}, {Name: "secondary", Endpoints: []string{"http://s.test/"}}},
		stMaxStale)
	for _, ep := range eps {
		s.Observe(Observation{Repository: stRepo, Endpoint: ep, Observer: "n1", Seq: 1, At: stT0, Schemas: sch(stTitle, "1.0.0")}, stT0)
	}
	s.Observe(Observation{Repository: "secondary", Endpoint: "http://s.test/", Observer: "n1", Seq: 1, At: stT0,
		Schemas: sch("legacy/thing", "1.0.0")}, stT0)
	if v := s.View(stT0); !v.Consistent() || len(v.Schemas) != 2 {
		t.Fatalf("view %+v", v)
	}

	// Drop endpoint 2 and the secondary repository.
	s.SetRepositories([]Repository{{Name: stRepo, Endpoints: eps[:2]}}, stMaxStale)
	if n := len(s.Observations()); n != 2 {
		t.Fatalf("%d observations after the reload, want 2", n)
	}
	v := s.View(stT0)
	if len(v.Endpoints) != 2 || len(v.Schemas) != 1 {
		t.Fatalf("view after reload: %+v", v)
	}
	if _, ok := v.Schema("secondary", "legacy/thing"); ok {
		t.Fatal("removed repository still in the view")
	}
	// Re-adding endpoint 2 does not bring its old observation back: it is unknown until scanned.
	s.SetRepositories([]Repository{{Name: stRepo, Endpoints: eps}}, stMaxStale)
	sv, _ := s.View(stT0).Schema(stRepo, stTitle)
	if !sv.Stale || sv.Endpoints[2].State != EndpointUnknown || sv.Endpoints[2].Reason != "not scanned yet" {
		t.Fatalf("re-added endpoint: %+v", sv.Endpoints[2])
	}
	if sv.SafeVersion == nil || sv.SafeVersion.String() != "1.0.0" {
		t.Fatalf("held version lost over a reload: %v", sv.SafeVersion)
	}
	// Moving an endpoint to another repository drops its observations.
	s.SetRepositories([]Repository{{Name: stRepo, Endpoints: eps[1:]}, {Name: "other", Endpoints: eps[:1]}}, stMaxStale)
	for _, o := range s.Observations() {
		if o.Endpoint == eps[0] {
			t.Fatalf("observation %+v survived its endpoint's move to another repository", o)
		}
	}
	// A smaller max_staleness applies at once.
	s.SetRepositories([]Repository{{Name: stRepo, Endpoints: eps[1:]}}, time.Second)
	if sv, _ := s.View(stT0.Add(2*time.Second)).Schema(stRepo, stTitle); !sv.Stale {
		t.Fatal("new max_staleness ignored")
	}
}

func TestStateForget(t *testing.T) {
	h := newHarness(t, 2)
	h.ok(0, "n1", sch(stTitle, "1.0.0"))
	h.advance(time.Hour)
	h.ok(1, "n1", sch(stTitle, "1.0.0"))
	h.s.Forget(h.now, 30*time.Minute)
	obs := h.s.Observations()
	if len(obs) != 1 || obs[0].Endpoint != h.eps[1] {
		t.Fatalf("observations after Forget: %+v", obs)
	}
}

// TestStateRandomized drives the state through random rollouts, rollbacks, outages, stalls, late gossip and
// reordered observations over 4 endpoints, 2 observers and 3 titles, checking S1 and "never advances while
// stale" at every step, and that the safe version equals the reference answer whenever everything is fresh.
func TestStateRandomized(t *testing.T) {
	const (
		steps     = 2000
		nEps      = 4
		observers = 2
	)
	titles := []string{"a/one", "b/two/deep", "c"}
	pool := []Version{MustParseVersion("1.0.0"), MustParseVersion("1.1.0"), MustParseVersion("1.2.0"),
		MustParseVersion("1.9.0"), MustParseVersion("1.10.0"), MustParseVersion("2.0.0")}
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			h := newHarness(t, nEps)
			content := make([]map[string]map[Version]bool, nEps)
			for i := range content {
				content[i] = map[string]map[Version]bool{}
				for _, ti := range titles {
					content[i][ti] = map[Version]bool{pool[0]: true}
				}
			}
			down := make([]bool, nEps)
			stalled := make([]bool, nEps)
			lastAt := map[[2]int]time.Time{}
			snapshotOf := func(i int) map[string][]Version {
				out := map[string][]Version{}
				for ti, vs := range content[i] {
					if len(vs) == 0 {
						continue
					}
					var l []Version
					for v := range vs {
						l = append(l, v)
					}
					sortVersions(l)
					out[ti] = l
				}
				return out
			}
			stats := map[string]int{}
			for step := 0; step < steps; step++ {
				i := rng.Intn(nEps)
				ti := titles[rng.Intn(len(titles))]
				for e := range down { // outages and stalls end by themselves
					if down[e] && rng.Intn(8) == 0 {
						down[e] = false
					}
					if stalled[e] && rng.Intn(6) == 0 {
						stalled[e] = false
					}
				}
				switch r := rng.Intn(100); {
				case r < 20: // a version rolled out on one endpoint
					content[i][ti][pool[rng.Intn(len(pool))]] = true
				case r < 27: // a rollback on one endpoint
					for v := range content[i][ti] {
						if rng.Intn(2) == 0 {
							delete(content[i][ti], v)
						}
					}
				case r < 40: // the next host of a rollout catches up with endpoint i
					j := rng.Intn(nEps)
					content[j][ti] = map[Version]bool{}
					for v := range content[i][ti] {
						content[j][ti][v] = true
					}
				case r < 44:
					down[i] = true
				case r < 47:
					stalled[i] = true
				case r < 70: // time passes
					h.advance(time.Duration(rng.Intn(90)) * time.Second)
				}
				// Scans: each observer scans some endpoints; gossip may deliver them late.
				for e := 0; e < nEps; e++ {
					for ob := 0; ob < observers; ob++ {
						if stalled[e] || rng.Intn(3) == 0 {
							continue
						}
						at := h.now.Add(-time.Duration(rng.Intn(20)) * time.Second)
						o := Observation{Repository: stRepo, Endpoint: h.eps[e], Observer: fmt.Sprint("n", ob),
							Seq: uint64(at.UnixNano()), At: at}
						if down[e] {
							o.Err = "connection refused"
						} else {
							o.Schemas = snapshotOf(e)
						}
						recorded := h.observe(o)
						k := [2]int{e, ob}
						if recorded != !at.Before(lastAt[k]) && !at.Equal(lastAt[k]) {
							t.Fatalf("step %d: Observe(seq %d) = %v after seq %d", step, o.Seq, recorded,
								lastAt[k].UnixNano())
						}
						if recorded {
							lastAt[k] = at
						}
					}
				}
				v := h.view() // checks S1 and that stale never advances
				allFresh := true
				for _, ev := range v.Endpoints {
					allFresh = allFresh && ev.State == EndpointOK
				}
				for _, sv := range v.Schemas {
					switch {
					case sv.Stale:
						stats["stale"]++
					case sv.Dirty:
						stats["dirty"]++
					default:
						stats["clean"]++
					}
					if sv.SafeVersion != nil {
						stats["safe"]++
					}
					if sv.Stale == allFresh {
						t.Fatalf("step %d: %s stale=%v with all endpoints fresh=%v", step, sv.Title, sv.Stale, allFresh)
					}
				}
				if allFresh {
					checkReference(t, step, v, h, titles)
				}
			}
			t.Logf("seed %d: %v", seed, stats)
			for _, k := range []string{"stale", "dirty", "clean", "safe"} {
				if stats[k] < steps/50 {
					t.Fatalf("the walk rarely reached %q (%d of %d steps): it tests too little", k, stats[k], steps)
				}
			}
		})
	}
}

// checkReference compares a view in which every endpoint is known with an answer computed from the ground
// truth directly: a version is safe when every fresh successful truthSnap of every endpoint has it.
func checkReference(t *testing.T, step int, v *View, h *stHarness, titles []string) {
	t.Helper()
	for _, ti := range titles {
		var want *Version
		var common map[Version]int
		n := 0
		for _, ep := range h.eps {
			for _, snap := range h.truth[ep] {
				if !snap.ok || h.now.Sub(snap.at) > stMaxStale {
					continue
				}
				n++
				if common == nil {
					common = map[Version]int{}
				}
				for _, x := range snap.schemas[ti] {
					common[x]++
				}
			}
		}
		for x, c := range common {
			if c == n && (want == nil || want.Less(x)) {
				x := x
				want = &x
			}
		}
		sv, ok := v.Schema(stRepo, ti)
		var got *Version
		if ok {
			got = sv.SafeVersion
		}
		if (got == nil) != (want == nil) || (got != nil && *got != *want) {
			t.Fatalf("step %d: %s safe %v, want %v", step, ti, got, want)
		}
	}
}

// TestStateHeldLoweredByRollback: a rollback seen while an endpoint is unknown lowers the held version, so the
// version coming back on that endpoint cannot raise the safe version again until every endpoint is known.
func TestStateHeldLoweredByRollback(t *testing.T) {
	h := newHarness(t, 3)
	h.okAll(sch(stTitle, "1.0.0 1.1.0"))
	h.want(h.view(), stTitle, "1.1.0", false, false)
	h.advance(30 * time.Second)
	h.fail(2, "n1", "HTTP 503")
	h.ok(0, "n1", sch(stTitle, "1.0.0 1.1.0"))
	h.ok(1, "n1", sch(stTitle, "1.0.0"))
	h.want(h.view(), stTitle, "1.0.0", true, true)
	h.advance(30 * time.Second)
	h.fail(2, "n1", "HTTP 503")
	h.ok(1, "n1", sch(stTitle, "1.0.0 1.1.0"))
	h.want(h.view(), stTitle, "1.0.0", false, true)
}

// TestStateHeldIndependentOfViews: the held version changes when observations are applied, never when a view
// is computed. Both hosts serve 1.0.0 and 1.1.0; host 2 rolls back to 1.0.0, then fails. Whether or not a view
// was computed between the rollback and the failure, the safe version is 1.0.0 (held, stale): 1.1.0 was last
// seen missing from host 2.
func TestStateHeldIndependentOfViews(t *testing.T) {
	eps := stEndpoints(2)
	obs := func(i int, seq uint64, at time.Time, versions, err string) Observation {
		o := Observation{Repository: stRepo, Endpoint: eps[i], Observer: "n1", Seq: seq, At: at, Err: err}
		if err == "" {
			o.Schemas = sch(stTitle, versions)
		}
		return o
	}
	for _, viewBetween := range []bool{false, true} {
		t.Run(fmt.Sprint("view between: ", viewBetween), func(t *testing.T) {
			s := NewState([]Repository{{Name: stRepo, Endpoints: eps}}, stMaxStale)
			now := stT0
			s.Observe(obs(0, 1, now, "1.0.0 1.1.0", ""), now)
			s.Observe(obs(1, 1, now, "1.0.0 1.1.0", ""), now)
			if sv, _ := s.View(now).Schema(stRepo, stTitle); sv.SafeVersion == nil || sv.SafeVersion.String() != "1.1.0" {
				t.Fatalf("before the rollback: safe %v, want 1.1.0", sv.SafeVersion)
			}
			now = now.Add(10 * time.Second)
			s.Observe(obs(1, 2, now, "1.0.0", ""), now) // rollback on host 2
			if viewBetween {
				if sv, _ := s.View(now).Schema(stRepo, stTitle); sv.SafeVersion == nil || sv.SafeVersion.String() != "1.0.0" {
					t.Fatalf("after the rollback: safe %v, want 1.0.0", sv.SafeVersion)
				}
			}
			now = now.Add(10 * time.Second)
			s.Observe(obs(1, 3, now, "", "HTTP 503"), now) // host 2 fails
			sv, _ := s.View(now).Schema(stRepo, stTitle)
			if sv.SafeVersion == nil || sv.SafeVersion.String() != "1.0.0" || !sv.Stale {
				t.Fatalf("after the failure: safe %v stale %v, want 1.0.0 held (stale)", sv.SafeVersion, sv.Stale)
			}
		})
	}
}

// TestStateViewIsPure feeds two states the same random observations and computes views of one of them after
// every observation, at random instants (some far ahead); the other is viewed only every 100 steps. Both
// answer the same then.
func TestStateViewIsPure(t *testing.T) {
	eps := stEndpoints(3)
	titles := []string{"a", "b/c"}
	pool := []string{"1.0.0", "1.1.0", "1.2.0", "2.0.0"}
	rng := rand.New(rand.NewSource(5))
	viewed := NewState([]Repository{{Name: stRepo, Endpoints: eps}}, stMaxStale)
	quiet := NewState([]Repository{{Name: stRepo, Endpoints: eps}}, stMaxStale)
	now, seq := stT0, uint64(0)
	safeOf := func(v *View) string {
		var b strings.Builder
		for _, sv := range v.Schemas {
			fmt.Fprintf(&b, "%s=%v/%v/%v ", sv.Title, versionString(sv.SafeVersion), sv.Dirty, sv.Stale)
		}
		return b.String()
	}
	for step := 0; step < 3000; step++ {
		now = now.Add(time.Duration(rng.Intn(40)) * time.Second)
		seq++
		o := Observation{Repository: stRepo, Endpoint: eps[rng.Intn(len(eps))], Observer: fmt.Sprint("n", rng.Intn(2)),
			Seq: seq, At: now.Add(-time.Duration(rng.Intn(30)) * time.Second)}
		if rng.Intn(6) == 0 {
			o.Err = "HTTP 503"
		} else {
			o.Schemas = map[string][]Version{}
			for _, ti := range titles {
				var vs []string
				for _, v := range pool {
					if rng.Intn(3) > 0 {
						vs = append(vs, v)
					}
				}
				if len(vs) > 0 {
					o.Schemas[ti] = sch(ti, strings.Join(vs, " "))[ti]
				}
			}
		}
		viewed.Observe(o, now)
		quiet.Observe(o, now)
		for n := rng.Intn(3); n > 0; n-- {
			viewed.View(now.Add(time.Duration(rng.Intn(300)) * time.Second))
		}
		if step%100 != 99 {
			continue
		}
		if a, b := safeOf(viewed.View(now)), safeOf(quiet.View(now)); a != b {
			t.Fatalf("step %d: views of the same observations differ:\nviewed often: %s\nnever viewed: %s", step, a, b)
		}
	}
}
