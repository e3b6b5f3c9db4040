package gossip

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync/observation"
	"github.com/evenkeel/evenkeel/schemasync/version"
	"github.com/hashicorp/memberlist"
)

// Publish queues a broadcast of an observation's digest (a local one, or a relayed one); it replaces the
// queued digest of the same observer and endpoint. When this node's own scan of an endpoint gives a different
// result from its previous scan (new content, or a new error), the digest also goes straight to every other
// member, so that a change reaches every node in one hop instead of waiting for gossip rounds. Unchanged
// scans, which only refresh freshness, ride the gossip alone.
func (c *Cluster) Publish(o *observation.Observation) {
	body, _ := json.Marshal(broadcastMsg{From: c.cfg.NodeName, D: observation.DigestOf(o, 0)})
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
		direct, _ := json.Marshal(broadcastMsg{From: c.cfg.NodeName, D: observation.DigestOf(o, 0), Direct: true})
		select { // publish runs under the service's lock: the sender goroutine sends outside it
		case c.direct <- &obsBroadcast{body: direct, at: o.At, now: c.now}:
		default: // the gossip carries it too
		}
	}
}

// directSender sends the queued direct digests until ctx ends.
func (c *Cluster) directSender(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
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
	c.mu.Lock()
	peers := make([]memberlist.Node, 0, len(c.live))
	for name, n := range c.live {
		if name != c.cfg.NodeName {
			peers = append(peers, n)
		}
	}
	c.mu.Unlock()
	for i := range peers {
		n := &peers[i]
		if err := c.ml.SendBestEffort(n, msg); err != nil {
			c.log.Debug("sending a digest directly failed", "to", n.Name, "err", err)
			continue
		}
		c.m.msgs.WithLabelValues("sent", "direct").Inc()
		c.m.bytes.WithLabelValues("sent", "direct").Add(float64(len(msg)))
	}
}

// worker applies inbound digests: it fetches content it lacks, then feeds the observation to the state.
func (c *Cluster) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case in := <-c.inbox:
			c.apply(ctx, in)
		case h := <-c.heldInbox:
			c.d.AdoptHeld(h.held, h.sets)
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

// apply checks an inbound digest and applies it, or, when its content must be fetched, hands it to the
// sending member's fetcher: a worker never waits for another node's API.
func (c *Cluster) apply(ctx context.Context, in inbound) {
	d := in.d
	if reason := c.checkDigest(&d, in.recv); reason != "" {
		c.reject(reason, in.from)
		return
	}
	if d.Observer == c.cfg.NodeName {
		// This node is the authority on its own scans, but other nodes may hold one from before a restart
		// with a higher sequence number (the clock stepped back meanwhile): they would reject this node's new
		// scans until the clock caught up. Continue above it.
		c.d.NoteOwnSeq(d.Seq)
		return
	}
	if c.superseded(d) {
		return
	}
	var schemas map[string][]version.Version
	if d.Err == "" {
		var ok bool
		if schemas, ok = c.d.Content(d.Hash); !ok {
			c.queueFetch(ctx, in)
			return
		}
	}
	c.observe(in, schemas)
}

// superseded reports whether the state holds a newer observation of d's observer and endpoint. One as new
// goes on to the Delegate, which keeps the same one of two with one sequence number on every node.
func (c *Cluster) superseded(d observation.Digest) bool {
	seq, ok := c.d.Seq(d.Endpoint, d.Observer)
	return ok && seq > d.Seq
}

