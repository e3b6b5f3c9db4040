package schemasync

import (
	"runtime"

	"github.com/evenkeel/evenkeel/internal/buildinfo"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics exports the service's view and its scan costs. The view's gauges are read from the current snapshot
// at scrape time, so a scrape always sees one consistent view.
type metrics struct {
	svc *Service

	scans    *prometheus.CounterVec
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	reused   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	notCount *prometheus.GaugeVec

	dirtyDesc, staleDesc, safeDesc, upDesc, lastScanDesc, ageDesc, schemasDesc, readyDesc, buildDesc,
	omittedDesc, connsDesc, cacheDesc *prometheus.Desc
}

func newMetrics(s *Service) *metrics {
	ep := []string{"repository", "endpoint"}
	return &metrics{
		svc: s,
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schemasync_scans_total", Help: "Scans of an endpoint by this node, by result (success or failure).",
		}, []string{"repository", "endpoint", "result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schemasync_scan_requests_total", Help: "HTTP requests sent to an endpoint by this node's scans.",
		}, ep),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schemasync_scan_response_bytes_total", Help: "Response body bytes read from an endpoint by this node's scans.",
		}, ep),
		reused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schemasync_scan_listings_reused_total", Help: "Directory listings reused from the cache instead of downloaded.",
		}, ep),
		notCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "schemasync_scan_not_counted",
			Help: "What this node's latest successful scan of an endpoint saw but did not count, by reason: " +
				"refused_file (a listed version's file answered 401/403), refused_directory (a listing below the " +
				"root did), unprintable_name (a directory whose name cannot be a title). The endpoint's reason names the first.",
		}, []string{"repository", "endpoint", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "schemasync_scan_duration_seconds", Help: "Duration of one endpoint's scan.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"repository"}),
		dirtyDesc: prometheus.NewDesc("schemasync_schema_dirty",
			"1 while the endpoints of the repository disagree on the schema's versions, or some lacks it.",
			[]string{"repository", "schema"}, nil),
		staleDesc: prometheus.NewDesc("schemasync_schema_stale",
			"1 while some endpoint of the repository has no fresh successful scan: the safe version is held.",
			[]string{"repository", "schema"}, nil),
		safeDesc: prometheus.NewDesc("schemasync_safe_version_info",
			"The schema's safe version (present on every endpoint), as a label; absent when there is none.",
			[]string{"repository", "schema", "version"}, nil),
		upDesc: prometheus.NewDesc("schemasync_endpoint_up",
			"1 when the endpoint has a fresh successful scan (state ok), 0 when it is unknown.", ep, nil),
		lastScanDesc: prometheus.NewDesc("schemasync_endpoint_last_successful_scan_timestamp_seconds",
			"When the latest successful scan of the endpoint, by any node, started; present once one has succeeded, "+
				"and kept while scans fail.", ep, nil),
		ageDesc: prometheus.NewDesc("schemasync_endpoint_observation_age_seconds",
			"Age of the latest successful observation of the endpoint, by any node; it keeps growing while scans "+
				"fail.", ep, nil),
		schemasDesc: prometheus.NewDesc("schemasync_schemas",
			"Schemas known in the repository.", []string{"repository"}, nil),
		readyDesc: prometheus.NewDesc("schemasync_ready",
			"1 once this node has completed its first scan and serves a complete view.", nil, nil),
		connsDesc: prometheus.NewDesc("schemasync_api_connections",
			"Open connections to the HTTP API (at most api.max_connections are served).", nil, nil),
		cacheDesc: prometheus.NewDesc("schemasync_scan_cache_directories",
			"Directories in the endpoint's listing cache (at most scan.max_directories).", ep, nil),
		omittedDesc: prometheus.NewDesc("schemasync_metrics_schemas_omitted",
			"Schemas whose per-schema series this scrape leaves out, beyond api.metrics_max_schemas.", nil, nil),
		buildDesc: prometheus.NewDesc("schemasync_build_info",
			"Build information; the value is always 1.", []string{"version", "goversion"}, nil),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m, m.scans, m.requests, m.bytes, m.reused, m.duration, m.notCount} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) observeScan(r *ScanResult) {
	result := "success"
	if !r.OK() {
		result = "failure"
	}
	m.scans.WithLabelValues(r.Repository, r.Endpoint, result).Inc()
	m.requests.WithLabelValues(r.Repository, r.Endpoint).Add(float64(r.Requests))
	m.bytes.WithLabelValues(r.Repository, r.Endpoint).Add(float64(r.Bytes))
	m.reused.WithLabelValues(r.Repository, r.Endpoint).Add(float64(r.Reused))
	m.duration.WithLabelValues(r.Repository).Observe(r.Duration.Seconds())
	if r.OK() {
		n := r.NotCounted
		m.notCount.WithLabelValues(r.Repository, r.Endpoint, "refused_file").Set(float64(n.RefusedFiles))
		m.notCount.WithLabelValues(r.Repository, r.Endpoint, "refused_directory").Set(float64(n.RefusedDirectories))
		m.notCount.WithLabelValues(r.Repository, r.Endpoint, "unprintable_name").Set(float64(n.UnprintableNames))
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.dirtyDesc, m.staleDesc, m.safeDesc, m.upDesc, m.lastScanDesc, m.ageDesc,
		m.schemasDesc, m.readyDesc, m.buildDesc, m.omittedDesc, m.connsDesc, m.cacheDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector from the current view.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	v := m.svc.View()
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	perRepo := map[string]int{}
	limit, omitted := m.svc.Config().API.MetricsMaxSchemas, 0
	for i, s := range v.Schemas {
		perRepo[s.Repository]++
		if i >= limit {
			omitted++
			continue
		}
		ch <- prometheus.MustNewConstMetric(m.dirtyDesc, prometheus.GaugeValue, b2f(s.Dirty), s.Repository, s.Title)
		ch <- prometheus.MustNewConstMetric(m.staleDesc, prometheus.GaugeValue, b2f(s.Stale), s.Repository, s.Title)
		if s.SafeVersion != nil {
			ch <- prometheus.MustNewConstMetric(m.safeDesc, prometheus.GaugeValue, 1, s.Repository, s.Title, s.SafeVersion.String())
		}
	}
	for _, r := range m.svc.Config().Repositories {
		ch <- prometheus.MustNewConstMetric(m.schemasDesc, prometheus.GaugeValue, float64(perRepo[r.Name]), r.Name)
	}
	for _, e := range v.Endpoints {
		ch <- prometheus.MustNewConstMetric(m.upDesc, prometheus.GaugeValue, b2f(e.State == EndpointOK), e.Repository, e.URL)
		if t := e.LastSuccessfulScan; t != nil {
			ch <- prometheus.MustNewConstMetric(m.lastScanDesc, prometheus.GaugeValue,
				float64(t.UnixNano())/1e9, e.Repository, e.URL)
			ch <- prometheus.MustNewConstMetric(m.ageDesc, prometheus.GaugeValue,
				m.svc.now().Sub(*t).Seconds(), e.Repository, e.URL)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.omittedDesc, prometheus.GaugeValue, float64(omitted))
	ch <- prometheus.MustNewConstMetric(m.connsDesc, prometheus.GaugeValue, float64(m.svc.apiConns.Load()))
	m.svc.mu.Lock()
	scanner := m.svc.scanner
	m.svc.mu.Unlock()
	for _, e := range v.Endpoints {
		ch <- prometheus.MustNewConstMetric(m.cacheDesc, prometheus.GaugeValue, float64(scanner.cachedDirectories(e.URL)),
			e.Repository, e.URL)
	}
	ch <- prometheus.MustNewConstMetric(m.readyDesc, prometheus.GaugeValue, b2f(m.svc.Ready()))
	ch <- prometheus.MustNewConstMetric(m.buildDesc, prometheus.GaugeValue, 1, buildinfo.Version(), runtime.Version())
}
