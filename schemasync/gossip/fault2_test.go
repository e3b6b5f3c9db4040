package gossip_test

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/evenkeel/evenkeel/schemasync/gossip"
)

// TestFaultClockFarOff: one node's clock is 36 hours ahead, another's 36 hours behind (a host whose clock
// NTP never set). Each is the only scanner of one endpoint. Every node still takes the others' scans as
// fresh, because freshness is judged from the age the sender reports, and sequence numbers (the observers'
// clock readings) are compared only with the same observer's. On main a digest whose sequence number was
// more than a day ahead of the receiver's clock was rejected, so the endpoints stayed unknown.
func TestFaultClockFarOff(t *testing.T) {
	_, eps := startHosts(t, 2)
	scanFrom := map[string][]string{eps[0]: {"node1"}, eps[1]: {"node2"}}
	fn := newFaultNet(12)
	skews := []time.Duration{0, 36 * time.Hour, -36 * time.Hour}
	nodes := startCluster(t, len(skews), eps, true, func(i int) nodeOpts {
		skew := skews[i]
		return nodeOpts{net: fn, scanFrom: scanFrom, now: func() time.Time { return time.Now().Add(skew) },
			stale: 5 * time.Second, interval: 200 * time.Millisecond}
	})
	eventually(t, 20*time.Second, "every node sees both endpoints fresh", allSee(nodes, "1.1.0", false))
	nodes[1].kill()
	eventually(t, 20*time.Second, "with node1 gone, the others mark its endpoint stale", allSee([]*testNode{nodes[0], nodes[2]}, "1.1.0", true))
}

// blackholeTransport is a node's transport on a faultNet where a dial to an address hole names hangs for
// its whole timeout, as a dial to a host whose packets are dropped does.
type blackholeTransport struct {
	*faultTransport
	hole  func(addr string) bool
	dials atomic.Int64
}

func (b *blackholeTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if b.hole(addr) {
		b.dials.Add(1)
		time.Sleep(timeout)
		return nil, errors.New("dial timeout (blackholed)")
	}
	return b.faultTransport.DialTimeout(addr, timeout)
}

func (b *blackholeTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return b.DialTimeout(a.Addr, timeout)
}

// TestFaultRejoinDoesNotHoldLeave: six members crashed, and their hosts drop packets, so each dial to them
// hangs for memberlist's TCP timeout (2 s here, 10 s by default) and cannot be cancelled. The node's rejoin
// loop dials a few of them a round, one at a time, and stops at Leave: Leave returns after at most one such
// dial. On main one round dialled all six in one call, and Leave waited for it (about 12 s here, 60 s at
// the default timeout; with ten dead members 100 s, past systemd's stop timeout).
func TestFaultRejoinDoesNotHoldLeave(t *testing.T) {
	_, eps := startHosts(t, 1)
	fn := newFaultNet(13)
	var holes sync.Map
	var bt *blackholeTransport
	const tcpTimeout = 2 * time.Second
	n0 := startNode(t, "node0", eps, nil, nodeOpts{net: fn, rejoin: 100 * time.Millisecond,
		tune: func(mc *memberlist.Config) {
			mc.TCPTimeout, mc.DisableTcpPings, mc.ProbeTimeout = tcpTimeout, true, 100*time.Millisecond
		},
		wrap: func(ft *faultTransport) memberlist.NodeAwareTransport {
			bt = &blackholeTransport{faultTransport: ft, hole: func(a string) bool { _, ok := holes.Load(a); return ok }}
			return bt
		}})
	var ghosts []*hostilePeer
	for i := 0; i < 6; i++ {
		ghosts = append(ghosts, newHostilePeer(t, fn, fmt.Sprintf("ghost%d", i), "http://127.0.0.1:1", n0.cluster.Addr()))
	}
	for _, g := range ghosts {
		g.waitFor(n0)
	}
	for _, g := range ghosts {
		_ = g.ml.Shutdown() // a crash: no leave
	}
	eventually(t, 30*time.Second, "node0 sees the ghosts dead", func() bool {
		for _, g := range ghosts {
			if memberState(n0, g.name) != "dead" {
				return false
			}
		}
		return true
	})
	// Until now a dial to a ghost failed at once; from the next rejoin round on, each hangs.
	for _, g := range ghosts {
		holes.Store(g.ml.LocalNode().Address(), true)
	}
	eventually(t, 10*time.Second, "node0 dials a ghost", func() bool { return bt.dials.Load() > 0 })
	start := time.Now()
	if err := n0.cluster.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("Leave took %s; %d dials to dead members", time.Since(start), bt.dials.Load())
	if took := time.Since(start); took > 3*tcpTimeout {
		t.Fatalf("Leave took %s while the node dialled dead members, want at most one dial's %s and the leave", took.Round(time.Millisecond), tcpTimeout)
	}
}