// fetchAndApply fetches a checked digest's content from the member that sent it, then applies it. It runs
// on that member's fetcher.
func (c *Cluster) fetchAndApply(ctx context.Context, in inbound) {
	d := in.d
	if c.superseded(d) {
		return
	}
	schemas, ok := c.d.Content(d.Hash)
	if !ok {
		done := make(chan struct{})
		if other, busy := c.fetching.LoadOrStore(d.Hash, done); busy && in.from != d.Observer {
			// Another member's fetcher fetches this content (endpoints usually serve the same): wait for it,
			// then try again, which finds the content, or fetches it if that fetch failed. Only this member's
			// fetcher waits, and only for a relayed digest: content hashes are predictable, so a key holder
			// could announce one first from an API that never answers, and the observer's own digest must
			// not wait for that.
			select {
			case <-other.(chan struct{}):
				c.fetchAndApply(ctx, in)
			case <-ctx.Done():
			}
			return
		} else if !busy {
			// Released after Observe below, so that waiters find the content in the state.
			defer func() {
				c.fetching.Delete(d.Hash)
				close(done)
			}()
		}
		var err error
		schemas, err = c.fetchContent(ctx, in.from, d.Hash)
		if err != nil {
			c.m.fetchErrors.Inc()
			c.log.Debug("fetching observation content failed", "from", safetext.Bound(in.from, 64), "hash", d.Hash, "err", err)
			return
		}
	}
	c.observe(in, schemas)
}

// observe feeds a checked digest, with its content (nil for a failed scan), to the Delegate, and relays it
// if it was new.
func (c *Cluster) observe(in inbound, schemas map[string][]version.Version) {
	d := in.d
	o := observation.Observation{Repository: d.Repository, Endpoint: d.Endpoint, Observer: d.Observer, Seq: d.Seq,
		At: in.recv.Add(-time.Duration(d.AgeMS) * time.Millisecond), Err: d.Err, Hash: d.Hash, Schemas: schemas}
	if c.d.Observe(o) {
		if in.kind != "push_pull" {
			// Push/pull also brings old observations (at a join, after a heal): their age is not a
			// propagation delay.
			c.m.propagation.Observe(c.now().Sub(o.At).Seconds())
		}
		// Relay it once: memberlist does not relay user broadcasts, and its retransmit limit alone misses
		// some nodes, which would then wait for push/pull. Each node relays an observation only the first
		// time it learns it, so this is epidemic and bounded. Content is fetched from the relayer.
		c.Publish(&o)
	}
}

// memberAPI is the API URL that member advertises in its memberlist metadata ("" when unknown), and the
// address it gossips from.
func (c *Cluster) memberAPI(member string) (string, net.IP) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[member]; m != nil && m.State == "alive" {
		return m.API, m.ip
	}
	return "", nil
}

// fetchContent gets an observation's content by hash from member's advertised API, and checks it: its size
// and titles against the bounds a scan of this node would apply, its shape (observation.CheckContent), and
// its hash.
func (c *Cluster) fetchContent(ctx context.Context, member, hash string) (map[string][]version.Version, error) {
	src, ip := c.memberAPI(member)
	if src == "" {
		return nil, fmt.Errorf("member %s is not alive or advertises no API", safetext.Quote(safetext.Bound(member, 64)))
	}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, memberIPKey{}, ip), 10*time.Second)
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
	var schemas map[string][]version.Version
	if err := json.Unmarshal(body, &schemas); err != nil {
		return nil, err
	}
	if max := c.d.Limits().MaxTitles; len(schemas) > max {
		return nil, fmt.Errorf("content lists %d titles, more than max_titles %d", len(schemas), max)
	}
	if err := observation.CheckContent(schemas); err != nil {
		return nil, err
	}
	if got := observation.ContentHash(schemas); got != hash {
		return nil, fmt.Errorf("content hash %s, want %s", got, hash)
	}
	return schemas, nil
}

// checkDigest range-checks every field of a digest that arrived by gossip, at recv by this node's clock. It
// returns the reason for rejecting it, or "".
func (c *Cluster) checkDigest(d *observation.Digest, recv time.Time) string {
	return checkDigest(d, recv, c.d.Limits().MaxAge, c.d.Configured)
}

// reject counts a rejected message or digest. It logs at debug level only: a flood of garbage must not
// flood the log (the counter shows it).
func (c *Cluster) reject(reason, from string) {
	c.m.rejected.WithLabelValues(reason).Inc()
	c.log.Debug("rejected a gossip message", "reason", reason, "from", safetext.Bound(from, 64))
}
