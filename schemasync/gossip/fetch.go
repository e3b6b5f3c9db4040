package gossip

import (
	"context"
)

// Bounds on the fetching of observation content. Each member's digests that need content are fetched in
// order by a fetcher of that member's own, so a member whose API is slow, or never answers, delays only its
// own digests: the workers, and every other member's fetches, go on.
const (
	maxFetchQueue = 256 // digests waiting for one member's fetcher; more are dropped (push/pull repeats them)
	maxFetchers   = 256 // members with a fetcher at once; a digest from yet another member is dropped
)

// queueFetch hands a checked digest whose content this node lacks to the fetcher of the member that sent
// it, starting that fetcher if it has none. It never waits. It is called only from Run's workers, while
// Run waits for them: fetchers are started only while Run is running, and Run waits for them too.
func (c *Cluster) queueFetch(ctx context.Context, in inbound) {
	if api, _ := c.memberAPI(in.from); api == "" {
		c.m.fetchErrors.Inc() // no such live member, or it advertises no API this node may fetch from
		c.reject("sender", in.from)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	q, ok := c.fetchQueues[in.from]
	if !ok {
		if len(c.fetchQueues) >= maxFetchers {
			c.m.dropped.Inc()
			return
		}
		q = make(chan inbound, maxFetchQueue)
		c.fetchQueues[in.from] = q
		c.fetchers.Add(1)
		go c.fetcher(ctx, in.from, q)
	}
	select {
	case q <- in:
	default:
		c.m.dropped.Inc()
	}
}

// fetcher fetches and applies member's queued digests in order, and ends when its queue is empty or ctx
// ends.
func (c *Cluster) fetcher(ctx context.Context, member string, q chan inbound) {
	defer c.fetchers.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case in := <-q:
			c.fetchAndApply(ctx, in)
			continue
		default:
		}
		c.mu.Lock()
		if len(q) == 0 { // queueFetch sends under c.mu: nothing can arrive between this check and the delete
			delete(c.fetchQueues, member)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}
