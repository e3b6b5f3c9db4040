package schemasync

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	urlpath "path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync/gossip"
)

// Config is schemasync's configuration, as read from YAML. Start from DefaultConfig.
type Config struct {
	// Listen is the HTTP address for the API, /metrics, /healthz and /readyz. Default "127.0.0.1:8190".
	Listen string `yaml:"listen"`
	// API bounds the HTTP server's connections and their timeouts. See APIConfig for the defaults.
	API APIConfig `yaml:"api"`
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
	// Nodes names every node of the cluster: node name -> its datacenter tag ("" for none). It is what
	// scan_from is checked against: a scan_from name that is neither a node nor a datacenter listed here (or
	// this node's own node_name and datacenter) is an error, since no node would scan that endpoint from it.
	// When set, it must list this node, with its datacenter. Default: none (scan_from may then name only
	// this node and its datacenter).
	Nodes map[string]string `yaml:"nodes"`
}

// APIConfig bounds the HTTP API server, so that idle or slow clients cannot hold its descriptors.
type APIConfig struct {
	// MaxConnections bounds the connections served at once; more wait in the listen queue. Default 1024.
	MaxConnections int `yaml:"max_connections"`
	// ReadHeaderTimeout bounds reading a request's headers. Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request. Default 10s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response (a full /v1/state of a large fleet included). Default 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long. Default 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MetricsMaxSchemas bounds the schemas that /metrics exports per-schema series for (three at most
	// each); the rest are counted in schemasync_metrics_schemas_omitted. Default 50000.
	MetricsMaxSchemas int `yaml:"metrics_max_schemas"`
}

// DefaultAPIConfig returns the defaults documented on APIConfig.
func DefaultAPIConfig() APIConfig {
	return APIConfig{MaxConnections: 1024, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MetricsMaxSchemas: 50000}
}

// Validate checks every bound.
func (c APIConfig) Validate() error {
	if c.MaxConnections <= 0 || c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 ||
		c.IdleTimeout <= 0 || c.MetricsMaxSchemas <= 0 {
		return errors.New("api: max_connections, read_header_timeout, read_timeout, write_timeout, idle_timeout and metrics_max_schemas must be positive")
	}
	if c.ReadHeaderTimeout > c.ReadTimeout {
		return fmt.Errorf("api.read_header_timeout (%s) must not exceed api.read_timeout (%s)", c.ReadHeaderTimeout, c.ReadTimeout)
	}
	return nil
}

// Enabled reports whether the node joins a cluster.
func (c ClusterConfig) Enabled() bool { return c.Bind != "" }

// maxNodeNameBytes bounds a node name or datacenter tag in cluster.nodes: gossip rejects longer names.
const maxNodeNameBytes = 256

// knownNames are the names scan_from may use: the nodes of cluster.nodes and their datacenters, and this
// node's name and datacenter. The list names each node with its datacenter, for an error message.
func (c ClusterConfig) knownNames() (map[string]bool, string) {
	nodes := map[string]string{c.NodeName: c.Datacenter}
	for n, dc := range c.Nodes {
		if n != c.NodeName { // this node's datacenter is cluster.datacenter (Validate checks they agree)
			nodes[n] = dc
		}
	}
	known := map[string]bool{}
	list := make([]string, 0, len(nodes))
	for n, dc := range nodes {
		if n == "" {
			continue
		}
		known[n] = true
		item := strconv.Quote(safetext.Bound(n, 64))
		if dc != "" {
			known[dc] = true
			item += " (" + strconv.Quote(safetext.Bound(dc, 64)) + ")"
		}
		list = append(list, item)
	}
	sort.Strings(list)
	if len(list) > 20 {
		list = append(list[:20], fmt.Sprintf("and %d more", len(list)-20))
	}
	return known, strings.Join(list, ", ")
}

// nodesHint tells how to make another node's name known, when cluster.nodes is not set.
func nodesHint(nodes map[string]string) string {
	if len(nodes) > 0 {
		return ""
	}
	return " (list every node of the cluster, with its datacenter, in cluster.nodes)"
}

