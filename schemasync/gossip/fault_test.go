package gossip_test

import (
	"context"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

const faultTitle = "mediawiki/page/change"

// cluster starts n nodes on net, all joining node0, each with its scan loop running.
func faultCluster(t *testing.T, fn *faultNet, n int, eps []string, o nodeOpts) []*testNode {
	t.Helper()
	o.net = fn
	return startCluster(t, n, eps, true, same(o))
}

func view(n *testNode) (safe string, dirty, stale bool) {
	sv, ok := n.svc.View().Schema("primary", faultTitle)
	if !ok {
		return "", false, false
	}
	if sv.SafeVersion != nil {
		safe = sv.SafeVersion.String()
	}
	return safe, sv.Dirty, sv.Stale
}

func allSee(nodes []*testNode, safe string, stale bool) func() bool {
	return func() bool {
		for _, n := range nodes {
			s, _, st := view(n)
			if s != safe || st != stale {
				return false
			}
		}
		return true
	}
}

func rollout(repos []*schemarepo.Repo, version string) {
	for _, r := range repos {
		r.Put(faultTitle, version, schemarepo.Doc(faultTitle, version))
	}
}

// TestFaultPartitionAndHeal: endpoint 0 is scanned only from side A, endpoint 1 only from side B. While
// partitioned, each side keeps serving, marks the endpoint it cannot see stale, and never advances the safe
// version past what it confirmed; after the heal, both sides agree again.
func TestFaultPartitionAndHeal(t *testing.T) {
	repos, eps := startHosts(t, 3)
	scanFrom := map[string][]string{eps[0]: {"node0", "node1"}, eps[1]: {"node2", "node3"}}
	fn := newFaultNet(1)
	nodes := faultCluster(t, fn, 4, eps, nodeOpts{scanFrom: scanFrom, stale: 2 * time.Second, interval: 200 * time.Millisecond})
	eventually(t, 15*time.Second, "all nodes see 1.1.0, fresh", allSee(nodes, "1.1.0", false))

	fn.partition([]string{"node0", "node1"}, []string{"node2", "node3"})
	rollout(repos, "1.2.0")
	eventually(t, 15*time.Second, "each side marks the other side's endpoint stale and holds 1.1.0", allSee(nodes, "1.1.0", true))
	for _, n := range nodes {
		if !n.svc.Ready() {
			t.Errorf("%s stopped serving during the partition", n.name)
		}
	}
	fn.heal()
	eventually(t, 20*time.Second, "after the heal every node sees 1.2.0, fresh", allSee(nodes, "1.2.0", false))
}

// TestFaultLongPartitionHeals: a partition that outlasts memberlist's gossip to the dead (shortened here to
// 1 s; 30 s by default) leaves each side believing the other dead, and memberlist alone would never contact
// the dead again. The rejoin loop dials them; after the heal the sides merge, and agree on a version that
// was rolled out while they were apart.
func TestFaultLongPartitionHeals(t *testing.T) {
	repos, eps := startHosts(t, 2)
	scanFrom := map[string][]string{eps[0]: {"node0", "node1"}, eps[1]: {"node2", "node3"}}
	fn := newFaultNet(5)
	nodes := faultCluster(t, fn, 4, eps, nodeOpts{scanFrom: scanFrom, stale: 5 * time.Second,
		interval: 200 * time.Millisecond, rejoin: 500 * time.Millisecond, deadTime: time.Second})
	eventually(t, 15*time.Second, "all nodes see 1.1.0", allSee(nodes, "1.1.0", false))
	alive := func(n *testNode) int {
		k := 0
		for _, m := range n.cluster.Members() {
			if m.State == "alive" {
				k++
			}
		}
		return k
	}
	eventually(t, 15*time.Second, "every node knows all 4", func() bool {
		for _, n := range nodes {
			if alive(n) != 4 {
				return false
			}
		}
		return true
	})
	fn.partition([]string{"node0", "node1"}, []string{"node2", "node3"})
	eventually(t, 20*time.Second, "each side believes the other dead", func() bool {
		for _, n := range nodes {
			if alive(n) != 2 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second) // past GossipToTheDeadTime: memberlist no longer contacts the other side
	rollout(repos, "1.2.0")
	fn.heal()
	eventually(t, 20*time.Second, "every node sees all 4 alive again", func() bool {
		for _, n := range nodes {
			if alive(n) != 4 {
				return false
			}
		}
		return true
	})
	eventually(t, 20*time.Second, "every node sees 1.2.0, fresh", allSee(nodes, "1.2.0", false))
}

// TestFaultKilledMidBroadcast: the only scanner queues its broadcasts and dies at once. The others keep what
// reached them, share it by push/pull, and, with no fresh scan coming, mark the endpoints stale in time.
func TestFaultKilledMidBroadcast(t *testing.T) {
	repos, eps := startHosts(t, 2)
	scanFrom := map[string][]string{eps[0]: {"node0"}, eps[1]: {"node0"}}
	fn := newFaultNet(2)
	nodes := faultCluster(t, fn, 4, eps, nodeOpts{scanFrom: scanFrom, stale: 3 * time.Second, interval: 200 * time.Millisecond})
	eventually(t, 15*time.Second, "all nodes see 1.1.0", allSee(nodes, "1.1.0", false))
	rollout(repos, "1.2.0")
	if err := nodes[0].svc.ScanOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond) // about one gossip round: some nodes have the digest, some not
	nodes[0].kill()
	rest := nodes[1:]
	for _, n := range rest {
		s, _, _ := view(n)
		if s != "1.1.0" && s != "1.2.0" {
			t.Errorf("%s reports %q", n.name, s)
		}
	}
	eventually(t, 20*time.Second, "the survivors mark the endpoints stale and hold a confirmed version", func() bool {
		for _, n := range rest {
			s, _, st := view(n)
			if !st || (s != "1.1.0" && s != "1.2.0") {
				return false
			}
		}
		return true
	})
	eventually(t, 20*time.Second, "the survivors see node0 dead", func() bool {
		for _, n := range rest {
			for _, m := range n.cluster.Members() {
				if m.Name == "node0" && m.State == "alive" {
					return false
				}
			}
		}
		return true
	})
}

// TestFaultLossyNetwork: 20% of packets dropped, 20% duplicated, all delayed up to 80ms (so reordered).
// A change seen by one node still reaches all, and no node reports a version the hosts do not all serve.
func TestFaultLossyNetwork(t *testing.T) {
	repos, eps := startHosts(t, 2)
	scanFrom := map[string][]string{eps[0]: {"node0"}, eps[1]: {"node0"}}
	fn := newFaultNet(3)
	fn.setFaults(0.2, 0.2, 80*time.Millisecond)
	nodes := faultCluster(t, fn, 5, eps, nodeOpts{scanFrom: scanFrom, stale: 10 * time.Second, interval: 200 * time.Millisecond})
	eventually(t, 20*time.Second, "all nodes see 1.1.0", allSee(nodes, "1.1.0", false))
	repos[0].Put(faultTitle, "1.2.0", schemarepo.Doc(faultTitle, "1.2.0"))
	time.Sleep(time.Second)
	for _, n := range nodes {
		if s, _, _ := view(n); s != "1.1.0" {
			t.Errorf("%s: safe %q while only one host has 1.2.0", n.name, s)
		}
	}
	repos[1].Put(faultTitle, "1.2.0", schemarepo.Doc(faultTitle, "1.2.0"))
	eventually(t, 20*time.Second, "all nodes see 1.2.0", allSee(nodes, "1.2.0", false))
}

// TestFaultSlowNode: one node's every packet and stream takes 300ms more. The cluster converges, the slow node
// too.
func TestFaultSlowNode(t *testing.T) {
	repos, eps := startHosts(t, 2)
	fn := newFaultNet(4)
	fn.slow["node2"] = 300 * time.Millisecond
	nodes := faultCluster(t, fn, 4, eps, nodeOpts{stale: 5 * time.Second, interval: 200 * time.Millisecond})
	eventually(t, 20*time.Second, "all nodes see 1.1.0", allSee(nodes, "1.1.0", false))
	rollout(repos, "1.2.0")
	eventually(t, 20*time.Second, "all nodes see 1.2.0", allSee(nodes, "1.2.0", false))
}

// TestFaultClockSkew: node clocks differ by up to a minute either way, with max_staleness of 5s. Freshness is
// judged by each receiver's clock from the age the sender reports, so observations are neither stale on
// arrival nor fresh forever.
func TestFaultClockSkew(t *testing.T) {
	_, eps := startHosts(t, 2)
	scanFrom := map[string][]string{eps[0]: {"node1"}, eps[1]: {"node1"}}
	fn := newFaultNet(5)
	skews := []time.Duration{-time.Minute, time.Minute, 0}
	nodes := startCluster(t, len(skews), eps, true, func(i int) nodeOpts {
		skew := skews[i]
		return nodeOpts{net: fn, scanFrom: scanFrom, now: func() time.Time { return time.Now().Add(skew) },
			stale: 5 * time.Second, interval: 200 * time.Millisecond}
	})
	eventually(t, 15*time.Second, "every node, whatever its clock, sees node1's scans as fresh", allSee(nodes, "1.1.0", false))
	for _, n := range nodes {
		sv, _ := n.svc.View().Schema("primary", faultTitle)
		for _, e := range sv.Endpoints {
			for _, o := range e.Observers {
				if o.AgeSeconds < -0.5 || o.AgeSeconds > 5 {
					t.Errorf("%s: observation of %s by %s is %.1fs old", n.name, e.URL, o.Node, o.AgeSeconds)
				}
			}
		}
	}
	nodes[1].kill()
	eventually(t, 20*time.Second, "with the scanner gone, every node marks the endpoints stale", allSee(nodes[:1], "1.1.0", true))
	eventually(t, 20*time.Second, "with the scanner gone, every node marks the endpoints stale", allSee(nodes[2:], "1.1.0", true))
}

// TestFaultLeaveAndRestart: a node that leaves is seen as left; restarted with the same name and an empty
// state, it rejoins, is ready only after merging a peer's state, and agrees with the others.
func TestFaultLeaveAndRestart(t *testing.T) {
	_, eps := startHosts(t, 2)
	scanFrom := map[string][]string{eps[0]: {"node0"}, eps[1]: {"node0"}}
	fn := newFaultNet(6)
	o := nodeOpts{net: fn, scanFrom: scanFrom, stale: 5 * time.Second, interval: 200 * time.Millisecond}
	nodes := faultCluster(t, fn, 3, eps, o)
	eventually(t, 15*time.Second, "all nodes see 1.1.0", allSee(nodes, "1.1.0", false))
	if err := nodes[2].cluster.Leave(5 * time.Second); err != nil { // returns once the leave went out
		t.Fatal(err)
	}
	nodes[2].cancel()
	eventually(t, 10*time.Second, "node2 seen as left", func() bool {
		for _, m := range nodes[0].cluster.Members() {
			if m.Name == "node2" {
				return m.State == "left"
			}
		}
		return false
	})
	again := startNode(t, "node2", eps, []string{nodes[0].cluster.Addr()}, o)
	if again.svc.Ready() {
		t.Error("a restarted node is ready before its first scan and merge")
	}
	again.run(t)
	eventually(t, 15*time.Second, "the restarted node is ready and agrees", func() bool {
		s, _, st := view(again)
		return again.svc.Ready() && s == "1.1.0" && !st
	})
	_ = schemasync.EndpointOK
}
