package gossip

import (
	"sync"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/schemasync/observation"
	"github.com/evenkeel/evenkeel/schemasync/version"
)

// lockedService is a Delegate whose every method but Digests waits for its lock, as a service does during
// a long view computation. It is the fault injection for TestDelegatesDoNotBlock.
type lockedService struct {
	mu sync.RWMutex // the test holds it; the methods wait for it
}

func (s *lockedService) wait() {
	s.mu.RLock()
	defer s.mu.RUnlock()
}

func (s *lockedService) Observe(observation.Observation) bool                   { s.wait(); return true }
func (s *lockedService) Seq(string, string) (uint64, bool)                      { s.wait(); return 0, false }
func (s *lockedService) NoteOwnSeq(uint64)                                      { s.wait() }
func (s *lockedService) Configured(string, string) bool                         { s.wait(); return true }
func (s *lockedService) Limits() Limits                                         { s.wait(); return Limits{MaxAge: time.Hour, MaxTitles: 10} }
func (s *lockedService) AdoptHeld([]observation.HeldVersion, map[string]string) { s.wait() }
func (s *lockedService) Content(string) (map[string][]version.Version, bool) {
	s.wait()
	return nil, false
}

// Digests never waits (the Delegate contract): it sends one digest.
func (s *lockedService) Digests(time.Time) Shared {
	return Shared{Digests: []observation.Digest{{Observer: "n", Repository: "primary", Endpoint: "http://a/", Seq: 1,
		Hash: observation.ContentHash(nil)}}}
}

func testConfig() Config {
	return Config{NodeName: "n1", Bind: "127.0.0.1:0", APIURL: "http://127.0.0.1:1", GossipInterval: 50 * time.Millisecond,
		PushPullInterval: time.Second, ProbeInterval: 200 * time.Millisecond, RejoinInterval: time.Second}
}

// TestDelegatesDoNotBlock: memberlist's delegate methods return while the service's lock is held: LocalState
// sends what Digests gives, MergeRemoteState leaves the digests and held versions to a worker, and so does
// NotifyMsg with a broadcast.
func TestDelegatesDoNotBlock(t *testing.T) {
	svc := &lockedService{}
	c, err := New(svc, testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	d := (*delegate)(c)
	svc.mu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := d.LocalState(false)
		d.MergeRemoteState(b, false)
		d.MergeRemoteState([]byte(`{"node":"other","held":[{"r":"primary","t":"a","v":"1.0.0"}],"sets":{}}`), false)
		m, _ := decodePushPull(b)
		d.NotifyMsg(broadcastBytes(5, broadcastMsg{From: "other", D: m.Digests[0]}))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		svc.mu.Unlock()
		t.Fatal("a delegate method waited for the service's lock")
	}
	svc.mu.Unlock()
	if len(c.inbox) != 2 || len(c.heldInbox) != 1 {
		t.Fatalf("inbox holds %d digests and %d held messages, want 2 and 1", len(c.inbox), len(c.heldInbox))
	}
}
