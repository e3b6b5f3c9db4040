package schemasync

import (
	"errors"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/evenkeel/evenkeel/schemasync/gossip"
	"github.com/evenkeel/evenkeel/schemasync/observation"
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

// MemberView is one member of the cluster as this node sees it.
type MemberView = gossip.MemberView

// NewCluster creates this service's gossip (package gossip) from the cluster section of its configuration,
// and attaches it: the service publishes its scans to it, and answers /readyz and /v1/members from it. The
// caller runs it with Run and stops it with Leave or Close; memberlist listens from NewCluster on.
func (s *Service) NewCluster(opts ClusterOptions) (*gossip.Cluster, error) {
	cfg := s.Config().Cluster
	if !cfg.Enabled() {
		return nil, errors.New("cluster: cluster.bind is not set")
	}
	api := opts.APIURL
	if api == "" {
		api = cfg.APIAdvertise
	}
	c, err := gossip.New((*gossipDelegate)(s), gossip.Config{
		NodeName: cfg.NodeName, Datacenter: cfg.Datacenter, Bind: cfg.Bind, Advertise: cfg.Advertise, APIURL: api,
		Join: cfg.Join, Label: cfg.Label, KeyringFile: cfg.KeyringFile, GossipInterval: cfg.GossipInterval,
		PushPullInterval: cfg.PushPullInterval, ProbeInterval: cfg.ProbeInterval, RejoinInterval: cfg.RejoinInterval,
		JoinBackoff: opts.JoinBackoff,
	}, gossip.Options{Logger: s.log, Registerer: s.reg, Now: s.now, Transport: opts.Transport, Peers: opts.Peers,
		Memberlist: opts.Memberlist})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cluster = c
	s.mu.Unlock()
	return c, nil
}

// gossipDelegate is the service as its gossip sees it (gossip.Delegate). Digests never waits for the
// service's lock: memberlist calls it from its own goroutines.
type gossipDelegate Service

var _ gossip.Delegate = (*gossipDelegate)(nil)

func (d *gossipDelegate) Observe(o Observation) bool { return (*Service)(d).Observe(o) }

// Seq returns the Seq of the observation the state holds from observer of endpoint.
func (d *gossipDelegate) Seq(endpoint, observer string) (uint64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.state.latest[obsKey{endpoint, observer}]
	if !ok {
		return 0, false
	}
	return o.Seq, true
}

// NoteOwnSeq makes this node's next observation's Seq exceed seq: another node holds an observation of this
// node's with that Seq, from before a restart.
func (d *gossipDelegate) NoteOwnSeq(seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if seq > d.lastSeq {
		d.log.Info("continuing the sequence of this node's observations that other nodes hold from before a restart",
			"seq", seq, "was", d.lastSeq)
		d.lastSeq = seq
	}
}

func (d *gossipDelegate) Content(hash string) (map[string][]Version, bool) {
	return (*Service)(d).contentByHash(hash)
}

// Digests is the push/pull state at now, from the last state taken (see sharedFor): ages are computed from
// each observation's At now, so an old state never under-reports an age.
func (d *gossipDelegate) Digests(now time.Time) gossip.Shared {
	var out gossip.Shared
	if st := (*Service)(d).sharedFor(now); st != nil {
		out.Digests = make([]observation.Digest, 0, len(st.obs))
		for _, o := range st.obs {
			out.Digests = append(out.Digests, observation.DigestOf(o, now.Sub(o.At)))
		}
		out.Held, out.Sets = st.held, st.sets
	}
	return out
}

// AdoptHeld takes another node's held safe versions where this node holds none (see State.AdoptHeld).
func (d *gossipDelegate) AdoptHeld(hv []HeldVersion, sets map[string]string) {
	d.mu.Lock()
	ok := d.state.AdoptHeld(hv, sets, d.now())
	d.mu.Unlock()
	if ok {
		(*Service)(d).changed()
		d.log.Info("adopted held safe versions from another node (this node has no history of them)", "versions", len(hv))
	}
}

// Configured reports whether endpoint is configured here, in repository repo.
func (d *gossipDelegate) Configured(repo, endpoint string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return repo != "" && d.state.endpointRepo[endpoint] == repo
}

// Limits: no node keeps an observation older than forgetAfter, so gossip that reports an older one is out
// of range; content holds at most as many titles as a scan of this node accepts.
func (d *gossipDelegate) Limits() gossip.Limits {
	d.mu.Lock()
	defer d.mu.Unlock()
	return gossip.Limits{MaxAge: forgetAfter(d.cfg.MaxStaleness), MaxTitles: d.cfg.Scan.MaxTitles}
}

// forgetAfter is how old an observation may grow before the state drops it.
func forgetAfter(maxStaleness time.Duration) time.Duration { return 10*maxStaleness + time.Hour }
