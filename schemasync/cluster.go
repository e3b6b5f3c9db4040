package schemasync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/evenkeel/evenkeel/internal/ctxwait"
	"github.com/evenkeel/evenkeel/internal/safetext"
)

// ClusterOptions are what the caller knows about the running node, plus test hooks.
type ClusterOptions struct {
	// APIURL is the base URL of this node's HTTP API, which other nodes fetch observations from. It overrides
	// cluster.api_advertise.
	APIURL string
	// Transport replaces memberlist's UDP/TCP transport (fault-injection tests).
	Transport memberlist.NodeAwareTransport
	// Peers sends the HTTP requests that fetch observation content from other nodes. Nil: an http.Client.
	Peers Fetcher
	// JoinBackoff is the first wait between join attempts; it doubles up to 30s. Default 1s.
	JoinBackoff time.Duration
	// Memberlist, when set, adjusts memberlist's configuration after schemasync has filled it in (tests use it
	// to shorten memberlist's own timers, such as GossipToTheDeadTime).
	Memberlist func(*memberlist.Config)
}

// Cluster shares a Service's observations with other schemasync nodes over hashicorp/memberlist. It is an
// adapter: memberlist and HTTP feed observations to the Service's State, which makes every decision.
//
// Merge rule: every node holds, per (endpoint, observer), the observation with the highest Seq it has heard
// of, dated by its own clock (receipt time minus the age the sender reported). From that set, every node
// computes the view with the same State rules, so nodes that hold the same observations agree. Observations of
// a node that died stop being refreshed and expire through max_staleness.
type Cluster struct {
	svc    *Service
	cfg    ClusterConfig
	apiURL string
	log    *slog.Logger
	peers  Fetcher
	now    func() time.Time

	ml      *memberlist.Memberlist
	queue   *memberlist.TransmitLimitedQueue
	keyring *memberlist.Keyring

	inbox     chan inbound
	heldInbox chan heldMsg
	direct    chan *obsBroadcast // digests to send straight to every member, by one goroutine
	fetching  sync.Map           // content hash -> chan struct{}, closed when that fetch (and its Observe) is done
	stop      chan struct{}
	ctx       context.Context // ends at Leave: every request to another node uses it
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	joined    atomic.Bool
	merged    atomic.Bool

	mu       sync.Mutex
	members  map[string]*MemberView
	leaving  map[string]bool   // nodes that announced they leave: their departure is "left", not "dead"
	outcomes map[string]string // endpoint -> content hash or error of this node's last scan of it

	m *clusterMetrics
}

// heldMsg is the held versions of one push/pull, for a worker to adopt.
type heldMsg struct {
	held []HeldVersion
	sets map[string]string
}

type inbound struct {
	d    digest
	from string // the member that sent it: its content is fetched from that member's advertised API
	recv time.Time
	kind string
}

// MemberView is one member as this node sees it.
type MemberView struct {
	Name       string `json:"name"`
	Address    string `json:"address"`
	State      string `json:"state"` // alive, suspect, dead or left
	Datacenter string `json:"datacenter,omitempty"`
	API        string `json:"api,omitempty"`
	Self       bool   `json:"self,omitempty"`
}

