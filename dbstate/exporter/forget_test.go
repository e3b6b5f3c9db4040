package exporter

import (
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/prometheus/client_golang/prometheus"
)

// TestForgetRemovesSeries: a target that discovery no longer finds and that has not answered for ForgetAfter
// is dropped with all its series (its refresh counters included); one that still answers is kept.
func TestForgetRemovesSeries(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := dbstate.NewClient(dbstate.Credentials{User: "u"}, 0, nil)
	defer c.Close()
	e, err := New(c, Config{Seeds: []string{"127.0.0.1:1"}, ForgetAfter: time.Minute}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	e.targets["10.0.0.1:3306"] = &target{addr: "10.0.0.1:3306", lastSeen: old, lastOK: old, read: true, lastRefresh: old}
	e.targets["10.0.0.2:3306"] = &target{addr: "10.0.0.2:3306", lastSeen: old, lastOK: time.Now(), read: true, up: true,
		last: &dbstate.Instance{Addr: "10.0.0.2:3306"}, lastRefresh: time.Now()}
	e.refreshes.WithLabelValues("10.0.0.1:3306", "failure").Inc()
	e.refreshes.WithLabelValues("10.0.0.2:3306", "success").Inc()
	series := func() string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, mf := range mfs {
			b.WriteString(mf.String())
		}
		return b.String()
	}
	if s := series(); !strings.Contains(s, "10.0.0.1:3306") {
		t.Fatal("the down target has no series before it is forgotten")
	}
	e.mu.Lock()
	e.forget(time.Now())
	e.mu.Unlock()
	s := series()
	if strings.Contains(s, "10.0.0.1:3306") || !strings.Contains(s, "10.0.0.2:3306") {
		t.Fatalf("after forget: the lost down target must be gone, the answering one kept:\n%s", s)
	}
}
