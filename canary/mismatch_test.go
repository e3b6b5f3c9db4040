package canary

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// TestSchemaThatNamesAnotherPath: a schema whose $id or title disagrees with the path it was served at is
// used as the path says (that is what EventGate resolves: $schema stays /<title>/<version>), and the
// disagreement is reported as a warning in the result, escaped. On main it passed silently.
func TestSchemaThatNamesAnotherPath(t *testing.T) {
	repo := schemarepo.Demo()
	good := repo.Versions("test/event")
	v := good[len(good)-1]
	doc, _ := repo.Doc("test/event", v)
	lied := strings.Replace(string(doc), "$id: /test/event/"+v, "$id: /other/9.9.9", 1)
	lied = strings.Replace(lied, "title: test/event", `title: "other\e[2J"`, 1)
	repo.Put("test/event", v, []byte(lied))
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	_, intakeURL := intake(t, []string{base}, map[string]string{"s": "test/event"})
	cfg := testConfig(node.URL, []string{base}, []Stream{{Name: "s", SchemaTitle: "test/event", Destinations: []string{intakeURL}}})
	cfg.DryRun = true
	res, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	js, _ := json.Marshal(r)
	if !r.OK || r.Event.(map[string]any)["$schema"] != "/test/event/"+v {
		t.Fatalf("ok %v (%s), event %v", r.OK, r.Error, r.Event)
	}
	w := strings.Join(r.Warnings, "\n")
	if len(r.Warnings) != 2 || !strings.Contains(w, `$id "/other/9.9.9"`) || !strings.Contains(w, `title "other\x1b[2J"`) || strings.Contains(string(js), "\x1b") {
		t.Fatalf("warnings %q", r.Warnings)
	}
	// A schema that agrees with its path gives no warning.
	repo.Put("test/event", v, doc)
	cfg.Streams[0].Name = "s2"
	r2 := mustRunner(t, cfg).RunStream(context.Background(), cfg.Streams[0])
	if !r2.OK || len(r2.Warnings) != 0 {
		t.Fatalf("ok %v, warnings %q", r2.OK, r2.Warnings)
	}
}
