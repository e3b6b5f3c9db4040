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

// The model's timings. Every node scans every scan interval and keeps using the listing cache for good (a full
// rescan never comes), so that only re-confirmation can notice a file that stopped answering GET behind an
// unchanged listing.
const (
	modelStale    = 1500 * time.Millisecond // max_staleness
	modelInterval = 150 * time.Millisecond  // scan_interval
	// modelSlack is all the check allows beyond max_staleness: a node dates another node's observation by
	// the age the sender wrote when it sent the digest, so the digest's one-way trip (in-memory here, but
	// through memberlist's queues on a loaded machine) makes the observation look younger by that much. The
	// run logs the largest lateness it saw.
	modelSlack = 250 * time.Millisecond
)

var modelTitles = []string{"a/x", "b/y/z"}

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

func newModelHost(t *testing.T) *modelHost {
	r := schemarepo.New()
	h := &modelHost{repo: r, handler: schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": r}), broken: map[string]bool{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/repositories/primary/jsonschema/"
	return h
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

// snapshot is what the host serves: nothing while it is down, else what its repository holds, less the
// broken files. Called with h.mu held.
func (h *modelHost) snapshot() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	if h.down.Load() {
		return out
	}
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

// change applies f to the host's contents or availability and records the history around it.
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

func (h *modelHost) setDown(down bool) { h.change(func() { h.down.Store(down) }) }

// serving reports whether the host serves title at version now.
func (h *modelHost) serving(title, version string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.history[len(h.history)-1].versions[title][version]
}

// lastServed is the latest moment, at most to, at which the host served title at version; zero if never.
func (h *modelHost) lastServed(title, version string, to time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var last time.Time
	for _, s := range h.history {
		if s.start.After(to) || !s.versions[title][version] {
			continue
		}
		end := s.end
		if end.IsZero() || end.After(to) {
			end = to
		}
		if end.After(last) {
			last = end
		}
	}
	return last
}

// TestModelS1 draws random rollouts, rollbacks, endpoint outages, node crashes and restarts, and partitions,
// for several seeds, and checks guarantee S1 on every live node after every step: a safe version reported as
// not stale was served by every endpoint within max_staleness (plus a digest's one-way trip, modelSlack); one
// reported as stale (held) was served by every endpoint at some time. A host that is down serves nothing.
// Before each episode below and at the end, every host answers again and the partitions heal, and then every
// node must report every schema fresh (S2), so that a change that only makes nodes give up, never wrong,
// fails too.
//
// Adversaries take part in every seed, in episodes at steps the seed chooses, each set up so that it
// matters: the file of a confirmed safe version stops answering GET behind an unchanged listing (HEAD still
// says 200) for longer than max_staleness, so that only a re-confirmation can notice, while the other
// title's next version reaches every host with its file answering HEAD but not GET on one; one host goes
// down while the next version reaches every other host; and a peer whose repository has another endpoint
// set (the first two hosts and one of its own, which serves every version) holds a version that the third
// host never served, when a node restarted during an outage of that third host learns the cluster from that
// peer alone. A peer that holds the gossip key sends digests with out-of-range ages and sequence numbers,
// claiming every version, before every check.
//
// A failure names its seed and step. Run one seed, or more random steps, by hand:
//
//	SCHEMASYNC_MODEL_SEED=7 SCHEMASYNC_MODEL_STEPS=40 go test -run TestModelS1 -v ./schemasync/gossip/
func TestModelS1(t *testing.T) {
	steps, seeds := 4, []int64{1, 2, 3}
	if s, err := strconv.Atoi(os.Getenv("SCHEMASYNC_MODEL_STEPS")); err == nil && s > 0 {
		steps = s
	}
	if s, err := strconv.ParseInt(os.Getenv("SCHEMASYNC_MODEL_SEED"), 10, 64); err == nil {
		seeds = []int64{s}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			m := newModel(t, seed)
			m.run(steps)
		})
	}
}

// model is one seed's run: the hosts, the nodes, and the ground truth.
type model struct {
	t     *testing.T
	seed  int64
	rng   *rand.Rand
	hosts []*modelHost // the endpoints every honest node scans
	extra *modelHost   // the other-set peer's own endpoint
	eps   []string
	// frontier is the highest minor version rolled out so far, per title.
	frontier map[string]int
	fn       *faultNet
	o        nodeOpts
	live     []*testNode
	started  int
	other    *testNode
	liar     *gossipLiar
	pinned   map[string]bool // url + "\x00" + title/version: broken by an episode, left alone by random steps

	step, checks, violations int
	t0                       time.Time // the run's start, for the step log
	// margin is the least time by which a host last served a version reported fresh within max_staleness,
	// over the reports whose host had stopped serving it (negative: that much beyond max_staleness).
	margin     time.Duration
	marginSeen bool
}

