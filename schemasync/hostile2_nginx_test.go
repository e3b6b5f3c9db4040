package schemasync_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/nginxtest"
	"github.com/evenkeel/evenkeel/schemasync"
)

// runService starts svc's scan loop and stops it when the test ends.
func runService(t *testing.T, cfg schemasync.Config) *schemasync.Service {
	t.Helper()
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return svc
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
// the next one that every endpoint serves, and the answer says which file answered what.
func TestRealNginxForbiddenVersionFile(t *testing.T) {
	const title = "mediawiki/page/change"
	dir, ep, _ := agedDemoOnNginxWith(t, nginxtest.Options{User: "nobody"})
	cfg := schemasync.DefaultConfig()
	cfg.Cluster.NodeName = "n1"
	cfg.ScanInterval, cfg.MaxStaleness = 300*time.Millisecond, 3*time.Second
	cfg.Scan.Timeout = time.Second
	cfg.Scan.FullRescanEvery = 1 << 30 // the cache alone: only re-confirmation can see the change
	cfg.Repositories = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: []string{ep}}}
	svc := runService(t, cfg)
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
	if err := os.Chmod(filepath.Join(dir, "jsonschema", filepath.FromSlash(title), "1.1.0.yaml"), 0); err != nil {
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

	// The reason reaches /v1/state: which file, and what it answered.
	rec := httptest.NewRecorder()
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
}
