package exporter

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/prometheus/client_golang/prometheus"
)

// hangingServer accepts TCP connections and never answers (a SIGSTOPped mariadbd looks the same: the kernel
// completes the handshake, the server never speaks). It returns its address; the connections close at cleanup.
func hangingServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestHungInstancesDoNotPileUp: instances that hang for a hundred refresh intervals cost one read each (no new
// read starts while one is in flight), so goroutines stay bounded; meanwhile many scrapes run at once, each
// served from the cache.
func TestHungInstancesDoNotPileUp(t *testing.T) {
	var addrs []string
	for range 3 {
		addrs = append(addrs, hangingServer(t))
	}
	reg := prometheus.NewPedanticRegistry()
	c := dbstate.NewClient(dbstate.Credentials{User: "u"}, 10*time.Second, nil)
	defer c.Close()
	e, err := New(c, Config{Instances: addrs, RefreshInterval: 5 * time.Millisecond, InstanceTimeout: 5 * time.Second, Parallel: 2}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	var wg sync.WaitGroup
	peak := 0
	for range 100 {
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		peak = max(peak, runtime.NumGoroutine())
		time.Sleep(5 * time.Millisecond)
	}
	// Per hung instance: its read and the driver's connection goroutines; nothing per refresh interval.
	if grown := peak - base; grown > 10*len(addrs) {
		t.Fatalf("goroutines grew by %d over 100 refresh intervals with %d hung instances", grown, len(addrs))
	}
	if e.Ready() {
		t.Fatal("ready before any read of the hung instances ended")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel while reads hang")
	}
}
