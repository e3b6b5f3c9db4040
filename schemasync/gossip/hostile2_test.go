package gossip_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/schemasync"
	"github.com/evenkeel/evenkeel/schemasync/gossip"
)

// hostilePeer is a member that holds the gossip key (there is none here) and speaks hand-made gossip over
// real loopback sockets, advertising api as its API.
type hostilePeer struct {
	t    *testing.T
	name string
	ml   *memberlist.Memberlist
	live *liveNodes
	seq  uint64
}

// newHostilePeer starts the peer on fn (nil: real UDP and TCP on 127.0.0.1) and joins seed.
func newHostilePeer(t *testing.T, fn *faultNet, name, api, seed string) *hostilePeer {
	t.Helper()
	meta, _ := json.Marshal(map[string]string{"api": api})
	mc := memberlist.DefaultLANConfig()
	mc.Name, mc.BindAddr, mc.BindPort = name, "127.0.0.1", 0
	if fn != nil {
		mc.Transport = fn.transport(name)
		fn.registerAPI(api, name)
	}
	mc.Delegate = &rawMember{meta: meta}
	live := &liveNodes{nodes: map[string]memberlist.Node{}}
	mc.Events = live
	mc.LogOutput = io.Discard
	mc.GossipInterval, mc.ProbeInterval, mc.PushPullInterval = 50*time.Millisecond, 200*time.Millisecond, time.Second
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	if _, err := ml.Join([]string{seed}); err != nil {
		t.Fatal(err)
	}
	return &hostilePeer{t: t, name: name, ml: ml, live: live, seq: uint64(time.Now().UnixNano())}
}

// waitFor waits until the peer and every node know each other.
func (p *hostilePeer) waitFor(nodes ...*testNode) {
	p.t.Helper()
	eventually(p.t, 10*time.Second, p.name+" and the nodes know each other", func() bool {
		seen := map[string]bool{}
		for _, n := range p.live.copies() {
			seen[n.Name] = true
		}
		for _, n := range nodes {
			if !seen[n.name] || memberState(n, p.name) != "alive" {
				return false
			}
		}
		return true
	})
}

// send sends one broadcast message straight to every member.
func (p *hostilePeer) send(age uint64, m map[string]any) {
	p.t.Helper()
	for _, n := range p.live.copies() {
		if n.Name != p.name {
			p.sendTo(n.Name, age, m)
		}
	}
}

// digest is a well-formed digest of a successful scan of endpoint with content hash.
func (p *hostilePeer) digest(observer, endpoint, hash string) map[string]any {
	p.seq++
	return map[string]any{"o": observer, "r": "primary", "e": endpoint, "s": p.seq, "h": hash, "a": 0}
}

func memberState(n *testNode, name string) string {
	for _, m := range n.cluster.Members() {
		if m.Name == name {
			return m.State
		}
	}
	return ""
}

func randomHash(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// stuckAPI answers no request until the test ends (or the client gives up), and records how many it holds at
// once.
type stuckAPI struct {
	release       chan struct{}
	now, max, all atomic.Int64
}

func (s *stuckAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.all.Add(1)
	n := s.now.Add(1)
	defer s.now.Add(-1)
	for {
		m := s.max.Load()
		if n <= m || s.max.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-s.release:
	case <-r.Context().Done():
	}
}

// newStuckPeer starts a hostile member "evil" whose API never answers, known to every node.
func newStuckPeer(t *testing.T, nodes []*testNode) (*hostilePeer, *stuckAPI) {
	t.Helper()
	api := &stuckAPI{release: make(chan struct{})}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(api.release) }) // runs first: the server can close
	evil := newHostilePeer(t, nil, "evil", srv.URL, nodes[0].cluster.Addr())
	evil.waitFor(nodes...)
	return evil, api
}

