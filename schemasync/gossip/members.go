package gossip

import (
	"encoding/json"
	"net"
	"sort"
	"time"

	"github.com/hashicorp/memberlist"
)

// Members lists every member this node knows of, sorted by name, with the dead and the departed. A member is
// alive until memberlist declares it dead: memberlist keeps its suspicion of a member to itself (the State of
// the nodes it hands out is never updated), so no "suspect" state is shown.
func (c *Cluster) Members() []MemberView {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]MemberView, 0, len(c.members))
	for _, m := range c.members {
		mv := *m
		mv.Self = m.Name == c.cfg.NodeName
		mv.ip, mv.since, mv.dialed = nil, time.Time{}, time.Time{}
		out = append(out, mv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// events implements memberlist.EventDelegate: it keeps the member list, with the dead and departed.
type events Cluster

// note records a member event. memberlist does not say whether a departed node died or left (Node.State is
// not updated before NotifyLeave), so a departure is "left" only if the node announced it.
func (e *events) note(n *memberlist.Node, how string) {
	c := (*Cluster)(e)
	var meta nodeMeta
	_ = json.Unmarshal(n.Meta, &meta)
	if !validAPIURL(meta.API, n.Addr) {
		meta.API = "" // content is never fetched from this member
	}
	c.mu.Lock()
	state := "alive"
	switch how {
	case "joined":
		delete(c.leaving, n.Name)
	case "left":
		state = "dead"
		if at, ok := c.leaving[n.Name]; ok && c.now().Sub(at) <= leaveMarkTTL(c.cfg.GossipInterval) {
			state = "left"
		}
		delete(c.leaving, n.Name)
	}
	mv := &MemberView{Name: n.Name, Address: n.Address(), State: state, Datacenter: meta.DC, API: meta.API, ip: append(net.IP(nil), n.Addr...), since: c.now()}
	if old := c.members[n.Name]; old != nil && old.State == state {
		mv.since, mv.dialed = old.since, old.dialed
	}
	c.members[n.Name] = mv
	if state == "alive" {
		c.live[n.Name] = *n
	} else {
		delete(c.live, n.Name)
	}
	c.mu.Unlock()
	if n.Name != c.cfg.NodeName {
		if state == "dead" {
			c.log.Warn("member failed", "member", n.Name, "address", n.Address())
		} else {
			c.log.Info("member "+how, "member", n.Name, "address", n.Address(), "state", state)
		}
	}
}

func (e *events) NotifyJoin(n *memberlist.Node)   { e.note(n, "joined") }
func (e *events) NotifyLeave(n *memberlist.Node)  { e.note(n, "left") }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.note(n, "updated") }

// leaveMarkTTL is how long a member's announcement that it leaves stands. A node that leaves announces it,
// waits at most ten gossip intervals for the announcement to go out, then tells memberlist, whose departure
// notice follows within a few gossip rounds. Any key holder can forge the announcement (gossip carries no
// signature), so it must not stand for long: a member that crashes later is "dead", and is redialled.
func leaveMarkTTL(gossipInterval time.Duration) time.Duration {
	return max(30*gossipInterval, 5*time.Second)
}

// noteLeaving records that the live member name announced that it leaves.
func (c *Cluster) noteLeaving(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[name]; m != nil && m.State == "alive" && name != c.cfg.NodeName {
		c.leaving[name] = c.now()
	}
}
