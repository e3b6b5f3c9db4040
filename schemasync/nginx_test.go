package schemasync_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// agedDemoOnNginx writes the demo repository to a directory, dates its directories an hour ago (the checkout
// was pulled then: its listings may be trusted, as they are fetched long after), and serves it with real nginx.
// It returns the repository's directory, its endpoint, and the time its directories are dated.
func agedDemoOnNginx(t *testing.T) (dir, endpoint string, old time.Time) {
	t.Helper()
	return agedDemoOnNginxWith(t, nginxtest.Options{})
}

// agedDemoOnNginxWith is agedDemoOnNginx, with nginx started with opts.
func agedDemoOnNginxWith(t *testing.T, opts nginxtest.Options) (dir, endpoint string, old time.Time) {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(root, "primary")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := schemarepo.Demo().WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	old = time.Now().Add(-time.Hour)
	err := filepath.WalkDir(filepath.Join(dir, "jsonschema"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := nginxtest.StartWith(t, map[string]string{"primary": dir}, opts)
	return dir, srv.URL + "/repositories/primary/jsonschema/", old
}

// TestRealNginxListingCacheInPlace: a git pull changes files in place, inside existing directories, and nginx
// reports directory mtimes in whole seconds. Against real nginx, a rescan of an unchanged tree reuses the
// cached listings, and a version added or removed in place is seen at once, also when two changes fall in the
// same second (the racy window).
func TestRealNginxListingCacheInPlace(t *testing.T) {
	const title = "mediawiki/page/change"
	dir, ep, _ := agedDemoOnNginx(t)
	cfg := schemasync.DefaultScanConfig()
	cfg.FullRescanEvery = 1 << 30 // the cache alone
	sc := schemasync.NewScanner(cfg, nil)
	ctx := context.Background()
	scan := func(step string, want ...string) schemasync.ScanResult {
		t.Helper()
		r := sc.Scan(ctx, "primary", ep)
		if !r.OK() {
			t.Fatalf("%s: scan failed: %s", step, r.Err)
		}
		var got []string
		for _, v := range r.Schemas[title] {
			got = append(got, v.String())
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: %s at %v, want %v", step, title, got, want)
		}
		return r
	}

	cold := scan("cold", "1.0.0", "1.1.0")
	warm := scan("warm", "1.0.0", "1.1.0")
	if warm.Reused == 0 || warm.Requests >= cold.Requests {
		t.Fatalf("warm rescan of an unchanged tree: %d requests and %d listings reused (cold: %d requests): "+
			"nginx's listing mtimes did not let the cache work", warm.Requests, warm.Reused, cold.Requests)
	}

	d := filepath.Join(dir, "jsonschema", filepath.FromSlash(title))
	next := schemarepo.Doc(title, "1.2.0", "page_title")
	if err := os.WriteFile(filepath.Join(d, "1.2.0.yaml"), next, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("1.2.0.yaml", filepath.Join(d, "1.2.0")); err != nil {
		t.Fatal(err)
	}
	scan("1.2.0 added in place", "1.0.0", "1.1.0", "1.2.0")
	// Rolled back at once, most likely within the same second as the addition: the directory's mtime may not
	// change, and the listing cached a moment ago must not be trusted.
	for _, f := range []string{"1.2.0", "1.2.0.yaml"} {
		if err := os.Remove(filepath.Join(d, f)); err != nil {
			t.Fatal(err)
		}
	}
	scan("1.2.0 removed in place", "1.0.0", "1.1.0")
	time.Sleep(2500 * time.Millisecond) // past the racy window: the listing is trusted again
	settled := scan("settled", "1.0.0", "1.1.0")
	if settled.Reused == 0 {
		t.Fatalf("after the racy window the unchanged listings are not reused: %+v", settled)
	}
}

// TestRealNginxFileStopsAnswering: a version file that stops answering while its directory listing stays the
// same (here its symlink's target is removed and the directory's mtime put back, as a host that copies
// mtimes would leave it; a chmod 000 does the same to a non-root nginx) stops counting within max_staleness,
// although the cached listing still shows the file.
func TestRealNginxFileStopsAnswering(t *testing.T) {
	const title = "mediawiki/page/change"
	dir, ep, old := agedDemoOnNginx(t)
	cfg := cachedOnlyConfig(ep)
	svc := runService(t, cfg, nil)
	safe := func() string { return safeOf(svc, "primary", title) }
	deadline := time.Now().Add(10 * time.Second)
	for safe() != "1.1.0" {
		if time.Now().After(deadline) {
			t.Fatalf("safe version %q, want 1.1.0", safe())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // a few warm scans that reuse the listing
	d := filepath.Join(dir, "jsonschema", filepath.FromSlash(title))
	if err := os.Remove(filepath.Join(d, "1.1.0.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(d, old, old); err != nil {
		t.Fatal(err)
	}
	broke := time.Now()
	for safe() == "1.1.0" {
		if time.Since(broke) > cfg.MaxStaleness+time.Second {
			t.Fatalf("1.1.0 still safe %s after its file stopped answering (max_staleness %s)",
				time.Since(broke).Round(time.Millisecond), cfg.MaxStaleness)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("1.1.0 stopped counting %s after its file stopped answering; safe now %q",
		time.Since(broke).Round(time.Millisecond), safe())
}
