package schemasync

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/schemasync/gossip"
)

// clusterNode starts a service for eps with gossip on 127.0.0.1, running until the test ends.
func clusterNode(t *testing.T, eps ...string) *Service {
	t.Helper()
	cfg := svcConfig(eps...)
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Cluster.APIAdvertise = "http://127.0.0.1:1"
	s := newTestService(t, cfg, ServiceOptions{})
	c, err := s.NewCluster(ClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = c.Leave(time.Second)
		if err := <-done; err != nil && !errors.Is(err, gossip.ErrClosed) { // closed before Run started
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// TestDelegatesDoNotBlock: the service's side of gossip's delegates returns while the service's lock is
// held (by a long view computation, say): Digests, which memberlist's LocalState calls, sends the last
// state taken. (Package gossip's TestDelegatesDoNotBlock shows that MergeRemoteState leaves the held
// versions, and NotifyMsg the digests, to a worker.)
func TestDelegatesDoNotBlock(t *testing.T) {
	s := clusterNode(t, "http://127.0.0.1:1/")
	d := (*gossipDelegate)(s)
	now := time.Now()
	s.Observe(Observation{Repository: "primary", Endpoint: "http://127.0.0.1:1/", Observer: "other", Seq: 1, At: now,
		Err: "HTTP 503"})
	d.Digests(now) // takes a first state while the lock is free
	s.mu.Lock()
	done := make(chan int)
	go func() { done <- len(d.Digests(now.Add(2 * time.Second)).Digests) }()
	select {
	case n := <-done:
		if n != 1 {
			t.Errorf("Digests sent %d digests, want the 1 of the last state taken", n)
		}
	case <-time.After(5 * time.Second):
		s.mu.Unlock()
		t.Fatal("Digests waited for the service's lock")
	}
	s.mu.Unlock()
}

// TestClusterDetachedAtLeave: once its cluster has left, the service runs alone again: Cluster is nil, so
// /v1/members shows this node only and readiness no longer depends on gossip.
func TestClusterDetachedAtLeave(t *testing.T) {
	s := clusterNode(t, "http://127.0.0.1:1/")
	c := s.Cluster()
	if c == nil {
		t.Fatal("no cluster after NewCluster")
	}
	if err := c.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	if s.Cluster() != nil {
		t.Fatal("the service still answers from a cluster that left")
	}
}
