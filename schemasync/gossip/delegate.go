package gossip

import (
	"encoding/json"

	"github.com/hashicorp/memberlist"
)

// delegate implements memberlist.Delegate. Its methods never block: inbound work goes to the inbox.
type delegate Cluster

var _ memberlist.Delegate = (*delegate)(nil)

func (d *delegate) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(nodeMeta{DC: d.cfg.Datacenter, API: d.apiURL})
	if len(b) > limit {
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg(b []byte) {
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
		if m.Leave != m.From { // a node announces only its own departure
			c.reject("sender", "")
			return
		}
		c.noteLeaving(m.Leave)
		return
	}
	c.enqueue(inbound{d: m.D, from: m.From, recv: c.now(), kind: kind})
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	c := (*Cluster)(d)
	msgs := c.queue.GetBroadcasts(overhead, limit)
	for _, m := range msgs {
		c.m.msgs.WithLabelValues("sent", "broadcast").Inc()
		c.m.bytes.WithLabelValues("sent", "broadcast").Add(float64(len(m)))
	}
	return msgs
}

func (d *delegate) LocalState(join bool) []byte {
	c := (*Cluster)(d)
	now := c.now()
	msg := pushPullMsg{Node: c.cfg.NodeName}
	st := c.d.Digests(now) // never waits for the service's lock
	msg.Digests, msg.Held, msg.Sets = st.Digests, st.Held, st.Sets
	b, _ := json.Marshal(msg)
	c.m.msgs.WithLabelValues("sent", "push_pull").Inc()
	c.m.bytes.WithLabelValues("sent", "push_pull").Add(float64(len(b)))
	c.m.stateBytes.Set(float64(len(b)))
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
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
