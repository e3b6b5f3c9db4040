package gossip

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gossip metrics.
type metrics struct {
	c                  *Cluster
	msgs               *prometheus.CounterVec
	bytes              *prometheus.CounterVec
	stateBytes         prometheus.Gauge
	propagation        prometheus.Histogram
	dropped            prometheus.Counter
	fetchErrors        prometheus.Counter
	fetchBytes         prometheus.Counter
	rejected           *prometheus.CounterVec
	memberlistProblems *prometheus.CounterVec
	membersDesc        *prometheus.Desc
}

func newMetrics(c *Cluster) *metrics {
	return &metrics{
		c: c,
		msgs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "schemasync_gossip_messages_total",
			Help: "Gossip messages, by direction (sent, received) and kind (broadcast, direct, push_pull)."}, []string{"direction", "kind"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "schemasync_gossip_bytes_total",
			Help: "Gossip payload bytes, by direction and kind."}, []string{"direction", "kind"}),
		stateBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "schemasync_shared_state_bytes",
			Help: "Size of this node's last full-state (push/pull) message."}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "schemasync_observation_propagation_seconds",
			Help:    "Age of another node's observation when this node applied it from a broadcast or direct message: from the scan's start to applied here.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "schemasync_gossip_dropped_total",
			Help: "Inbound digests dropped because an inbox was full: the workers', a member's fetch queue, or the fetchers' (the next push/pull brings them again)."}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "schemasync_content_fetch_errors_total",
			Help: "Failed fetches of observation content from other nodes."}),
		fetchBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "schemasync_content_fetch_bytes_total",
			Help: "Bytes of observation content fetched from other nodes."}),
		memberlistProblems: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "schemasync_memberlist_problems_total",
			Help: "Warnings and errors memberlist reported (garbage or undecryptable packets, failed probes), by level, " +
				"whether logged or suppressed by the log's rate limit."}, []string{"level"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "schemasync_gossip_rejected_total",
			Help: "Gossip messages and digests rejected, by reason: malformed, sender, age (negative, in the future or " +
				"older than any node keeps), seq, observer, endpoint, hash, error (text too long), held_count."},
			[]string{"reason"}),
		membersDesc: prometheus.NewDesc("schemasync_cluster_members", "Cluster members this node knows, by state.",
			[]string{"state"}, nil),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.membersDesc
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.msgs, m.bytes, m.stateBytes, m.propagation, m.dropped, m.fetchErrors, m.fetchBytes,
		m.rejected, m.memberlistProblems}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{"alive": 0, "dead": 0, "left": 0}
	for _, mv := range m.c.Members() {
		counts[mv.State]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.membersDesc, prometheus.GaugeValue, float64(n), state)
	}
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}