// RepositoryConfig is one schema repository and its endpoints.
type RepositoryConfig struct {
	// Name names the repository in the API and metrics, e.g. "primary". Letters, digits, '_' and '-'.
	Name string `yaml:"name"`
	// Endpoints are base URLs of the repository's jsonschema/ directory, one per host, e.g.
	// http://schema1001:8190/repositories/primary/jsonschema/. Normalize puts each in one form: a final "/",
	// lower-case scheme and host, no default port, no "//", "." or "..". URLs should not carry credentials:
	// use credentials_files. Credentials in a URL are used, but the endpoint is named with them replaced by
	// *** everywhere (API, metrics, logs), and all nodes must then configure it alike.
	Endpoints []string `yaml:"endpoints"`
	// ScanFrom limits which nodes scan an endpoint: endpoint URL -> node names or datacenter tags. An endpoint
	// without an entry is scanned by every node. Every name must be a node or datacenter of cluster.nodes, or
	// this node's node_name or datacenter. Default: none.
	ScanFrom map[string][]string `yaml:"scan_from"`
	// CredentialsFiles gives an endpoint (by its URL) the file holding its HTTP basic-auth credentials, one
	// line "user:password". Read at load time (and on SIGHUP), never printed. Default: none.
	CredentialsFiles map[string]string `yaml:"credentials_files"`

	// credentials are the basic-auth credentials per normalised endpoint, from the URLs and from
	// CredentialsFiles (set by Normalize and Load).
	credentials map[string]*url.Userinfo
}

// DefaultConfig returns the defaults documented on Config, with no repositories.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "schemasync"
	}
	return Config{
		Listen:       "127.0.0.1:8190",
		API:          DefaultAPIConfig(),
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

// Validate checks the configuration without changing it and without reading files (LoadFiles does that). It
// judges endpoints in their normalised form (see Normalize), so two spellings of one URL are duplicates. It
// reports every problem it finds, one per line.
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
			if u, err := url.Parse(c.Cluster.APIAdvertise); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				bad("cluster.api_advertise %q: want an http(s) URL without credentials", safetext.RedactURL(c.Cluster.APIAdvertise))
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
	if err := c.API.Validate(); err != nil {
		bad("%v", err)
	}
	if c.Scan.ReconfirmAfter >= c.MaxStaleness && c.MaxStaleness > 0 {
		bad("scan.reconfirm_after (%s) must be below max_staleness (%s): a confirmation older than that does not count",
			c.Scan.ReconfirmAfter, c.MaxStaleness)
	}
	if c.Scan.EndpointTimeout > c.MaxStaleness && c.MaxStaleness > 0 {
		bad("scan.endpoint_timeout (%s) must not exceed max_staleness (%s), or an endpoint's observation is stale before its scan ends",
			c.Scan.EndpointTimeout, c.MaxStaleness)
	}

	if len(c.Repositories) == 0 {
		bad("repositories: at least one repository is needed")
	}
	known, knownList := c.Cluster.knownNames()
	for n, dc := range c.Cluster.Nodes {
		if n == "" || len(n) > maxNodeNameBytes || len(dc) > maxNodeNameBytes {
			bad("cluster.nodes: node %q, datacenter %q: want a name of 1 to %d bytes and a datacenter of at most %d",
				n, dc, maxNodeNameBytes, maxNodeNameBytes)
		}
	}
	if len(c.Cluster.Nodes) > 0 {
		if dc, ok := c.Cluster.Nodes[c.Cluster.NodeName]; !ok {
			bad("cluster.nodes does not list this node (%q): list every node, this one included", c.Cluster.NodeName)
		} else if dc != c.Cluster.Datacenter {
			bad("cluster.nodes gives this node (%q) datacenter %q, but cluster.datacenter is %q", c.Cluster.NodeName, dc, c.Cluster.Datacenter)
		}
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
		mine := map[string]bool{}
		for _, e := range r.Endpoints {
			n, _, err := NormalizeEndpoint(e)
			if err != nil {
				bad("repository %q: endpoint %q: %v", r.Name, safetext.RedactURL(e), err)
				continue
			}
			if other, dup := seen[n]; dup {
				bad("repository %q: endpoint %q is already listed under %q (URLs are compared in normal form: %s)",
					r.Name, safetext.RedactURL(e), other, n)
			}
			seen[n], mine[n] = r.Name, true
		}
		for e, from := range r.ScanFrom {
			if n, _, err := NormalizeEndpoint(e); err != nil || !mine[n] {
				bad("repository %q: scan_from names %q, which is not one of its endpoints", r.Name, safetext.RedactURL(e))
			}
			if len(from) == 0 {
				bad("repository %q: scan_from for %q names no node or datacenter: nobody would scan it", r.Name, safetext.RedactURL(e))
			}
			for _, f := range from {
				switch {
				case f == "":
					bad("repository %q: scan_from for %q holds an empty name", r.Name, safetext.RedactURL(e))
				case !known[f]:
					bad("repository %q: scan_from for %q names %q, which is no node or datacenter of the cluster; the nodes (datacenter) are %s%s",
						r.Name, safetext.RedactURL(e), safetext.Bound(f, 64), knownList, nodesHint(c.Cluster.Nodes))
				}
			}
		}
		for e, f := range r.CredentialsFiles {
			if n, _, err := NormalizeEndpoint(e); err != nil || !mine[n] {
				bad("repository %q: credentials_files names %q, which is not one of its endpoints", r.Name, safetext.RedactURL(e))
			}
			if f == "" {
				bad("repository %q: credentials_files for %q: empty path", r.Name, safetext.RedactURL(e))
			}
		}
	}
	return errors.Join(errs...)
}

