package gossip

import (
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/internal/ctxwait"
	"github.com/evenkeel/evenkeel/schemasync/observation"
	"github.com/evenkeel/evenkeel/schemasync/version"
)

// Delegate is what gossip needs of the service whose observations it shares, the way memberlist's Delegate
// is what memberlist needs of its user. Digests is called from memberlist's own goroutines and must never
// block (on the service's lock, say); the other methods are called only from this package's workers.
type Delegate interface {
	// Observe applies another node's observation; it reports whether the observation was new (a higher
	// sequence number than the one held for its observer and endpoint), and so is relayed.
	Observe(o observation.Observation) bool
	// Seq is the sequence number of the observation held from observer of endpoint, if any.
	Seq(endpoint, observer string) (uint64, bool)
	// NoteOwnSeq says that another node holds one of this node's own observations with sequence number seq
	// (from before a restart): this node's next observations must continue above it.
	NoteOwnSeq(seq uint64)
	// Content is the content of a successful observation held with that content hash, if any.
	Content(hash string) (map[string][]version.Version, bool)
	// Digests is what this node tells another in push/pull at now: a digest of every observation it holds,
	// aged by now, and its held versions. It must return without waiting for any lock.
	Digests(now time.Time) Shared
	// AdoptHeld takes another node's held safe versions where this node holds none (sets: repository ->
	// endpoint set hash of the sender, for the repositories it holds versions of).
	AdoptHeld(held []observation.HeldVersion, sets map[string]string)
	// Configured reports whether endpoint is configured here, in repository repo: digests of anything else
	// are rejected.
	Configured(repo, endpoint string) bool
	// Limits are the bounds a digest and fetched content must keep.
	Limits() Limits
}

// Shared is a node's full state in push/pull.
type Shared struct {
	Digests []observation.Digest
	// Held are the held safe versions in repositories with an unknown endpoint (usually none), and Sets the
	// endpoint set hash of each such repository.
	Held []observation.HeldVersion
	Sets map[string]string
}

// Limits bound what another node's digests and content may hold.
type Limits struct {
	// MaxAge is the oldest observation any node keeps: a digest that is older is out of range.
	MaxAge time.Duration
	// MaxTitles bounds the titles of fetched content, as a scan of this node would.
	MaxTitles int
}

// Config is one node's gossip. The service fills it from its configuration file's cluster section, whose
// documentation gives the defaults.
type Config struct {
	// NodeName names this node: as an observer, and as a cluster member.
	NodeName string
	// Datacenter tags this node (memberlist metadata; shown by Members).
	Datacenter string
	// Bind is the host:port for gossip (UDP and TCP); port 0 picks a free port.
	Bind string
	// Advertise is the host:port other nodes reach this node at; "" means Bind.
	Advertise string
	// APIURL is the base URL of this node's HTTP API, which other nodes fetch observation content from
	// (GET <APIURL>/v1/internal/content/<hash>).
	APIURL string
	// Join lists seed nodes (host:port), tried with backoff until one answers.
	Join []string
	// Label is the memberlist label: nodes with another label cannot talk to this one.
	Label string
	// KeyringFile holds the encryption keys (see LoadKeyring); "" means no encryption.
	KeyringFile string
	// GossipInterval, PushPullInterval and ProbeInterval are memberlist's; RejoinInterval is how often the
	// node dials the members it believes dead. All must be positive.
	GossipInterval, PushPullInterval, ProbeInterval, RejoinInterval time.Duration
	// JoinBackoff is the first wait between join attempts; it doubles up to 30s. Zero means 1s.
	JoinBackoff time.Duration
}

// Fetcher sends the HTTP requests that fetch observation content from other nodes.
type Fetcher interface {
	Do(*http.Request) (*http.Response, error)
}

// Options are the cluster's collaborators. Every field is optional.
type Options struct {
	// Logger receives the cluster's logs, and memberlist's. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the gossip metrics (registered by New, unregistered by Leave). Nil registers none.
	Registerer prometheus.Registerer
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Transport replaces memberlist's UDP/TCP transport (fault-injection tests).
	Transport memberlist.NodeAwareTransport
	// Peers sends the requests that fetch content. Nil: an http.Client that follows no redirect.
	Peers Fetcher
	// Memberlist, when set, adjusts memberlist's configuration after New has filled it in (tests use it to
	// shorten memberlist's own timers, such as GossipToTheDeadTime).
	Memberlist func(*memberlist.Config)
}

// DefaultLeaveTimeout is how long Close waits for the leave announcement to go out.
const DefaultLeaveTimeout = 5 * time.Second

// ErrClosed is returned by Run after Leave or Close.
var ErrClosed = errors.New("gossip: cluster closed")

