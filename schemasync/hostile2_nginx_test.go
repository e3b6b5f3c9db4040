package schemasync_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/internal/nginxtest"
	"github.com/evenkeel/evenkeel/schemasync"
)

// runService starts a service's scan loop, with its metrics in reg (nil: none), and stops it when the test
// ends.
func runService(t *testing.T, cfg schemasync.Config, reg prometheus.Registerer) *schemasync.Service {
	t.Helper()
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return svc
}

// cachedOnlyConfig is a one-node configuration for the primary repository at ep that scans every 300 ms,
// with a max_staleness of 3 s, and never ignores its listing cache: only re-confirmation sees a file that
// stops answering behind an unchanged listing.
func cachedOnlyConfig(ep string) schemasync.Config {
	cfg := schemasync.DefaultConfig()
	cfg.Cluster.NodeName = "n1"
	cfg.ScanInterval, cfg.MaxStaleness = 300*time.Millisecond, 3*time.Second
	cfg.Scan.Timeout = time.Second
	cfg.Scan.FullRescanEvery = 1 << 30
	cfg.Repositories = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: []string{ep}}}
	return cfg
}

// safeOf is the safe version of (repo, title) in svc's view, "" when none.
func safeOf(svc *schemasync.Service, repo, title string) string {
	sv, ok := svc.View().Schema(repo, title)
	if !ok || sv.SafeVersion == nil {
		return ""
	}
	return sv.SafeVersion.String()
}

