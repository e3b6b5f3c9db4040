package gossip_test

import (
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

// modelHost is a schema host whose contents and availability the model test changes, with the history of what
// it served, for the ground truth.
type modelHost struct {
	repo    *schemarepo.Repo
	handler http.Handler
	down    atomic.Bool
	url     string

	mu      sync.Mutex
	history []served
	broken  map[string]bool // "title/version" whose file answers GET 404 (HEAD 200: it lies) behind an unchanged listing
}

// served is what a host served from start to end (end zero: still serving). Intervals of consecutive
// contents overlap around each change, which makes the check lenient, never strict, at the boundary.
type served struct {
	start, end time.Time
	versions   map[string]map[string]bool // title -> version -> present
}

func (h *modelHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if rel, ok := strings.CutPrefix(r.URL.Path, "/repositories/primary/jsonschema/"); ok {
		h.mu.Lock()
		broken := h.broken[rel]
		h.mu.Unlock()
		if broken {
			if r.Method == http.MethodHead {
				w.WriteHeader(http.StatusOK) // the lie: EventGate's GET gets a 404
				return
			}
			http.NotFound(w, r)
			return
		}
	}
	h.handler.ServeHTTP(w, r)
}

// snapshot is what the host serves: what its repository holds, less the broken files. Called with h.mu held.
func (h *modelHost) snapshot() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, t := range h.repo.Titles() {
		out[t] = map[string]bool{}
		for _, v := range h.repo.Versions(t) {
			if !h.broken[t+"/"+v] {
				out[t][v] = true
			}
		}
	}
	return out
}

// change applies f to the host's contents and records the history around it.
func (h *modelHost) change(f func()) {
	before := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
	after := time.Now()
	if n := len(h.history); n > 0 {
		h.history[n-1].end = after
	}
	h.history = append(h.history, served{start: before, versions: h.snapshot()})
}

// servedWithin reports whether the host served title at version at some moment in [from, to].
func (h *modelHost) servedWithin(title, version string, from, to time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.history {
		if (s.end.IsZero() || !s.end.Before(from)) && !s.start.After(to) && s.versions[title][version] {
			return true
		}
	}
	return false
}

