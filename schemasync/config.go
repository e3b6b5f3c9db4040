package schemasync

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is schemasync's configuration, as read from YAML. Start from DefaultConfig.
type Config struct {
	// Listen is the HTTP address for the API, /metrics, /healthz and /readyz. Default "127.0.0.1:8190".
	Listen string `yaml:"listen"`
	// ScanInterval is the time between the starts of two scans of every endpoint. Default 30s.
	ScanInterval time.Duration `yaml:"scan_interval"`
	// MaxStaleness is how old an observation may be and still count. It must exceed ScanInterval; a few
	// intervals lets a node miss a scan without flapping to stale. Default 2m.
	MaxStaleness time.Duration `yaml:"max_staleness"`
	// Scan bounds each scan (timeouts, concurrency, sizes). See ScanConfig for the defaults.
	Scan ScanConfig `yaml:"scan"`
	// Repositories lists the schema repositories and, for each, the base URL of every host that serves it.
	Repositories []RepositoryConfig `yaml:"repositories"`
	// Cluster joins this node to other schemasync nodes. Without cluster.bind the node runs alone.
	Cluster ClusterConfig `yaml:"cluster"`
}

// ClusterConfig is the gossip cluster (hashicorp/memberlist) section.
type ClusterConfig struct {
	// NodeName names this node: as an observer, and as a cluster member. Unique in the cluster.
	// Default: the host name.
	NodeName string `yaml:"node_name"`
	// Datacenter tags this node, for scan_from. Default "" (no tag).
	Datacenter string `yaml:"datacenter"`
	// Bind is the host:port for gossip (UDP and TCP). Empty runs the node alone. Port 0 picks a free port.
	Bind string `yaml:"bind"`
	// Advertise is the host:port other nodes reach this node at. Default: the bind address.
	Advertise string `yaml:"advertise"`
	// APIAdvertise is the base URL other nodes fetch observations from (this node's HTTP API).
	// Default: http://<advertise host>:<listen port>.
	APIAdvertise string `yaml:"api_advertise"`
	// Join lists seed nodes (host:port). The node retries them with backoff until one answers.
	Join []string `yaml:"join"`
	// Label is the cluster label: nodes with another label cannot talk to this one. Default "".
	Label string `yaml:"label"`
	// KeyringFile holds the gossip encryption keys: a YAML or JSON list of base64 AES keys (16, 24 or 32
	// bytes), the first one primary. Re-read on SIGHUP, for rotation. Default "": no encryption.
	KeyringFile string `yaml:"keyring_file"`
	// GossipInterval is memberlist's gossip interval. Default 200ms.
	GossipInterval time.Duration `yaml:"gossip_interval"`
	// PushPullInterval is how often a node exchanges full state with a random other node. Default 10s.
	PushPullInterval time.Duration `yaml:"push_pull_interval"`
	// ProbeInterval is memberlist's failure-detector probe interval. Default 1s.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// RejoinInterval is how often a node dials the members it believes dead (and its seeds, while it is
	// alone). memberlist stops gossiping to a member 30 s after declaring it dead, so without this a
	// partition longer than that would never heal. Default 30s.
	RejoinInterval time.Duration `yaml:"rejoin_interval"`
}

// Enabled reports whether the node joins a cluster.
func (c ClusterConfig) Enabled() bool { return c.Bind != "" }

// RepositoryConfig is one schema repository and its endpoints.
type RepositoryConfig struct {
	// Name names the repository in the API and metrics, e.g. "primary". Letters, digits, '_' and '-'.
	Name string `yaml:"name"`
	// Endpoints are base URLs of the repository's jsonschema/ directory, one per host, e.g.
	// http://schema1001:8190/repositories/primary/jsonschema/ (a missing final "/" is added).
	Endpoints []string `yaml:"endpoints"`
	// ScanFrom limits which nodes scan an endpoint: endpoint URL -> node names or datacenter tags. An endpoint
	// without an entry is scanned by every node. Default: none.
	ScanFrom map[string][]string `yaml:"scan_from"`
}

// DefaultConfig returns the defaults documented on Config, with no repositories.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "schemasync"
	}
	return Config{
		Listen:       "127.0.0.1:8190",
		ScanInterval: 30 * time.Second,
		MaxStaleness: 2 * time.Minute,
		Scan:         DefaultScanConfig(),
		Cluster: ClusterConfig{
			NodeName:         host,
			GossipInterval:   200 * time.Millisecond,
			PushPullInterval: 10 * time.Second,
			ProbeInterval:    time.Second,
			RejoinInterval:   30 * time.Second,
		},
	}
}

