package schemasync

import (
	"testing"
	"time"
)

// TestDelegatesDoNotBlock: memberlist's delegate methods return while the service's lock is held (by a long
// view computation, say): LocalState sends the last state taken, MergeRemoteState leaves the held versions
// to a worker.
func TestDelegatesDoNotBlock(t *testing.T) {
	cfg := svcConfig("http://127.0.0.1:1/")
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Cluster.APIAdvertise = "http://127.0.0.1:1"
	s := newTestService(t, cfg, ServiceOptions{})
	c, err := s.StartCluster(ClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Leave(time.Second) })
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
