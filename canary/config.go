package canary

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/evenkeel/evenkeel/internal/eventgate"
	"github.com/evenkeel/evenkeel/internal/origin"
	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync/observation"
	"go.yaml.in/yaml/v3"
)

// VersionSource says where a run takes each stream's schema version from.
type VersionSource string

const (
	// VersionSafe asks schemasync for the highest version present on every schema endpoint. The default.
	VersionSafe VersionSource = "safe"
	// VersionLatest reads <first schema base URI>/<title>/latest, as the old job did. It exists to show the
	// incident: a host that is ahead hands out a version that other hosts behind the same load balancer lack.
	VersionLatest VersionSource = "latest"
)

// Stream is one stream to send a canary event to.
type Stream struct {
	Name         string   `yaml:"name" json:"name"`
	SchemaTitle  string   `yaml:"schema_title" json:"schema_title"`
	Destinations []string `yaml:"destinations" json:"destinations"` // intake URLs, e.g. http://eventgate:8192/v1/events

	// Problem is set by ParseStreamConfig for a canary-enabled stream it cannot run (no schema title, no
	// destinations). The run reports it as that stream's failure at StepConfig; other streams still run.
	Problem string `yaml:"-" json:"-"`
}

// Config is the job's configuration. The YAML form uses the yaml tags; unknown keys are rejected.
type Config struct {
	// Schemasync lists schemasync node base URLs, tried in turn. Required in safe mode.
	Schemasync []string `yaml:"schemasync"`
	// SchemasyncRepositories is the order in which schemasync's repositories are asked about a title.
	SchemasyncRepositories []string `yaml:"schemasync_repositories"`
	// SchemaBaseURIs are where schemas are fetched from, in order (EventGate's schema_base_uris).
	SchemaBaseURIs []string `yaml:"schema_base_uris"`
	// Streams lists the streams inline. Either Streams or StreamConfig, not both.
	Streams []Stream `yaml:"streams"`
	// StreamConfig is a file path or http(s) URL of an EventStreamConfig document:
	// {"streams": {"<name>": {"schema_title": ..., "destination_event_service": ..., "canary_events_enabled": true}}}.
	StreamConfig string `yaml:"stream_config"`
	// Destinations maps a destination_event_service to its intake URLs (one per datacenter).
	Destinations map[string][]string `yaml:"destinations"`
	// VersionSource is "safe" or "latest".
	VersionSource VersionSource `yaml:"version_source"`
	// Concurrency bounds how many streams run at once.
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds each HTTP request.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a transient failure of a produce or of a stream config URL is retried.
	Retries int `yaml:"retries"`
	// RetryBackoff is the first retry's delay; each further retry doubles it, up to 10 s.
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	// Hasty adds ?hasty=true to intake URLs (EventGate then answers 202 before validating).
	Hasty bool `yaml:"hasty"`
	// DryRun builds and validates events without posting them.
	DryRun bool `yaml:"dry_run"`
	// Textfile is a node_exporter textfile collector path (*.prom) to write metrics to; empty: none.
	Textfile string `yaml:"textfile"`
	// Pushgateway is a Pushgateway base URL to push metrics to; empty: none.
	Pushgateway string `yaml:"pushgateway"`
	// PushJob is the Pushgateway job name.
	PushJob string `yaml:"push_job"`
}

// DefaultConfig returns a Config with every default set. Streams, URLs and metric outputs have none.
func DefaultConfig() Config {
	return Config{
		// EventGate's base URI order: the primary repository first.
		SchemasyncRepositories: []string{"primary", "secondary"},
		// The cure, not the incident.
		VersionSource: VersionSafe,
		// Enough to overlap I/O on a few hundred streams without flooding an intake.
		Concurrency: 8,
		// A schema host or intake that takes longer is down for our purposes.
		Timeout: 5 * time.Second,
		// Two retries ride out a restart of one intake pod without making a broken one look slow.
		Retries: 2,
		// 200ms, 400ms: the whole retry budget stays under a second.
		RetryBackoff: 200 * time.Millisecond,
		// The name the Pushgateway groups our metrics under.
		PushJob: "canary",
	}
}

