package gossip_test

import (
	"encoding/binary"
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
)

// counterTotal is the sum of every series of the counter or histogram (its count) name in reg.
func counterTotal(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				sum += float64(h.GetSampleCount())
			} else {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// stateMember is a raw memberlist member (it speaks no schemasync) that advertises api and, in its first
// push/pull only, sends state.
type stateMember struct {
	rawMember
	state []byte
	sent  atomic.Bool
}

func (m *stateMember) LocalState(bool) []byte {
	if m.sent.Swap(true) {
		return []byte(`{"node":"flood","digests":[]}`)
	}
	return m.state
}

// joinRawMember starts a memberlist member named name with delegate d on 127.0.0.1, joined to seed, and
// returns it with copies of the live members it knows.
func joinRawMember(t *testing.T, name string, d memberlist.Delegate, seed string) (*memberlist.Memberlist, *liveNodes) {
	t.Helper()
	mc := memberlist.DefaultLANConfig()
	mc.Name, mc.BindAddr, mc.BindPort = name, "127.0.0.1", 0
	mc.Delegate = d
	live := &liveNodes{nodes: map[string]memberlist.Node{}}
	mc.Events = live
	mc.LogOutput = io.Discard
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	if _, err := ml.Join([]string{seed}); err != nil {
		t.Fatal(err)
	}
	return ml, live
}

// TestGossipFloodDroppedAndCounted: a member that holds the gossip key floods a node (one push/pull of 6,000
// digests whose content its API never sends). What exceeds that member's fetch queue is dropped and counted
// in schemasync_gossip_dropped_total, and the flood delays no one else: the scanner's next observation
// reaches the node while the flooding member's API still holds its fetch. Once that API answers (404), the
// failed fetch is counted in schemasync_content_fetch_errors_total. Real memberlist on 127.0.0.1.
func TestGossipFloodDroppedAndCounted(t *testing.T) {
	repos, eps := startHosts(t, 1)
	scanFrom := map[string][]string{eps[0]: {"node0"}}
	n0 := startNode(t, "node0", eps, nil, nodeOpts{scanFrom: scanFrom})
	reg := prometheus.NewRegistry()
	n1 := startNode(t, "node1", eps, []string{n0.cluster.Addr()}, nodeOpts{scanFrom: scanFrom, reg: reg})
	if err := n0.svc.ScanOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "node1 sees node0's scan", func() bool { return safeOf(n1, faultTitle) == "1.1.0" })

	release := make(chan struct{})
	var fetches atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(api.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	const flood = 6000
	seq := uint64(time.Now().UnixNano())
	digests := make([]map[string]any, flood)
	for i := range digests {
		digests[i] = map[string]any{"o": fmt.Sprintf("flood%d", i), "r": "primary", "e": eps[0], "s": seq + uint64(i),
			"h": fmt.Sprintf("%032x", i), "a": 0}
	}
	state, _ := json.Marshal(map[string]any{"node": "flood", "digests": digests})
	meta, _ := json.Marshal(map[string]string{"api": api.URL})
	ml, _ := joinRawMember(t, "flood", &stateMember{rawMember: rawMember{meta: meta}, state: state}, n1.cluster.Addr())
	eventually(t, 10*time.Second, "node1 drops the flood beyond the member's fetch queue", func() bool {
		return counterTotal(t, reg, "schemasync_gossip_dropped_total") >= flood/2 && fetches.Load() > 0
	})

	rollout(repos, "1.2.0")
	if err := n0.svc.ScanOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "node0's new observation reaches node1 while the flood's fetch hangs", func() bool {
		return safeOf(n1, faultTitle) == "1.2.0"
	})
	close(release)
	if err := ml.Leave(time.Second); err != nil {
		t.Log(err)
	}
	_ = ml.Shutdown()
	eventually(t, 10*time.Second, "the flood's failed fetch is counted", func() bool {
		return counterTotal(t, reg, "schemasync_content_fetch_errors_total") >= 1
	})
}

// TestContentFetchErrorsCounted: a member that holds the gossip key sends a digest whose content, fetched from
// its advertised API, does not match the digest's hash. The node rejects the content, counts it in
// schemasync_content_fetch_errors_total, and holds no observation by that observer. Real memberlist on
// 127.0.0.1.
func TestContentFetchErrorsCounted(t *testing.T) {
	_, eps := startHosts(t, 1)
	reg := prometheus.NewRegistry()
	n0 := startNode(t, "node0", eps, nil, nodeOpts{reg: reg})
	if err := n0.svc.ScanOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	served := map[string][]schemasync.Version{faultTitle: {schemasync.MustParseVersion("9.9.9")}}
	claimed := map[string][]schemasync.Version{faultTitle: {schemasync.MustParseVersion("1.1.0")}}
	body, _ := json.Marshal(served)
	api := &recorder{body: string(body)}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	meta, _ := json.Marshal(map[string]string{"api": apiSrv.URL})
	ml, live := joinRawMember(t, "liar", &rawMember{meta: meta}, n0.cluster.Addr())
	var target *memberlist.Node
	eventually(t, 10*time.Second, "the member and node0 know each other", func() bool {
		for _, m := range live.copies() {
			if m.Name == "node0" {
				target = &m
			}
		}
		return target != nil && len(n0.cluster.Members()) == 2
	})
	if before := counterTotal(t, reg, "schemasync_content_fetch_errors_total"); before != 0 {
		t.Fatalf("schemasync_content_fetch_errors_total = %v before any fetch", before)
	}
	d := map[string]any{"o": "liar", "r": "primary", "e": eps[0], "s": uint64(time.Now().UnixNano()),
		"h": schemasync.ContentHash(claimed), "a": 0}
	msg, _ := json.Marshal(map[string]any{"from": "liar", "d": d})
	msg = append(make([]byte, 8), msg...) // an age of 0
	binary.BigEndian.PutUint64(msg, 0)
	if err := ml.SendBestEffort(target, msg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the rejected content is counted", func() bool {
		return counterTotal(t, reg, "schemasync_content_fetch_errors_total") >= 1
	})
	if got := counterTotal(t, reg, "schemasync_content_fetch_errors_total"); got != 1 {
		t.Errorf("schemasync_content_fetch_errors_total = %v, want 1", got)
	}
	if api.n.Load() != 1 {
		t.Errorf("the member's API got %d requests, want 1", api.n.Load())
	}
	for _, e := range n0.svc.View().Endpoints {
		for _, o := range e.Observers {
			if o.Node == "liar" {
				t.Errorf("node0 holds the rejected observation: %+v", o)
			}
		}
	}
	if s := safeOf(n0, faultTitle); s != "1.1.0" {
		t.Errorf("node0 reports %q, want 1.1.0", s)
	}
}
