package schemasync

import (
	"encoding/json"

	"github.com/hashicorp/memberlist"
)

// clusterDelegate implements memberlist.Delegate. Its methods never block: inbound work goes to the inbox.
type clusterDelegate Cluster

var _ memberlist.Delegate = (*clusterDelegate)(nil)

func (d *clusterDelegate) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(nodeMeta{DC: d.cfg.Datacenter, API: d.apiURL})
	if len(b) > limit {
		return nil
	}
	return b
}

func (d *clusterDelegate) NotifyMsg(b []byte) {
	c := (*Cluster)(d)
	m, err := decodeBroadcast(b)
	kind := "broadcast"
	if m.Direct {
		kind = "direct"
	}
	c.m.msgs.WithLabelValues("received", kind).Inc()
	c.m.bytes.WithLabelValues("received", kind).Add(float64(len(b)))
	if err != nil {
		c.reject("malformed", "")
		return
	}
	if m.From == "" || len(m.From) > maxNameBytes {
		c.reject("sender", "")
		return
	}
	if m.Leave != "" {
		c.mu.Lock()
		c.leaving[m.Leave] = true
		c.mu.Unlock()
		return
	}
	c.enqueue(inbound{d: m.D, from: m.From, recv: c.now(), kind: kind})
}

func (d *clusterDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	c := (*Cluster)(d)
	msgs := c.queue.GetBroadcasts(overhead, limit)
	for _, m := range msgs {
		c.m.msgs.WithLabelValues("sent", "broadcast").Inc()
		c.m.bytes.WithLabelValues("sent", "broadcast").Add(float64(len(m)))
	}
	return msgs
}

func (d *clusterDelegate) LocalState(join bool) []byte {
	c := (*Cluster)(d)
	now := c.now()
	msg := pushPullMsg{Node: c.cfg.NodeName}
	if st := c.svc.sharedFor(now); st != nil { // never waits for the service's lock
		for _, o := range st.obs {
			msg.Digests = append(msg.Digests, digestOf(o, now.Sub(o.At)))
		}
		msg.Held, msg.Sets = st.held, st.sets
	}
	b, _ := json.Marshal(msg)
	c.m.msgs.WithLabelValues("sent", "push_pull").Inc()
	c.m.bytes.WithLabelValues("sent", "push_pull").Add(float64(len(b)))
	c.m.stateBytes.Set(float64(len(b)))
	return b
}

func (d *clusterDelegate) MergeRemoteState(buf []byte, join bool) {
	c := (*Cluster)(d)
	c.m.msgs.WithLabelValues("received", "push_pull").Inc()
	c.m.bytes.WithLabelValues("received", "push_pull").Add(float64(len(buf)))
	m, err := decodePushPull(buf)
	if err != nil {
		c.reject("malformed", "")
		return
	}
	if m.Node == "" || len(m.Node) > maxNameBytes {
		c.reject("sender", "")
		return
	}
	recv := c.now()
	for _, dg := range m.Digests {
		c.enqueue(inbound{d: dg, from: m.Node, recv: recv, kind: "push_pull"})
	}
	if len(m.Held) > 0 && m.Node != c.cfg.NodeName {
		if len(m.Held) > maxHeldPerMessage {
			c.reject("held_count", m.Node)
		} else {
			select { // a worker adopts them: this delegate must not wait for the service's lock
			case c.heldInbox <- heldMsg{m.Held, m.Sets}:
			default:
				c.m.dropped.Inc() // the next push/pull brings them again
			}
		}
	}
	if m.Node != c.cfg.NodeName {
		c.merged.Store(true)
	}
}

// clusterEvents implements memberlist.EventDelegate: it keeps the member list, with the dead and departed.
type clusterEvents Cluster

// note records a member event. memberlist does not say whether a departed node died or left (Node.State is
// not updated before NotifyLeave), so a departure is "left" only if the node announced it.
func (e *clusterEvents) note(n *memberlist.Node, how string) {
	c := (*Cluster)(e)
	var meta nodeMeta
	_ = json.Unmarshal(n.Meta, &meta)
	if !validAPIURL(meta.API) {
		meta.API = "" // content is never fetched from this member
	}
	c.mu.Lock()
	state := "alive"
	switch how {
	case "joined":
		delete(c.leaving, n.Name)
	case "left":
		state = "dead"
		if c.leaving[n.Name] {
			state = "left"
		}
	}
	c.members[n.Name] = &MemberView{Name: n.Name, Address: n.Address(), State: state, Datacenter: meta.DC, API: meta.API}
	c.mu.Unlock()
	if n.Name != c.cfg.NodeName {
		if state == "dead" {
			c.log.Warn("member failed", "member", n.Name, "address", n.Address())
		} else {
			c.log.Info("member "+how, "member", n.Name, "address", n.Address(), "state", state)
		}
	}
}

func (e *clusterEvents) NotifyJoin(n *memberlist.Node)   { e.note(n, "joined") }
func (e *clusterEvents) NotifyLeave(n *memberlist.Node)  { e.note(n, "left") }
func (e *clusterEvents) NotifyUpdate(n *memberlist.Node) { e.note(n, "updated") }
