package canary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/evenkeel/evenkeel/internal/atomicfile"
	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric names. Each series has one label, stream; there is one series per configured stream.
const (
	MetricSuccess     = "canary_stream_success"                        // 1 when the last run succeeded, else 0
	MetricLastSuccess = "canary_stream_last_success_timestamp_seconds" // the last successful run; absent until one
	MetricLastRun     = "canary_stream_last_run_timestamp_seconds"     // when the last run started
	MetricDuration    = "canary_stream_duration_seconds"               // how long the last run took
	MetricVersion     = "canary_stream_version_info"                   // 1, labelled with the version produced
)

// Registry renders results as metrics in a new registry. lastSuccess carries each stream's previous
// last-success time (unix seconds), so that a failed run keeps it; a successful run replaces it.
func Registry(results []Result, lastSuccess map[string]float64) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	success := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricSuccess, Help: "1 when the stream's last canary run succeeded, else 0."}, []string{"stream"})
	last := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricLastSuccess, Help: "Unix time of the stream's last successful canary run."}, []string{"stream"})
	run := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricLastRun, Help: "Unix time the stream's last canary run started."}, []string{"stream"})
	dur := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricDuration, Help: "Duration of the stream's last canary run."}, []string{"stream"})
	ver := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricVersion, Help: "The schema version of the stream's last canary event."}, []string{"stream", "version"})
	for _, c := range []prometheus.Collector{success, last, run, dur, ver} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range results {
		ok := 0.0
		if r.OK {
			ok = 1
			last.WithLabelValues(r.Stream).Set(float64(r.Started.Add(r.Duration).UnixMilli()) / 1000)
		} else if t, found := lastSuccess[r.Stream]; found {
			last.WithLabelValues(r.Stream).Set(t)
		}
		success.WithLabelValues(r.Stream).Set(ok)
		run.WithLabelValues(r.Stream).Set(float64(r.Started.UnixMilli()) / 1000)
		dur.WithLabelValues(r.Stream).Set(r.Duration.Seconds())
		if r.Version != "" {
			ver.WithLabelValues(r.Stream, r.Version).Set(1)
		}
	}
	return reg, nil
}

// ParseLastSuccess reads canary_stream_last_success_timestamp_seconds per stream from a previous textfile.
// An empty input gives an empty map; anything that is not the Prometheus text format is an error.
func ParseLastSuccess(r io.Reader) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("previous metrics are not in the Prometheus text format: %w", err)
	}
	out := map[string]float64{}
	mf := mfs[MetricLastSuccess]
	if mf == nil {
		return out, nil
	}
	for _, m := range mf.GetMetric() {
		var v float64
		switch {
		case m.GetGauge() != nil:
			v = m.GetGauge().GetValue()
		case m.GetUntyped() != nil:
			v = m.GetUntyped().GetValue()
		default:
			continue
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			continue
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == "stream" {
				out[l.GetValue()] = v
			}
		}
	}
	return out, nil
}

// WriteTextfile writes results to path for node_exporter's textfile collector, atomically: the metrics go to a
// temporary file in the same directory (named so the collector, which reads *.prom, ignores it), which is
// synced and renamed over path. A failure at any point leaves the previous file as it was. Streams that failed
// keep the last-success time the previous file held.
//
// It returns a warning (not fatal) when the previous file could not be read or parsed: streams that fail in this
// run then have no last-success time (CanaryStreamNoRecentSuccess resolves for them; CanaryStreamNeverSucceeded
// takes over). A previous file that is not in the text format is kept as <path>.corrupt, for a person to read.
func WriteTextfile(path string, results []Result) (warning error, err error) {
	prev := map[string]float64{}
	if old, rerr := os.ReadFile(path); rerr == nil {
		if p, perr := ParseLastSuccess(bytes.NewReader(old)); perr == nil {
			prev = p
		} else {
			aside := path + ".corrupt"
			if werr := writeAtomic(aside, func(w io.Writer) error { _, err := w.Write(old); return err }); werr != nil {
				warning = fmt.Errorf("%s: ignoring previous last-success times (keeping a copy failed: %v): %w", path, werr, perr)
			} else {
				warning = fmt.Errorf("%s: ignoring previous last-success times, previous file kept as %s: %w", path, aside, perr)
			}
		}
	} else if !errors.Is(rerr, os.ErrNotExist) {
		warning = fmt.Errorf("%s: ignoring previous last-success times: %w", path, rerr)
	}
	reg, err := Registry(results, prev)
	if err != nil {
		return warning, err
	}
	return warning, writeAtomic(path, func(w io.Writer) error {
		mfs, err := reg.Gather()
		if err != nil {
			return err
		}
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
				return err
			}
		}
		return nil
	})
}