// TestHostileSlowAPIDoesNotStallGossip: a member advertises an API that never answers and floods digests that
// each name a distinct content, more than its fetch queue holds (the rest are dropped and counted). The fetches of that content are bounded per member, so the other members'
// digests are still applied at once: a rollout that only node0 scans reaches node1 while the hostile fetches
// hang. On main every worker waited on the hostile API (10 s a digest), and node1 learned nothing for a
// minute.
func TestHostileSlowAPIDoesNotStallGossip(t *testing.T) {
	repos, eps := startHosts(t, 1)
	scanFrom := map[string][]string{eps[0]: {"node0"}}
	reg := prometheus.NewRegistry()
	nodes := startCluster(t, 2, eps, false, func(i int) nodeOpts {
		if i == 1 {
			return nodeOpts{scanFrom: scanFrom, reg: reg}
		}
		return nodeOpts{scanFrom: scanFrom}
	})
	ctx := context.Background()
	if err := nodes[0].svc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "node1 sees 1.1.0", func() bool { return safeOf(nodes[1], faultTitle) == "1.1.0" })

	evil, api := newStuckPeer(t, nodes)
	const flood = 400 // more than a member's fetch queue holds
	for i := 0; i < flood; i++ {
		evil.send(0, map[string]any{"from": "evil", "d": evil.digest(fmt.Sprintf("evil%d", i), eps[0], randomHash(t))})
	}
	eventually(t, 10*time.Second, "node1 fetches from the hostile API", func() bool { return api.all.Load() > 0 })

	rollout(repos, "1.2.0")
	if err := nodes[0].svc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "node1 sees node0's 1.2.0 while the hostile fetches hang", func() bool {
		return safeOf(nodes[1], faultTitle) == "1.2.0"
	})
	if m := api.max.Load(); m > int64(len(nodes)) {
		t.Errorf("%d fetches from one member's API at once by %d nodes, want at most one each", m, len(nodes))
	}
	eventually(t, 10*time.Second, "the digests past the member's fetch queue are dropped and counted", func() bool {
		return gaugeOrCounter(t, reg, "schemasync_gossip_dropped_total") > 0
	})
}

// TestHostileLeaveAnnouncements: a member that holds the key announces that other members leave, and
// announces the departure of a flood of names that are no members. Neither grows the node's memory (on main
// every name was kept), and a member that crashes later is shown (and redialled) as dead, not as having
// left on purpose (on main it showed "left" and was never redialled after a partition).
func TestHostileLeaveAnnouncements(t *testing.T) {
	_, eps := startHosts(t, 1)
	fn := newFaultNet(11)
	nodes := startCluster(t, 2, eps, false, same(nodeOpts{net: fn}))
	evil := newHostilePeer(t, fn, "evil", "http://127.0.0.1:1", nodes[0].cluster.Addr())
	evil.waitFor(nodes...)
	for i := 0; i < 2000; i++ {
		evil.send(0, map[string]any{"from": "evil", "leave": randomHash(t) + randomHash(t)})
	}
	evil.send(0, map[string]any{"from": "evil", "leave": "node1"})
	evil.send(0, map[string]any{"from": "node1", "leave": "node1"})
	eventually(t, 10*time.Second, "node0 has received the announcements", func() bool {
		return nodes[0].cluster.LeavingMarks() > 0
	})
	if n := nodes[0].cluster.LeavingMarks(); n > 1 {
		t.Errorf("node0 holds %d leave marks, after announcements for names that are no members", n)
	}
	// A real departure follows its announcement at once; this one comes long after.
	time.Sleep(gossip.LeaveMarkTTL(50*time.Millisecond) + 500*time.Millisecond)
	nodes[1].kill() // its transport stops without a word: a crash, for the others
	eventually(t, 20*time.Second, "node0 sees node1 gone", func() bool { return memberState(nodes[0], "node1") != "alive" })
	if s := memberState(nodes[0], "node1"); s != "dead" {
		t.Errorf("node1 crashed, and node0 shows it %q, want dead", s)
	}
}

