package gossip

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evenkeel/evenkeel/schemasync/observation"
	"github.com/evenkeel/evenkeel/schemasync/version"
)

// auditCluster is a cluster of one node for d, with its metrics in reg, closed when the test ends.
func auditCluster(t *testing.T, d Delegate, reg *prometheus.Registry) *Cluster {
	t.Helper()
	c, err := New(d, testConfig(), Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestAudit11HeldCountBounded: a push/pull state that carries more than maxHeldPerMessage held versions is
// rejected and counted (reason held_count), not handed to the service to adopt; one within the bound is.
func TestAudit11HeldCountBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := auditCluster(t, &lockedService{}, reg)
	state := func(n int) []byte {
		m := pushPullMsg{Node: "other", Sets: map[string]string{"primary": "x"}}
		for i := 0; i < n; i++ {
			m.Held = append(m.Held, observation.HeldVersion{Repository: "primary", Title: fmt.Sprint(i), Version: version.MustParse("1.0.0")})
		}
		b, _ := json.Marshal(m)
		return b
	}
	d := (*delegate)(c)
	d.MergeRemoteState(state(maxHeldPerMessage+1), false)
	if n := len(c.heldInbox); n != 0 {
		t.Fatalf("%d held messages queued for adoption from a state over the bound", n)
	}
	if got := testutil.ToFloat64(c.m.rejected.WithLabelValues("held_count")); got != 1 {
		t.Fatalf("rejected{reason=held_count} = %v, want 1", got)
	}
	d.MergeRemoteState(state(2), false)
	if n := len(c.heldInbox); n != 1 {
		t.Fatalf("%d held messages queued from a state within the bound, want 1", n)
	}
}

// TestAudit11FetchedContentChecked: content fetched from a member's API is checked before it reaches the
// service: it must hash to the digest's hash, list at most max_titles titles (as a scan of this node would
// accept) and be at most maxContentBytes long.
func TestAudit11FetchedContentChecked(t *testing.T) {
	titles := func(n int) map[string][]version.Version {
		out := map[string][]version.Version{}
		for i := 0; i < n; i++ {
			out[fmt.Sprintf("t%d", i)] = []version.Version{version.MustParse("1.0.0")}
		}
		return out
	}
	fine, tooMany := titles(3), titles(11) // lockedService's limit is 10 titles
	var body func(w http.ResponseWriter)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { body(w) }))
	t.Cleanup(api.Close)
	c := auditCluster(t, &lockedService{}, prometheus.NewRegistry())
	c.mu.Lock()
	c.members["peer"] = &MemberView{Name: "peer", State: "alive", API: api.URL, ip: net.IPv4(127, 0, 0, 1)}
	c.mu.Unlock()
	send := func(v any) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) { _ = json.NewEncoder(w).Encode(v) }
	}
	for _, tt := range []struct {
		name string
		body func(http.ResponseWriter)
		hash string
		want string // "" for success
	}{
		{"fine", send(fine), observation.ContentHash(fine), ""},
		{"another hash", send(fine), observation.ContentHash(titles(2)), "content hash"},
		{"over max_titles", send(tooMany), observation.ContentHash(tooMany), "max_titles"},
		{"over the size bound", func(w http.ResponseWriter) {
			chunk := []byte(strings.Repeat(" ", 1<<20))
			for n := 0; n <= maxContentBytes; n += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, observation.ContentHash(fine), "exceeds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body = tt.body
			got, err := c.fetchContent(context.Background(), "peer", tt.hash)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("fetch: %v", err)
			case tt.want == "" && len(got) != len(fine):
				t.Fatalf("fetched %d titles, want %d", len(got), len(fine))
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("fetch: %v, want an error about %q", err, tt.want)
			}
		})
	}
}