// wrapWriter lets tests make the temporary file fail halfway.
var wrapWriter = func(w io.Writer) io.Writer { return w }

func writeAtomic(path string, write func(io.Writer) error) error {
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return write(wrapWriter(w)) }); err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeStaleTemps(dir, base)
	return nil
}

// removeStaleTemps deletes temporary files that a crashed writer left more than an hour ago (a younger one may
// belong to a writer still running).
func removeStaleTemps(dir, base string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "."+base+".tmp-*"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && time.Since(fi.ModTime()) > time.Hour {
			_ = os.Remove(m)
		}
	}
}

// PushOptions say where and how Push sends metrics.
type PushOptions struct {
	URL string // the Pushgateway's base URL
	Job string // the job name the groups are under
	// Timeout bounds each push on its own (one stream's POST), so that many streams and a slow Pushgateway
	// do not share one deadline. 0: only ctx bounds them.
	Timeout time.Duration
	// Concurrency bounds how many pushes are in flight at once. Less than 1: one at a time.
	Concurrency int
	// HTTPClient sends the pushes. Nil: the push library's default client.
	HTTPClient Doer
}

// Push sends each stream's metrics to a Pushgateway, one group per stream ({job, stream}; the stream label
// comes from the grouping key), with POST: a failed stream's push leaves out the last-success metric, so the
// Pushgateway keeps the previous one. Pushes run concurrently up to opts.Concurrency, each with its own
// opts.Timeout; the error joins every failed push's, in the order of results.
func Push(ctx context.Context, results []Result, opts PushOptions) error {
	errs := make([]error, len(results))
	sem := make(chan struct{}, max(opts.Concurrency, 1))
	var wg sync.WaitGroup
	for i, r := range results {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = pushOne(ctx, r, opts)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func pushOne(ctx context.Context, r Result, opts PushOptions) error {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		g.Set(v)
		reg.MustRegister(g)
	}
	ok := 0.0
	if r.OK {
		ok = 1
		gauge(MetricLastSuccess, "Unix time of the stream's last successful canary run.", float64(r.Started.Add(r.Duration).UnixMilli())/1000)
	}
	gauge(MetricSuccess, "1 when the stream's last canary run succeeded, else 0.", ok)
	gauge(MetricLastRun, "Unix time the stream's last canary run started.", float64(r.Started.UnixMilli())/1000)
	gauge(MetricDuration, "Duration of the stream's last canary run.", r.Duration.Seconds())
	if r.Version != "" {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricVersion, Help: "The schema version of the stream's last canary event."}, []string{"version"})
		v.WithLabelValues(r.Version).Set(1)
		reg.MustRegister(v)
	}
	p := push.New(opts.URL, opts.Job).Gatherer(reg).Grouping("stream", r.Stream)
	if opts.HTTPClient != nil {
		p = p.Client(opts.HTTPClient)
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	if err := p.AddContext(ctx); err != nil {
		return &pushError{stream: r.Stream, err: err}
	}
	return nil
}

// pushError is a failed push. The push library's error quotes the Pushgateway's URL whole, credentials
// included, and its answer's body whole; the message redacts the one and escapes and bounds the other. The
// library's error stays in the chain (a timeout is still context.DeadlineExceeded).
type pushError struct {
	stream string
	err    error
}

// maxPushErrorBytes bounds the message of one failed push, the Pushgateway's body included.
const maxPushErrorBytes = 600

func (e *pushError) Error() string {
	return "pushing stream " + safetext.Escape(safetext.Bound(e.stream, 200)) + ": " +
		safetext.Clean(e.err.Error(), maxPushErrorBytes)
}

func (e *pushError) Unwrap() error { return e.err }
