package schemasync_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

func TestSmoke(t *testing.T) {
	base := schemarepo.Demo()
	var eps []string
	var repos []*schemarepo.Repo
	for i := 0; i < 4; i++ {
		r := base.Clone()
		repos = append(repos, r)
		srv := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": r}))
		t.Cleanup(srv.Close)
		eps = append(eps, srv.URL+"/repositories/primary/jsonschema/")
	}
	repos[0].Put("test/event", "1.1.0", schemarepo.Doc("test/event", "1.1.0"))
	cfg := schemasync.DefaultConfig()
	cfg.Repositories = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: eps}}
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.ScanOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(svc.View(), "", " ")
	t.Logf("%s", b[:min(len(b), 3000)])
	sv, _ := svc.View().Schema("primary", "test/event")
	if sv.SafeVersion.String() != "1.0.0" || !sv.Dirty {
		t.Fatalf("got %+v", sv)
	}
}