// TestHostileImpersonation: a member that holds the key sends a digest in the name of node0, the only
// scanner of the endpoint, numbered an hour ahead, with content that adds 9.9.9. Gossip carries no
// signature, so node1 may believe it for a while: that is what a key holder can do. It cannot make the lie
// last: node0 hears its own name with the higher number, continues its numbering above it, and its next
// scan replaces the lie everywhere.
func TestHostileImpersonation(t *testing.T) {
	_, eps := startHosts(t, 1)
	scanFrom := map[string][]string{eps[0]: {"node0"}}
	nodes := startCluster(t, 2, eps, true, same(nodeOpts{scanFrom: scanFrom, interval: 200 * time.Millisecond, stale: 5 * time.Second}))
	eventually(t, 10*time.Second, "node1 sees 1.1.0", func() bool { return safeOf(nodes[1], faultTitle) == "1.1.0" })

	lie := map[string][]schemasync.Version{faultTitle: {schemasync.MustParseVersion("1.0.0"),
		schemasync.MustParseVersion("1.1.0"), schemasync.MustParseVersion("9.9.9")}}
	body, _ := json.Marshal(lie)
	api := &contentAPI{byHash: map[string]http.HandlerFunc{schemasync.ContentHash(lie): rawJSON(body)}, requests: map[string]int{}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	evil := newHostilePeer(t, nil, "evil", srv.URL, nodes[0].cluster.Addr())
	evil.waitFor(nodes...)
	d := evil.digest("node0", eps[0], schemasync.ContentHash(lie))
	d["s"] = uint64(time.Now().Add(time.Hour).UnixNano())
	evil.send(0, map[string]any{"from": "evil", "d": d})
	eventually(t, 10*time.Second, "node1 fetched the lie", func() bool {
		api.mu.Lock()
		defer api.mu.Unlock()
		return len(api.requests) > 0
	})
	believed := false
	eventually(t, 10*time.Second, "node0's next scans replace the lie on node1", func() bool {
		s := safeOf(nodes[1], faultTitle)
		believed = believed || s == "9.9.9"
		return s == "1.1.0" && safeOf(nodes[0], faultTitle) == "1.1.0"
	})
	t.Logf("node1 answered the lie for a while: %v", believed)
	// and it stays replaced: node1 takes node0's scans again
	time.Sleep(time.Second)
	if s := safeOf(nodes[1], faultTitle); s != "1.1.0" {
		t.Fatalf("node1 answers %q after node0's scans", s)
	}
}

// TestHostileAPIElsewhere: a member that gossips from 127.0.0.1 advertises its API on another host. The
// node never fetches from it (it shows the member without an API), so no message can make it send a
// request to a machine that is not a member's. On main the advertised URL was used as it came.
func TestHostileAPIElsewhere(t *testing.T) {
	_, eps := startHosts(t, 1)
	n0 := startNode(t, "node0", eps, nil, nodeOpts{})
	evil := newHostilePeer(t, nil, "evil", "http://192.0.2.1:8190/", n0.cluster.Addr())
	evil.waitFor(n0)
	for _, m := range n0.cluster.Members() {
		if m.Name == "evil" && m.API != "" {
			t.Fatalf("node0 would fetch content from %s for a member at %s", m.API, m.Address)
		}
	}
}

// statefulMember is a rawMember whose push/pull state is state.
type statefulMember struct {
	rawMember
	state []byte
}

func (m *statefulMember) LocalState(bool) []byte { return m.state }

// TestHostileHeldVersions: while an endpoint is down a node holds no safe version (it has never seen every
// endpoint). A member whose repository has another endpoint set pushes a held 9.9.9, and so does one that
// names a title no scan produces: the node adopts neither. Adoption is for a node that restarted during an
// outage, from peers with the same endpoints only.
func TestHostileHeldVersions(t *testing.T) {
	_, up := startHosts(t, 1)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	eps := []string{up[0], down.URL + "/repositories/primary/jsonschema/"}
	n0 := startNode(t, "node0", eps, nil, nodeOpts{})
	if err := n0.svc.ScanOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s, _, stale := view(n0); s != "" || !stale {
		t.Fatalf("with an endpoint down from the start: safe %q, stale %v; want none, stale", s, stale)
	}
	push := func(name string, held []map[string]string, sets map[string]string) {
		t.Helper()
		state, _ := json.Marshal(map[string]any{"node": name, "held": held, "sets": sets})
		mc := memberlist.DefaultLANConfig()
		mc.Name, mc.BindAddr, mc.BindPort = name, "127.0.0.1", 0
		mc.Delegate = &statefulMember{rawMember: rawMember{meta: []byte(`{"api":"http://127.0.0.1:1"}`)}, state: state}
		mc.LogOutput = io.Discard
		ml, err := memberlist.Create(mc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ml.Shutdown() })
		if _, err := ml.Join([]string{n0.cluster.Addr()}); err != nil { // a join is a push/pull
			t.Fatal(err)
		}
	}
	other := schemasync.EndpointSetHash([]string{eps[0], "http://elsewhere/repositories/primary/jsonschema/"})
	same := schemasync.EndpointSetHash(eps)
	push("other-set", []map[string]string{{"r": "primary", "t": faultTitle, "v": "9.9.9"}}, map[string]string{"primary": other})
	push("bad-title", []map[string]string{{"r": "primary", "t": "a/../" + faultTitle, "v": "9.9.9"}}, map[string]string{"primary": same})
	push("no-set", []map[string]string{{"r": "primary", "t": faultTitle, "v": "9.9.9"}}, nil)
	eventually(t, 10*time.Second, "node0 knows the three members", func() bool {
		return memberState(n0, "other-set") == "alive" && memberState(n0, "bad-title") == "alive" && memberState(n0, "no-set") == "alive"
	})
	// The control: a peer with the same endpoints, for another title. Once it is adopted, so would the
	// others have been (the workers adopt in the order the pushes came, bar the last few milliseconds).
	push("same-set", []map[string]string{{"r": "primary", "t": "test/event", "v": "9.9.9"}}, map[string]string{"primary": same})
	eventually(t, 10*time.Second, "node0 adopts the held version of a peer with the same endpoints", func() bool {
		sv, ok := n0.svc.View().Schema("primary", "test/event")
		return ok && sv.SafeVersion != nil
	})
	time.Sleep(100 * time.Millisecond)
	if s, _, _ := view(n0); s != "" {
		t.Errorf("node0 adopted %s %s from a peer it must not adopt from", faultTitle, s)
	}
}

