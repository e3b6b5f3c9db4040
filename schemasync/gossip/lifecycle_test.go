package gossip_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/evenkeel/evenkeel/schemasync"
	"github.com/evenkeel/evenkeel/schemasync/gossip"
)

// TestNoGoroutineOutlivesLeave: three nodes that joined, exchanged state and scanned leave, one after the
// other; once Leave has returned and the tests' own servers are closed, no goroutine of the cluster (nor
// of memberlist) is left, and Run has returned. Run after Leave returns ErrClosed at once.
func TestNoGoroutineOutlivesLeave(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Run("cluster", func(t *testing.T) { // its cleanups (servers, scan loops) run when it ends
		_, eps := startHosts(t, 2)
		nodes := startCluster(t, 3, eps, true, same(nodeOpts{}))
		eventually(t, 20*time.Second, "every node is ready and sees a safe version", func() bool {
			for _, n := range nodes {
				if !n.svc.Ready() || safeOf(n, "mediawiki/page/change") == "" {
					return false
				}
			}
			return true
		})
		for _, n := range nodes {
			if err := n.cluster.Leave(time.Second); err != nil {
				t.Errorf("Leave: %v", err)
			}
			if err := n.cluster.Run(context.Background()); !errors.Is(err, gossip.ErrClosed) {
				t.Errorf("Run after Leave: %v, want ErrClosed", err)
			}
		}
	})
	// goleak retries for a while: memberlist's listeners end once their sockets are closed.
	goleak.VerifyNone(t, before)
}

// TestPushPullStateBounded: at the bounds a peer can push the state to (observers per endpoint, error length),
// a node's push/pull state stays far below memberlist's 20 MiB limit on a user state.
func TestPushPullStateBounded(t *testing.T) {
	eps := []string{"http://h1/a/", "http://h2/a/", "http://h3/a/", "http://h4/a/"}
	n := startNode(t, "node0", eps, nil, nodeOpts{})
	long := strings.Repeat("x", schemasync.MaxReasonBytes)
	now := time.Now()
	for _, ep := range eps {
		for i := 0; i < schemasync.MaxObserversPerEndpoint+50; i++ {
			n.svc.Observe(schemasync.Observation{Repository: "primary", Endpoint: ep, Observer: fmt.Sprintf("%0200d", i),
				Seq: 1, At: now, Err: long})
		}
	}
	n.svc.View() // takes the push/pull state, as every view computation does
	b := n.cluster.LocalState()
	const bound = 2 << 20
	if len(b) > bound {
		t.Fatalf("push/pull state of %d bytes, above %d", len(b), bound)
	}
	if len(b) < schemasync.MaxObserversPerEndpoint*len(eps)*schemasync.MaxReasonBytes {
		t.Fatalf("push/pull state of %d bytes: it lacks the observations", len(b))
	}
	t.Logf("push/pull state at the bounds (4 endpoints x %d observers, %d-byte errors): %d bytes",
		schemasync.MaxObserversPerEndpoint, schemasync.MaxReasonBytes, len(b))
}