// TestFaultKilledAndRestartedSameName: a node crashes (no leave) and comes back under the same name at
// another address, as a rescheduled container does. memberlist refuses a live or dead member's name at a
// new address until it forgets the dead one (GossipToTheDeadTime, 1 s here, 30 s by default); the restarted
// node keeps joining with backoff, is taken back, merges state, and agrees with the others. Meanwhile no
// node reports a version the hosts do not all serve.
func TestFaultKilledAndRestartedSameName(t *testing.T) {
	repos, eps := startHosts(t, 2)
	scanFrom := map[string][]string{eps[0]: {"node2"}, eps[1]: {"node0", "node2"}}
	fn := newFaultNet(14)
	o := nodeOpts{net: fn, scanFrom: scanFrom, stale: 3 * time.Second, interval: 200 * time.Millisecond,
		rejoin: 300 * time.Millisecond, deadTime: time.Second}
	nodes := faultCluster(t, fn, 3, eps, o)
	eventually(t, 15*time.Second, "all nodes see 1.1.0", allSee(nodes, "1.1.0", false))
	nodes[2].kill()
	eventually(t, 20*time.Second, "the others see node2 dead", func() bool {
		return memberState(nodes[0], "node2") == "dead" && memberState(nodes[1], "node2") == "dead"
	})
	eventually(t, 20*time.Second, "with node2, the only scanner of endpoint 0, gone, the others hold 1.1.0 stale",
		allSee(nodes[:2], "1.1.0", true))
	rollout(repos, "1.2.0")
	again := startNode(t, "node2", eps, []string{nodes[0].cluster.Addr()}, o)
	again.run(t)
	all := []*testNode{nodes[0], nodes[1], again}
	deadline := time.Now().Add(30 * time.Second)
	for !allSee(all, "1.2.0", false)() {
		for _, n := range all {
			if s, _, _ := view(n); s != "" && s != "1.1.0" && s != "1.2.0" {
				t.Fatalf("%s reports %q", n.name, s)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node2 was not taken back: node0 sees it %q, node2 is ready %v",
				memberState(nodes[0], "node2"), again.svc.Ready())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if memberState(nodes[0], "node2") != "alive" || memberState(nodes[1], "node2") != "alive" {
		t.Errorf("node2 agrees but is not alive to the others: %q, %q", memberState(nodes[0], "node2"), memberState(nodes[1], "node2"))
	}
}

// TestFaultKeyRotationLagging: the rotation's last step (remove the old key) reaches two nodes, and the
// third lags: it still encrypts with the old key, which the others no longer have. The others cannot read
// it and see it dead; they go on. It answers only versions the host served. Once it reloads its keyring
// too, it is taken back and agrees.
func TestFaultKeyRotationLagging(t *testing.T) {
	repos, eps := startHosts(t, 1)
	scanFrom := map[string][]string{eps[0]: {"node0"}}
	oldKey, _ := gossip.GenerateKey()
	newKey, _ := gossip.GenerateKey()
	files := keyringFiles(t, 3, "- "+newKey+"\n- "+oldKey+"\n")
	nodes := startCluster(t, 3, eps, true, func(i int) nodeOpts {
		return nodeOpts{scanFrom: scanFrom, keyring: files[i], stale: 2 * time.Second, interval: 200 * time.Millisecond,
			rejoin: 300 * time.Millisecond, deadTime: time.Second}
	})
	eventually(t, 15*time.Second, "all nodes see 1.1.0", allSee(nodes, "1.1.0", false))
	// node2 lags: it still has the old key as primary, and the others drop it.
	if err := writeFile(files[2], "- "+oldKey+"\n- "+newKey+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].cluster.ReloadKeyring(files[2]); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1} {
		if err := writeFile(files[i], "- "+newKey+"\n"); err != nil {
			t.Fatal(err)
		}
		if err := nodes[i].cluster.ReloadKeyring(files[i]); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "the others see the lagging node2 dead", func() bool {
		return memberState(nodes[0], "node2") == "dead" && memberState(nodes[1], "node2") == "dead"
	})
	rollout(repos, "1.2.0")
	eventually(t, 20*time.Second, "node0 and node1 see 1.2.0", allSee(nodes[:2], "1.2.0", false))
	// node2 can still read what node0 sends it (node0 keeps dialling it, and push/pull carries node0's state),
	// so it may well see 1.2.0 fresh; whatever it answers, it is a version the host served.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if s, _, _ := view(nodes[2]); s != "1.1.0" && s != "1.2.0" {
			t.Fatalf("the lagging node2 answers %q", s)
		}
	}
	s, _, stale := view(nodes[2])
	t.Logf("the lagging node2 answers %s, stale %v", s, stale)
	if err := writeFile(files[2], "- "+newKey+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].cluster.ReloadKeyring(files[2]); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "after its reload node2 is taken back", func() bool {
		return memberState(nodes[0], "node2") == "alive" && memberState(nodes[1], "node2") == "alive"
	})
	eventually(t, 20*time.Second, "and agrees", allSee(nodes, "1.2.0", false))
}

// keyringFiles writes n keyring files, one per node, each holding keyring.
func keyringFiles(t *testing.T, n int, keyring string) []string {
	t.Helper()
	dir := t.TempDir()
	files := make([]string, n)
	for i := range files {
		files[i] = fmt.Sprintf("%s/keyring%d.yml", dir, i)
		if err := writeFile(files[i], keyring); err != nil {
			t.Fatal(err)
		}
	}
	return files
}