func newModel(t *testing.T, seed int64) *model {
	m := &model{t0: time.Now(), t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), frontier: map[string]int{},
		fn: newFaultNet(seed), pinned: map[string]bool{}}
	m.o = nodeOpts{net: m.fn, stale: modelStale, interval: modelInterval}
	for i := 0; i < 3; i++ {
		h := newModelHost(t)
		m.hosts = append(m.hosts, h)
		m.eps = append(m.eps, h.url)
	}
	m.extra = newModelHost(t)
	for _, h := range append([]*modelHost{m.extra}, m.hosts...) {
		h.change(func() {
			for _, title := range modelTitles {
				h.repo.Put(title, "1.0.0", schemarepo.Doc(title, "1.0.0"))
			}
		})
	}
	for i := 0; i < 4; i++ {
		m.start(false)
	}
	otherEps := []string{m.eps[0], m.eps[1], m.extra.url}
	oo := m.o
	oo.repos = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: otherEps}}
	m.other = m.startNode("other-config", otherEps, []string{m.live[0].cluster.Addr()}, oo)
	m.liar = newGossipLiar(t, m.fn, m.live[0].cluster.Addr())
	t.Logf("model: seed %d; rerun with SCHEMASYNC_MODEL_SEED=%d", seed, seed)
	m.await("every node reports every schema fresh after the start", m.allFresh)
	return m
}

// startNode starts a node whose listing cache is never bypassed by a full rescan.
func (m *model) startNode(name string, eps, seeds []string, o nodeOpts) *testNode {
	n := startNode(m.t, name, eps, seeds, o)
	cfg := n.svc.Config()
	cfg.Scan.FullRescanEvery = 1 << 30
	if err := n.svc.Reload(cfg); err != nil {
		m.t.Fatal(err)
	}
	n.run(m.t)
	return n
}

// start starts an honest node with an empty state, joining the live nodes or, with viaOther, only the
// other-set peer.
func (m *model) start(viaOther bool) *testNode {
	var seeds []string
	if viaOther {
		seeds = []string{m.other.cluster.Addr()}
	} else {
		for _, n := range m.live {
			seeds = append(seeds, n.cluster.Addr())
		}
	}
	n := m.startNode(fmt.Sprintf("node%d", m.started), m.eps, seeds, m.o)
	m.started++
	m.live = append(m.live, n)
	return n
}

// crash kills the i-th live node. Its cluster then leaves at once: with its transport gone that sends
// nothing, so to the others it is still a crash, and the test's cleanup does not wait for it.
func (m *model) crash(i int) string {
	n := m.live[i]
	n.kill()
	_ = n.cluster.Leave(time.Millisecond)
	m.live = append(m.live[:i], m.live[i+1:]...)
	return n.name
}

// run does steps random steps with the episodes among them, at steps the seed chooses, then checks that the
// cluster recovers.
func (m *model) run(steps int) {
	episodes := []func(){m.confirmedFileBreaks, m.outageRollout, m.restartViaOtherSet}
	at := make([]int, len(episodes)) // the number of random steps before each episode
	for i := range at {
		at[i] = m.rng.Intn(steps + 1)
	}
	for i := 0; i <= steps; i++ {
		if i > 0 {
			m.settle(m.randomStep())
		}
		for j, episode := range episodes {
			if at[j] == i {
				episode()
			}
		}
	}
	m.recover("at the end")
	m.settle("end")
	var wg sync.WaitGroup // the nodes leave together, not one by one in the test's cleanup
	for _, n := range append(m.live, m.other) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.cancel()
			_ = n.cluster.Leave(time.Second)
		}()
	}
	wg.Wait()
	m.t.Logf("model: seed %d, %d steps, %d S1 checks on up to %d nodes, %d violations", m.seed, m.step, m.checks,
		m.started, m.violations)
	if m.marginSeen {
		m.t.Logf("model: of the fresh safe versions whose host had stopped serving them, the closest call was "+
			"served last %s within max_staleness (the check allows down to -%s)", m.margin, modelSlack)
	}
	if m.checks == 0 {
		m.t.Error("the model checked nothing")
	}
}