// Validate checks the configuration and says what is wrong with it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.VersionSource {
	case VersionSafe:
		if len(c.Schemasync) == 0 {
			bad("schemasync: at least one node URL is required with version_source safe")
		}
	case VersionLatest:
	default:
		bad("version_source: %q is neither safe nor latest", c.VersionSource)
	}
	for _, u := range c.Schemasync {
		if err := checkBaseURL(u); err != nil {
			bad("schemasync: %v", err)
		}
	}
	if len(c.SchemaBaseURIs) == 0 {
		bad("schema_base_uris: at least one URL is required")
	}
	for _, u := range c.SchemaBaseURIs {
		if err := checkBaseURL(u); err != nil {
			bad("schema_base_uris: %v", err)
		}
	}
	switch {
	case len(c.Streams) > 0 && c.StreamConfig != "":
		bad("streams and stream_config are exclusive: use one")
	case len(c.Streams) == 0 && c.StreamConfig == "":
		bad("no streams: give streams or stream_config")
	}
	seen := map[string]bool{}
	for i, s := range c.Streams {
		if err := s.validate(); err != nil {
			bad("streams[%d]: %v", i, err)
		}
		if seen[s.Name] {
			bad("streams[%d]: stream %q listed twice", i, s.Name)
		}
		seen[s.Name] = true
	}
	for svc, urls := range c.Destinations {
		if len(urls) == 0 {
			bad("destinations.%s: no URLs", svc)
		}
		for _, u := range urls {
			if err := checkURL(u); err != nil {
				bad("destinations.%s: %v", svc, err)
			}
		}
	}
	if c.Concurrency < 1 {
		bad("concurrency: %d, want at least 1", c.Concurrency)
	}
	if c.Timeout <= 0 {
		bad("timeout: %s, want more than 0", c.Timeout)
	}
	if c.Retries < 0 || c.Retries > 10 {
		bad("retries: %d, want 0 to 10", c.Retries)
	}
	if c.RetryBackoff < 0 {
		bad("retry_backoff: %s, want 0 or more", c.RetryBackoff)
	}
	if c.Pushgateway != "" {
		if err := checkBaseURL(c.Pushgateway); err != nil {
			bad("pushgateway: %v", err)
		}
		if c.PushJob == "" {
			bad("push_job: required with pushgateway")
		}
	}
	if c.Textfile != "" && !strings.HasSuffix(c.Textfile, ".prom") {
		bad("textfile: %q must end in .prom for node_exporter's textfile collector", c.Textfile)
	}
	return errors.Join(errs...)
}

func (s Stream) validate() error {
	if s.Name == "" {
		return errors.New("name is required")
	}
	if err := checkName(s.Name); err != nil {
		return err
	}
	if strings.Trim(s.SchemaTitle, "/") == "" {
		return fmt.Errorf("stream %q: schema_title is required", s.Name)
	}
	if err := checkTitle(s.SchemaTitle); err != nil {
		return fmt.Errorf("stream %q: %w", s.Name, err)
	}
	if len(s.Destinations) == 0 {
		return fmt.Errorf("stream %q: at least one destination is required", s.Name)
	}
	for _, u := range s.Destinations {
		if err := checkURL(u); err != nil {
			return fmt.Errorf("stream %q: destination: %v", s.Name, err)
		}
	}
	return nil
}

// MaxNameBytes bounds a stream name and a schema title.
const MaxNameBytes = 1024

// checkTitle accepts a schema title that stays one path below every schema base URI: segments separated by
// "/" (leading and trailing ones are ignored), none of them empty, "." or "..", with nothing a terminal acts
// on, at most MaxNameBytes long; so a title a schemasync scan can produce (observation.ValidTitle, the one
// rule for both). Characters that mean something in a URL ("?", "#", "%") are escaped when the URL is built
// (see schemaURL).
func checkTitle(title string) error {
	t := strings.Trim(title, "/")
	if err := checkName(t); err != nil {
		return fmt.Errorf("schema_title: %w", err)
	}
	// checkName has held it to printable text within MaxNameBytes (below observation.MaxTitleBytes): what
	// ValidTitle refuses now is its segments.
	if !observation.ValidTitle(t) {
		return fmt.Errorf("schema_title %s has an empty, \".\" or \"..\" segment", safetext.Quote(t))
	}
	return nil
}

// checkName accepts a non-empty name (of a stream, or a title) with only printable characters, at most
// MaxNameBytes long.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("name is required")
	case len(name) > MaxNameBytes:
		return fmt.Errorf("%s is longer than %d bytes", safetext.Quote(safetext.Bound(name, 100)), MaxNameBytes)
	case !safetext.Printable(name):
		return fmt.Errorf("%s has characters a terminal would act on", safetext.Quote(safetext.Bound(name, 100)))
	}
	return nil
}

// schemaURL is base/<title>/<last>, with each segment of the title escaped.
func schemaURL(base, title, last string) string {
	return strings.TrimRight(base, "/") + "/" + safetext.EscapePath(strings.Trim(title, "/")) + "/" + url.PathEscape(last)
}

// checkURL and checkBaseURL are the one rule for URLs every evenkeel client takes (see internal/origin).
var (
	checkURL     = origin.CheckURL
	checkBaseURL = origin.CheckBaseURL
)

