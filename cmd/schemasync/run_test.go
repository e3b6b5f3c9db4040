package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/refused"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/internal/syncbuf"
)

// hosts starts n schema hosts serving copies of the demo repository and returns their endpoints.
func hosts(t *testing.T, n int) ([]*schemarepo.Repo, []string) {
	t.Helper()
	var repos []*schemarepo.Repo
	var eps []string
	for i := 0; i < n; i++ {
		r := schemarepo.Demo()
		srv := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": r}))
		t.Cleanup(srv.Close)
		repos = append(repos, r)
		eps = append(eps, srv.URL+"/repositories/primary/jsonschema/")
	}
	return repos, eps
}

func writeConfig(t *testing.T, listen string, eps []string, clusterLines ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\ncluster:\n  node_name: test\n%sscan_interval: 100ms\nmax_staleness: 5s\nrepositories:\n  - name: primary\n    endpoints:\n", listen,
		strings.Join(clusterLines, ""))
	for _, e := range eps {
		fmt.Fprintf(&b, "      - %s\n", e)
	}
	p := filepath.Join(t.TempDir(), "schemasync.yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	repos, eps := hosts(t, 2)
	good := writeConfig(t, "127.0.0.1:0", eps)
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("listen: 127.0.0.1:1\nscan_intervall: 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	down := refused.URL(t) // a stopped node or host: connections refused until the test ends
	keyring := filepath.Join(t.TempDir(), "keyring.yml")
	if err := os.WriteFile(keyring, []byte("- AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withDown := writeConfig(t, "127.0.0.1:0", append(append([]string{}, eps...), down+"/repositories/primary/jsonschema/"))

	tests := []struct {
		name     string
		args     []string
		setup    func()
		code     int
		inStdout string
		inStderr string
	}{
		{name: "no arguments", args: nil, code: 2, inStderr: "Commands:"},
		{name: "help", args: []string{"help"}, code: 0, inStdout: "check-config"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, inStderr: `unknown command "frobnicate"`},
		{name: "scan help", args: []string{"scan", "--help"}, code: 0, inStdout: "Examples:"},
		{name: "scan without config", args: []string{"scan"}, code: 2, inStderr: "--config is required"},
		{name: "scan bad flag", args: []string{"scan", "--nope"}, code: 2, inStderr: "flag provided but not defined"},
		{name: "scan unknown key", args: []string{"scan", "--config", bad}, code: 2, inStderr: "scan_intervall"},
		{name: "scan missing file", args: []string{"scan", "--config", "/nonexistent.yml"}, code: 2, inStderr: "no such file"},
		{name: "check-config ok", args: []string{"check-config", "--config", good}, code: 0, inStdout: "OK: node test, 1 repositories"},
		{name: "check-config bad", args: []string{"check-config", "--config", bad}, code: 2, inStderr: "scan_intervall"},
		{name: "scan consistent", args: []string{"scan", "--config", good}, code: 0, inStdout: "0 dirty, 0 stale; 2 endpoints: 0 unknown"},
		{name: "scan dirty", args: []string{"scan", "--config", good}, code: 1,
			setup:    func() { repos[0].Put("test/event", "1.1.0", schemarepo.Doc("test/event", "1.1.0")) },
			inStdout: "test/event"},
		{name: "scan endpoint down", args: []string{"scan", "--config", withDown}, code: 1, inStdout: "Unknown endpoints:"},
		{name: "version", args: []string{"version"}, code: 0, inStdout: "schemasync "},
		{name: "keys generate", args: []string{"keys", "generate"}, code: 0, inStdout: "="},
		{name: "keys without subcommand", args: []string{"keys"}, code: 2, inStderr: "Rotating keys"},
		{name: "keys show", args: []string{"keys", "show", "--keyring", keyring}, code: 0, inStdout: "primary: encrypts and decrypts"},
		{name: "keys show bad file", args: []string{"keys", "show", "--keyring", bad}, code: 1, inStderr: "keyring"},
		{name: "members without target", args: []string{"members"}, code: 2, inStderr: "--config or --node"},
		{name: "members of a stopped node", args: []string{"members", "--node", down}, code: 1, inStderr: "is the node running?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			code, out, errs := runCmd(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			if !strings.Contains(out, tc.inStdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.inStdout, out)
			}
			if !strings.Contains(errs, tc.inStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.inStderr, errs)
			}
		})
	}
}