// TestModelS1 draws random rollouts, rollbacks, endpoint outages, node crashes and restarts, and partitions,
// with a fixed seed, and checks guarantee S1 on every live node after every step: a safe version reported as
// not stale was served by every endpoint within max_staleness (plus the length of a scan); one reported as
// stale (held) was served by every endpoint at some time. Adversaries take part too: hosts whose version files
// stop answering GET behind an unchanged listing while HEAD still answers 200, a peer whose repository has
// another endpoint set (a configuration rollout half done) and shares its held versions, and a peer that
// holds the gossip key and sends digests with out-of-range ages and sequence numbers. Run the long mode by
// hand:
//
//	SCHEMASYNC_MODEL_STEPS=400 SCHEMASYNC_MODEL_SEED=7 go test -run TestModelS1 -v ./schemasync/gossip/
func TestModelS1(t *testing.T) {
	steps, seed := 40, int64(1)
	if s, err := strconv.Atoi(os.Getenv("SCHEMASYNC_MODEL_STEPS")); err == nil && s > 0 {
		steps = s
	}
	if s, err := strconv.ParseInt(os.Getenv("SCHEMASYNC_MODEL_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("model: %d steps, seed %d", steps, seed)
	rng := rand.New(rand.NewSource(seed))
	const stale = 1500 * time.Millisecond
	titles := []string{"a/x", "b/y/z"}

	var hosts []*modelHost
	var eps []string
	for i := 0; i < 3; i++ {
		r := schemarepo.New()
		h := &modelHost{repo: r, handler: schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": r}),
			broken: map[string]bool{}}
		h.change(func() {
			for _, title := range titles {
				r.Put(title, "1.0.0", schemarepo.Doc(title, "1.0.0"))
			}
		})
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		h.url = srv.URL + "/repositories/primary/jsonschema/"
		hosts = append(hosts, h)
		eps = append(eps, h.url)
	}
	frontier := map[string]int{} // title -> highest minor version rolled out so far

	fn := newFaultNet(seed)
	o := nodeOpts{net: fn, stale: stale, interval: 150 * time.Millisecond}
	var live []*testNode
	started := 0
	start := func() {
		var seeds []string
		for _, n := range live {
			seeds = append(seeds, n.cluster.Addr())
		}
		n := startNode(t, fmt.Sprintf("node%d", started), eps, seeds, o)
		started++
		n.run(t)
		live = append(live, n)
	}
	for i := 0; i < 4; i++ {
		start()
	}
	// A peer with another endpoint set: the first two hosts and one of its own, which serves every version
	// ever rolled out. It shares its held versions; the others must not adopt them.
	extra := schemarepo.New()
	extraSrv := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": extra}))
	t.Cleanup(extraSrv.Close)
	for _, title := range titles {
		for m := 0; m <= steps; m++ {
			v := fmt.Sprintf("1.%d.0", m)
			extra.Put(title, v, schemarepo.Doc(title, v))
		}
	}
	otherEps := []string{eps[0], eps[1], extraSrv.URL + "/repositories/primary/jsonschema/"}
	oo := o
	oo.repos = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: otherEps}}
	other := startNode(t, "other-config", otherEps, []string{live[0].cluster.Addr()}, oo)
	other.run(t)
	liar := newGossipLiar(t, fn, live[0].cluster.Addr())

	checks, violations := 0, 0
	check := func(step int, action string) {
		now := time.Now()
		for _, n := range live {
			for _, sv := range n.svc.View().Schemas {
				if sv.SafeVersion == nil {
					continue
				}
				v := sv.SafeVersion.String()
				for _, h := range hosts {
					checks++
					from := now.Add(-stale - time.Second)
					if sv.Stale {
						from = time.Time{}
					}
					if !h.servedWithin(sv.Title, v, from, now) {
						violations++
						t.Errorf("step %d (%s): %s reports %s %s safe (stale=%v), but %s did not serve it since %s",
							step, action, n.name, sv.Title, v, sv.Stale, h.url, from.Format(time.StampMilli))
					}
				}
			}
		}
	}

	for step := 1; step <= steps; step++ {
		var action string
		for _, e := range eps {
			liar.lie(e)
		}
		switch k := rng.Intn(12); {
		case k < 3: // roll a version out to one host
			title := titles[rng.Intn(len(titles))]
			h := hosts[rng.Intn(len(hosts))]
			next := fmt.Sprintf("1.%d.0", frontier[title]+1)
			if rng.Intn(2) == 0 {
				frontier[title]++
			} else {
				next = fmt.Sprintf("1.%d.0", frontier[title])
			}
			h.change(func() { h.repo.Put(title, next, schemarepo.Doc(title, next)) })
			action = fmt.Sprintf("%s gets %s %s", h.url, title, next)
		case k < 4: // roll back one host's highest version
			title := titles[rng.Intn(len(titles))]
			h := hosts[rng.Intn(len(hosts))]
			vs := h.repo.Versions(title)
			if len(vs) > 1 {
				h.change(func() { h.repo.Remove(title, vs[len(vs)-1]) })
			}
			action = fmt.Sprintf("%s rolls back %s", h.url, title)
		case k < 6: // an endpoint goes down or comes back
			h := hosts[rng.Intn(len(hosts))]
			h.down.Store(!h.down.Load())
			action = fmt.Sprintf("%s down=%v", h.url, h.down.Load())
		case k < 7: // a node crashes
			if len(live) > 2 {
				i := rng.Intn(len(live))
				live[i].kill()
				action = "crash " + live[i].name
				live = append(live[:i], live[i+1:]...)
			}
		case k < 8: // a new node starts with an empty state
			if len(live) < 5 {
				start()
				action = "start " + live[len(live)-1].name
			}
		case k < 10: // a version file stops answering GET (HEAD still says 200), or answers again
			title := titles[rng.Intn(len(titles))]
			h := hosts[rng.Intn(len(hosts))]
			vs := h.repo.Versions(title)
			key := title + "/" + vs[rng.Intn(len(vs))]
			h.change(func() { h.broken[key] = !h.broken[key] })
			action = fmt.Sprintf("%s: %s broken=%v", h.url, key, h.broken[key])
		default: // partition the nodes in two, or heal
			if rng.Intn(2) == 0 {
				var a, b []string
				for _, n := range live {
					if rng.Intn(2) == 0 {
						a = append(a, n.name)
					} else {
						b = append(b, n.name)
					}
				}
				fn.partition(a, b)
				action = fmt.Sprintf("partition %v | %v", a, b)
			} else {
				fn.heal()
				action = "heal"
			}
		}
		time.Sleep(time.Duration(100+rng.Intn(300)) * time.Millisecond)
		check(step, action)
		if violations > 5 {
			t.Fatal("too many violations")
		}
	}
	t.Logf("model: %d S1 checks on up to %d nodes, %d violations", checks, started, violations)
	if checks == 0 {
		t.Error("the model checked nothing")
	}
}
