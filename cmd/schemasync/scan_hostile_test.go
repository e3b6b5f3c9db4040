package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// TestScanHostileHostOutput: whatever a schema host sends (names with escape sequences and bidirectional
// overrides, an error page full of them, a name of 100 kB), `schemasync scan` prints it escaped and bounded,
// in the table and in --json, and never shows an endpoint's credentials.
func TestScanHostileHostOutput(t *testing.T) {
	evil := "\x1b]0;owned\x07\u202e"
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/repositories/primary/jsonschema/":
			// The unprintable name is skipped (with a warning); the printable one's version file answers 500.
			_, _ = w.Write([]byte(`[{"name":"t\u001b[2J\u202e","type":"directory","mtime":"Mon, 01 Jan 2024 00:00:00 GMT"},` +
				`{"name":"ok","type":"directory","mtime":"Mon, 01 Jan 2024 00:00:00 GMT"}]`))
		case strings.HasSuffix(r.URL.Path, "/"):
			_, _ = w.Write([]byte(`[{"name":"1.0.0","type":"file","mtime":"Mon, 01 Jan 2024 00:00:00 GMT","size":3},` +
				`{"name":"1.0.0.yaml","type":"file","mtime":"Mon, 01 Jan 2024 00:00:00 GMT","size":3}]`))
		default:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("<html>" + evil + strings.Repeat("x", 100000) + "</html>"))
		}
	}))
	t.Cleanup(host.Close)
	ep := strings.Replace(host.URL, "http://", "http://u:hunter2@", 1) + "/repositories/primary/jsonschema/"
	path := writeConfig(t, "127.0.0.1:0", []string{ep})
	for _, args := range [][]string{{"scan", "--config", path}, {"scan", "--config", path, "--json"}} {
		code, out, errs := runCmd(args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1 (an endpoint is unknown)\n%.1000s\n%.1000s", args, code, out, errs)
		}
		all := out + errs
		if strings.ContainsAny(all, "\x1b\x07\u202e") || strings.Contains(all, "hunter2") || len(all) > 20000 {
			t.Errorf("%v: raw escapes, credentials or unbounded output (%d bytes):\n%.3000q", args, len(all), all)
		}
	}
}

// TestScanJSONEscapesTitles: a directory named with a bidirectional override or C1 control (which JSON does
// not escape) is skipped, and scan --json quotes its name in the endpoint's warning escaped, as the table
// does. Before, the JSON held such a title raw.
func TestScanJSONEscapesTitles(t *testing.T) {
	const evil = "evil\u202eesrever\u009b2J"
	repos, eps := hosts(t, 2)
	repos[0].Put(evil, "1.0.0", schemarepo.Doc("evil", "1.0.0"))
	code, out, errs := runCmd("scan", "--config", writeConfig(t, "127.0.0.1:0", eps), "--json")
	if code != 0 {
		t.Fatalf("exit %d, want 0 (the unprintable title is skipped, so the endpoints agree)\n%s%s", code, out, errs)
	}
	if strings.Contains(out, "\u202e") || strings.Contains(out, "\u009b") || !strings.Contains(out, `evil\\u202eesrever`) {
		t.Fatalf("the title is not escaped in --json:\n%.2000q", out)
	}
}