// TestScanJSONShape checks the documented shape of scan --json, key by key.
func TestScanJSONShape(t *testing.T) {
	repos, eps := hosts(t, 2)
	repos[1].Put("mediawiki/page/change", "1.2.0", schemarepo.Doc("mediawiki/page/change", "1.2.0"))
	code, out, errs := runCmd("scan", "--json", "--config", writeConfig(t, "127.0.0.1:0", eps))
	if code != 1 {
		t.Fatalf("exit %d, want 1 (dirty); stderr %s", code, errs)
	}
	var resp struct {
		Consistent *bool `json:"consistent"`
		Endpoints  []map[string]any
		Schemas    []struct {
			Repository  *string           `json:"repository"`
			Title       *string           `json:"title"`
			SafeVersion *string           `json:"safe_version"`
			Dirty       *bool             `json:"dirty"`
			Stale       *bool             `json:"stale"`
			Endpoints   []json.RawMessage `json:"endpoints"`
		} `json:"schemas"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if resp.Consistent == nil || *resp.Consistent {
		t.Errorf("consistent = %v, want false", resp.Consistent)
	}
	found := false
	for _, s := range resp.Schemas {
		if s.Repository == nil || s.Title == nil || s.Dirty == nil || s.Stale == nil || len(s.Endpoints) != 2 {
			t.Fatalf("schema lacks documented fields: %+v", s)
		}
		for _, raw := range s.Endpoints {
			var e map[string]json.RawMessage
			_ = json.Unmarshal(raw, &e)
			for _, k := range []string{"url", "state", "versions", "last_scan"} {
				if _, ok := e[k]; !ok {
					t.Errorf("endpoint entry lacks %q: %s", k, raw)
				}
			}
		}
		if *s.Title == "mediawiki/page/change" {
			found = true
			if !*s.Dirty || s.SafeVersion == nil || *s.SafeVersion != "1.1.0" {
				t.Errorf("mediawiki/page/change: dirty=%v safe=%v, want dirty and 1.1.0", *s.Dirty, s.SafeVersion)
			}
		}
	}
	if !found {
		t.Error("mediawiki/page/change missing")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe runs serve for real: readiness, the API, metrics, a SIGHUP reload and a graceful stop.
func TestServe(t *testing.T) {
	_, eps := hosts(t, 3)
	addr := freeAddr(t)
	cluster := "  bind: 127.0.0.1:0\n  label: test\n"
	cfgPath := writeConfig(t, addr, eps[:2], cluster)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb syncbuf.Buffer
	go func() { done <- run(ctx, []string{"serve", "--config", cfgPath}, io.Discard, &errb) }()
	base := "http://" + addr
	waitFor(t, "readyz 200", func() bool { c, _ := get(t, base+"/readyz"); return c == 200 })

	if c, body := get(t, base+"/v1/repositories/primary/schemas/mediawiki/page/change"); c != 200 || !strings.Contains(body, `"safe_version":"1.1.0"`) {
		t.Errorf("schema: %d %s", c, body)
	}
	if c, body := get(t, base+"/v1/repositories/primary/schemas/no/such"); c != 404 || !strings.Contains(body, "not found") {
		t.Errorf("unknown schema: %d %s", c, body)
	}
	if c, body := get(t, base+"/v1/dirty"); c != 200 || !strings.Contains(body, `"schemas":[]`) {
		t.Errorf("dirty: %d %s", c, body)
	}
	c, metrics := get(t, base+"/metrics")
	for _, m := range []string{"schemasync_schema_dirty{", "schemasync_safe_version_info{", "schemasync_endpoint_up{",
		"schemasync_endpoint_last_successful_scan_timestamp_seconds{", "schemasync_build_info{", "schemasync_scans_total{"} {
		if c != 200 || !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	code, out, errs := runCmd("members", "--config", cfgPath, "--json")
	if code != 0 || !strings.Contains(out, `"cluster": true`) || !strings.Contains(out, `"state": "alive"`) {
		t.Errorf("members: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := runCmd("members", "--node", base); code != 0 || !strings.Contains(out, "test (this node)") {
		t.Errorf("members table: exit %d\n%s", code, out)
	}

	// SIGHUP reloads: a third endpoint appears in the state.
	writeConfigTo(t, cfgPath, addr, eps, cluster)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload adds the third endpoint", func() bool {
		_, body := get(t, base+"/v1/state")
		return strings.Count(body, `"repository":"primary","url"`) == 3
	})

	cancel() // as SIGTERM does, through the same context
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d; stderr:\n%s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15s")
	}
	if c, _ := get(t, base+"/healthz"); c != 0 {
		t.Errorf("still serving after shutdown")
	}
	if !strings.Contains(errb.String(), "left the cluster") {
		t.Errorf("no graceful leave in the log:\n%s", errb.String())
	}
	if !strings.Contains(errb.String(), "configuration reloaded") {
		t.Errorf("no reload in the log:\n%s", errb.String())
	}
}

func writeConfigTo(t *testing.T, path, listen string, eps []string, clusterLines ...string) {
	t.Helper()
	tmp := writeConfig(t, listen, eps, clusterLines...)
	b, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestScanTimeoutHangingHost: with one host that never answers, scan --timeout reports the others as scanned
// and the hanging one as unknown, naming the deadline, and exits 1; with --json too.
func TestScanTimeoutHangingHost(t *testing.T) {
	_, eps := hosts(t, 2)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)
	hanging := hang.URL + "/repositories/primary/jsonschema/"
	cfg := writeConfig(t, "127.0.0.1:0", append(append([]string{}, eps...), hanging))

	start := time.Now()
	code, out, errs := runCmd("scan", "--config", cfg, "--timeout", "1s")
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("scan took %s with --timeout 1s", took)
	}
	if code != 1 || !strings.Contains(out, "Unknown endpoints:") || !strings.Contains(out, hanging) ||
		!strings.Contains(out, "deadline of 1s") || !strings.Contains(out, "3 endpoints: 1 unknown") {
		t.Errorf("exit %d, want 1 with the hanging endpoint unknown\nstdout: %s\nstderr: %s", code, out, errs)
	}

	code, out, errs = runCmd("scan", "--config", cfg, "--timeout", "1s", "--json")
	if code != 1 {
		t.Errorf("--json: exit %d, want 1; stderr: %s", code, errs)
	}
	var resp struct {
		Endpoints []struct {
			URL    string `json:"url"`
			State  string `json:"state"`
			Reason string `json:"reason"`
		} `json:"endpoints"`
		Schemas []json.RawMessage `json:"schemas"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("--json: stdout is not JSON: %v\n%s\nstderr: %s", err, out, errs)
	}
	states := map[string]string{}
	for _, e := range resp.Endpoints {
		states[e.URL] = e.State
		if e.URL == hanging && !strings.Contains(e.Reason, "deadline of 1s") {
			t.Errorf("--json: hanging endpoint's reason %q does not name the deadline", e.Reason)
		}
	}
	if states[hanging] != "unknown" || states[eps[0]] != "ok" || states[eps[1]] != "ok" || len(resp.Schemas) == 0 {
		t.Errorf("--json: endpoint states %v, %d schemas; want the hanging one unknown, the others ok", states,
			len(resp.Schemas))
	}
	if code, _, errs := runCmd("scan", "--config", cfg, "--timeout", "0s"); code != 2 {
		t.Errorf("--timeout 0s: exit %d, want 2; stderr: %s", code, errs)
	}
}

