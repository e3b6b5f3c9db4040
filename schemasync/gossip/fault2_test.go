package gossip_test

import (
	"testing"
	"time"
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
