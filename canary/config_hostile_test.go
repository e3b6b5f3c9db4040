package canary

import (
	"net/url"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/schemasync/observation"
)

// TestConfigURLsThatBreakURLBuilding: a schemasync node, schema base URI or Pushgateway with a query (which
// would land in the middle of every URL built on it), and any URL with a fragment (which no request carries:
// ?hasty=true would vanish into it), are config errors; a config error never shows a URL's password. On
// main all of them were accepted, and a malformed URL's password was quoted in the error.
func TestConfigURLsThatBreakURLBuilding(t *testing.T) {
	const streams = "streams:\n  - name: s\n    schema_title: a/b\n    destinations: [DEST]\n"
	const good = "http://eventgate:8192/v1/events"
	for _, tc := range []struct{ name, yaml, errHas string }{
		{"node with a query", "schemasync: [\"http://ss1:8091?x=1\"]\nschema_base_uris: [http://schema/jsonschema]\n" + streams, "schemasync: \"http://ss1:8091?x=1\" has a query"},
		{"base with a query", "schemasync: [http://ss1:8091]\nschema_base_uris: [\"http://schema/jsonschema?ref=main\"]\n" + streams, "has a query"},
		{"base with a fragment", "schemasync: [http://ss1:8091]\nschema_base_uris: [\"http://schema/jsonschema#x\"]\n" + streams, "has a fragment"},
		{"destination with a fragment", "schemasync: [http://ss1:8091]\nschema_base_uris: [http://schema/jsonschema]\n" + strings.Replace(streams, "DEST", "\"http://eg/v1/events#frag\"", 1), "has a fragment"},
		{"pushgateway with a query", "schemasync: [http://ss1:8091]\nschema_base_uris: [http://schema/jsonschema]\npushgateway: \"http://pg:9091?x\"\npush_job: canary\n" + streams, "has a query"},
		{"password in a malformed URL", "schemasync: [\"http://u:hunter2@[::1\"]\nschema_base_uris: [http://schema/jsonschema]\n" + streams, "***@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(strings.ReplaceAll(tc.yaml, "DEST", good)))
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("err = %v, want %q", err, tc.errHas)
			}
		})
	}
	// A destination may carry a query: hasty=true is added to it.
	if _, err := ParseConfig([]byte("schemasync: [http://ss1:8091]\nschema_base_uris: [http://schema/jsonschema]\n" +
		strings.Replace(streams, "DEST", "\"http://eg/v1/events?x=1\"", 1))); err != nil {
		t.Fatal(err)
	}
}

// FuzzCheckTitle: a title checkTitle accepts is printable and makes a URL, under any base URI, whose path is
// the base's followed by exactly the title's segments and the version: it neither leaves the base directory
// nor adds a query or fragment.
func FuzzCheckTitle(f *testing.F) {
	for _, s := range []string{"mediawiki/page/change", "a/../b", "/a/b/", "a?b#c%2F", "a//b", ".", "a/\u202eb", "a b/c"} {
		f.Add(s)
	}
	const base = "http://schema.example/repositories/primary/jsonschema"
	f.Fuzz(func(t *testing.T, title string) {
		if checkTitle(title) != nil {
			return
		}
		u, err := url.Parse(schemaURL(base, title, "1.0.0"))
		if err != nil {
			t.Fatalf("title %q: URL does not parse: %v", title, err)
		}
		want := "/repositories/primary/jsonschema/" + strings.Trim(title, "/") + "/1.0.0"
		if u.Path != want || u.RawQuery != "" || u.Fragment != "" || u.Host != "schema.example" {
			t.Fatalf("title %q: URL %s (path %q), want path %q", title, u, u.Path, want)
		}
	})
}

func TestCheckTitle(t *testing.T) {
	for _, tc := range []struct {
		title string
		ok    bool
	}{
		{"mediawiki/page/change", true}, {"/analytics/legacy/x/", true}, {"a?b#c%", true}, {"a b", true},
		{"", false}, {"/", false}, {"a//b", false}, {"a/./b", false}, {"a/..", false}, {"../a", false},
		{"a/\x1b[2J", false}, {"a/\u202eb", false}, {"a\x00", false}, {"a/\xff", false}, {strings.Repeat("a", MaxNameBytes+1), false},
	} {
		if err := checkTitle(tc.title); (err == nil) != tc.ok {
			t.Errorf("checkTitle(%.40q) = %v, want ok %v", tc.title, err, tc.ok)
		}
	}
}

// TestTitleRuleIsSchemasyncs: a title the canary accepts is one a schemasync scan can produce, and the other
// way round within MaxNameBytes: the canary never asks for a title no node could know, nor refuses one a node
// serves. Both go through observation.ValidTitle; this keeps MaxNameBytes within its bound.
func TestTitleRuleIsSchemasyncs(t *testing.T) {
	if MaxNameBytes > observation.MaxTitleBytes {
		t.Fatalf("MaxNameBytes %d exceeds observation.MaxTitleBytes %d", MaxNameBytes, observation.MaxTitleBytes)
	}
	for _, title := range []string{"a/b", "/a/b/", "a", "a//b", "a/./b", "a/../b", "..", "a/b\x00c", "a/\u202eb", "a/b c?#%", "é/ü", "a/\xff"} {
		t.Run(title, func(t *testing.T) {
			got := checkTitle(title) == nil
			if want := observation.ValidTitle(strings.Trim(title, "/")); got != want {
				t.Fatalf("checkTitle(%q) accepts: %v; observation.ValidTitle: %v", title, got, want)
			}
		})
	}
}