// NormalizeEndpoint puts an endpoint URL in its one form: http or https in lower case, the host in lower case,
// a port from 1 to 65535 written without leading zeros and dropped when it is the default, a path cleaned of
// "//", "." and ".." that ends in "/", and the credentials, if any, replaced by ***. It returns the form, the
// credentials (nil when none), or why the URL is not an endpoint.
func NormalizeEndpoint(raw string) (string, *url.Userinfo, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, errors.New("want an http(s) URL without query or fragment")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || u.Opaque != "" {
		return "", nil, errors.New("want an http(s) URL without query or fragment")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port != "" { // a number: ":080" is the default port too
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return "", nil, fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		port = strconv.FormatUint(n, 10)
	}
	if u.Scheme == "http" && port == "80" || u.Scheme == "https" && port == "443" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u.Host = host
	if port != "" {
		u.Host += ":" + port
	}
	p := urlpath.Clean("/" + u.Path)
	if p != "/" {
		p += "/"
	}
	u.Path, u.RawPath = p, ""
	cred := u.User
	u.User = nil
	out := u.String()
	if cred != nil {
		out = u.Scheme + "://" + safetext.Redacted + "@" + strings.TrimPrefix(out, u.Scheme+"://")
	}
	return out, cred, nil
}

// Normalize returns the configuration with every endpoint URL (in endpoints, scan_from and
// credentials_files) in the form NormalizeEndpoint gives, and the credentials that URLs carry set aside. It
// reads no file; an endpoint that does not parse is kept as it is, for Validate to report.
func (c Config) Normalize() Config {
	repos := make([]RepositoryConfig, len(c.Repositories))
	for i, r := range c.Repositories {
		nr := RepositoryConfig{Name: r.Name}
		for e, u := range r.credentials {
			nr.setCredential(e, u)
		}
		norm := func(e string) string {
			if n, cred, err := NormalizeEndpoint(e); err == nil {
				if cred != nil {
					nr.setCredential(n, cred)
				}
				return n
			}
			return e
		}
		for _, e := range r.Endpoints {
			nr.Endpoints = append(nr.Endpoints, norm(e))
		}
		if r.ScanFrom != nil {
			nr.ScanFrom = map[string][]string{}
			for e, from := range r.ScanFrom {
				nr.ScanFrom[norm(e)] = from
			}
		}
		if r.CredentialsFiles != nil {
			nr.CredentialsFiles = map[string]string{}
			for e, f := range r.CredentialsFiles {
				nr.CredentialsFiles[norm(e)] = f
			}
		}
		repos[i] = nr
	}
	c.Repositories = repos
	return c
}

// LoadFiles reads the files the configuration names, which Validate does not: the keyring (to check it) and
// the credentials files. It returns the configuration with the credentials set.
func (c Config) LoadFiles() (Config, error) {
	var errs []error
	if c.Cluster.Enabled() && c.Cluster.KeyringFile != "" {
		if _, err := gossip.LoadKeyring(c.Cluster.KeyringFile); err != nil {
			errs = append(errs, fmt.Errorf("cluster.keyring_file: %w", err))
		}
	}
	repos := make([]RepositoryConfig, len(c.Repositories))
	copy(repos, c.Repositories)
	for i := range repos {
		r := &repos[i]
		if len(r.CredentialsFiles) == 0 {
			continue
		}
		creds := map[string]*url.Userinfo{}
		for e, u := range r.credentials {
			creds[e] = u
		}
		for e, f := range r.CredentialsFiles {
			u, err := loadCredentials(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("repository %q: credentials_files for %s: %w", r.Name, e, err))
				continue
			}
			creds[e] = u
		}
		r.credentials = creds
	}
	c.Repositories = repos
	return c, errors.Join(errs...)
}

