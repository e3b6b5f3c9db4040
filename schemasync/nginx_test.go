package schemasync_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/evenkeel/evenkeel/internal/nginxtest"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

// nginxHost is one real nginx serving a primary and a secondary repository from disk.
type nginxHost struct {
	primary, secondary *schemarepo.Repo
	dirs               map[string]string
	srv                *nginxtest.Server
}

func (h *nginxHost) write(t *testing.T) {
	t.Helper()
	for name, r := range map[string]*schemarepo.Repo{"primary": h.primary, "secondary": h.secondary} {
		if err := r.WriteDir(h.dirs[name]); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *nginxHost) endpoint(repo string) string {
	return h.srv.URL + "/repositories/" + repo + "/jsonschema/"
}

// TestRealNginx scans three real nginx hosts, serving real directory trees with symlinks laid out as the
// schema repositories are, at different contents.
func TestRealNginx(t *testing.T) {
	const title = "mediawiki/page/change"
	next := schemarepo.Doc(title, "1.2.0", "page_title", "page_namespace")
	secondary := schemarepo.New()
	secondary.SetLegacy(true) // pre-2022 layout: X.Y.Z.json and latest.json too
	secondary.Put("legacy/thing", "1.0.0", schemarepo.Doc("legacy/thing", "1.0.0"))
	secondary.Put("legacy/thing", "1.9.0", schemarepo.Doc("legacy/thing", "1.9.0"))
	secondary.Put("legacy/thing", "1.10.0", schemarepo.Doc("legacy/thing", "1.10.0"))
	secondary.PutFile("legacy/thing/notes.txt", []byte("stray file"))

	var hosts []*nginxHost
	for i := 0; i < 3; i++ {
		root := t.TempDir()
		if err := os.Chmod(root, 0o755); err != nil {
			t.Fatal(err)
		}
		h := &nginxHost{primary: schemarepo.Demo(), secondary: secondary.Clone(), dirs: map[string]string{}}
		for _, repo := range []string{"primary", "secondary"} {
			h.dirs[repo] = filepath.Join(root, repo)
			if err := os.MkdirAll(h.dirs[repo], 0o755); err != nil {
				t.Fatal(err)
			}
		}
		hosts = append(hosts, h)
	}
	// Uneven contents: host 0 has 1.2.0; host 2's git pull has written the X.Y.Z symlink but not its target;
	// only hosts 0 and 2 have the new schema other/new.
	hosts[0].primary.Put(title, "1.2.0", next)
	hosts[2].primary.PutPending(title, "1.2.0", next)
	for _, i := range []int{0, 2} {
		hosts[i].secondary.Put("other/new", "1.0.0", schemarepo.Doc("other/new", "1.0.0"))
	}
	var primaryEPs, secondaryEPs []string
	for _, h := range hosts {
		h.write(t)
		h.srv = nginxtest.Start(t, h.dirs)
		primaryEPs = append(primaryEPs, h.endpoint("primary"))
		secondaryEPs = append(secondaryEPs, h.endpoint("secondary"))
	}

	cfg := schemasync.DefaultConfig()
	cfg.Repositories = []schemasync.RepositoryConfig{
		{Name: "primary", Endpoints: primaryEPs},
		{Name: "secondary", Endpoints: secondaryEPs},
	}
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type want struct {
		safe         string
		dirty, stale bool
	}
	check := func(step string, wants map[[2]string]want) {
		t.Helper()
		if err := svc.ScanOnce(ctx); err != nil {
			t.Fatal(err)
		}
		v := svc.View()
		for _, e := range v.Endpoints {
			if e.State != schemasync.EndpointOK && e.Repository != "missing" {
				t.Errorf("%s: endpoint %s unknown: %s", step, e.URL, e.Reason)
			}
		}
		for k, w := range wants {
			sv, ok := v.Schema(k[0], k[1])
			if !ok {
				t.Errorf("%s: %s/%s missing from the view", step, k[0], k[1])
				continue
			}
			safe := ""
			if sv.SafeVersion != nil {
				safe = sv.SafeVersion.String()
			}
			if safe != w.safe || sv.Dirty != w.dirty || sv.Stale != w.stale {
				t.Errorf("%s: %s/%s: safe=%q dirty=%v stale=%v, want safe=%q dirty=%v stale=%v (reasons %v)",
					step, k[0], k[1], safe, sv.Dirty, sv.Stale, w.safe, w.dirty, w.stale, sv.Reasons)
			}
		}
	}

	check("uneven", map[[2]string]want{
		{"primary", title}:            {safe: "1.1.0", dirty: true},
		{"primary", "test/event"}:     {safe: "1.0.0"},
		{"secondary", "legacy/thing"}: {safe: "1.10.0"},
		{"secondary", "other/new"}:    {safe: "", dirty: true},
	})
	sv, _ := svc.View().Schema("primary", title)
	if got := sv.Endpoints[2].Versions; len(got) != 2 || got[1].String() != "1.1.0" {
		t.Errorf("host 2 lists 1.2.0 as a dangling symlink; it must not count: versions %v", got)
	}

	// The rollout completes everywhere.
	for _, h := range hosts {
		h.primary.Put(title, "1.2.0", next)
		h.secondary.Put("other/new", "1.0.0", schemarepo.Doc("other/new", "1.0.0"))
		h.write(t)
	}
	check("rolled out", map[[2]string]want{
		{"primary", title}:         {safe: "1.2.0"},
		{"secondary", "other/new"}: {safe: "1.0.0"},
	})

	// A rollback on one host lowers the safe version at once.
	hosts[1].primary.Remove(title, "1.2.0")
	hosts[1].write(t)
	check("rolled back on one host", map[[2]string]want{
		{"primary", title}: {safe: "1.1.0", dirty: true},
	})
	if svc.View().Consistent() {
		t.Error("view with a dirty schema reported consistent")
	}
}