// TestScanIgnoresScanFrom: scan_from gives an endpoint to other nodes; the one-shot scan, which has no other
// node to fill it in, scans it anyway.
func TestScanIgnoresScanFrom(t *testing.T) {
	_, eps := hosts(t, 2)
	cfg := writeConfig(t, "127.0.0.1:0", eps, "  nodes: {test: '', elsewhere: other-dc}\n")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, fmt.Sprintf("    scan_from:\n      %s: [elsewhere, other-dc]\n", eps[1])...)
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCmd("scan", "--config", cfg); code != 0 || !strings.Contains(out, "2 endpoints: 0 unknown") {
		t.Errorf("exit %d, want 0 with both endpoints scanned\nstdout: %s\nstderr: %s", code, out, errs)
	}
}

// TestCheckConfigScanFromNamesNoNode: check-config rejects a scan_from name that is no node or datacenter
// of the cluster, with exit 2, one line that names the repository, the endpoint and the name, and the nodes
// it knows (with their datacenters), so the typo is plain to see.
func TestCheckConfigScanFromNamesNoNode(t *testing.T) {
	eps := []string{"http://h1/jsonschema/", "http://h2/jsonschema/"}
	for _, tt := range []struct {
		name, nodes, from string
		want              []string // in stderr; none: accepted
	}{
		{"without cluster.nodes", "", "[node-b]",
			[]string{`scan_from for "http://h2/jsonschema/" names "node-b"`, `are "test"`, "cluster.nodes"}},
		{"a typo of a listed node", "  nodes: {test: eqiad, node-b: codfw}\n  datacenter: eqiad\n", "[node-bb]",
			[]string{`names "node-bb"`, `"node-b" ("codfw"), "test" ("eqiad")`}},
		{"a listed node", "  nodes: {test: eqiad, node-b: codfw}\n  datacenter: eqiad\n", "[node-b]", nil},
		{"a listed datacenter", "  nodes: {test: eqiad, node-b: codfw}\n  datacenter: eqiad\n", "[codfw]", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, "127.0.0.1:0", eps, tt.nodes)
			b, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, fmt.Sprintf("    scan_from:\n      %s: %s\n", eps[1], tt.from)...)
			if err := os.WriteFile(cfg, b, 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errs := runCmd("check-config", "--config", cfg)
			if tt.want == nil {
				if code != 0 || !strings.Contains(out, "OK") {
					t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", code, out, errs)
				}
				return
			}
			if code != 2 || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "schemasync check-config: ") {
				t.Fatalf("exit %d, want 2 with one line on stderr\nstdout: %s\nstderr: %s", code, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errs)
				}
			}
		})
	}
}

