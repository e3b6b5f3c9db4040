package gossip_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/schemasync"
)

// contentAPI is a hostile member's API: it serves, for each content hash, the handler the test set for it.
type contentAPI struct {
	mu       sync.Mutex
	byHash   map[string]http.HandlerFunc
	requests map[string]int
}

func (a *contentAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hash, ok := strings.CutPrefix(r.URL.Path, "/v1/internal/content/")
	a.mu.Lock()
	h := a.byHash[hash]
	a.requests[r.URL.Path]++
	a.mu.Unlock()
	if !ok || h == nil {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

func (a *contentAPI) set(hash string, h http.HandlerFunc) {
	a.mu.Lock()
	a.byHash[hash] = h
	a.mu.Unlock()
}

// rawJSON serves body as the content's JSON; its hash is what ContentHash gives after decoding body the way a
// node does, so only the checks of the content itself stand in the way.
func rawJSON(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }
}

func hashOfJSON(t *testing.T, body []byte) string {
	t.Helper()
	var schemas map[string][]schemasync.Version
	if err := json.Unmarshal(body, &schemas); err != nil {
		t.Fatalf("%.100s: %v", body, err)
	}
	return schemasync.ContentHash(schemas)
}

// TestHostileContent: a member that holds the key advertises content, by hash, that its API serves in every
// way a hostile host could: with another hash, over the size bound, past the title cap, with a title over
// 4,096 bytes or one that no scan produces, with versions out of order or twice, through a redirect, or gzip
// compressed past the size bound. None of it reaches the node's state; gzip within the bounds is plain HTTP
// and is taken, and so is a title with a terminal escape, which a host may serve (output escapes it). On main the titles that no scan produces and the unordered and doubled versions were taken.
func TestHostileContent(t *testing.T) {
	_, eps := startHosts(t, 1)
	reg := prometheus.NewRegistry()
	n0 := startNode(t, "node0", eps, nil, nodeOpts{reg: reg, scanFrom: map[string][]string{eps[0]: {"node0"}}})
	api := &contentAPI{byHash: map[string]http.HandlerFunc{}, requests: map[string]int{}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	evil := newHostilePeer(t, nil, "evil", srv.URL, n0.cluster.Addr())
	evil.waitFor(n0)

	good := []byte(`{"a/x":["1.0.0","1.1.0"]}`)
	gz := func(body []byte) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(body)
		_ = zw.Close()
		return b.Bytes()
	}
	manyTitles := func(n int) []byte {
		m := map[string][]string{}
		for i := 0; i < n; i++ {
			m[fmt.Sprintf("t/%d", i)] = []string{"1.0.0"}
		}
		b, _ := json.Marshal(m)
		return b
	}
	huge := func(w http.ResponseWriter, _ *http.Request) { // a valid start, then more than 64 MiB
		_, _ = io.WriteString(w, `{"a/x":["1.0.0"],"`)
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for i := 0; i <= 64; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `":["1.0.0"]}`)
	}
	gzBomb := gz(bytes.Repeat([]byte(" "), 64<<20+1))
	cases := []struct {
		name  string
		hash  string
		serve http.HandlerFunc
		taken bool
	}{
		{"another hash", schemasync.ContentHash(map[string][]schemasync.Version{"a/x": {schemasync.MustParseVersion("9.9.9")}}), rawJSON(good), false},
		{"64 MiB and more", randomHash(t), huge, false},
		{"over the title cap", hashOfJSON(t, manyTitles(schemasync.DefaultScanConfig().MaxTitles+1)), rawJSON(manyTitles(schemasync.DefaultScanConfig().MaxTitles + 1)), false},
		{"title over 4096 bytes", hashOfJSON(t, []byte(`{"`+strings.Repeat("a", 4097)+`":["1.0.0"]}`)), rawJSON([]byte(`{"` + strings.Repeat("a", 4097) + `":["1.0.0"]}`)), false},
		{"title with ..", hashOfJSON(t, []byte(`{"a/../b":["1.0.0"]}`)), rawJSON([]byte(`{"a/../b":["1.0.0"]}`)), false},
		{"empty title", hashOfJSON(t, []byte(`{"":["1.0.0"]}`)), rawJSON([]byte(`{"":["1.0.0"]}`)), false},
		{"title with an empty segment", hashOfJSON(t, []byte(`{"a//b":["1.0.0"]}`)), rawJSON([]byte(`{"a//b":["1.0.0"]}`)), false},
		{"title with NUL", hashOfJSON(t, []byte(`{"a/\u0000":["1.0.0"]}`)), rawJSON([]byte(`{"a/\u0000":["1.0.0"]}`)), false},
		{"title with an escape (the scanner skips such a directory)", hashOfJSON(t, []byte(`{"a/\u001b[2J":["1.0.0"]}`)), rawJSON([]byte(`{"a/\u001b[2J":["1.0.0"]}`)), false},
		{"versions out of order", hashOfJSON(t, []byte(`{"a/x":["9.9.9","1.0.0"]}`)), rawJSON([]byte(`{"a/x":["9.9.9","1.0.0"]}`)), false},
		{"a version twice", hashOfJSON(t, []byte(`{"a/x":["1.0.0","1.0.0"]}`)), rawJSON([]byte(`{"a/x":["1.0.0","1.0.0"]}`)), false},
		{"not X.Y.Z", randomHash(t), rawJSON([]byte(`{"a/x":["01.0.0"]}`)), false},
		{"trailing data", hashOfJSON(t, good), rawJSON(append(append([]byte{}, good...), `{"b":[]}`...)), false},
		{"a redirect", randomHash(t), func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, srv.URL+"/v1/internal/content/"+hashOfJSON(t, good), http.StatusFound)
		}, false},
		{"gzip past the bound", randomHash(t), func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(gzBomb)
		}, false},
		{"gzip within the bounds", hashOfJSON(t, []byte(`{"a/gz":["1.0.0"]}`)), func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(gz([]byte(`{"a/gz":["1.0.0"]}`)))
		}, true},
	}
	observer := func(i int) string { return fmt.Sprintf("evil%d", i) }
	rejected := 0
	for i, c := range cases {
		api.set(c.hash, c.serve)
		evil.send(0, map[string]any{"from": "evil", "d": evil.digest(observer(i), eps[0], c.hash)})
		if !c.taken {
			rejected++
		}
	}
	// Every fetch that is not taken fails its checks, and is counted: once the count is reached, each has
	// ended (the workers queue digests in any order, so the order of the fetches says nothing).
	eventually(t, 30*time.Second, "every hostile content is fetched and rejected", func() bool {
		return gaugeOrCounter(t, reg, "schemasync_content_fetch_errors_total") >= float64(rejected)
	})
	for i, c := range cases {
		if c.taken {
			eventually(t, 10*time.Second, c.name+": the node takes the content", func() bool { return holds(n0, observer(i)) })
		} else if holds(n0, observer(i)) {
			t.Errorf("%s: the node took the content", c.name)
		}
		api.mu.Lock()
		fetched := api.requests["/v1/internal/content/"+c.hash] > 0
		api.mu.Unlock()
		if !fetched {
			t.Errorf("%s: the content was never fetched", c.name)
		}
	}
	if n := gaugeOrCounter(t, reg, "schemasync_content_fetch_errors_total"); n != float64(rejected) {
		t.Errorf("%v fetch errors, want %d", n, rejected)
	}
}

