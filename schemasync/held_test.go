package schemasync

import (
	"testing"
	"time"
)

// TestAdoptHeld: a node that restarts while an endpoint is down holds no safe version of its own; it adopts
// its peers' held versions, lowered by what its own known endpoints serve, and then answers like its peers.
// Held versions are shared only for repositories with an unknown endpoint.
func TestAdoptHeld(t *testing.T) {
	const title = "mediawiki/page/change"
	repos := []Repository{{Name: "primary", Endpoints: []string{"http://a/", "http://b/"}}}
	t0 := time.Unix(1_800_000_000, 0)
	vs := func(v ...string) map[string][]Version {
		out := make([]Version, len(v))
		for i, s := range v {
			out[i] = MustParseVersion(s)
		}
		return map[string][]Version{title: out}
	}
	seq := uint64(0)
	obs := func(ep string, at time.Time, schemas map[string][]Version, err string) Observation {
		seq++
		return Observation{Repository: "primary", Endpoint: ep, Observer: "node0", Seq: seq, At: at, Schemas: schemas, Err: err}
	}
	safe := func(s *State, now time.Time) string {
		sv, ok := s.View(now).Schema("primary", title)
		if !ok || sv.SafeVersion == nil {
			return "none"
		}
		return sv.SafeVersion.String()
	}

	peer := NewState(repos, time.Minute)
	both := vs("1.0.0", "1.1.0")
	peer.Observe(obs("http://a/", t0, both, ""), t0)
	peer.Observe(obs("http://b/", t0, both, ""), t0)
	if got := peer.HeldWhileStale(t0); len(got) != 0 {
		t.Fatalf("every endpoint known, yet held versions are shared: %v", got)
	}
	t1 := t0.Add(30 * time.Second)
	down := obs("http://b/", t1, nil, "connection refused")
	upA := obs("http://a/", t1, both, "")
	peer.Observe(down, t1)
	peer.Observe(upA, t1)
	if got := safe(peer, t1); got != "1.1.0" {
		t.Fatalf("peer: safe %s while b is down, want the held 1.1.0", got)
	}
	shared := peer.HeldWhileStale(t1)
	if len(shared) != 1 || shared[0].Title != title || shared[0].Version.String() != "1.1.0" {
		t.Fatalf("shared %v", shared)
	}

	// A node whose repository has other endpoints (a configuration rollout half done) adopts nothing: the
	// peer's held version says nothing about an endpoint the peer does not scan.
	other := NewState([]Repository{{Name: "primary", Endpoints: []string{"http://a/", "http://c/"}}}, time.Minute)
	other.Observe(obs("http://a/", t1, both, ""), t1)
	if other.AdoptHeld(shared, peer.EndpointSets(), t1) || safe(other, t1) != "none" {
		t.Fatalf("adopted a held version from a peer with another endpoint set: safe %s", safe(other, t1))
	}
	if other.AdoptHeld(shared, nil, t1) {
		t.Fatal("adopted held versions that came without the peer's endpoint sets")
	}
	if EndpointSetHash([]string{"http://b/", "http://a/"}) != peer.EndpointSets()["primary"] {
		t.Fatal("the endpoint set hash depends on the order")
	}

	// The restarted node receives the same observations by push/pull, but has no history.
	restarted := NewState(repos, time.Minute)
	restarted.Observe(down, t1)
	restarted.Observe(upA, t1)
	if got := safe(restarted, t1); got != "none" {
		t.Fatalf("restarted without history: safe %s, want none", got)
	}
	if !restarted.AdoptHeld(shared, peer.EndpointSets(), t1) {
		t.Fatal("nothing adopted")
	}
	if got := safe(restarted, t1); got != "1.1.0" {
		t.Fatalf("restarted after adopting: safe %s, want the peers' 1.1.0", got)
	}
	if restarted.AdoptHeld([]HeldVersion{{Repository: "primary", Title: title, Version: MustParseVersion("1.0.0")}}, peer.EndpointSets(), t1) {
		t.Fatal("a held version replaced one the state already holds")
	}
	if restarted.AdoptHeld([]HeldVersion{{Repository: "nope", Title: title, Version: MustParseVersion("9.0.0")}}, peer.EndpointSets(), t1) {
		t.Fatal("adopted a held version of a repository that is not configured")
	}

	// A restarted node that has seen a rollback on a known endpoint lowers what it adopts.
	rolledBack := NewState(repos, time.Minute)
	rolledBack.Observe(down, t1)
	rolledBack.Observe(obs("http://a/", t1, vs("1.0.0"), ""), t1)
	rolledBack.AdoptHeld(shared, peer.EndpointSets(), t1)
	if got := safe(rolledBack, t1); got != "1.0.0" {
		t.Fatalf("adopted 1.1.0 but a serves only 1.0.0: safe %s, want 1.0.0", got)
	}
}
