package gossip_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/internal/syncbuf"
	"github.com/evenkeel/evenkeel/schemasync"
)

// rawMember is a memberlist member that speaks no schemasync: the test sends hand-made gossip through it, as
// a peer that holds the gossip key and lies would.
type rawMember struct{ meta []byte }

func (m *rawMember) NodeMeta(int) []byte                 { return m.meta }
func (m *rawMember) NotifyMsg([]byte)                    {}
func (m *rawMember) GetBroadcasts(int, int) [][]byte     { return nil }
func (m *rawMember) LocalState(bool) []byte              { return nil }
func (m *rawMember) MergeRemoteState(buf []byte, _ bool) {}

// recorder counts the requests it serves, and answers body.
type recorder struct {
	n    atomic.Int64
	body string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.n.Add(1)
	_, _ = io.WriteString(w, r.body)
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestClusterHostilePeer: a member that holds the gossip key sends digests with out-of-range ages and
// sequence numbers, and digests that name a URL to fetch content from. The node rejects the first and counts
// them, never sends a request to a URL a message names, and fetches content only from the sending member's
// advertised API. What the member may say about an endpoint cannot make a version safe that the node's own
// scans did not confirm.
func TestClusterHostilePeer(t *testing.T) {
	const title = "mediawiki/page/change"
	_, eps := startHosts(t, 1)
	reg := prometheus.NewRegistry()
	n0 := startNode(t, "node0", eps, nil, nodeOpts{reg: reg})
	if err := n0.svc.ScanOnce(t.Context()); err != nil {
		t.Fatal(err)
	}

	lie := map[string][]schemasync.Version{title: {schemasync.MustParseVersion("9.9.9")}}
	lieBody, _ := json.Marshal(lie)
	ssrf := &recorder{body: string(lieBody)}
	ssrfSrv := httptest.NewServer(ssrf)
	t.Cleanup(ssrfSrv.Close)
	api := &recorder{body: string(lieBody)}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	meta, _ := json.Marshal(map[string]string{"api": apiSrv.URL})
	evil, evilLive := joinRawMember(t, "evil", &rawMember{meta: meta}, n0.cluster.Addr())
	var target *memberlist.Node
	eventually(t, 10*time.Second, "node0 sees the member", func() bool {
		for _, m := range evilLive.copies() {
			if m.Name == "node0" {
				target = &m
			}
		}
		return target != nil && strings.Contains(fmt.Sprint(n0.cluster.Members()), "evil")
	})
	send := func(age uint64, m map[string]any) {
		t.Helper()
		body, _ := json.Marshal(m)
		msg := make([]byte, 8, 8+len(body))
		binary.BigEndian.PutUint64(msg, age)
		if err := evil.SendBestEffort(target, append(msg, body...)); err != nil {
			t.Fatal(err)
		}
	}
	seq := uint64(time.Now().UnixNano())
	dg := func(observer, hash, errText string) map[string]any {
		seq++
		d := map[string]any{"o": observer, "r": "primary", "e": eps[0], "s": seq, "a": 0}
		if hash != "" {
			d["h"] = hash
		} else {
			d["x"] = errText
		}
		return d
	}
	// Ages that would date an observation in the future or overflow a time.Duration, and a sequence number
	// that would freeze the observer's slot.
	send(1<<62, map[string]any{"from": "evil", "d": dg("frozen1", "", "down")})
	send(math.MaxUint64, map[string]any{"from": "evil", "d": dg("frozen2", "", "down")})
	far := dg("frozen3", "", "down")
	far["s"] = uint64(math.MaxUint64)
	send(0, map[string]any{"from": "evil", "d": far})
	// A digest that names a URL ("src", the old wire format) and a sender that is no member.
	hash := schemasync.ContentHash(lie)
	ghostHash := schemasync.ContentHash(map[string][]schemasync.Version{title: {schemasync.MustParseVersion("8.8.8")}})
	send(0, map[string]any{"from": "ghost", "src": ssrfSrv.URL, "d": dg("liar1", ghostHash, "")})
	// The member's own digest: its content comes from its advertised API.
	send(0, map[string]any{"from": "evil", "src": ssrfSrv.URL, "d": dg("liar2", hash, "")})

	eventually(t, 10*time.Second, "the out-of-range digests are counted", func() bool {
		return counterValue(t, reg, "schemasync_gossip_rejected_total", "reason", "age") >= 2 &&
			counterValue(t, reg, "schemasync_gossip_rejected_total", "reason", "seq") >= 1
	})
	eventually(t, 10*time.Second, "the member's content is fetched from its advertised API", func() bool {
		return api.n.Load() >= 1
	})
	time.Sleep(200 * time.Millisecond)
	if ssrf.n.Load() != 0 {
		t.Fatalf("%d requests went to a URL that a gossip message named", ssrf.n.Load())
	}
	for _, e := range n0.svc.View().Endpoints {
		for _, o := range e.Observers {
			if strings.HasPrefix(o.Node, "frozen") || o.Node == "liar1" {
				t.Errorf("the state holds a rejected observation: %+v", o)
			}
		}
	}
	if s := safeOf(n0, title); s == "9.9.9" {
		t.Fatal("a peer's lie made 9.9.9 safe")
	}
}

// gossipLiar is a member that holds the gossip key and lies with out-of-range numbers: it claims that an
// endpoint serves every version there could be, in digests whose age is in the future or absurd, or whose
// sequence number is far ahead. Accepted, such a digest would keep the endpoint "known" forever.
type gossipLiar struct {
	t    *testing.T
	ml   *memberlist.Memberlist
	live *liveNodes
	seq  uint64
	n    int
}

func newGossipLiar(t *testing.T, fn *faultNet, seed string) *gossipLiar {
	t.Helper()
	all := map[string][]schemasync.Version{}
	for _, title := range []string{"a/x", "b/y/z"} {
		for m := 0; m <= 500; m++ {
			all[title] = append(all[title], schemasync.MustParseVersion(fmt.Sprintf("1.%d.0", m)))
		}
	}
	body, _ := json.Marshal(all)
	api := httptest.NewServer(&recorder{body: string(body)})
	t.Cleanup(api.Close)
	p := newHostilePeer(t, fn, "liar", api.URL, seed)
	return &gossipLiar{t: t, ml: p.ml, live: p.live, seq: uint64(time.Now().UnixNano()), n: 0}
}

// liveNodes keeps copies of the live members' nodes, taken in memberlist's event callbacks (under its lock):
// sending to the *Node that Members() returns races with memberlist rewriting it.
type liveNodes struct {
	mu    sync.Mutex
	nodes map[string]memberlist.Node
}

func (l *liveNodes) NotifyJoin(n *memberlist.Node)   { l.mu.Lock(); l.nodes[n.Name] = *n; l.mu.Unlock() }
func (l *liveNodes) NotifyUpdate(n *memberlist.Node) { l.NotifyJoin(n) }
func (l *liveNodes) NotifyLeave(n *memberlist.Node) {
	l.mu.Lock()
	delete(l.nodes, n.Name)
	l.mu.Unlock()
}

func (l *liveNodes) copies() []memberlist.Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]memberlist.Node, 0, len(l.nodes))
	for _, n := range l.nodes {
		out = append(out, n)
	}
	return out
}

