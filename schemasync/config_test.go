package schemasync

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimalRepos = `
repositories:
  - name: primary
    endpoints: [http://h1:8190/repositories/primary/jsonschema/]
`

func TestParseConfigFull(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("testdata", "config", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9190" || cfg.ScanInterval != 15*time.Second || cfg.MaxStaleness != 90*time.Second {
		t.Fatalf("top level: %+v", cfg)
	}
	wantScan := ScanConfig{Timeout: 3 * time.Second, Concurrency: 16, EndpointConcurrency: 4, MaxBodyBytes: 1 << 20,
		MaxDepth: 12, MaxDirectories: 5000, MaxTitles: 20000, MaxTitleVersions: 1000, MaxVersions: 200000, FullRescanEvery: 5}
	if cfg.Scan != wantScan {
		t.Fatalf("scan = %+v, want %+v", cfg.Scan, wantScan)
	}
	wantRepos := []RepositoryConfig{
		{Name: "primary", Endpoints: []string{
			"http://schema1001.eqiad.wmnet:8190/repositories/primary/jsonschema/",
			"http://schema1002.eqiad.wmnet:8190/repositories/primary/jsonschema/", // normalised
		}, ScanFrom: map[string][]string{
			"http://schema1002.eqiad.wmnet:8190/repositories/primary/jsonschema/": {"node-a", "eqiad"}, // normalised
		}},
		{Name: "secondary", Endpoints: []string{"https://schema2001.codfw.wmnet/repositories/secondary/jsonschema/"}},
	}
	if !reflect.DeepEqual(cfg.Repositories, wantRepos) {
		t.Fatalf("repositories = %+v, want %+v", cfg.Repositories, wantRepos)
	}
	c := cfg.Cluster
	if c.NodeName != "node-a" || c.Datacenter != "eqiad" || c.Bind != "127.0.0.1:7946" || c.Label != "evenkeel-test" ||
		len(c.Join) != 2 || c.GossipInterval != 100*time.Millisecond || c.PushPullInterval != 5*time.Second ||
		c.ProbeInterval != 500*time.Millisecond || c.APIAdvertise != "http://127.0.0.1:9190" || !c.Enabled() {
		t.Fatalf("cluster = %+v", c)
	}
	sr := cfg.stateRepositories()
	if len(sr) != 2 || sr[0].Name != "primary" || !reflect.DeepEqual(sr[0].Endpoints, wantRepos[0].Endpoints) {
		t.Fatalf("state repositories %+v", sr)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("testdata", "config", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if cfg.Listen != def.Listen || cfg.ScanInterval != def.ScanInterval || cfg.MaxStaleness != def.MaxStaleness ||
		cfg.Scan != DefaultScanConfig() || cfg.Cluster.Enabled() || cfg.Cluster.NodeName == "" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	if err := def.Scan.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error; none: valid
		eps  []string // the first repository's endpoints after normalisation, when valid
	}{
		{"minimal", minimalRepos, nil, []string{"http://h1:8190/repositories/primary/jsonschema/"}},
		{"trailing slash added", `
repositories:
  - name: primary
    endpoints: [http://h1:8190/jsonschema, https://h2/jsonschema/, http://h3]
`, nil, []string{"http://h1:8190/jsonschema/", "https://h2/jsonschema/", "http://h3/"}},
		{"empty file", "", []string{"empty"}, nil},
		{"comments only", "# nothing here\n", []string{"empty"}, nil},
		{"two documents", minimalRepos + "---\n" + minimalRepos, []string{"more than one YAML document"}, nil},
		{"unknown top-level key", minimalRepos + "scan_intervall: 10s\n", []string{"scan_intervall"}, nil},
		{"unknown scan key", minimalRepos + "scan:\n  timeouts: 1s\n", []string{"timeouts"}, nil},
		{"unknown repository key", `
repositories:
  - name: primary
    endpoint: [http://h1/]
`, []string{"endpoint"}, nil},
		{"unknown cluster key", minimalRepos + "cluster:\n  seeds: [a:1]\n", []string{"seeds"}, nil},
		{"bad duration", minimalRepos + "scan_interval: 10 parsecs\n", []string{"line 5", "10 parsecs", "time.Duration"}, nil},
		{"duration without unit", minimalRepos + "scan_interval: 30\n", []string{"30"}, nil},
		{"negative scan interval", minimalRepos + "scan_interval: -5s\n", []string{"scan_interval must be positive"}, nil},
		{"zero scan interval", minimalRepos + "scan_interval: 0s\n", []string{"scan_interval must be positive"}, nil},
		{"max_staleness equal to scan_interval", minimalRepos + "scan_interval: 1m\nmax_staleness: 1m\n",
			[]string{"max_staleness", "must exceed scan_interval"}, nil},
		{"max_staleness below scan_interval", minimalRepos + "scan_interval: 1m\nmax_staleness: 30s\n",
			[]string{"max_staleness"}, nil},
		{"bad scan timeout", minimalRepos + "scan:\n  timeout: 0s\n", []string{"scan.timeout"}, nil},
		{"bad scan concurrency", minimalRepos + "scan:\n  concurrency: -1\n", []string{"scan.concurrency"}, nil},
		{"bad listen", minimalRepos + "listen: 8190\n", []string{"listen"}, nil},
		{"no repositories", "listen: 127.0.0.1:8190\n", []string{"at least one repository"}, nil},
		{"empty repositories", "repositories: []\n", []string{"at least one repository"}, nil},
		{"repositories not a list", "repositories: primary\n", []string{"line 1", "primary"}, nil},
		{"repository without endpoints", "repositories:\n  - name: primary\n", []string{"no endpoints"}, nil},
		{"duplicate repository names", `
repositories:
  - name: primary
    endpoints: [http://h1/a/]
  - name: primary
    endpoints: [http://h1/b/]
`, []string{"duplicate name", "primary"}, nil},
		{"bad repository name", `
repositories:
  - name: "prim ary"
    endpoints: [http://h1/]
`, []string{"prim ary"}, nil},
		{"empty repository name", `
repositories:
  - endpoints: [http://h1/]
`, []string{"name"}, nil},
		{"endpoint not a URL", `
repositories:
  - name: primary
    endpoints: ["::not a url"]
`, []string{"::not a url", "http(s) URL"}, nil},
		{"endpoint without scheme", `
repositories:
  - name: primary
    endpoints: [schema1001:8190/jsonschema/]
`, []string{"schema1001:8190/jsonschema/"}, nil},
		{"ftp endpoint", `
repositories:
  - name: primary
    endpoints: [ftp://h1/jsonschema/]
`, []string{"ftp://h1/jsonschema/"}, nil},
		{"endpoint without host", `
repositories:
  - name: primary
    endpoints: ["http:///jsonschema/"]
`, []string{"http:///jsonschema/"}, nil},
		{"endpoint with query", `
repositories:
  - name: primary
    endpoints: ["http://h1/jsonschema/?x=1"]
`, []string{"without query"}, nil},
		{"endpoint with fragment", `
repositories:
  - name: primary
    endpoints: ["http://h1/jsonschema/#top"]
`, []string{"fragment"}, nil},
		{"duplicate endpoint", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/, http://h1/jsonschema/]
`, []string{"already listed"}, nil},
		{"duplicate endpoint after normalisation", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/, http://h1/jsonschema]
`, []string{"already listed"}, nil},
		{"duplicate endpoint: case", `
repositories:
  - name: primary
    endpoints: [http://H1/jsonschema/, HTTP://h1/jsonschema/]
`, []string{"already listed"}, nil},
		{"duplicate endpoint: default port", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/, http://h1:80/jsonschema/]
`, []string{"already listed"}, nil},
		{"duplicate endpoint: // and ..", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/, http://h1//x/../jsonschema/]
`, []string{"already listed"}, nil},
		{"normal form", `
repositories:
  - name: primary
    endpoints: [HTTP://H1:80//a/./b/../jsonschema, https://h2:443/j/]
`, nil, []string{"http://h1/a/jsonschema/", "https://h2/j/"}},
		{"credentials replaced by ***", `
repositories:
  - name: primary
    endpoints: [http://user:secret@h1/jsonschema/]
`, nil, []string{"http://***@h1/jsonschema/"}},
		{"scan_from names nobody", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/]
    scan_from:
      http://h1/jsonschema/: []
`, []string{"names no node"}, nil},
		{"scan_from by another spelling", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/]
    scan_from:
      http://H1:80/jsonschema: [node-a]
cluster:
  node_name: node-a
`, nil, []string{"http://h1/jsonschema/"}},
		{"scan_from names an unknown node", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/]
    scan_from:
      http://h1/jsonschema/: [node-b]
cluster:
  node_name: node-a
  datacenter: eqiad
`, []string{`names "node-b", which is no node or datacenter`, `"node-a" ("eqiad")`, "cluster.nodes"}, nil},
		{"scan_from names a node of cluster.nodes", scanFromNodes("[node-b]"), nil, []string{"http://h1/jsonschema/"}},
		{"scan_from names a datacenter of cluster.nodes", scanFromNodes("[codfw]"), nil, []string{"http://h1/jsonschema/"}},
		{"scan_from names a node and a typo", scanFromNodes("[node-b, node-cc]"),
			[]string{`names "node-cc"`, `"node-a" ("eqiad"), "node-b" ("codfw"), "node-c"`}, nil},
		{"cluster.nodes without this node", minimalRepos + "cluster:\n  node_name: node-a\n  nodes: {node-b: codfw}\n",
			[]string{"cluster.nodes does not list this node", "node-a"}, nil},
		{"cluster.nodes with another datacenter for this node", minimalRepos +
			"cluster:\n  node_name: node-a\n  datacenter: eqiad\n  nodes: {node-a: codfw}\n",
			[]string{`datacenter "codfw", but cluster.datacenter is "eqiad"`}, nil},
		{"cluster.nodes with an empty name", minimalRepos + "cluster:\n  node_name: node-a\n  nodes: {node-a: '', '': x}\n",
			[]string{"cluster.nodes", "want a name of 1 to 256 bytes"}, nil},
		{"credentials file of an unknown endpoint", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/]
    credentials_files:
      http://h2/jsonschema/: /etc/creds
`, []string{"credentials_files", "http://h2/jsonschema/"}, nil},
		{"credentials file missing", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/]
    credentials_files:
      http://h1/jsonschema/: /nonexistent/creds
`, []string{"credentials_files", "/nonexistent/creds"}, nil},
		{"request timeout above endpoint_timeout", minimalRepos + "scan:\n  timeout: 20s\n  endpoint_timeout: 10s\n",
			[]string{"scan.timeout", "endpoint_timeout"}, nil},
		{"request timeout above the derived endpoint timeout", minimalRepos + "scan_interval: 1s\nmax_staleness: 4s\nscan:\n  timeout: 10s\n",
			[]string{"scan.timeout (10s)", "endpoint timeout (2s"}, nil},
		{"request timeout within the derived endpoint timeout", minimalRepos + "scan_interval: 1s\nmax_staleness: 4s\nscan:\n  timeout: 2s\n",
			nil, []string{"http://h1:8190/repositories/primary/jsonschema/"}},
		{"endpoint_timeout above max_staleness", minimalRepos + "scan:\n  endpoint_timeout: 5m\n",
			[]string{"endpoint_timeout", "max_staleness"}, nil},
		{"reconfirm_after not below max_staleness", minimalRepos + "scan:\n  reconfirm_after: 2m\n",
			[]string{"reconfirm_after", "max_staleness"}, nil},
		{"api_advertise with credentials", minimalRepos + "cluster:\n  bind: 127.0.0.1:7946\n  api_advertise: http://u:p@127.0.0.1:8190\n",
			[]string{"without credentials"}, nil},
		{"endpoint in two repositories", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/]
  - name: secondary
    endpoints: [http://h1/jsonschema/]
`, []string{"already listed under \"primary\""}, nil},
		{"scan_from unknown endpoint", `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/]
    scan_from:
      http://h2/jsonschema/: [node-a]
`, []string{"scan_from", "http://h2/jsonschema/"}, nil},
		{"join without bind", minimalRepos + "cluster:\n  join: [127.0.0.1:7946]\n", []string{"cluster.bind"}, nil},
		{"bad bind", minimalRepos + "cluster:\n  bind: nowhere\n", []string{"nowhere"}, nil},
		{"listen port out of range", minimalRepos + "listen: 127.0.0.1:99999\n", []string{"99999", "0 to 65535"}, nil},
		{"listen port not a number", minimalRepos + "listen: 127.0.0.1:http\n", []string{"not a number"}, nil},
		{"loopback listen, peers fetch from a routable api_advertise", minimalRepos +
			"listen: 127.0.0.1:8190\ncluster:\n  bind: 0.0.0.0:7946\n  api_advertise: http://10.64.0.10:8190\n",
			[]string{"accepts only local connections", "10.64.0.10"}, nil},
		{"loopback listen, peers dial a routable advertise address", minimalRepos +
			"listen: 127.0.0.1:8190\ncluster:\n  bind: 10.64.0.10:7946\n", []string{"accepts only local connections"}, nil},
		{"loopback listen, single-machine cluster", minimalRepos + "listen: 127.0.0.1:8190\ncluster:\n  bind: 127.0.0.1:7946\n", nil, []string{"http://h1:8190/repositories/primary/jsonschema/"}},
		{"routable listen", minimalRepos + "listen: 0.0.0.0:8190\ncluster:\n  bind: 0.0.0.0:7946\n", nil, []string{"http://h1:8190/repositories/primary/jsonschema/"}},
		{"endpoint_timeout negative", minimalRepos + "scan:\n  endpoint_timeout: -1s\n", []string{"scan.endpoint_timeout"}, nil},
		{"rejoin_interval zero", minimalRepos + "cluster:\n  bind: 127.0.0.1:7946\n  rejoin_interval: 0s\n", []string{"rejoin_interval"}, nil},
		{"every problem reported", `
scan_interval: 0s
repositories:
  - name: "a b"
    endpoints: [ftp://x/]
`, []string{"scan_interval", "a b", "ftp://x/"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig(strings.NewReader(tt.yaml))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("ParseConfig: %v", err)
				}
				if !reflect.DeepEqual(cfg.Repositories[0].Endpoints, tt.eps) {
					t.Fatalf("endpoints %q, want %q", cfg.Repositories[0].Endpoints, tt.eps)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseConfig accepted:\n%s", tt.yaml)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// scanFromNodes is a configuration of three nodes in two datacenters whose one endpoint is scanned from
// the scan_from list given (a YAML flow sequence).
func scanFromNodes(from string) string {
	return `
repositories:
  - name: primary
    endpoints: [http://h1/jsonschema/]
    scan_from:
      http://h1/jsonschema/: ` + from + `
cluster:
  node_name: node-a
  datacenter: eqiad
  nodes: {node-a: eqiad, node-b: codfw, node-c: ""}
`
}

// TestConfigValidateDoesNotMutate: Validate judges the normal form but changes nothing; Normalize is the
// named step that does.
func TestConfigValidateDoesNotMutate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Repositories = []RepositoryConfig{{Name: "primary", Endpoints: []string{"HTTP://H1:80/a"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Repositories[0].Endpoints[0] != "HTTP://H1:80/a" {
		t.Fatalf("Validate changed the endpoint to %q", cfg.Repositories[0].Endpoints[0])
	}
	if n := cfg.Normalize(); n.Repositories[0].Endpoints[0] != "http://h1/a/" || cfg.Repositories[0].Endpoints[0] != "HTTP://H1:80/a" {
		t.Fatalf("Normalize: %q (original now %q)", n.Repositories[0].Endpoints[0], cfg.Repositories[0].Endpoints[0])
	}
}

// TestCredentialsFile: credentials_files gives an endpoint its basic-auth credentials, read at load time.
func TestCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	if err := os.WriteFile(creds, []byte("reader:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(strings.NewReader("repositories:\n  - name: primary\n    endpoints: [http://h1/j/]\n" +
		"    credentials_files:\n      http://h1/j: " + creds + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.credential("http://h1/j/")
	if pw, _ := u.Password(); u == nil || u.Username() != "reader" || pw != "s3cret" {
		t.Fatalf("credentials %v", u)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	p := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(p, []byte(minimalRepos+"bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("error %v should name the file and the key", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(minimalRepos)
	f.Add("")
	f.Add("---\n---\n")
	f.Add(minimalRepos + "scan_interval: 1m\nmax_staleness: 30s\n")
	f.Add("repositories:\n  - name: a\n    endpoints: [http://h/x, http://h/x/]\n")
	f.Add("repositories: [{name: a, endpoints: ['http://[::1]:80/'], scan_from: {'http://[::1]:80': [x]}}]\n")
	f.Add("&a [*a]")
	for _, name := range []string{"full.yaml", "minimal.yaml"} {
		if b, err := os.ReadFile(filepath.Join("testdata", "config", name)); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := ParseConfig(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(cfg.Repositories) == 0 || cfg.MaxStaleness <= cfg.ScanInterval || cfg.Scan.Validate() != nil {
			t.Fatalf("accepted an invalid configuration: %+v", cfg)
		}
		seen := map[string]bool{}
		for _, r := range cfg.Repositories {
			for _, e := range r.Endpoints {
				if !strings.HasSuffix(e, "/") || seen[e] {
					t.Fatalf("endpoint %q not normalised or duplicated", e)
				}
				seen[e] = true
			}
		}
		// Validate is idempotent on its own output.
		again := cfg
		if err := again.Validate(); err != nil {
			t.Fatalf("valid configuration fails a second Validate: %v", err)
		}
	})
}

// TestPeerAPIURL: the URL other nodes fetch observations from, as serve advertises it and Validate checks it.
func TestPeerAPIURL(t *testing.T) {
	host, _ := os.Hostname()
	tests := []struct {
		name                          string
		apiAdvertise, advertise, bind string
		want                          string
	}{
		{"api_advertise wins", "http://10.0.0.9:9999", "10.0.0.1:7946", "0.0.0.0:7946", "http://10.0.0.9:9999"},
		{"advertise host and the API's port", "", "10.0.0.1:7946", "0.0.0.0:7946", "http://10.0.0.1:8190"},
		{"bind host", "", "", "127.0.0.1:7946", "http://127.0.0.1:8190"},
		{"unspecified bind: the host name", "", "", "0.0.0.0:7946", "http://" + host + ":8190"},
		{"empty bind host: the host name", "", "", ":7946", "http://" + host + ":8190"},
		{"IPv6", "", "[fd00::1]:7946", "", "http://[fd00::1]:8190"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Cluster.APIAdvertise, c.Cluster.Advertise, c.Cluster.Bind = tt.apiAdvertise, tt.advertise, tt.bind
			if got := c.PeerAPIURL("8190"); got != tt.want {
				t.Fatalf("PeerAPIURL = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDefaultRequestTimeoutYieldsToEndpointTimeout: a file that does not set scan.timeout gets the default
// 10s, or the endpoint timeout where that is shorter, so short intervals need no timeout of their own.
func TestDefaultRequestTimeoutYieldsToEndpointTimeout(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		want       time.Duration
	}{
		{"defaults", minimalRepos, 10 * time.Second},
		{"short intervals", minimalRepos + "scan_interval: 1s\nmax_staleness: 4s\n", 2 * time.Second},
		{"short endpoint_timeout", minimalRepos + "scan:\n  endpoint_timeout: 3s\n", 3 * time.Second},
		{"set in the file", minimalRepos + "scan_interval: 1s\nmax_staleness: 4s\nscan:\n  timeout: 1500ms\n", 1500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Scan.Timeout != tt.want {
				t.Errorf("scan.timeout %s, want %s", cfg.Scan.Timeout, tt.want)
			}
		})
	}
}
