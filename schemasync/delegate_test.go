package schemasync

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// clusterNode starts a service for eps with gossip on 127.0.0.1, left when the test ends.
func clusterNode(t *testing.T, eps ...string) (*Service, *Cluster) {
	t.Helper()
	cfg := svcConfig(eps...)
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Cluster.APIAdvertise = "http://127.0.0.1:1"
	s := newTestService(t, cfg, ServiceOptions{})
	c, err := s.StartCluster(ClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Leave(time.Second) })
	return s, c
}

// TestDelegatesDoNotBlock: memberlist's delegate methods return while the service's lock is held (by a long
// view computation, say): LocalState sends the last state taken, MergeRemoteState leaves the held versions
// to a worker.
func TestDelegatesDoNotBlock(t *testing.T) {
	s, c := clusterNode(t, "http://127.0.0.1:1/")
	d := (*clusterDelegate)(c)
	d.LocalState(false) // takes a first state while the lock is free
	s.mu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := d.LocalState(false)
		d.MergeRemoteState(b, false)
		d.MergeRemoteState([]byte(`{"node":"other","held":[{"r":"primary","t":"a","v":"1.0.0"}],"sets":{}}`), false)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.mu.Unlock()
		t.Fatal("a delegate method waited for the service's lock")
	}
	s.mu.Unlock()
}

// TestPushPullStateBounded: at the bounds a peer can push the state to (observers per endpoint, error length),
// a node's push/pull state stays far below memberlist's 20 MiB limit on a user state.
func TestPushPullStateBounded(t *testing.T) {
	eps := []string{"http://h1/a/", "http://h2/a/", "http://h3/a/", "http://h4/a/"}
	s, c := clusterNode(t, eps...)
	long := strings.Repeat("x", MaxReasonBytes)
	now := time.Now()
	for _, ep := range eps {
		for i := 0; i < MaxObserversPerEndpoint+50; i++ {
			s.Observe(Observation{Repository: "primary", Endpoint: ep, Observer: fmt.Sprintf("%0200d", i), Seq: 1,
				At: now, Err: long})
		}
	}
	b := (*clusterDelegate)(c).LocalState(false)
	const bound = 2 << 20
	if len(b) > bound {
		t.Fatalf("push/pull state of %d bytes, above %d", len(b), bound)
	}
	t.Logf("push/pull state at the bounds (4 endpoints x %d observers, %d-byte errors): %d bytes",
		MaxObserversPerEndpoint, MaxReasonBytes, len(b))
}