// TestHostileHashRace: content hashes are predictable (a rollout's new content is known in advance). A
// member that holds the key announces the hash of the content node0 is about to scan, first, from an API that
// never answers. node0's own digest, fetched from node0, must not wait for that fetch. On main every digest
// with that hash waited for it (10 s, the fetch timeout), and the rollout reached node1 that late.
func TestHostileHashRace(t *testing.T) {
	repos, eps := startHosts(t, 1)
	scanFrom := map[string][]string{eps[0]: {"node0"}}
	nodes := startCluster(t, 2, eps, false, same(nodeOpts{scanFrom: scanFrom}))
	ctx := context.Background()
	if err := nodes[0].svc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "node1 sees 1.1.0", func() bool { return safeOf(nodes[1], faultTitle) == "1.1.0" })

	evil, api := newStuckPeer(t, nodes)
	rollout(repos, "1.2.0")
	next := map[string][]schemasync.Version{}
	for _, title := range repos[0].Titles() {
		for _, v := range repos[0].Versions(title) {
			next[title] = append(next[title], schemasync.MustParseVersion(v))
		}
	}
	evil.send(0, map[string]any{"from": "evil", "d": evil.digest("evil", eps[0], schemasync.ContentHash(next))})
	eventually(t, 10*time.Second, "node1 fetches the announced hash from the hostile API", func() bool { return api.all.Load() > 0 })
	if err := nodes[0].svc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "node1 sees node0's 1.2.0 while the hostile fetch of the same hash hangs", func() bool {
		return safeOf(nodes[1], faultTitle) == "1.2.0"
	})
}

// sendTo sends one broadcast message (the 8-byte age, then m as JSON) straight to the member name only.
func (p *hostilePeer) sendTo(name string, age uint64, m map[string]any) {
	p.t.Helper()
	body, _ := json.Marshal(m)
	msg := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint64(msg, age)
	msg = append(msg, body...)
	for _, n := range p.live.copies() {
		if n.Name == name {
			if err := p.ml.SendBestEffort(&n, msg); err != nil {
				p.t.Fatal(err)
			}
			return
		}
	}
	p.t.Fatalf("%s is no member %s knows", name, p.name)
}

// TestHostileConflictingTwins: a member that holds the key sends node0 and node1 two digests of one
// observer with one sequence number and different content. Every node keeps the same one (the outcome that
// sorts first), so the nodes' answers agree again. On main each kept the one it got first, and their answers
// differed for as long as the observation was kept (an hour and more).
func TestHostileConflictingTwins(t *testing.T) {
	_, eps := startHosts(t, 1)
	scanFrom := map[string][]string{eps[0]: {"node0"}}
	nodes := startCluster(t, 2, eps, false, same(nodeOpts{scanFrom: scanFrom}))
	if err := nodes[0].svc.ScanOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "node1 sees 1.1.0", func() bool { return safeOf(nodes[1], faultTitle) == "1.1.0" })
	v := schemasync.MustParseVersion
	a := map[string][]schemasync.Version{faultTitle: {v("1.0.0")}}
	b := map[string][]schemasync.Version{faultTitle: {v("1.0.0"), v("1.1.0")}}
	api := &contentAPI{byHash: map[string]http.HandlerFunc{}, requests: map[string]int{}}
	for _, c := range []map[string][]schemasync.Version{a, b} {
		body, _ := json.Marshal(c)
		api.set(schemasync.ContentHash(c), rawJSON(body))
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	evil := newHostilePeer(t, nil, "evil", srv.URL, nodes[0].cluster.Addr())
	evil.waitFor(nodes...)
	da := evil.digest("twin", eps[0], schemasync.ContentHash(a))
	db := evil.digest("twin", eps[0], schemasync.ContentHash(b))
	db["s"] = da["s"]
	evil.sendTo("node0", 0, map[string]any{"from": "evil", "d": da})
	evil.sendTo("node1", 0, map[string]any{"from": "evil", "d": db})
	eventually(t, 10*time.Second, "both nodes hold the twin's observation", func() bool { return holds(nodes[0], "twin") && holds(nodes[1], "twin") })
	eventually(t, 15*time.Second, "node0 and node1 answer alike", func() bool {
		return safeOf(nodes[0], faultTitle) == safeOf(nodes[1], faultTitle)
	})
}
