package gossip_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/internal/syncbuf"
	"github.com/evenkeel/evenkeel/schemasync"
	"github.com/evenkeel/evenkeel/schemasync/gossip"
)

// testNode is one schemasync node on real loopback sockets: gossip on 127.0.0.1:0, its API on httptest.
type testNode struct {
	name      string
	svc       *schemasync.Service
	cluster   *gossip.Cluster
	api       *httptest.Server
	transport *faultTransport // set on a faultNet
	cancel    context.CancelFunc
}

// run starts the node's scan loop until the test ends or kill.
func (n *testNode) run(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	done := make(chan struct{})
	go func() { defer close(done); _ = n.svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// kill makes the node vanish at once, as a crash does: no leave message, no more scans, no API.
func (n *testNode) kill() {
	if n.cancel != nil {
		n.cancel()
	}
	if n.transport != nil {
		_ = n.transport.Shutdown()
	}
	n.api.Close()
}

type nodeOpts struct {
	scanFrom map[string][]string // endpoint -> scanners
	keyring  string
	label    string
	now      func() time.Time
	log      *syncbuf.Buffer
	net      *faultNet // nil: real UDP/TCP on 127.0.0.1
	reg      *prometheus.Registry
	repos    []schemasync.RepositoryConfig // instead of one "primary" repository of eps
	defaults bool                          // memberlist timings as configured by default, not sped up for tests
	stale    time.Duration
	interval time.Duration
	rejoin   time.Duration                                       // cluster.rejoin_interval; 0: the default
	deadTime time.Duration                                       // memberlist's GossipToTheDeadTime; 0: memberlist's default (30 s)
	tune     func(*memberlist.Config)                            // adjusts memberlist's configuration further
	wrap     func(*faultTransport) memberlist.NodeAwareTransport // wraps the node's transport on net
}

func startNode(t testing.TB, name string, eps []string, seeds []string, o nodeOpts) *testNode {
	t.Helper()
	cfg := schemasync.DefaultConfig()
	cfg.Cluster.NodeName = name
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Cluster.Join = seeds
	cfg.Cluster.Label = o.label
	cfg.Cluster.KeyringFile = o.keyring
	if !o.defaults {
		cfg.Cluster.GossipInterval = 50 * time.Millisecond
		cfg.Cluster.ProbeInterval = 200 * time.Millisecond
		cfg.Cluster.PushPullInterval = time.Second
	}
	cfg.ScanInterval = time.Second
	cfg.MaxStaleness = time.Minute
	if o.stale > 0 {
		cfg.MaxStaleness = o.stale
	}
	if o.interval > 0 {
		cfg.ScanInterval = o.interval
	}
	if o.rejoin > 0 {
		cfg.Cluster.RejoinInterval = o.rejoin
	}
	cfg.Repositories = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: eps, ScanFrom: o.scanFrom}}
	if len(o.scanFrom) > 0 { // scan_from may name only the nodes the configuration lists
		cfg.Cluster.Nodes = map[string]string{name: ""}
		for _, from := range o.scanFrom {
			for _, n := range from {
				cfg.Cluster.Nodes[n] = ""
			}
		}
	}
	if o.repos != nil {
		cfg.Repositories = o.repos
	}
	sopts := schemasync.ServiceOptions{Now: o.now}
	if o.reg != nil {
		sopts.Registerer = o.reg
	}
	if o.log != nil {
		sopts.Logger = slog.New(slog.NewTextHandler(o.log, nil))
	}
	svc, err := schemasync.NewService(cfg, sopts)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{name: name, svc: svc, api: httptest.NewServer(svc.Handler())}
	t.Cleanup(n.api.Close)
	copts := schemasync.ClusterOptions{APIURL: n.api.URL, JoinBackoff: 100 * time.Millisecond}
	copts.Memberlist = func(mc *memberlist.Config) {
		if o.deadTime > 0 {
			mc.GossipToTheDeadTime = o.deadTime
		}
		if o.tune != nil {
			o.tune(mc)
		}
	}
	if o.net != nil {
		n.transport = o.net.transport(name)
		copts.Transport, copts.Peers = n.transport, o.net.fetcher(name)
		if o.wrap != nil {
			copts.Transport = o.wrap(n.transport)
		}
		o.net.registerAPI(n.api.URL, name)
	}
	n.cluster, err = svc.NewCluster(copts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = n.cluster.Run(context.Background()) }()
	t.Cleanup(func() { _ = n.cluster.Leave(time.Second); <-done })
	return n
}