var repoName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate checks the configuration and normalises endpoint URLs (adding a final "/"). It reports every
// problem it finds, one per line.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	listenHost, listenPort, err := net.SplitHostPort(c.Listen)
	if err != nil {
		bad("listen %q: want host:port: %v", c.Listen, err)
	} else if p, err := strconv.ParseUint(listenPort, 10, 16); err != nil || (p == 0 && listenPort != "0") {
		bad("listen %q: port %q is not a number from 0 to 65535", c.Listen, listenPort)
	}
	if c.Cluster.NodeName == "" {
		bad("cluster.node_name must not be empty")
	}
	if c.Cluster.Enabled() {
		for _, a := range append([]string{c.Cluster.Bind, c.Cluster.Advertise}, c.Cluster.Join...) {
			if a == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(a); err != nil {
				bad("cluster: address %q: want host:port: %v", a, err)
			}
		}
		if c.Cluster.GossipInterval <= 0 || c.Cluster.PushPullInterval <= 0 || c.Cluster.ProbeInterval <= 0 ||
			c.Cluster.RejoinInterval <= 0 {
			bad("cluster: gossip_interval, push_pull_interval, probe_interval and rejoin_interval must be positive")
		}
		api := ""
		if u, err := url.Parse(c.PeerAPIURL(listenPort)); err == nil {
			api = u.Hostname()
		}
		if api != "" && isLoopback(listenHost) && !isLoopback(api) {
			bad("listen %q accepts only local connections, but other nodes fetch observations from this node's API at %s: "+
				"listen on an address they reach (e.g. 0.0.0.0:%s), or set cluster.api_advertise to a loopback URL for a single-machine cluster",
				c.Listen, api, listenPort)
		}
		if c.Cluster.APIAdvertise != "" {
			if u, err := url.Parse(c.Cluster.APIAdvertise); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("cluster.api_advertise %q: want an http(s) URL", c.Cluster.APIAdvertise)
			}
		}
		if c.Cluster.KeyringFile != "" {
			if _, err := LoadKeyring(c.Cluster.KeyringFile); err != nil {
				bad("cluster.keyring_file: %v", err)
			}
		}
	} else if len(c.Cluster.Join) > 0 || c.Cluster.KeyringFile != "" || c.Cluster.Label != "" {
		bad("cluster: join, label and keyring_file need cluster.bind")
	}
	if c.ScanInterval <= 0 {
		bad("scan_interval must be positive, got %s", c.ScanInterval)
	}
	if c.MaxStaleness <= c.ScanInterval {
		bad("max_staleness (%s) must exceed scan_interval (%s), or every observation turns stale between scans",
			c.MaxStaleness, c.ScanInterval)
	}
	if err := c.Scan.Validate(); err != nil {
		bad("%v", err)
	}
	if len(c.Repositories) == 0 {
		bad("repositories: at least one repository is needed")
	}
	names := map[string]bool{}
	seen := map[string]string{}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if !repoName.MatchString(r.Name) {
			bad("repositories[%d]: name %q must be letters, digits, '_' or '-'", i, r.Name)
		}
		if names[r.Name] {
			bad("repositories[%d]: duplicate name %q", i, r.Name)
		}
		names[r.Name] = true
		if len(r.Endpoints) == 0 {
			bad("repository %q: no endpoints", r.Name)
		}
		for j, e := range r.Endpoints {
			u, err := url.Parse(e)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				bad("repository %q: endpoint %q: want an http(s) URL without query or fragment", r.Name, e)
				continue
			}
			if !strings.HasSuffix(e, "/") {
				e += "/"
				r.Endpoints[j] = e
			}
			if other, dup := seen[e]; dup {
				bad("repository %q: endpoint %q is already listed under %q", r.Name, e, other)
			}
			seen[e] = r.Name
		}
		for e := range r.ScanFrom {
			found := false
			for _, ep := range r.Endpoints {
				found = found || ep == e || ep == e+"/"
			}
			if !found {
				bad("repository %q: scan_from names %q, which is not one of its endpoints", r.Name, e)
			}
		}
	}
	return errors.Join(errs...)
}

// PeerAPIURL is the base URL other nodes fetch this node's observations from: cluster.api_advertise, else
// http://<advertise host, else bind host>:<apiPort>, where an unspecified host (0.0.0.0, or none) stands for this
// machine's host name. apiPort is the port the API listens on.
func (c *Config) PeerAPIURL(apiPort string) string {
	if c.Cluster.APIAdvertise != "" {
		return c.Cluster.APIAdvertise
	}
	addr := c.Cluster.Advertise
	if addr == "" {
		addr = c.Cluster.Bind
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host, _ = os.Hostname()
	}
	return "http://" + net.JoinHostPort(host, apiPort)
}

// isLoopback reports whether host names only this machine: localhost or a loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseConfig decodes YAML over DefaultConfig, rejecting unknown keys, and validates the result.
func ParseConfig(r io.Reader) (Config, error) {
	cfg := DefaultConfig()
	data, err := io.ReadAll(r)
	if err != nil {
		return cfg, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return cfg, errors.New("the configuration is empty")
		}
		return cfg, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return cfg, errors.New("the configuration holds more than one YAML document")
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// LoadConfig reads and validates the configuration file at path.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := ParseConfig(f)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// scanConfig is the scan configuration with its derived defaults filled in (reconfirm_after).
func (c *Config) scanConfig() ScanConfig {
	sc := c.Scan
	if sc.ReconfirmAfter == 0 {
		sc.ReconfirmAfter = c.MaxStaleness / 4
	}
	return sc
}

// stateRepositories converts the configured repositories to the state's view of them.
func (c *Config) stateRepositories() []Repository {
	out := make([]Repository, len(c.Repositories))
	for i, r := range c.Repositories {
		out[i] = Repository{Name: r.Name, Endpoints: r.Endpoints}
	}
	return out
}
