package canary_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/evenkeel/evenkeel/canary"
	"github.com/evenkeel/evenkeel/internal/eventgate/fakeintake"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

// ExampleRun runs the canary once in each mode during a rollout: two schema hosts, one already serving
// mediawiki/page/change 1.2.0, a schemasync node scanning both, and an EventGate-compatible intake that
// resolves schemas on the host that is behind.
func ExampleRun() {
	ctx := context.Background()
	behind := schemarepo.Demo()
	ahead := behind.Clone()
	ahead.Put("mediawiki/page/change", "1.2.0", schemarepo.Doc("mediawiki/page/change", "1.2.0", "page_title", "page_namespace", "rev_id"))
	var bases []string
	for _, repo := range []*schemarepo.Repo{ahead, behind} {
		srv := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo}))
		defer srv.Close()
		bases = append(bases, srv.URL+"/repositories/primary/jsonschema")
	}

	scfg := schemasync.DefaultConfig()
	scfg.Repositories = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: bases}}
	svc, err := schemasync.NewService(scfg, schemasync.ServiceOptions{})
	if err != nil {
		panic(err)
	}
	if err := svc.ScanOnce(ctx); err != nil {
		panic(err)
	}
	node := httptest.NewServer(svc.Handler())
	defer node.Close()

	intake, err := fakeintake.New(fakeintake.Config{
		SchemaBaseURIs: bases[1:], // the intake's load balancer happens to pick the host that is behind
		Streams:        map[string]string{"mediawiki.page_change.v1": "mediawiki/page/change"},
	}, fakeintake.Options{})
	if err != nil {
		panic(err)
	}
	in := httptest.NewServer(intake)
	defer in.Close()

	for _, source := range []canary.VersionSource{canary.VersionLatest, canary.VersionSafe} {
		cfg := canary.DefaultConfig()
		cfg.VersionSource = source
		cfg.Schemasync = []string{node.URL}
		cfg.SchemaBaseURIs = bases // latest reads the first: the host that is ahead
		cfg.Streams = []canary.Stream{{
			Name:         "mediawiki.page_change.v1",
			SchemaTitle:  "mediawiki/page/change",
			Destinations: []string{in.URL + "/v1/events"},
		}}
		results, err := canary.Run(ctx, cfg, canary.Options{})
		if err != nil {
			panic(err)
		}
		for _, r := range results {
			fmt.Printf("%-6s %s %s ok=%v %s\n", source, r.Stream, r.Version, r.OK, r.FailedStep)
		}
	}
	// Output:
	// latest mediawiki.page_change.v1 1.2.0 ok=false produce
	// safe   mediawiki.page_change.v1 1.1.0 ok=true
}
