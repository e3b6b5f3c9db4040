package canary

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/eventgate"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

func TestParseConfig(t *testing.T) {
	const streams = "streams:\n  - name: s\n    schema_title: a/b\n    destinations: [http://eventgate:8192/v1/events]\n"
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, c Config)
		wantErr []string
	}{
		{
			name: "minimal safe",
			yaml: "schemasync: [http://ss1:8091, http://ss2:8091]\nschema_base_uris: [http://schema/repositories/primary/jsonschema]\n" + streams,
			check: func(t *testing.T, c Config) {
				if c.VersionSource != VersionSafe || c.Concurrency != 8 || c.Retries != 2 || c.Timeout != 5*time.Second || len(c.Schemasync) != 2 {
					t.Fatalf("defaults not applied: %+v", c)
				}
			},
		},
		{
			name: "durations and latest",
			yaml: "version_source: latest\ntimeout: 1500ms\nretry_backoff: 1s\nschema_base_uris: [http://schema/]\n" + streams,
			check: func(t *testing.T, c Config) {
				if c.Timeout != 1500*time.Millisecond || c.RetryBackoff != time.Second || c.VersionSource != VersionLatest {
					t.Fatalf("got %+v", c)
				}
			},
		},
		{
			name: "stream config",
			yaml: "schemasync: [http://ss1:8091]\nschema_base_uris: [http://schema/]\nstream_config: https://meta.example.org/w/api.php?action=streamconfigs\ndestinations:\n  eventgate-main: [http://eg1/v1/events, http://eg2/v1/events]\n",
			check: func(t *testing.T, c Config) {
				if len(c.Destinations["eventgate-main"]) != 2 {
					t.Fatalf("got %+v", c)
				}
			},
		},
		{name: "unknown key", yaml: "schemasync: [http://a]\nschema_base_uri: [http://x]\n" + streams, wantErr: []string{"field schema_base_uri not found"}},
		{name: "empty", yaml: "", wantErr: []string{"config is empty"}},
		{name: "not yaml", yaml: "{{", wantErr: []string{"config:"}},
		{name: "safe needs schemasync", yaml: "schema_base_uris: [http://x]\n" + streams, wantErr: []string{"schemasync: at least one node URL is required"}},
		{name: "bad source", yaml: "version_source: newest\nschema_base_uris: [http://x]\n" + streams, wantErr: []string{`version_source: "newest"`}},
		{name: "no streams", yaml: "schemasync: [http://a]\nschema_base_uris: [http://x]\n", wantErr: []string{"no streams"}},
		{name: "both stream sources", yaml: "schemasync: [http://a]\nschema_base_uris: [http://x]\nstream_config: f.json\n" + streams, wantErr: []string{"exclusive"}},
		{name: "bad urls", yaml: "schemasync: [ss1:8091]\nschema_base_uris: [/relative]\n" + streams, wantErr: []string{`schemasync: "ss1:8091" is not an http(s) URL`, `schema_base_uris: "/relative"`}},
		{name: "stream without destinations", yaml: "schemasync: [http://a]\nschema_base_uris: [http://x]\nstreams: [{name: s, schema_title: a}]\n", wantErr: []string{`streams[0]: stream "s": at least one destination`}},
		{name: "duplicate stream", yaml: "schemasync: [http://a]\nschema_base_uris: [http://x]\nstreams: [{name: s, schema_title: a, destinations: [http://e]}, {name: s, schema_title: a, destinations: [http://e]}]\n", wantErr: []string{`stream "s" listed twice`}},
		{name: "textfile must be .prom", yaml: "schemasync: [http://a]\nschema_base_uris: [http://x]\ntextfile: /tmp/canary.txt\n" + streams, wantErr: []string{"must end in .prom"}},
		{name: "bad numbers", yaml: "schemasync: [http://a]\nschema_base_uris: [http://x]\nconcurrency: 0\nretries: 11\n" + streams, wantErr: []string{"concurrency: 0", "retries: 11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("accepted")
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestDecodeConfigDoesNotValidate: DecodeConfig leaves validation to the caller, who may first apply
// overrides that make an incomplete file valid (latest mode needs no schemasync nodes).
func TestDecodeConfigDoesNotValidate(t *testing.T) {
	data := []byte("schema_base_uris: [http://h/repositories/primary/jsonschema]\nstreams: [{name: s, schema_title: t, destinations: [http://i/v1/events]}]\n")
	if _, err := ParseConfig(data); err == nil || !strings.Contains(err.Error(), "schemasync: at least one node URL is required") {
		t.Fatalf("ParseConfig: %v", err)
	}
	cfg, err := DecodeConfig(data)
	if err != nil || cfg.Concurrency != DefaultConfig().Concurrency {
		t.Fatalf("DecodeConfig: %+v, %v", cfg, err)
	}
	cfg.VersionSource = VersionLatest
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate after the override: %v", err)
	}
	if _, err := DecodeConfig([]byte("colour: blue\n")); err == nil || !strings.Contains(err.Error(), "field colour not found") {
		t.Fatalf("unknown key: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("schemasync: [http://ss1:8091]\nschema_base_uris: [http://schema/]\nstreams: [{name: s, schema_title: a, destinations: [http://e]}]\n"))
	f.Add([]byte("version_source: latest\ntimeout: 1s\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if c.Validate() != nil {
			t.Fatal("ParseConfig returned a config that does not validate")
		}
	})
}

func TestParseStreamConfig(t *testing.T) {
	dest := map[string][]string{"eventgate-main": {"http://eg1/v1/events"}, "eventgate-analytics": {"http://eg2/v1/events"}}
	tests := []struct {
		name    string
		doc     string
		want    string // name=title=destination|problem, ...
		wantErr string
	}{
		{
			name: "eventstreamconfig json",
			doc: `{"streams":{
				"mediawiki.page_change.v1":{"stream":"mediawiki.page_change.v1","schema_title":"mediawiki/page/change","destination_event_service":"eventgate-main","canary_events_enabled":true,"topic_prefixes":["eqiad.","codfw."]},
				"eventlogging_Test":{"schema_title":"/analytics/legacy/test/","destination_event_service":"eventgate-analytics","canary_events_enabled":true},
				"no.canary":{"schema_title":"x","destination_event_service":"eventgate-main"},
				"/^mediawiki\\.job\\..+/":{"schema_title":"mediawiki/job","destination_event_service":"eventgate-main","canary_events_enabled":true}}}`,
			want: "eventlogging_Test=analytics/legacy/test=http://eg2/v1/events|, mediawiki.page_change.v1=mediawiki/page/change=http://eg1/v1/events|",
		},
		{
			name: "yaml",
			doc:  "streams:\n  test.event:\n    schema_title: test/event\n    destination_event_service: eventgate-main\n    canary_events_enabled: true\n",
			want: "test.event=test/event=http://eg1/v1/events|",
		},
		{
			name: "problems stay with their stream",
			doc:  `{"streams":{"a":{"destination_event_service":"eventgate-main","canary_events_enabled":true},"b":{"schema_title":"b","canary_events_enabled":true},"c":{"schema_title":"c","destination_event_service":"nope","canary_events_enabled":true}}}`,
			want: `a==http://eg1/v1/events|the stream config gives no schema_title, b=b=|the stream config gives no destination_event_service, c=c=|destination_event_service "nope" has no URLs in the canary's destinations map`,
		},
		{name: "no streams key", doc: `{"stream":{}}`, wantErr: `no "streams" object`},
		{name: "streams is a list", doc: `{"streams":[]}`, wantErr: "not EventStreamConfig JSON"},
		{name: "canary flag not a bool", doc: `{"streams":{"a":{"canary_events_enabled":"yes"}}}`, wantErr: "not EventStreamConfig JSON"},
		{name: "garbage", doc: "::\n- [", wantErr: "neither EventStreamConfig JSON nor YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStreamConfig([]byte(tt.doc), dest)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, s := range got {
				parts = append(parts, s.Name+"="+s.SchemaTitle+"="+strings.Join(s.Destinations, ",")+"|"+s.Problem)
			}
			if g := strings.Join(parts, ", "); g != tt.want {
				t.Fatalf("got  %s\nwant %s", g, tt.want)
			}
		})
	}
}

func FuzzParseStreamConfig(f *testing.F) {
	f.Add([]byte(`{"streams":{"a":{"schema_title":"t","destination_event_service":"eventgate-main","canary_events_enabled":true}}}`))
	f.Add([]byte("streams:\n  a:\n    canary_events_enabled: true\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		streams, err := ParseStreamConfig(data, map[string][]string{"eventgate-main": {"http://eg/v1/events"}})
		if err != nil {
			return
		}
		for _, s := range streams {
			if s.Problem == "" && s.validate() != nil {
				t.Fatalf("stream %+v has no problem but does not validate: %v", s, s.validate())
			}
		}
	})
}

func TestBuildEvent(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 30, 0, 999, time.UTC)
	tests := []struct {
		name     string
		doc      string
		sentinel error
		has      string
	}{
		{name: "schemarepo doc", doc: string(schemarepo.Doc("a/b", "1.2.0", "f"))},
		{name: "json doc", doc: `{"type":"object","properties":{"meta":{"type":"object"}},"examples":[{"meta":{"id":"x"},"n":1}]}`},
		{name: "not an object", doc: `[1]`, sentinel: ErrFragmentSchema, has: "not an object"},
		{name: "no type", doc: `{"properties":{"meta":{}},"examples":[{"meta":{}}]}`, sentinel: ErrFragmentSchema},
		{name: "no properties", doc: `{"type":"object","examples":[{"meta":{}}]}`, sentinel: ErrFragmentSchema},
		{name: "no meta property", doc: `{"type":"object","properties":{"x":{}},"examples":[{"meta":{}}]}`, sentinel: ErrFragmentSchema, has: "properties has no meta"},
		{name: "no examples", doc: `{"type":"object","properties":{"meta":{}}}`, sentinel: ErrNoExample, has: "no examples"},
		{name: "empty examples", doc: `{"type":"object","properties":{"meta":{}},"examples":[]}`, sentinel: ErrNoExample, has: "examples is empty"},
		{name: "examples not a list", doc: `{"type":"object","properties":{"meta":{}},"examples":{"meta":{}}}`, sentinel: ErrNoExample, has: "not a list"},
		{name: "example not an object", doc: `{"type":"object","properties":{"meta":{}},"examples":["x"]}`, sentinel: ErrNoExample, has: "examples[0] is not an object"},
		{name: "example without meta", doc: `{"type":"object","properties":{"meta":{}},"examples":[{"x":1}]}`, sentinel: ErrNoMeta},
		{name: "meta is a string", doc: `{"type":"object","properties":{"meta":{}},"examples":[{"meta":"m"}]}`, sentinel: ErrNoMeta, has: "meta is a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := eventgate.DecodeDocument([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := BuildEvent(doc, "/a/b/", "1.2.0", "my.stream", now)
			if tt.sentinel != nil {
				if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.has) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.sentinel, tt.has)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			meta := ev["meta"].(map[string]any)
			if ev["$schema"] != "/a/b/1.2.0" || meta["stream"] != "my.stream" || meta["domain"] != "canary" || meta["dt"] != "2026-11-22T08:30:00Z" {
				t.Fatalf("event %v", ev)
			}
			// The schema's example is untouched: events are copies.
			ex := doc.(map[string]any)["examples"].([]any)[0].(map[string]any)
			if ex["meta"].(map[string]any)["domain"] == "canary" {
				t.Fatal("BuildEvent modified the schema's example")
			}
		})
	}
}

