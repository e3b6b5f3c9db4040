package schemasync

import (
	"testing"
	"time"
)

// TestObserveTwinsKeepTheSame: two observations of one observer and endpoint with one Seq and different
// outcomes (only a forger or a bug sends them) leave every state with the same one, whichever came first.
func TestObserveTwinsKeepTheSame(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	repos := []Repository{{Name: "primary", Endpoints: []string{"http://a/"}}}
	one := map[string][]Version{"a/x": {MustParseVersion("1.0.0")}}
	two := map[string][]Version{"a/x": {MustParseVersion("1.0.0"), MustParseVersion("1.1.0")}}
	obs := []Observation{
		{Repository: "primary", Endpoint: "http://a/", Observer: "twin", Seq: 7, At: now, Schemas: one, Hash: ContentHash(one)},
		{Repository: "primary", Endpoint: "http://a/", Observer: "twin", Seq: 7, At: now, Schemas: two, Hash: ContentHash(two)},
		{Repository: "primary", Endpoint: "http://a/", Observer: "twin", Seq: 7, At: now, Err: "HTTP 503"},
	}
	var held []string
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
		s := NewState(repos, time.Minute)
		for _, i := range order {
			s.Observe(obs[i], now)
		}
		o := s.latest[obsKey{"http://a/", "twin"}]
		held = append(held, o.Hash+"/"+o.Err)
		if !s.Observe(Observation{Repository: "primary", Endpoint: "http://a/", Observer: "twin", Seq: 8, At: now, Err: "x"}, now) {
			t.Fatal("a newer Seq was not recorded")
		}
	}
	if held[0] != held[1] || held[1] != held[2] {
		t.Fatalf("states that saw the twins in different orders hold %q", held)
	}
}
