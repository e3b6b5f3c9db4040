package gossip

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evenkeel/evenkeel/internal/syncbuf"
)

// TestMemberlistLogRateLimited: a flood of one kind of memberlist error (garbage packets from many
// addresses) logs one line per 10 s with the count suppressed, not one line each.
func TestMemberlistLogRateLimited(t *testing.T) {
	var buf syncbuf.Buffer
	now := time.Unix(1_800_000_000, 0)
	problems := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "p"}, []string{"level"})
	l := &memberlistLog{log: slog.New(slog.NewTextHandler(&buf, nil)), now: func() time.Time { return now }, problems: problems}
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(l, "2026/12/01 10:00:00 [ERR] memberlist: failed to decode packet from=127.0.0.1:%d\n", 1000+i)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d lines for 1000 garbage packets, want 1:\n%s", n, buf.String())
	}
	now = now.Add(logEvery)
	fmt.Fprintf(l, "[ERR] memberlist: failed to decode packet from=127.0.0.1:9\n")
	if n := testutil.ToFloat64(problems.WithLabelValues("error")); n != 1001 {
		t.Fatalf("%v errors counted, want 1001", n)
	}
	if !strings.Contains(buf.String(), "suppressed_since_last=999") {
		t.Fatalf("the suppressed count is missing:\n%s", buf.String())
	}
	fmt.Fprintf(l, "[ERR] memberlist: \x1b[2Janother kind\n")
	if strings.Contains(buf.String(), "\x1b") || !strings.Contains(buf.String(), "another kind") {
		t.Fatalf("another kind not logged, or not escaped:\n%q", buf.String())
	}
}