// StartCluster starts gossip for the service and joins the configured seeds in the background. Stop it with
// Leave.
func (s *Service) StartCluster(opts ClusterOptions) (*Cluster, error) {
	cfg := s.Config().Cluster
	if !cfg.Enabled() {
		return nil, errors.New("cluster: cluster.bind is not set")
	}
	c := &Cluster{
		svc: s, cfg: cfg, log: s.log.With("component", "cluster"), peers: opts.Peers, now: s.now,
		inbox: make(chan inbound, 4096), heldInbox: make(chan heldMsg, 16), direct: make(chan *obsBroadcast, 64), stop: make(chan struct{}),
		members: map[string]*MemberView{}, leaving: map[string]bool{}, outcomes: map[string]string{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.apiURL = opts.APIURL
	if c.apiURL == "" {
		c.apiURL = cfg.APIAdvertise
	}
	if c.peers == nil {
		// No redirects: content comes from the member's own API or not at all.
		c.peers = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	meta, _ := json.Marshal(nodeMeta{DC: cfg.Datacenter, API: c.apiURL})
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("cluster: node metadata is %d bytes, more than memberlist's %d: shorten api_advertise or datacenter", len(meta), memberlist.MetaMaxSize)
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	host, port, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("cluster.bind: %w", err)
	}
	mc.BindAddr, mc.BindPort = host, port
	if cfg.Advertise != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = splitHostPort(cfg.Advertise); err != nil {
			return nil, fmt.Errorf("cluster.advertise: %w", err)
		}
	}
	mc.Label = cfg.Label
	if cfg.KeyringFile != "" {
		keys, err := LoadKeyring(cfg.KeyringFile)
		if err != nil {
			return nil, err
		}
		if c.keyring, err = memberlist.NewKeyring(keys, keys[0]); err != nil {
			return nil, fmt.Errorf("cluster: keyring: %w", err)
		}
		mc.Keyring = c.keyring
	}
	mc.GossipInterval, mc.PushPullInterval, mc.ProbeInterval = cfg.GossipInterval, cfg.PushPullInterval, cfg.ProbeInterval
	mc.Delegate = (*clusterDelegate)(c)
	mc.Events = (*clusterEvents)(c)
	c.m = newClusterMetrics(c)
	mc.LogOutput = &memberlistLog{log: c.log, problems: c.m.memberlistProblems}
	if opts.Transport != nil {
		mc.Transport = opts.Transport
	}
	if opts.Memberlist != nil {
		opts.Memberlist(mc)
	}
	c.queue = &memberlist.TransmitLimitedQueue{RetransmitMult: mc.RetransmitMult, NumNodes: func() int {
		if c.ml == nil {
			return 1
		}
		return c.ml.NumMembers()
	}}
	if c.ml, err = memberlist.Create(mc); err != nil {
		c.cancel()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if s.reg != nil {
		if err := s.reg.Register(c.m); err != nil {
			c.cancel()
			_ = c.ml.Shutdown()
			return nil, err
		}
	}
	for i := 0; i < 4; i++ {
		c.wg.Add(1)
		go c.worker()
	}
	c.wg.Add(1)
	go c.directSender()
	s.mu.Lock()
	s.cluster = c
	s.mu.Unlock()
	if len(cfg.Join) == 0 {
		c.joined.Store(true)
		c.merged.Store(true)
	}
	backoff := opts.JoinBackoff
	if backoff <= 0 {
		backoff = time.Second
	}
	c.wg.Add(1)
	go c.joinLoop(cfg.Join, backoff)
	c.log.Info("gossip started", "node", cfg.NodeName, "addr", c.Addr(), "api", c.apiURL,
		"encrypted", c.keyring != nil, "label", cfg.Label)
	return c, nil
}

func splitHostPort(a string) (string, int, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", a)
	}
	return h, port, nil
}

// Addr is the gossip address other nodes join (host:port).
func (c *Cluster) Addr() string {
	n := c.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Ready reports whether the node has joined a seed (or has none to join) and has merged a peer's full state.
func (c *Cluster) Ready() bool { return c.joined.Load() && c.merged.Load() }

// joinLoop joins the seeds, retrying with backoff until some other node answers (a seed list that includes
// this node's own address is answered by this node, which does not count), then repairs the membership
// every rejoin_interval: see rejoin.
func (c *Cluster) joinLoop(seeds []string, backoff time.Duration) {
	defer c.wg.Done()
	for attempt := 1; len(seeds) > 0 && !c.joined.Load(); attempt++ {
		n, err := c.ml.Join(seeds)
		if n > 0 && c.ml.NumMembers() > 1 {
			c.joined.Store(true)
			c.log.Info("joined the cluster", "contacted", n, "members", c.ml.NumMembers())
			break
		}
		if err == nil {
			err = errors.New("only this node answered")
		}
		c.log.Warn("cannot join the cluster; will retry (a wrong keyring shows here or on the seed as a decrypt "+
			"error, a wrong label as an EOF here and \"unacceptable label\" on the seed)",
			"seeds", seeds, "attempt", attempt, "err", err, "retry_in", backoff)
		if ctxwait.Sleep(c.ctx, backoff) != nil { // c.ctx ends when the cluster leaves
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	t := time.NewTicker(c.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.rejoin(seeds)
		}
	}
}

// rejoin dials the members this node believes dead, and its seeds while it has no other live member.
// memberlist gossips to a dead member only for 30 s and push/pulls only with live ones, so after a longer
// partition neither side would ever contact the other again; a successful dial merges both sides' state and
// the dead come back to life.
func (c *Cluster) rejoin(seeds []string) {
	var targets []string
	c.mu.Lock()
	for _, m := range c.members {
		if m.State == "dead" && m.Name != c.cfg.NodeName {
			targets = append(targets, m.Address)
		}
	}
	c.mu.Unlock()
	if c.ml.NumMembers() <= 1 {
		targets = append(targets, seeds...)
	}
	if len(targets) == 0 {
		return
	}
	sort.Strings(targets)
	n, err := c.ml.Join(targets)
	if n > 0 {
		c.log.Info("rejoined members believed dead or seeds", "targets", targets, "contacted", n,
			"members", c.ml.NumMembers())
		return
	}
	c.log.Debug("members believed dead still unreachable", "targets", targets, "err", err)
}

// Leave announces that this node leaves, then stops gossip. Other nodes stop counting on its scans; its
// observations expire through max_staleness.
func (c *Cluster) Leave(timeout time.Duration) error {
	select {
	case <-c.stop:
		return nil
	default:
	}
	// memberlist tells others only that the node is gone; announce first that it leaves on purpose.
	body, _ := json.Marshal(broadcastMsg{From: c.cfg.NodeName, Leave: c.cfg.NodeName})
	c.queue.QueueBroadcast(&obsBroadcast{name: "leave\x00" + c.cfg.NodeName, body: body, at: c.now(), now: c.now})
	if c.ml.NumMembers() > 1 {
		deadline := time.Now().Add(min(timeout, 10*c.cfg.GossipInterval))
		for c.queue.NumQueued() > 0 && time.Now().Before(deadline) {
			time.Sleep(c.cfg.GossipInterval / 4)
		}
	}
	err := c.ml.Leave(timeout)
	close(c.stop)
	c.cancel()
	if e := c.ml.Shutdown(); err == nil {
		err = e
	}
	c.wg.Wait()
	c.svc.mu.Lock()
	c.svc.cluster = nil
	c.svc.mu.Unlock()
	if c.svc.reg != nil {
		c.svc.reg.Unregister(c.m)
	}
	return err
}

// Members lists every member this node knows of, sorted by name, with the dead and the departed.
func (c *Cluster) Members() []MemberView {
	// memberlist raises no event when it suspects a member: ask it. Before taking c.mu, because memberlist
	// holds its own lock while it calls our event delegate, which takes c.mu.
	suspect := map[string]bool{}
	for _, n := range c.ml.Members() {
		if n.State == memberlist.StateSuspect {
			suspect[n.Name] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]MemberView, 0, len(c.members))
	for _, m := range c.members {
		mv := *m
		mv.Self = m.Name == c.cfg.NodeName
		if mv.State == "alive" && suspect[mv.Name] {
			mv.State = "suspect"
		}
		out = append(out, mv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ReloadKeyring makes the running keyring equal to the file's keys: it adds new keys, makes the file's first
// key primary, then removes keys that are no longer listed. See "schemasync keys --help" for rotation.
func (c *Cluster) ReloadKeyring(path string) error {
	if c.keyring == nil {
		return errors.New("cluster: gossip is not encrypted; a keyring needs a restart with keyring_file set")
	}
	keys, err := LoadKeyring(path)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := c.keyring.AddKey(k); err != nil {
			return err
		}
	}
	if err := c.keyring.UseKey(keys[0]); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[string(k)] = true
	}
	for _, k := range c.keyring.GetKeys() {
		if !want[string(k)] {
			if err := c.keyring.RemoveKey(k); err != nil {
				return err
			}
		}
	}
	c.log.Info("keyring reloaded", "keys", len(keys), "primary", KeyFingerprint(keys[0]))
	return nil
}

// KeyFingerprints lists the installed keys' fingerprints, primary first.
func (c *Cluster) KeyFingerprints() []string {
	if c.keyring == nil {
		return nil
	}
	primary := c.keyring.GetPrimaryKey()
	out := []string{KeyFingerprint(primary)}
	for _, k := range c.keyring.GetKeys() {
		if !bytes.Equal(k, primary) {
			out = append(out, KeyFingerprint(k))
		}
	}
	return out
}

// publish queues a broadcast of an observation's digest (a local one, or a relayed one); it replaces the
// queued digest of the same observer and endpoint. When this node's own scan of an endpoint gives a different
// result from its previous scan (new content, or a new error), the digest also goes straight to every other
// member, so that a change reaches every node in one hop instead of waiting for gossip rounds. Unchanged
// scans, which only refresh freshness, ride the gossip alone.
func (c *Cluster) publish(o *Observation) {
	body, _ := json.Marshal(broadcastMsg{From: c.cfg.NodeName, D: digestOf(o, 0)})
	c.queue.QueueBroadcast(&obsBroadcast{name: o.Observer + "\x00" + o.Endpoint, body: body, at: o.At, now: c.now})
	if o.Observer != c.cfg.NodeName {
		return
	}
	outcome := o.Hash + "\x00" + o.Err
	c.mu.Lock()
	changed := c.outcomes[o.Endpoint] != outcome
	c.outcomes[o.Endpoint] = outcome
	c.mu.Unlock()
	if changed {
		direct, _ := json.Marshal(broadcastMsg{From: c.cfg.NodeName, D: digestOf(o, 0), Direct: true})
		select { // publish runs under the service's lock: the sender goroutine sends outside it
		case c.direct <- &obsBroadcast{body: direct, at: o.At, now: c.now}:
		default: // the gossip carries it too
		}
	}
}

// directSender sends the queued direct digests until Leave.
func (c *Cluster) directSender() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case b := <-c.direct:
			c.sendDirect(b)
		}
	}
}

// sendDirect sends a digest to every other member as a best-effort (UDP) message, encrypted and labelled
// like the gossip. A lost packet costs only latency: the gossip and push/pull carry the same digest.
func (c *Cluster) sendDirect(b *obsBroadcast) {
	msg := b.Message() // the age is written now, at sending
	for _, n := range c.ml.Members() {
		if n.Name == c.cfg.NodeName {
			continue
		}
		if err := c.ml.SendBestEffort(n, msg); err != nil {
			c.log.Debug("sending a digest directly failed", "to", n.Name, "err", err)
			continue
		}
		c.m.msgs.WithLabelValues("sent", "direct").Inc()
		c.m.bytes.WithLabelValues("sent", "direct").Add(float64(len(msg)))
	}
}

// worker applies inbound digests: it fetches content it lacks, then feeds the observation to the state.
func (c *Cluster) worker() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case in := <-c.inbox:
			c.apply(in)
		case h := <-c.heldInbox:
			c.svc.adoptHeld(h.held, h.sets)
		}
	}
}