// Cluster shares a service's observations with other nodes over hashicorp/memberlist. It is an adapter:
// memberlist and HTTP feed observations to the Delegate, which makes every decision. New creates it
// (memberlist listens from then on), Run processes what arrives and joins the seeds, Leave or Close ends
// it; every goroutine it starts ends before Leave returns.
type Cluster struct {
	d      Delegate
	cfg    Config
	apiURL string
	log    *slog.Logger
	reg    prometheus.Registerer
	peers  Fetcher
	now    func() time.Time

	ml      *memberlist.Memberlist
	queue   *memberlist.TransmitLimitedQueue
	keyring *memberlist.Keyring

	inbox     chan inbound
	heldInbox chan heldMsg
	direct    chan *obsBroadcast // digests to send straight to every member, by one goroutine
	fetching  sync.Map           // content hash -> chan struct{}, closed when that fetch (and its Observe) is done
	fetchers  sync.WaitGroup     // the members' fetchers (fetch.go), started by workers; Run waits for them
	joined    atomic.Bool
	merged    atomic.Bool

	life    sync.Mutex // guards closed and runs' start
	closed  bool
	stop    chan struct{}  // closed by Leave: Run ends
	running sync.WaitGroup // Run calls

	mu      sync.Mutex
	members map[string]*MemberView
	// leaving holds when each live member announced that it leaves: its departure within leaveMarkTTL is
	// "left", not "dead". Only live members have a mark, so announcements cannot grow it.
	leaving map[string]time.Time
	// live are copies of the live members' nodes, taken in the event delegate (under memberlist's lock): a
	// direct send reads a node's fields (PMax), which memberlist rewrites in place under its lock, so sending
	// to the *Node that Members() returns is a data race.
	live     map[string]memberlist.Node
	outcomes map[string]string // endpoint -> content hash or error of this node's last scan of it
	// fetchQueues holds the digests each member's fetcher has yet to fetch content for (fetch.go).
	fetchQueues map[string]chan inbound

	m *metrics
}

// heldMsg is the held versions of one push/pull, for a worker to adopt.
type heldMsg struct {
	held []observation.HeldVersion
	sets map[string]string
}

type inbound struct {
	d    observation.Digest
	from string // the member that sent it: its content is fetched from that member's advertised API
	recv time.Time
	kind string
}

// MemberView is one member as this node sees it.
type MemberView struct {
	Name       string `json:"name"`
	Address    string `json:"address"`
	State      string `json:"state"` // alive, dead or left
	Datacenter string `json:"datacenter,omitempty"`
	API        string `json:"api,omitempty"`
	Self       bool   `json:"self,omitempty"`

	ip     net.IP    // the address it gossips from
	since  time.Time // when the member was last seen to change state
	dialed time.Time // when rejoin last dialled it
}

