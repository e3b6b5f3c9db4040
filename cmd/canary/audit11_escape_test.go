package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAudit11TableEscapesStreamNames: stream names come from outside when the canary reads them from a
// stream configuration (a file or URL another team edits). The run table prints such a name escaped, so that
// it cannot write terminal escape sequences (clear the screen, set the window title) to the operator's
// screen; so does check-config.
func TestAudit11TableEscapesStreamNames(t *testing.T) {
	configFor, _ := world(t)
	streams := filepath.Join(t.TempDir(), "streams.json")
	evil := `{"streams": {"evil\u001b[2J\u001b]0;owned\u0007": {"schema_title": "test/event", ` +
		`"destination_event_service": "svc", "canary_events_enabled": true}}}`
	if err := os.WriteFile(streams, []byte(evil), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, configFor("stream_config: "+streams+"\ndestinations:\n  svc: [INTAKE]\n"))
	for _, args := range [][]string{{"run", "--config", cfg}, {"check-config", "--config", cfg}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		if !strings.Contains(out, "evil") {
			t.Fatalf("%s: exit %d, the stream is not listed:\n%s", args[0], code, out)
		}
		if strings.ContainsAny(stdout.String(), "\x1b\x07") {
			t.Fatalf("%s printed a raw escape sequence:\n%q", args[0], stdout.String())
		}
	}
}