// settle lets the nodes work on the step's action for a random while, with the gossip liar lying about every
// endpoint, and checks S1.
func (m *model) settle(action string) {
	m.step++
	for i := range m.eps {
		m.liar.lie(m.eps[(i+m.step)%len(m.eps)]) // the order turns, so each endpoint gets each kind of lie
	}
	time.Sleep(time.Duration(80+m.rng.Intn(220)) * time.Millisecond)
	m.t.Logf("step %d (+%s): %s", m.step, time.Since(m.t0).Round(time.Millisecond), action)
	m.check(action)
	if m.violations > 5 {
		m.t.Fatalf("seed %d: too many violations (rerun with SCHEMASYNC_MODEL_SEED=%d)", m.seed, m.seed)
	}
}

// check checks S1 on every live node against the hosts' history.
func (m *model) check(action string) {
	now := time.Now()
	for _, n := range m.live {
		for _, sv := range n.svc.View().Schemas {
			if sv.SafeVersion == nil {
				continue
			}
			v := sv.SafeVersion.String()
			for _, h := range m.hosts {
				m.checks++
				last := h.lastServed(sv.Title, v, now)
				from := now.Add(-modelStale - modelSlack)
				if sv.Stale {
					from = time.Time{}
				} else if margin := last.Sub(now.Add(-modelStale)); !last.IsZero() && last.Before(now) && (!m.marginSeen || margin < m.margin) {
					m.margin, m.marginSeen = margin, true
				}
				if last.IsZero() || last.Before(from) {
					m.violations++
					since := "ever"
					if !from.IsZero() {
						since = "since " + from.Format(time.StampMilli)
					}
					m.t.Errorf("seed %d, step %d (%s): %s reports %s %s safe (stale=%v), but %s did not serve it %s",
						m.seed, m.step, action, n.name, sv.Title, v, sv.Stale, h.url, since)
				}
			}
		}
	}
}

