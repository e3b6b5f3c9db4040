package canary

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/eventgate"
	"github.com/evenkeel/evenkeel/internal/eventgate/fakeintake"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

// benchWorld is 200 synthetic schemas (3 versions each) on one schema host, a real schemasync node scanning it,
// and an EventGate-compatible intake, all on loopback.
func benchWorld(b *testing.B, n int) Config {
	b.Helper()
	repo := schemarepo.Synthetic(n, 3)
	host := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo}))
	b.Cleanup(host.Close)
	base := host.URL + "/repositories/primary/jsonschema"

	scfg := schemasync.DefaultConfig()
	scfg.Repositories = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: []string{base + "/"}}}
	scfg.MaxStaleness = time.Hour
	svc, err := schemasync.NewService(scfg, schemasync.ServiceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.ScanOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	node := httptest.NewServer(svc.Handler())
	b.Cleanup(node.Close)

	streams := map[string]string{}
	cfg := DefaultConfig()
	cfg.Schemasync = []string{node.URL}
	cfg.SchemaBaseURIs = []string{base}
	g, err := fakeintake.New(fakeintake.Config{SchemaBaseURIs: []string{base}, Streams: streams}, fakeintake.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("synthetic.stream%05d", i)
		g.SetStream(name, schemarepo.SyntheticTitle(i))
		cfg.Streams = append(cfg.Streams, Stream{Name: name, SchemaTitle: schemarepo.SyntheticTitle(i)})
	}
	in := httptest.NewServer(g)
	b.Cleanup(in.Close)
	for i := range cfg.Streams {
		cfg.Streams[i].Destinations = []string{in.URL + "/v1/events"}
	}
	return cfg
}

func runAll(b *testing.B, r *Runner) {
	res, err := r.Run(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range res {
		if !s.OK {
			b.Fatalf("stream %s: %s", s.Stream, s.Error)
		}
	}
}

// BenchmarkRun200Streams measures one whole canary run over 200 streams on loopback. cold: a new Runner each
// time (every schema fetched and compiled); warm: one Runner, schemas cached (schemasync, build, validate and
// POST remain).
func BenchmarkRun200Streams(b *testing.B) {
	cfg := benchWorld(b, 200)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			r, err := NewRunner(cfg, Options{})
			if err != nil {
				b.Fatal(err)
			}
			runAll(b, r)
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
		b.ReportMetric(200*float64(b.N)/b.Elapsed().Seconds(), "streams/s")
	})
	b.Run("warm", func(b *testing.B) {
		r, err := NewRunner(cfg, Options{})
		if err != nil {
			b.Fatal(err)
		}
		runAll(b, r)
		for b.Loop() {
			runAll(b, r)
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
		b.ReportMetric(200*float64(b.N)/b.Elapsed().Seconds(), "streams/s")
	})
}

// BenchmarkValidateCached measures building and validating canary events once the 200 schemas are compiled:
// the CPU part of a run, without I/O.
func BenchmarkValidateCached(b *testing.B) {
	const n = 200
	var docs []any
	var schemas []interface{ Validate(any) error }
	for i := 0; i < n; i++ {
		title := schemarepo.SyntheticTitle(i)
		doc, err := eventgate.DecodeDocument(schemarepo.Doc(title, "1.0.0", "a", "b"))
		if err != nil {
			b.Fatal(err)
		}
		s, err := eventgate.Compile("https://schema.canary.invalid/"+title+"/1.0.0", doc)
		if err != nil {
			b.Fatal(err)
		}
		docs, schemas = append(docs, doc), append(schemas, s)
	}
	now := time.Now()
	i := 0
	for b.Loop() {
		k := i % n
		ev, err := BuildEvent(docs[k], schemarepo.SyntheticTitle(k), "1.0.0", "s", now)
		if err != nil {
			b.Fatal(err)
		}
		if err := schemas[k].Validate(ev); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
}
