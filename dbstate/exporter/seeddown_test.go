package exporter

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSeedDownAtStart: while no seed answers, the exporter is not ready (it knows no topology), the seed's
// dbstate_up is 0 (so the instance-down alert fires), and discovery is retried every refresh interval rather
// than after a whole discovery interval. No server is needed: the seed is a closed port.
func TestSeedDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seed := l.Addr().String()
	l.Close()
	reg := prometheus.NewPedanticRegistry()
	c := dbstate.NewClient(dbstate.Credentials{User: "u"}, time.Second, nil)
	defer c.Close()
	e, err := New(c, Config{Seeds: []string{seed}, RefreshInterval: 20 * time.Millisecond, DiscoveryInterval: time.Hour,
		InstanceTimeout: time.Second}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		up := testutil.ToFloat64(e.discovery.WithLabelValues("failure"))
		var b strings.Builder
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "dbstate_up" {
				b.WriteString(mf.String())
			}
		}
		if up >= 3 && strings.Contains(b.String(), seed) && strings.Contains(b.String(), "value:0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %v discovery failures (want retries every refresh interval), dbstate_up: %s", up, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e.Ready() {
		t.Fatal("ready while no seed answers")
	}
}