// TestScanEscapesTitles: a host that names a directory with terminal escape sequences (clear the screen, set
// the window title) has it skipped, as no schema's title, and the scan table's warning for that endpoint
// prints the name escaped; the password of an endpoint URL is printed as ***.
func TestScanEscapesTitles(t *testing.T) {
	const evil = "evil\x1b[2J\x1b]0;owned\x07\ttab"
	repos, eps := hosts(t, 2)
	repos[1].Put(evil, "1.0.0", schemarepo.Doc("evil", "1.0.0"))
	eps[1] = strings.Replace(eps[1], "http://", "http://reader:hunter2@", 1)
	code, out, errs := runCmd("scan", "--config", writeConfig(t, "127.0.0.1:0", eps))
	if code != 0 || !strings.Contains(out, "Endpoint warnings:") || !strings.Contains(out, "1 directory(s) skipped") {
		t.Fatalf("exit %d, want 0 with a warning (the directory is skipped on the one host that has it)\n%s%s", code, out, errs)
	}
	if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `evil\x1b[2J\x1b]0;owned\atab`) &&
		!strings.Contains(out, `evil\x1b[2J\x1b]0;owned\a\ttab`) {
		t.Fatalf("the title is not escaped:\n%q", out)
	}
	if strings.Contains(out+errs, "hunter2") || !strings.Contains(out, "***@") {
		t.Fatalf("the password shows, or the endpoint is not shown with ***:\n%s", out)
	}
}