// New creates the cluster for d: memberlist listens on cfg.Bind from now on, and delegates what arrives to
// a bounded inbox that Run works through. It neither joins nor starts a goroutine of its own; Run does.
func New(d Delegate, cfg Config, opts Options) (*Cluster, error) {
	c := &Cluster{
		d: d, cfg: cfg, apiURL: cfg.APIURL, log: opts.Logger, reg: opts.Registerer, peers: opts.Peers, now: opts.Now,
		inbox: make(chan inbound, 4096), heldInbox: make(chan heldMsg, 16), direct: make(chan *obsBroadcast, 64),
		stop: make(chan struct{}), members: map[string]*MemberView{}, leaving: map[string]time.Time{}, live: map[string]memberlist.Node{}, outcomes: map[string]string{},
		fetchQueues: map[string]chan inbound{},
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.log = c.log.With("component", "cluster")
	if c.now == nil {
		c.now = time.Now
	}
	if cfg.GossipInterval <= 0 || cfg.PushPullInterval <= 0 || cfg.ProbeInterval <= 0 || cfg.RejoinInterval <= 0 {
		return nil, errors.New("cluster: gossip, push/pull, probe and rejoin intervals must be positive")
	}
	if c.peers == nil {
		// No redirects and no proxy: content comes from the member's own API, on the machine it gossips
		// from, or not at all.
		c.peers = &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{DialContext: peerDialer(5 * time.Second), TLSHandshakeTimeout: 5 * time.Second,
				MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
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
	mc.Delegate = (*delegate)(c)
	mc.Events = (*events)(c)
	c.m = newMetrics(c)
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
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if c.reg != nil {
		if err := c.reg.Register(c.m); err != nil {
			_ = c.ml.Shutdown()
			return nil, err
		}
	}
	if len(cfg.Join) == 0 {
		c.joined.Store(true)
		c.merged.Store(true)
	}
	c.log.Info("gossip started", "node", cfg.NodeName, "addr", c.Addr(), "api", c.apiURL,
		"encrypted", c.keyring != nil, "label", cfg.Label)
	return c, nil
}

// Run works through what gossip delivers (fetching content it lacks and feeding observations to the
// Delegate), sends direct digests, and joins the seeds with backoff, then repairs the membership every
// RejoinInterval. It returns when ctx ends or the cluster leaves, once every goroutine it started has
// ended; ErrClosed if the cluster had left already. Run it once.
func (c *Cluster) Run(ctx context.Context) error {
	c.life.Lock()
	if c.closed {
		c.life.Unlock()
		return ErrClosed
	}
	c.running.Add(1)
	c.life.Unlock()
	defer c.running.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := func(f func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	for i := 0; i < 4; i++ {
		start(c.worker)
	}
	start(c.directSender)
	start(c.joinLoop)
	select {
	case <-ctx.Done():
	case <-c.stop:
	}
	cancel() // every request to another node, and every wait, uses ctx
	wg.Wait()
	c.fetchers.Wait() // only the workers start fetchers, and they have ended
	return nil
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

// Joined reports whether the node has joined a seed (or has none to join).
func (c *Cluster) Joined() bool { return c.joined.Load() }

// Merged reports whether the node has merged another node's full state (or has no seed to join).
func (c *Cluster) Merged() bool { return c.merged.Load() }

// joinLoop joins the seeds, retrying with backoff until some other node answers (a seed list that includes
// this node's own address is answered by this node, which does not count), then repairs the membership
// every rejoin_interval: see rejoin.
func (c *Cluster) joinLoop(ctx context.Context) {
	seeds := c.cfg.Join
	backoff := c.cfg.JoinBackoff
	if backoff <= 0 {
		backoff = time.Second
	}
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
		if ctxwait.Sleep(ctx, backoff) != nil {
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	t := time.NewTicker(c.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.rejoin(ctx, seeds)
		}
	}
}

// rejoin dials the members this node believes dead, and its seeds while it has no other live member.
// memberlist gossips to a dead member only for 30 s and push/pulls only with live ones, so after a longer
// partition neither side would ever contact the other again; a successful dial merges both sides' state and
// the dead come back to life (memberlist then learns the rest of that side from it).
//
// A round dials at most maxRejoinDials members, those it tried least recently first, one at a time, and
// stops when ctx ends: a dial memberlist makes cannot be cancelled and takes up to its TCP timeout (10 s)
// against a host whose packets are dropped, so Leave waits for at most one, however many members are dead.
func (c *Cluster) rejoin(ctx context.Context, seeds []string) {
	now, keep := c.now(), c.d.Limits().MaxAge // Limits waits for the service's lock: not under c.mu
	c.mu.Lock()
	c.forgetGoneLocked(now, keep)
	var dead []*MemberView
	for _, m := range c.members {
		if m.State == "dead" && m.Name != c.cfg.NodeName {
			dead = append(dead, m)
		}
	}
	sort.Slice(dead, func(i, j int) bool {
		if !dead[i].dialed.Equal(dead[j].dialed) {
			return dead[i].dialed.Before(dead[j].dialed)
		}
		return dead[i].Name < dead[j].Name
	})
	var targets []string
	for _, m := range dead[:min(len(dead), maxRejoinDials)] {
		m.dialed = now
		targets = append(targets, m.Address)
	}
	c.mu.Unlock()
	if c.ml.NumMembers() <= 1 {
		targets = append(targets, seeds...)
	}
	contacted := 0
	var err error
	for _, addr := range targets {
		if ctx.Err() != nil {
			return
		}
		var n int
		if n, err = c.ml.Join([]string{addr}); n > 0 {
			contacted += n
		}
	}
	if contacted > 0 {
		c.log.Info("rejoined members believed dead or seeds", "targets", targets, "contacted", contacted,
			"members", c.ml.NumMembers())
		return
	}
	if len(targets) > 0 {
		c.log.Debug("members believed dead still unreachable", "targets", targets, "err", err)
	}
}

// Bounds on the members a node remembers after they are gone.
const (
	maxRejoinDials = 3   // dead members dialled per rejoin round
	maxGoneMembers = 256 // dead or departed members remembered; the longest gone are forgotten first
)

// forgetGoneLocked forgets the members that have been dead or gone for longer than keep (Limits.MaxAge: no
// node keeps an observation of theirs, so nothing is left to repair), and the longest gone beyond
// maxGoneMembers, so that a fleet whose nodes come and go under new names neither grows the member list
// nor dials ever more ghosts. c.mu is held.
func (c *Cluster) forgetGoneLocked(now time.Time, keep time.Duration) {
	var gone []*MemberView
	for name, m := range c.members {
		if m.State == "alive" {
			continue
		}
		if now.Sub(m.since) > keep {
			delete(c.members, name)
			continue
		}
		gone = append(gone, m)
	}
	if len(gone) <= maxGoneMembers {
		return
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].since.Before(gone[j].since) })
	for _, m := range gone[:len(gone)-maxGoneMembers] {
		delete(c.members, m.Name)
	}
}

// Left reports whether Leave (or Close) has been called.
func (c *Cluster) Left() bool {
	c.life.Lock()
	defer c.life.Unlock()
	return c.closed
}

// Close is Leave with DefaultLeaveTimeout.
func (c *Cluster) Close() error { return c.Leave(DefaultLeaveTimeout) }

// Leave announces that this node leaves, then stops gossip: memberlist shuts down, Run returns, and Leave
// returns once every goroutine of the cluster has ended. Other nodes stop counting on this node's scans;
// its observations expire through max_staleness. Leaving again does nothing.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.life.Lock()
	if c.closed {
		c.life.Unlock()
		return nil
	}
	c.closed = true
	c.life.Unlock()
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
	if e := c.ml.Shutdown(); err == nil {
		err = e
	}
	c.running.Wait()
	if c.reg != nil {
		c.reg.Unregister(c.m)
	}
	return err
}