// lie sends one out-of-range digest about endpoint to every member.
func (l *gossipLiar) lie(endpoint string) {
	l.seq++
	l.n++
	all := map[string][]schemasync.Version{}
	for _, title := range []string{"a/x", "b/y/z"} {
		for m := 0; m <= 500; m++ {
			all[title] = append(all[title], schemasync.MustParseVersion(fmt.Sprintf("1.%d.0", m)))
		}
	}
	d := map[string]any{"o": fmt.Sprintf("liar%d", l.n%3), "r": "primary", "e": endpoint, "s": l.seq,
		"h": schemasync.ContentHash(all)}
	age := uint64(math.MaxUint64 - 5000) // 5 s in the future
	switch l.n % 3 {
	case 1:
		age = 1 << 62 // overflows a time.Duration
	case 2:
		age, d["s"] = 0, uint64(math.MaxUint64)-uint64(l.n) // a sequence number no real scan reaches
	}
	body, _ := json.Marshal(map[string]any{"from": "liar", "d": d})
	msg := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint64(msg, age)
	msg = append(msg, body...)
	for _, m := range l.live.copies() {
		if m.Name != "liar" {
			_ = l.ml.SendBestEffort(&m, msg)
		}
	}
}

// TestClusterGarbagePackets: a flood of garbage UDP packets at a node's gossip port is counted in
// schemasync_memberlist_problems_total and logged a line or two, not a line each.
func TestClusterGarbagePackets(t *testing.T) {
	_, eps := startHosts(t, 1)
	reg := prometheus.NewRegistry()
	var logs syncbuf.Buffer
	n0 := startNode(t, "node0", eps, nil, nodeOpts{reg: reg, log: &logs})
	conn, err := net.Dial("udp", n0.cluster.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 500; i++ {
		_, _ = conn.Write([]byte(fmt.Sprintf("\xff\x00garbage %d", i)))
	}
	eventually(t, 10*time.Second, "the garbage is counted", func() bool {
		return counterValue(t, reg, "schemasync_memberlist_problems_total", "level", "error") >= 400
	})
	if n := strings.Count(logs.String(), "level=ERROR"); n > 3 {
		t.Fatalf("%d ERROR lines for 500 garbage packets:\n%.2000s", n, logs.String())
	}
}