// DecodeConfig decodes a YAML configuration over DefaultConfig without validating it, so that a caller can
// apply overrides (command-line flags) first and then call Validate once. Unknown keys are errors.
func DecodeConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return cfg, errors.New("config is empty")
		}
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// ParseConfig decodes a YAML configuration over DefaultConfig and validates it. Unknown keys are errors.
func ParseConfig(data []byte) (Config, error) {
	cfg, err := DecodeConfig(data)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// ReadConfig reads and decodes a YAML configuration file without validating it (see DecodeConfig).
func ReadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	cfg, err := DecodeConfig(data)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// LoadConfig reads, parses and validates a YAML configuration file.
func LoadConfig(path string) (Config, error) {
	cfg, err := ReadConfig(path)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: config: %w", path, err)
	}
	return cfg, nil
}

// StreamConfigEntry is the part of one EventStreamConfig entry the canary uses; other fields are ignored.
type StreamConfigEntry struct {
	SchemaTitle             string `json:"schema_title"`
	DestinationEventService string `json:"destination_event_service"`
	CanaryEventsEnabled     *bool  `json:"canary_events_enabled"`
}

// ParseStreamConfig reads an EventStreamConfig document (JSON, or YAML) and returns the streams whose
// canary_events_enabled is true, sorted by name, with destinations looked up in the destinations map.
// Streams named by a regex (/.../) are skipped: there is no single stream to send to. A canary-enabled stream
// without a schema title, or whose service has no destinations, is returned with Problem set, so that the run
// reports it as that stream's failure and still runs the others. Only a document that is not EventStreamConfig
// is an error.
func ParseStreamConfig(data []byte, destinations map[string][]string) ([]Stream, error) {
	var doc struct {
		Streams map[string]StreamConfigEntry `json:"streams" yaml:"streams"`
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return nil, fmt.Errorf("stream config is not EventStreamConfig JSON: %w", err)
		}
	} else {
		// YAML builds a node for every value, read or not: bound them before decoding. (JSON skips what it
		// does not read, and a stream config from a URL is JSON.)
		if err := eventgate.CheckNodes(data, MaxStreamConfigNodes); err != nil {
			return nil, fmt.Errorf("stream config: %w", err)
		}
		var y struct {
			Streams map[string]struct {
				SchemaTitle             string `yaml:"schema_title"`
				DestinationEventService string `yaml:"destination_event_service"`
				CanaryEventsEnabled     *bool  `yaml:"canary_events_enabled"`
			} `yaml:"streams"`
		}
		if err := yaml.Unmarshal(data, &y); err != nil {
			return nil, fmt.Errorf("stream config is neither EventStreamConfig JSON nor YAML: %w", err)
		}
		doc.Streams = map[string]StreamConfigEntry{}
		for k, v := range y.Streams {
			doc.Streams[k] = StreamConfigEntry(v)
		}
	}
	if doc.Streams == nil {
		return nil, errors.New(`stream config has no "streams" object`)
	}
	var out []Stream
	for name, e := range doc.Streams {
		if e.CanaryEventsEnabled == nil || !*e.CanaryEventsEnabled {
			continue
		}
		if strings.HasPrefix(name, "/") || name == "" {
			continue
		}
		s := Stream{Name: name, SchemaTitle: strings.Trim(e.SchemaTitle, "/")}
		s.Destinations = destinations[e.DestinationEventService]
		var badName, badTitle error
		if badName = checkName(name); badName != nil {
			s.Name = safetext.Escape(safetext.Bound(name, MaxNameBytes)) // still names the entry, safely
		}
		if s.SchemaTitle != "" {
			badTitle = checkTitle(s.SchemaTitle)
		}
		switch {
		case badName != nil:
			s.Problem = "the stream config's stream name " + badName.Error()
		case s.SchemaTitle == "":
			s.Problem = "the stream config gives no schema_title"
		case badTitle != nil:
			s.SchemaTitle = safetext.Escape(safetext.Bound(s.SchemaTitle, MaxNameBytes))
			s.Problem = "the stream config's " + badTitle.Error()
		case e.DestinationEventService == "":
			s.Problem = "the stream config gives no destination_event_service"
		case len(s.Destinations) == 0:
			s.Problem = fmt.Sprintf("destination_event_service %q has no URLs in the canary's destinations map", e.DestinationEventService)
		}
		out = append(out, s)
	}
	if len(out) > MaxStreams {
		return nil, fmt.Errorf("stream config enables canary events for %d streams, more than %d", len(out), MaxStreams)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// MaxStreamConfigNodes bounds the nodes of a YAML stream config (counted by its separators before decoding).
const MaxStreamConfigNodes = 1 << 18

// MaxStreams bounds the canary-enabled streams a stream config may give (one run makes requests for each).
const MaxStreams = 10000