// TestRealNginxForbiddenVersionFile: on a real nginx whose workers run unprivileged (as a schema host's do), a
// version file turned unreadable (chmod 000) answers 403 while the directory listing stays byte for byte the
// same (a chmod changes no mtime). Within max_staleness the version stops counting, the safe version drops to
// the next one that every endpoint serves, and the answer says which file answered what. A title directory
// turned unreadable then takes only its own title away.
func TestRealNginxForbiddenVersionFile(t *testing.T) {
	const title = "mediawiki/page/change"
	dir, ep, _ := agedDemoOnNginxWith(t, nginxtest.Options{User: "nobody"})
	cfg := cachedOnlyConfig(ep)
	reg := prometheus.NewRegistry()
	svc := runService(t, cfg, reg)
	deadline := time.Now().Add(10 * time.Second)
	for safeOf(svc, "primary", title) != "1.1.0" {
		if time.Now().After(deadline) {
			t.Fatalf("safe version %q, want 1.1.0", safeOf(svc, "primary", title))
		}
		time.Sleep(20 * time.Millisecond)
	}
	listing := func() string {
		resp, err := http.Get(ep + title + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	before := listing()
	time.Sleep(time.Second) // a few warm scans that reuse the listing
	file := filepath.Join(dir, "jsonschema", filepath.FromSlash(title), "1.1.0.yaml")
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ep + title + "/1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("nginx answers %s for a chmod 000 file, want 403 (do its workers run as nobody?)", resp.Status)
	}
	if after := listing(); after != before {
		t.Fatalf("the listing changed with the chmod:\n%s\n%s", before, after)
	}
	broke := time.Now()
	for safeOf(svc, "primary", title) != "1.0.0" {
		if time.Since(broke) > cfg.MaxStaleness+time.Second {
			sv, _ := svc.View().Schema("primary", title)
			t.Fatalf("%s after the file turned 403 (max_staleness %s): safe %q, want 1.0.0; %+v",
				time.Since(broke).Round(time.Millisecond), cfg.MaxStaleness, safeOf(svc, "primary", title), sv)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("1.1.0 stopped counting %s after its file turned 403", time.Since(broke).Round(time.Millisecond))

	// The reason reaches /v1/state: which file, and what it answered; /metrics counts it.
	rec := httptest.NewRecorder()
	svc.Handler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if want := `schemasync_scan_not_counted{endpoint="` + ep + `",reason="refused_file",repository="primary"} 1`; !strings.Contains(rec.Body.String(), want) {
		t.Fatalf("/metrics lacks %s", want)
	}
	rec = httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/state", nil))
	var st schemasync.StateResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range st.Endpoints {
		reasons = append(reasons, e.Reason)
	}
	for _, s := range st.Schemas {
		if s.Title == title {
			reasons = append(reasons, s.Reasons...)
		}
	}
	all := strings.Join(reasons, "\n")
	if !strings.Contains(all, "1.1.0") || !strings.Contains(all, "403") {
		t.Fatalf("no reason names 1.1.0 and its 403:\n%s", all)
	}

	// 1.1.0's file answers again, and counts again, so that the directory's refusal below is the endpoint's
	// only one: a reason names one refused file of several, the first the scan's workers met, which with
	// two could be either.
	if err := os.Chmod(file, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for safeOf(svc, "primary", title) != "1.1.0" {
		if time.Now().After(deadline) {
			t.Fatalf("safe version %q after 1.1.0's file answered again, want 1.1.0", safeOf(svc, "primary", title))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A title directory turned unreadable: its listing answers 403 (and so would every file below it). That
	// title goes, the others keep their safe versions, fresh: the endpoint is not unknown.
	const other, kept = "test/event", "analytics/mediawiki/structured_task/article/link_suggestion_interaction"
	if err := os.Chmod(filepath.Join(dir, "jsonschema", filepath.FromSlash(other)), 0); err != nil {
		t.Fatal(err)
	}
	broke = time.Now()
	for {
		_, has := svc.View().Schema("primary", other)
		if !has {
			break
		}
		if time.Since(broke) > cfg.MaxStaleness+time.Second {
			sv, _ := svc.View().Schema("primary", other)
			t.Fatalf("%s still answered %s after its directory turned 403: %+v", other, time.Since(broke), sv)
		}
		time.Sleep(20 * time.Millisecond)
	}
	v := svc.View()
	if sv, _ := v.Schema("primary", kept); sv == nil || sv.Stale || sv.SafeVersion == nil || sv.SafeVersion.String() != "1.1.0" {
		t.Fatalf("%s: %+v", kept, sv)
	}
	// The cached listing (a chmod changes no mtime) makes the refusal show on the version's file; a cold scan
	// sees it on the listing.
	if e := v.Endpoints[0]; e.State != schemasync.EndpointOK || !strings.Contains(e.Reason, `"/test/event/`) ||
		!strings.Contains(e.Reason, "HTTP 403") {
		t.Fatalf("endpoint %s: %q", e.State, e.Reason)
	}
	t.Logf("endpoint reason: %s", v.Endpoints[0].Reason)
	cold := schemasync.NewScanner(schemasync.DefaultScanConfig(), nil).Scan(context.Background(), "primary", ep)
	if !cold.OK() || !strings.Contains(cold.Warning, `directory(s) not scanned, their listings refuse a GET: GET "/test/event/": HTTP 403`) {
		t.Fatalf("a cold scan: %q, warning %q", cold.Err, cold.Warning)
	}
	if _, has := cold.Schemas[other]; has || len(cold.Schemas[kept]) != 2 {
		t.Fatalf("a cold scan: %v", cold.Schemas)
	}
}

// TestRealNginxHostileNames: names a checkout can hold on disk, served by real nginx: an ANSI escape, bytes
// that are not UTF-8, a literal %2F, and symlink loops (latest -> . in a title directory, which nginx lists
// as a directory and follows). The odd names are skipped or taken literally, the loop makes its endpoint
// unknown with a bounded reason after a bounded number of requests, and nothing raw reaches /v1/state or
// /metrics.
func TestRealNginxHostileNames(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string, versions ...string) {
		d := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, v := range versions {
			if err := os.WriteFile(filepath.Join(d, v+".yaml"), []byte("title: x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(v+".yaml", filepath.Join(d, v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("names/jsonschema/good/one", "1.0.0")
	mk("names/jsonschema/\x1b[31mred\x1b[0m/one", "1.0.0")
	mk("names/jsonschema/a\xff\xfeb", "1.0.0")
	mk("names/jsonschema/a%2Fb", "1.0.0")
	mk("names/jsonschema/a\u202eb", "1.0.0")
	mk("loop/jsonschema/good/one", "1.0.0")
	if err := os.Symlink(".", filepath.Join(root, "loop/jsonschema/good/one/latest")); err != nil {
		t.Fatal(err)
	}
	srv := nginxtest.Start(t, map[string]string{"names": filepath.Join(root, "names"), "loop": filepath.Join(root, "loop")})
	names, loop := srv.URL+"/repositories/names/jsonschema/", srv.URL+"/repositories/loop/jsonschema/"
	cfg := schemasync.DefaultConfig()
	cfg.Cluster.NodeName = "n1"
	cfg.Scan.Timeout = 2 * time.Second
	cfg.Repositories = []schemasync.RepositoryConfig{
		{Name: "names", Endpoints: []string{names}},
		{Name: "loop", Endpoints: []string{loop}},
	}
	reg := prometheus.NewRegistry()
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	v := svc.View()
	got := map[string]string{}
	for _, sv := range v.Schemas {
		if sv.SafeVersion != nil {
			got[sv.Repository+":"+sv.Title] = sv.SafeVersion.String()
		}
	}
	want := map[string]string{"names:good/one": "1.0.0", "names:a%2Fb": "1.0.0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("safe versions %v, want %v", got, want)
	}
	for _, e := range v.Endpoints {
		t.Logf("%s %s: %s", e.URL, e.State, e.Reason)
		if len(e.Reason) > schemasync.MaxReasonBytes+200 {
			t.Fatalf("a reason of %d bytes", len(e.Reason))
		}
		switch e.URL {
		case names:
			if e.State != schemasync.EndpointOK || !strings.Contains(e.Reason, "3 directory(s) skipped") {
				t.Fatalf("names endpoint %s: %q", e.State, e.Reason)
			}
		case loop:
			if e.State != schemasync.EndpointUnknown || !strings.Contains(e.Reason, "max_depth") {
				t.Fatalf("loop endpoint %s: %q", e.State, e.Reason)
			}
		}
	}
	for _, path := range []string{"/v1/state", "/metrics"} {
		rec := httptest.NewRecorder()
		svc.Handler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		for i, r := range rec.Body.String() {
			if r == utf8.RuneError || r != '\n' && !unicode.IsPrint(r) {
				t.Fatalf("%s holds %U at %d", path, r, i)
			}
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "schemasync_scan_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if n := m.GetCounter().GetValue(); n > 200 {
				t.Fatalf("%v requests for one scan", n)
			}
		}
	}
}