// await waits until cond holds, and fails the seed's run, naming its step and what cond last saw, if it does
// not within 10 s.
func (m *model) await(what string, cond func() (bool, string)) {
	m.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("seed %d, step %d: timed out after 10s waiting until %s; last saw %s (rerun with SCHEMASYNC_MODEL_SEED=%d)",
				m.seed, m.step, what, saw, m.seed)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allFresh reports whether every live node reports every endpoint known and every schema fresh, and if not,
// what it saw.
func (m *model) allFresh() (bool, string) {
	for _, n := range m.live {
		v := n.svc.View()
		if len(v.Schemas) < len(modelTitles) {
			return false, fmt.Sprintf("%s reports %d schemas", n.name, len(v.Schemas))
		}
		for _, e := range v.Endpoints {
			if e.State != schemasync.EndpointOK {
				return false, fmt.Sprintf("%s: %s %s (%s)", n.name, e.URL, e.State, e.Reason)
			}
		}
		for _, sv := range v.Schemas {
			if sv.Stale {
				return false, fmt.Sprintf("%s: %s stale %v", n.name, sv.Title, sv.Reasons)
			}
		}
	}
	return true, ""
}

// viewOf describes n's answer for title.
func viewOf(n *testNode, title string) string {
	sv, ok := n.svc.View().Schema("primary", title)
	if !ok {
		return n.name + ": no " + title
	}
	return fmt.Sprintf("%s: %s safe %v stale %v dirty %v %v", n.name, title, sv.SafeVersion, sv.Stale, sv.Dirty, sv.Reasons)
}

// recover brings every host back, heals the partitions, and waits until every node reports every schema
// fresh: S2, liveness, which a change that only makes nodes give up (never wrong) fails.
func (m *model) recover(why string) {
	m.t.Helper()
	for _, h := range append([]*modelHost{m.extra}, m.hosts...) {
		if h.down.Load() {
			h.setDown(false)
		}
	}
	m.fn.heal()
	m.await("S2: with every host answering and no partition, every node reports every schema fresh "+why, m.allFresh)
}

// rollout rolls the next version of title out to hosts (and to the other-set peer's own host, which serves
// every version ever rolled out); with brokenOn, that host lists it but its file answers only HEAD.
func (m *model) rollout(title string, hosts []*modelHost, brokenOn *modelHost) string {
	m.frontier[title]++
	v := fmt.Sprintf("1.%d.0", m.frontier[title])
	for _, h := range append([]*modelHost{m.extra}, hosts...) {
		h.change(func() {
			h.repo.Put(title, v, schemarepo.Doc(title, v))
			if h == brokenOn {
				h.broken[title+"/"+v] = true
				m.pinned[h.url+"\x00"+title+"/"+v] = true
			}
		})
	}
	return v
}

func (m *model) randomStep() string {
	switch k := m.rng.Intn(12); {
	case k < 3: // roll a version out to one host: a new one, or the newest one to another host
		title := modelTitles[m.rng.Intn(len(modelTitles))]
		h := m.hosts[m.rng.Intn(len(m.hosts))]
		if m.rng.Intn(2) == 0 {
			return fmt.Sprintf("%s gets new %s %s", h.url, title, m.rollout(title, []*modelHost{h}, nil))
		}
		v := fmt.Sprintf("1.%d.0", m.frontier[title])
		h.change(func() { h.repo.Put(title, v, schemarepo.Doc(title, v)) })
		return fmt.Sprintf("%s gets %s %s", h.url, title, v)
	case k < 4: // roll back one host's highest version
		title := modelTitles[m.rng.Intn(len(modelTitles))]
		h := m.hosts[m.rng.Intn(len(m.hosts))]
		if vs := h.repo.Versions(title); len(vs) > 1 {
			h.change(func() { h.repo.Remove(title, vs[len(vs)-1]) })
		}
		return fmt.Sprintf("%s rolls back %s", h.url, title)
	case k < 6: // an endpoint goes down or comes back
		h := m.hosts[m.rng.Intn(len(m.hosts))]
		h.setDown(!h.down.Load())
		return fmt.Sprintf("%s down=%v", h.url, h.down.Load())
	case k < 7: // a node crashes
		if len(m.live) > 2 {
			return "crash " + m.crash(m.rng.Intn(len(m.live)))
		}
		return "no crash: 2 nodes left"
	case k < 8: // a new node starts with an empty state, sometimes learning the cluster from the other-set peer
		if len(m.live) < 5 {
			viaOther := m.rng.Intn(3) == 0
			return fmt.Sprintf("start %s (via the other-set peer: %v)", m.start(viaOther).name, viaOther)
		}
		return "no start: 5 nodes live"
	case k < 10: // a version file stops answering GET (HEAD still says 200), or answers again
		title := modelTitles[m.rng.Intn(len(modelTitles))]
		h := m.hosts[m.rng.Intn(len(m.hosts))]
		vs := h.repo.Versions(title)
		key := title + "/" + vs[m.rng.Intn(len(vs))]
		if m.pinned[h.url+"\x00"+key] {
			return "no change: " + key + " is an episode's"
		}
		h.change(func() { h.broken[key] = !h.broken[key] })
		return fmt.Sprintf("%s: %s broken=%v", h.url, key, h.broken[key])
	default: // partition the nodes in two, or heal
		if m.rng.Intn(2) == 0 {
			var a, b []string
			for _, n := range m.live {
				if m.rng.Intn(2) == 0 {
					a = append(a, n.name)
				} else {
					b = append(b, n.name)
				}
			}
			m.fn.partition(a, b)
			return fmt.Sprintf("partition %v | %v", a, b)
		}
		m.fn.heal()
		return "heal"
	}
}

// headOnlyRollout: with every host answering, the next version of title reaches every host, but on one its
// file answers HEAD and not GET (the listing ran ahead of the file). It must not become safe.
func (m *model) headOnlyRollout(title string) {
	m.recover("before a HEAD-only rollout")
	h := m.hosts[m.rng.Intn(len(m.hosts))]
	v := m.rollout(title, m.hosts, h)
	action := fmt.Sprintf("episode HEAD-only file: %s %s on every host, answering only HEAD on %s", title, v, h.url)
	time.Sleep(2 * modelInterval) // every node has scanned it
	m.settle(action)
	m.settle(action)
}

// confirmedFileBreaks: once every node reports a schema fresh, the file of its safe version stops answering
// GET on one host (HEAD still 200, the listing unchanged), for longer than max_staleness. Only a
// re-confirmation sees it. Meanwhile the other title has a HEAD-only rollout.
func (m *model) confirmedFileBreaks() {
	m.recover("before a confirmed file breaks")
	i := m.rng.Intn(len(modelTitles))
	title, otherTitle := modelTitles[i], modelTitles[(i+1)%len(modelTitles)]
	v := m.servedEverywhere(title)
	if v == "" { // the random steps left no version of it on every host: roll one out
		v = m.rollout(title, m.hosts, nil)
		m.settle(fmt.Sprintf("episode file stops answering: %s %s on every host", title, v))
	}
	m.await(fmt.Sprintf("every node reports %s %s safe", title, v), func() (bool, string) {
		for _, n := range m.live {
			if safeOf(n, title) != v {
				return false, viewOf(n, title)
			}
		}
		return true, ""
	})
	h := m.hosts[m.rng.Intn(len(m.hosts))]
	key := title + "/" + v
	h.change(func() { h.broken[key] = true })
	m.pinned[h.url+"\x00"+key] = true
	broke := time.Now()
	m.headOnlyRollout(otherTitle)
	time.Sleep(time.Until(broke.Add(modelStale + modelSlack))) // and the settle's wait: past what the check allows
	m.settle(fmt.Sprintf("episode file stops answering: %s on %s answers GET 404 for longer than max_staleness", key, h.url))
}

// servedEverywhere is the highest version of title that every host serves now, or "".
func (m *model) servedEverywhere(title string) string {
	for i := m.frontier[title]; i >= 0; i-- {
		v := fmt.Sprintf("1.%d.0", i)
		everywhere := true
		for _, h := range m.hosts {
			everywhere = everywhere && h.serving(title, v)
		}
		if everywhere {
			return v
		}
	}
	return ""
}

// awaitUnknown waits until every live node reports h unknown: no node's latest observation of it, a crashed
// node's included, is a fresh success.
func (m *model) awaitUnknown(h *modelHost) {
	m.t.Helper()
	m.await("every node reports "+h.url+" unknown", func() (bool, string) {
		for _, n := range m.live {
			for _, e := range n.svc.View().Endpoints {
				if e.URL == h.url && e.State != schemasync.EndpointUnknown {
					return false, n.name + ": " + e.State
				}
			}
		}
		return true, ""
	})
}

// outageRollout: one host goes down and the next version reaches every other host. The safe version must not
// advance to it, nor may the gossip liar's claims about the down host count.
func (m *model) outageRollout() {
	x := m.hosts[m.rng.Intn(len(m.hosts))]
	m.recover("before an outage")
	x.setDown(true)
	m.awaitUnknown(x)
	var rest []*modelHost
	for _, h := range m.hosts {
		if h != x {
			rest = append(rest, h)
		}
	}
	title := modelTitles[m.rng.Intn(len(modelTitles))]
	action := fmt.Sprintf("episode outage: %s %s on every host but %s", title, m.rollout(title, rest, nil), x.url)
	time.Sleep(2 * modelInterval)
	m.settle(action)
	m.settle(action)
}

// restartViaOtherSet: a version reaches the first two hosts (and the other-set peer's own), not the third;
// then the peer's own host and the third host go down, so that the peer holds that version and the honest
// nodes hold an older one. A node restarts and learns the cluster from the peer: it must not adopt the
// peer's held version, which the third host never served.
func (m *model) restartViaOtherSet() {
	m.recover("before the other-set episode")
	title := modelTitles[m.rng.Intn(len(modelTitles))]
	v := m.rollout(title, m.hosts[:2], nil)
	m.await(fmt.Sprintf("the other-set peer reports %s %s safe", title, v), func() (bool, string) {
		return safeOf(m.other, title) == v, viewOf(m.other, title)
	})
	m.extra.setDown(true)
	m.hosts[2].setDown(true)
	m.awaitUnknown(m.hosts[2])
	m.await(fmt.Sprintf("the other-set peer holds %s %s", title, v), func() (bool, string) {
		sv, ok := m.other.svc.View().Schema("primary", title)
		return ok && sv.Stale && sv.SafeVersion != nil && sv.SafeVersion.String() == v, viewOf(m.other, title)
	})
	crashed := "nobody"
	if len(m.live) > 2 {
		crashed = m.crash(m.rng.Intn(len(m.live)))
	}
	n := m.start(true)
	m.await(n.name+" is ready", func() (bool, string) { return n.svc.Ready(), "not ready" })
	action := fmt.Sprintf("episode other set: crash %s, start %s joining only the peer, which holds %s %s", crashed, n.name, title, v)
	time.Sleep(2 * modelInterval)
	m.settle(action)
	m.settle(action)
}