// startCluster starts size nodes named node0.. that join node0; with run, each runs its scan loop. opts
// gives each node its options.
func startCluster(t testing.TB, size int, eps []string, run bool, opts func(i int) nodeOpts) []*testNode {
	t.Helper()
	var nodes []*testNode
	for i := 0; i < size; i++ {
		var seeds []string
		if i > 0 {
			seeds = []string{nodes[0].cluster.Addr()}
		}
		n := startNode(t, fmt.Sprintf("node%d", i), eps, seeds, opts(i))
		if run {
			n.run(t)
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func same(o nodeOpts) func(int) nodeOpts { return func(int) nodeOpts { return o } }

func startHosts(t testing.TB, n int) ([]*schemarepo.Repo, []string) {
	t.Helper()
	base := schemarepo.Demo()
	var repos []*schemarepo.Repo
	var eps []string
	for i := 0; i < n; i++ {
		r := base.Clone()
		srv := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": r}))
		t.Cleanup(srv.Close)
		repos = append(repos, r)
		eps = append(eps, srv.URL+"/repositories/primary/jsonschema/")
	}
	return repos, eps
}

func safeOf(n *testNode, title string) string {
	sv, ok := n.svc.View().Schema("primary", title)
	if !ok || sv.SafeVersion == nil {
		return ""
	}
	return sv.SafeVersion.String()
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

// TestClusterConverges: N nodes on real loopback sockets. Only node 0 scans the endpoints, so every other node
// knows them only through gossip. All nodes converge on the same view, and a change at one endpoint reaches
// every node.
func TestClusterConverges(t *testing.T) {
	for _, size := range []int{3, 10} {
		t.Run(fmt.Sprintf("nodes=%d", size), func(t *testing.T) {
			const title = "mediawiki/page/change"
			repos, eps := startHosts(t, 4)
			scanFrom := map[string][]string{}
			for _, e := range eps {
				scanFrom[e] = []string{"node0"}
			}
			nodes := startCluster(t, size, eps, false, same(nodeOpts{scanFrom: scanFrom}))
			ctx := context.Background()
			for _, n := range nodes {
				if err := n.svc.ScanOnce(ctx); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, 20*time.Second, "every node sees 1.1.0 as safe", func() bool {
				for _, n := range nodes {
					if safeOf(n, title) != "1.1.0" {
						return false
					}
				}
				return true
			})
			eventually(t, 20*time.Second, "every node ready, with every member alive", func() bool {
				for _, n := range nodes {
					alive := 0
					for _, m := range n.cluster.Members() {
						if m.State == "alive" {
							alive++
						}
					}
					if !n.svc.Ready() || alive != size {
						return false
					}
				}
				return true
			})
			for _, r := range repos {
				r.Put(title, "1.2.0", schemarepo.Doc(title, "1.2.0"))
			}
			if err := nodes[0].svc.ScanOnce(ctx); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "every node sees 1.2.0 as safe", func() bool {
				for _, n := range nodes {
					if safeOf(n, title) != "1.2.0" {
						return false
					}
				}
				return true
			})
			// Every node shows which node observed each endpoint.
			sv, _ := nodes[size-1].svc.View().Schema("primary", title)
			for _, e := range sv.Endpoints {
				if len(e.Observers) != 1 || e.Observers[0].Node != "node0" || !e.Observers[0].Fresh {
					t.Errorf("endpoint %s observers = %+v, want node0, fresh", e.URL, e.Observers)
				}
			}
		})
	}
}

// TestClusterWrongKey: a node with another key, or another label, cannot join, and says why in its log.
func TestClusterWrongKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, key string) string {
		p := dir + "/" + name
		if err := writeFile(p, "- "+key+"\n"); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k1, _ := gossip.GenerateKey()
	k2, _ := gossip.GenerateKey()
	_, eps := startHosts(t, 1)
	seedLog, badLog, badLabelLog := &syncbuf.Buffer{}, &syncbuf.Buffer{}, &syncbuf.Buffer{}
	seed := startNode(t, "seed", eps, nil, nodeOpts{keyring: write("k1.yml", k1), label: "prod", log: seedLog})
	good := startNode(t, "good", eps, []string{seed.cluster.Addr()}, nodeOpts{keyring: write("k1b.yml", k1), label: "prod"})
	bad := startNode(t, "badkey", eps, []string{seed.cluster.Addr()}, nodeOpts{keyring: write("k2.yml", k2), label: "prod", log: badLog})
	badLabel := startNode(t, "badlabel", eps, []string{seed.cluster.Addr()}, nodeOpts{keyring: write("k1c.yml", k1), label: "staging", log: badLabelLog})
	eventually(t, 10*time.Second, "the good node joins", func() bool { return good.svc.Cluster().Ready() || joined(good) })
	time.Sleep(time.Second)
	for _, n := range []*testNode{bad, badLabel} {
		for _, m := range seed.cluster.Members() {
			if m.Name == n.name && m.State == "alive" {
				t.Errorf("%s joined the seed's cluster", n.name)
			}
		}
	}
	if strings.Contains(fmt.Sprint(seed.cluster.Members()), "badkey") {
		t.Errorf("seed knows badkey: %v", seed.cluster.Members())
	}
	for _, c := range []struct {
		who  string
		log  *syncbuf.Buffer
		want string
	}{
		{"the node with the wrong key", badLog, "no installed keys could decrypt"},
		{"the node with the wrong label", badLabelLog, "cannot join the cluster"},
		{"the seed, about the wrong key", seedLog, "no installed keys could decrypt"},
		{"the seed, about the wrong label", seedLog, `unacceptable label \"staging\"`},
	} {
		if !strings.Contains(c.log.String(), c.want) {
			t.Errorf("%s does not log %q:\n%s", c.who, c.want, c.log)
		}
	}
}

func joined(n *testNode) bool {
	for _, m := range n.cluster.Members() {
		if m.Name == "seed" && m.State == "alive" {
			return true
		}
	}
	return false
}

// TestClusterKeyRotation follows the documented procedure on 3 nodes: add the new key everywhere, make it
// primary everywhere, remove the old one; after each step a change still reaches every node.
func TestClusterKeyRotation(t *testing.T) {
	const title = "mediawiki/page/change"
	repos, eps := startHosts(t, 1)
	scanFrom := map[string][]string{eps[0]: {"node0"}}
	oldKey, _ := gossip.GenerateKey()
	newKey, _ := gossip.GenerateKey()
	files := keyringFiles(t, 3, "- "+oldKey+"\n")
	nodes := startCluster(t, 3, eps, false, func(i int) nodeOpts { return nodeOpts{scanFrom: scanFrom, keyring: files[i]} })
	version := 1
	propagates := func(step string) {
		t.Helper()
		version++
		v := fmt.Sprintf("1.%d.0", version)
		repos[0].Put(title, v, schemarepo.Doc(title, v))
		if err := nodes[0].svc.ScanOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		eventually(t, 15*time.Second, step+": every node sees "+v, func() bool {
			for _, n := range nodes {
				if safeOf(n, title) != v {
					return false
				}
			}
			return true
		})
	}
	propagates("before rotation")
	for _, step := range []struct {
		name, keyring string
		fingerprints  []string
	}{
		{"1. add the new key", "- " + oldKey + "\n- " + newKey + "\n", nil},
		{"2. make it primary", "- " + newKey + "\n- " + oldKey + "\n", nil},
		{"3. remove the old key", "- " + newKey + "\n", nil},
	} {
		for i, n := range nodes {
			if err := writeFile(files[i], step.keyring); err != nil {
				t.Fatal(err)
			}
			if err := n.cluster.ReloadKeyring(files[i]); err != nil {
				t.Fatalf("%s on %s: %v", step.name, n.name, err)
			}
		}
		propagates(step.name)
	}
	keys, _ := gossip.ParseKeyring([]byte("- " + newKey + "\n"))
	for _, n := range nodes {
		if got := n.cluster.KeyFingerprints(); len(got) != 1 || got[0] != gossip.KeyFingerprint(keys[0]) {
			t.Errorf("%s keys = %v, want only the new key", n.name, got)
		}
	}
}

// TestClusterRestartAfterClockStepBack: a node restarts with its clock an hour behind (NTP stepped it back).
// The other node still holds the restarted node's last observation, numbered by the old clock; without care
// it would reject every new scan of the restarted node for an hour. The restarted node hears its own old
// observation back by push/pull and continues the numbering above it.
func TestClusterRestartAfterClockStepBack(t *testing.T) {
	repos, eps := startHosts(t, 2)
	o := nodeOpts{scanFrom: map[string][]string{eps[0]: {"node0"}, eps[1]: {"node0"}}}
	n0 := startNode(t, "node0", eps, nil, o)
	n1 := startNode(t, "node1", eps, []string{n0.cluster.Addr()}, o)
	ctx := context.Background()
	if err := n0.svc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "node1 has node0's scans", func() bool { return safeOf(n1, faultTitle) == "1.1.0" })
	if err := n0.cluster.Leave(5 * time.Second); err != nil { // returns once the leave went out
		t.Fatal(err)
	}
	n0.api.Close()

	o.now = func() time.Time { return time.Now().Add(-time.Hour) }
	r0 := startNode(t, "node0", eps, []string{n1.cluster.Addr()}, o)
	rollout(repos, "1.2.0")
	eventually(t, 20*time.Second, "node1 takes the restarted node0's new scans", func() bool {
		if err := r0.svc.ScanOnce(ctx); err != nil {
			t.Fatal(err)
		}
		return safeOf(n1, faultTitle) == "1.2.0"
	})
}

// TestClusterRestartDuringOutage: while endpoint b is down, both nodes hold the safe version they last
// confirmed. node1 restarts: it gets the observations by push/pull, but has no history to hold a version from.
// It adopts node0's held version, and both nodes answer alike (S3: any node answers with the cluster's view).
func TestClusterRestartDuringOutage(t *testing.T) {
	base := schemarepo.Demo()
	var down atomic.Bool
	var eps []string
	for i := 0; i < 2; i++ {
		host := schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": base.Clone()})
		handler := http.Handler(host)
		if i == 1 {
			handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if down.Load() {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				host.ServeHTTP(w, r)
			})
		}
		srv := httptest.NewServer(handler)
		t.Cleanup(srv.Close)
		eps = append(eps, srv.URL+"/repositories/primary/jsonschema/")
	}
	ctx := context.Background()
	scan := func(nodes ...*testNode) {
		for _, n := range nodes {
			if err := n.svc.ScanOnce(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	n0 := startNode(t, "node0", eps, nil, nodeOpts{})
	n1 := startNode(t, "node1", eps, []string{n0.cluster.Addr()}, nodeOpts{})
	scan(n0, n1)
	eventually(t, 10*time.Second, "both nodes see 1.1.0", func() bool {
		return safeOf(n0, faultTitle) == "1.1.0" && safeOf(n1, faultTitle) == "1.1.0"
	})
	down.Store(true)
	scan(n0, n1)
	// node1's failed scan of b reaches node0 by gossip: until then node1's earlier success keeps b known.
	eventually(t, 10*time.Second, "node0 with b down answers the held 1.1.0, stale", func() bool {
		s, _, stale := view(n0)
		return s == "1.1.0" && stale
	})
	if err := n1.cluster.Leave(5 * time.Second); err != nil { // returns once the leave went out
		t.Fatal(err)
	}
	n1.api.Close()

	r1 := startNode(t, "node1", eps, []string{n0.cluster.Addr()}, nodeOpts{})
	scan(r1)
	eventually(t, 10*time.Second, "the restarted node1 answers the held 1.1.0, stale, like node0", func() bool {
		s, _, stale := view(r1)
		return s == "1.1.0" && stale
	})
}
