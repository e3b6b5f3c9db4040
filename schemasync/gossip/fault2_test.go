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