func FuzzBuildEvent(f *testing.F) {
	f.Add(schemarepo.Doc("a/b", "1.0.0", "f"))
	f.Add([]byte(`{"type":"object","properties":{"meta":{}},"examples":[{"meta":{"a":[{"b":1}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := eventgate.DecodeDocument(data)
		if err != nil {
			return
		}
		ev, err := BuildEvent(doc, "a/b", "1.0.0", "s", time.Unix(0, 0))
		if err != nil {
			if !errors.Is(err, ErrFragmentSchema) && !errors.Is(err, ErrNoExample) && !errors.Is(err, ErrNoMeta) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if ev["$schema"] != "/a/b/1.0.0" || ev["meta"].(map[string]any)["domain"] != "canary" {
			t.Fatalf("event %v", ev)
		}
	})
}

func TestVersionFromID(t *testing.T) {
	for _, tc := range []struct {
		name, id, want, err string
	}{
		{"ok", "/a/b/1.10.0", "1.10.0", ""},
		{"no id", "", "", "no $id"},
		{"other title", "/c/1.0.0", "", "does not match"},
		{"no version", "/a/b/latest", "", "no X.Y.Z"},
		{"no slash", "1.0.0", "", "not /<title>/X.Y.Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := map[string]any{}
			if tc.id != "" {
				doc["$id"] = tc.id
			}
			got, err := versionFromID(doc, "a/b")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

// TestVersionFromIDStrict: latest mode applies schemasync's one X.Y.Z rule to the $id: 01.2.3 is no version.
func TestVersionFromIDStrict(t *testing.T) {
	for _, v := range []string{"01.2.3", "1.2.03", "1.2.3.4"} {
		if _, err := versionFromID(map[string]any{"$id": "/a/b/" + v}, "a/b"); err == nil {
			t.Errorf("$id version %q accepted", v)
		}
	}
}