// gaugeOrCounter is the value of the unlabelled metric name.
func gaugeOrCounter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

// holds reports whether n's view shows an observation by observer.
func holds(n *testNode, observer string) bool {
	for _, e := range n.svc.View().Endpoints {
		for _, o := range e.Observers {
			if o.Node == observer {
				return true
			}
		}
	}
	return false
}

// TestHostileContentHashCollision: ContentHash separates a title from its versions with NUL, so content
// whose title holds a NUL can be built to hash like honest content (here: the first two titles of the demo
// repository merged into one). A member that holds the key announces the honest content's hash first and
// serves the forged content; node1 takes it, and when node0's honest digest with that hash arrives, node1
// finds the forged content under it and shows node0's endpoint without the titles it serves. On main the
// forged content was taken; no scan can produce such a title, and a peer's content is held to the same
// rule.
func TestHostileContentHashCollision(t *testing.T) {
	repos, eps := startHosts(t, 1)
	honest := map[string][]schemasync.Version{}
	for _, title := range repos[0].Titles() {
		for _, v := range repos[0].Versions(title) {
			honest[title] = append(honest[title], schemasync.MustParseVersion(v))
		}
	}
	titles := repos[0].Titles() // sorted
	var merged strings.Builder
	merged.WriteString(titles[0] + "\x00")
	for _, v := range honest[titles[0]] {
		merged.WriteString(v.String() + ",")
	}
	merged.WriteString("\n" + titles[1])
	forged := map[string][]schemasync.Version{merged.String(): honest[titles[1]]}
	for _, title := range titles[2:] {
		forged[title] = honest[title]
	}
	hash := schemasync.ContentHash(honest)
	if schemasync.ContentHash(forged) != hash {
		t.Fatal("the forged content does not collide; the test is wrong")
	}

	scanFrom := map[string][]string{eps[0]: {"node0"}}
	n1 := startNode(t, "node1", eps, nil, nodeOpts{scanFrom: scanFrom})
	body, _ := json.Marshal(forged)
	api := &contentAPI{byHash: map[string]http.HandlerFunc{hash: rawJSON(body)}, requests: map[string]int{}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	evil := newHostilePeer(t, nil, "evil", srv.URL, n1.cluster.Addr())
	evil.waitFor(n1)
	evil.send(0, map[string]any{"from": "evil", "d": evil.digest("evil", eps[0], hash)})
	eventually(t, 10*time.Second, "node1 fetches the forged content", func() bool {
		api.mu.Lock()
		defer api.mu.Unlock()
		return api.requests["/v1/internal/content/"+hash] > 0
	})

	n0 := startNode(t, "node0", eps, []string{n1.cluster.Addr()}, nodeOpts{scanFrom: scanFrom})
	if err := n0.svc.ScanOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "node1 holds node0's scan", func() bool { return holds(n1, "node0") })
	resp, err := http.Get(n0.api.URL + "/v1/internal/content/" + hash)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("node0 holds no content with the honest hash (HTTP %d); the test is wrong", resp.StatusCode)
	}
	for _, title := range titles[:2] {
		if safeOf(n1, title) == "" || safeOf(n1, title) != safeOf(n0, title) {
			t.Errorf("%s: node1 answers %q, node0 %q", title, safeOf(n1, title), safeOf(n0, title))
		}
	}
}