// loadCredentials reads "user:password" from the first line of a file.
func loadCredentials(path string) (*url.Userinfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	user, pass, ok := strings.Cut(strings.TrimSpace(line), ":")
	if !ok || user == "" {
		return nil, errors.New("want one line user:password")
	}
	return url.UserPassword(user, pass), nil
}

func (r *RepositoryConfig) setCredential(endpoint string, u *url.Userinfo) {
	if r.credentials == nil {
		r.credentials = map[string]*url.Userinfo{}
	}
	r.credentials[endpoint] = u
}

// credential returns the credentials of endpoint (nil when none).
func (c *Config) credential(endpoint string) *url.Userinfo {
	for _, r := range c.Repositories {
		if u, ok := r.credentials[endpoint]; ok {
			return u
		}
	}
	return nil
}

// endpointTimeout is the bound on one endpoint's whole scan: scan.endpoint_timeout, else the larger of
// scan_interval and max_staleness/2.
func (c *Config) endpointTimeout() time.Duration {
	if c.Scan.EndpointTimeout > 0 {
		return c.Scan.EndpointTimeout
	}
	return max(c.ScanInterval, c.MaxStaleness/2)
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

// ParseConfig decodes YAML over DefaultConfig, rejecting unknown keys, then normalises (Normalize), validates
// (Validate) and reads the files it names (LoadFiles).
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
	// The default request timeout yields to a shorter endpoint timeout; one the file sets must fit in it.
	// (A Go caller's Config keeps what it sets: the endpoint's deadline cuts each request there anyway.)
	var timeoutErr error
	if et := cfg.endpointTimeout(); et > 0 && cfg.Scan.Timeout > et {
		if setsScanTimeout(data) {
			if cfg.Scan.EndpointTimeout == 0 {
				timeoutErr = fmt.Errorf("scan.timeout (%s) must not exceed the endpoint timeout (%s: the larger of scan_interval and max_staleness/2, as scan.endpoint_timeout is not set), the bound on all of an endpoint's requests together",
					cfg.Scan.Timeout, et)
			}
		} else {
			cfg.Scan.Timeout = et
		}
	}
	cfg = cfg.Normalize()
	if err := errors.Join(timeoutErr, cfg.Validate()); err != nil {
		return cfg, err
	}
	return cfg.LoadFiles()
}

// setsScanTimeout reports whether a configuration document sets scan.timeout (data has decoded already).
func setsScanTimeout(data []byte) bool {
	var doc struct {
		Scan map[string]any `yaml:"scan"`
	}
	if yaml.Unmarshal(data, &doc) != nil {
		return false
	}
	_, ok := doc.Scan["timeout"]
	return ok
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
