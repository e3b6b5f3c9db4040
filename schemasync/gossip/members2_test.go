package gossip

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestGoneMembersForgotten: a fleet whose nodes come and go under new names. The member list keeps at most
// maxGoneMembers dead or departed members (the most recently gone), forgets every one gone for longer than
// any node keeps an observation, and keeps the live ones. On main every name ever seen stayed, and was
// dialled every rejoin interval.
func TestGoneMembersForgotten(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c, err := New(&lockedService{}, testConfig(), Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	e := (*events)(c)
	const gone = maxGoneMembers + 100
	for i := 0; i < gone+5; i++ {
		n := &memberlist.Node{Name: fmt.Sprintf("ghost%03d", i), Addr: net.IPv4(127, 0, 0, 2), Port: uint16(1000 + i)}
		e.NotifyJoin(n)
		if i < gone {
			advance(time.Second)
			e.NotifyLeave(n)
		}
	}
	count := func() (alive, dead int) {
		for _, m := range c.Members() {
			if m.State == "alive" {
				alive++
			} else {
				dead++
			}
		}
		return alive, dead
	}
	c.mu.Lock()
	c.forgetGoneLocked(clock(), time.Hour)
	c.mu.Unlock()
	alive, dead := count()
	if dead != maxGoneMembers || alive < 5 {
		t.Fatalf("%d dead and %d alive members kept, want %d dead and the 5 alive (and this node)", dead, alive, maxGoneMembers)
	}
	for _, m := range c.Members() {
		if m.State != "alive" && m.Name < fmt.Sprintf("ghost%03d", gone-maxGoneMembers) {
			t.Fatalf("kept %s, gone longer than those forgotten", m.Name)
		}
	}
	advance(time.Hour + time.Minute)
	c.mu.Lock()
	c.forgetGoneLocked(clock(), time.Hour)
	c.mu.Unlock()
	if alive2, dead := count(); dead != 0 || alive2 != alive {
		t.Fatalf("an hour on: %d dead and %d alive, want 0 dead and %d alive", dead, alive2, alive)
	}
}