func (c *Cluster) enqueue(in inbound) {
	select {
	case c.inbox <- in:
	default:
		c.m.dropped.Inc() // the next push/pull or broadcast brings it again
	}
}

func (c *Cluster) apply(in inbound) {
	d := in.d
	if reason := c.checkDigest(&d, in.recv); reason != "" {
		c.reject(reason, in.from)
		return
	}
	if d.Observer == c.cfg.NodeName {
		// This node is the authority on its own scans, but other nodes may hold one from before a restart
		// with a higher sequence number (the clock stepped back meanwhile): they would reject this node's new
		// scans until the clock caught up. Continue above it.
		c.svc.noteOwnSeq(d.Seq)
		return
	}
	if d.Observer == "" {
		return
	}
	if seq, ok := c.svc.observationSeq(d.Endpoint, d.Observer); ok && seq >= d.Seq {
		return
	}
	o := Observation{Repository: d.Repository, Endpoint: d.Endpoint, Observer: d.Observer, Seq: d.Seq,
		At: in.recv.Add(-time.Duration(d.AgeMS) * time.Millisecond), Err: d.Err, Hash: d.Hash}
	if o.Err == "" {
		schemas, ok := c.svc.contentByHash(d.Hash)
		if !ok {
			done := make(chan struct{})
			if other, busy := c.fetching.LoadOrStore(d.Hash, done); busy {
				// Another worker fetches this content (endpoints usually serve the same): wait for it, then
				// apply this digest again, which finds the content, or fetches it if that fetch failed.
				select {
				case <-other.(chan struct{}):
					c.apply(in)
				case <-c.stop:
				}
				return
			}
			// Released after Observe below, so that waiters find the content in the state.
			defer func() {
				c.fetching.Delete(d.Hash)
				close(done)
			}()
			var err error
			schemas, err = c.fetchContent(in.from, d.Hash)
			if err != nil {
				c.m.fetchErrors.Inc()
				c.log.Debug("fetching observation content failed", "from", in.from, "hash", d.Hash, "err", err)
				return
			}
		}
		o.Schemas = schemas
	}
	if c.svc.Observe(o) {
		if in.kind != "push_pull" {
			// Push/pull also brings old observations (at a join, after a heal): their age is not a
			// propagation delay.
			c.m.propagation.Observe(c.now().Sub(o.At).Seconds())
		}
		// Relay it once: memberlist does not relay user broadcasts, and its retransmit limit alone misses
		// some nodes, which would then wait for push/pull. Each node relays an observation only the first
		// time it learns it, so this is epidemic and bounded. Content is fetched from the relayer.
		c.publish(&o)
	}
}

// memberAPI is the API URL that member advertises in its memberlist metadata ("" when unknown).
func (c *Cluster) memberAPI(member string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[member]; m != nil && m.State == "alive" {
		return m.API
	}
	return ""
}

// fetchContent gets an observation's content by hash from member's advertised API, and checks it: its hash,
// and its size against the bounds a scan of this node would apply.
func (c *Cluster) fetchContent(member, hash string) (map[string][]Version, error) {
	src := c.memberAPI(member)
	if src == "" {
		return nil, fmt.Errorf("member %s is not alive or advertises no API", safetext.Quote(safetext.Bound(member, 64)))
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(src, "/")+"/v1/internal/content/"+hash, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.peers.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxContentBytes+1))
	c.m.fetchBytes.Add(float64(len(body)))
	if err != nil {
		return nil, err
	}
	if len(body) > maxContentBytes {
		return nil, fmt.Errorf("content exceeds %d bytes", maxContentBytes)
	}
	var schemas map[string][]Version
	if err := json.Unmarshal(body, &schemas); err != nil {
		return nil, err
	}
	if max := c.svc.Config().Scan.MaxTitles; len(schemas) > max {
		return nil, fmt.Errorf("content lists %d titles, more than max_titles %d", len(schemas), max)
	}
	if got := ContentHash(schemas); got != hash {
		return nil, fmt.Errorf("content hash %s, want %s", got, hash)
	}
	return schemas, nil
}

// checkDigest range-checks every field of a digest that arrived by gossip, at recv by this node's clock. It
// returns the reason for rejecting it, or "".
func (c *Cluster) checkDigest(d *digest, recv time.Time) string {
	return checkDigest(d, recv, c.svc.forgetAfter(), c.svc.configuredEndpoint)
}

// reject counts a rejected message or digest. It logs at debug level only: a flood of garbage must not
// flood the log (the counter shows it).
func (c *Cluster) reject(reason, from string) {
	c.m.rejected.WithLabelValues(reason).Inc()
	c.log.Debug("rejected a gossip message", "reason", reason, "from", safetext.Bound(from, 64))
}
