package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

// TestStateOfARunningNode: `state` prints a real node's view as `scan` does, and exits 0 while it is
// consistent and 1 once an endpoint serves a version the other lacks (dirty).
func TestStateOfARunningNode(t *testing.T) {
	repos, eps := hosts(t, 2)
	cfg, err := schemasync.LoadConfig(writeConfig(t, "127.0.0.1:0", eps))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.ScanOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	node := httptest.NewServer(svc.Handler())
	t.Cleanup(node.Close)
	code, out, errs := runCmd("state", "--node", node.URL)
	if code != 0 || !strings.Contains(out, "0 dirty, 0 stale") {
		t.Fatalf("consistent: exit %d\n%s%s", code, out, errs)
	}
	repos[0].Put("test/event", "9.0.0", schemarepo.Doc("test/event", "9.0.0"))
	if err := svc.ScanOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd("state", "--node", node.URL, "--dirty")
	if code != 1 || !strings.Contains(out, "test/event") || !strings.Contains(out, "dirty") {
		t.Fatalf("dirty: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCmd("state", "--node", node.URL, "--json")
	var st schemasync.StateResponse
	if code != 1 || json.Unmarshal([]byte(out), &st) != nil || st.Consistent || len(st.Schemas) == 0 {
		t.Fatalf("--json: exit %d\n%.2000s", code, out)
	}
}

// TestStateHostileNode: whatever a node puts in its view (escape sequences, bidirectional overrides, 100 kB
// strings, an endpoint URL with credentials), `state` prints it bounded and escaped, without the
// credentials, in the table and in --json; a node that is not ready exits 1.
func TestStateHostileNode(t *testing.T) {
	evil := `\u001b]0;owned\u0007\u202e`
	long := strings.Repeat("r", 100000)
	body := `{"generated_at":"2026-01-01T00:00:00Z","node":"n` + evil + `","ready":false,"consistent":false,` +
		`"endpoints":[{"repository":"primary","url":"http://u:hunter2@h1/` + evil + `","state":"unknown","reason":"` + evil + long + `",` +
		`"observers":[{"node":"o` + evil + `","ok":false,"error":"` + long + `"}]}],` +
		`"schemas":[{"repository":"primary","title":"t` + evil + long + `","safe_version":"1.0.0","dirty":true,"stale":true,"reasons":["` + evil + `"],` +
		`"endpoints":[{"url":"http://u:hunter2@h1/","state":"ok","versions":["1.0.0"],"observers":[]}]}]}`
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/state" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(node.Close)
	for _, args := range [][]string{{"state", "--node", node.URL}, {"state", "--node", node.URL, "--json"}} {
		code, out, errs := runCmd(args...)
		all := out + errs
		if code != 1 || !strings.Contains(all, "***@h1") {
			t.Fatalf("%v: exit %d (want 1)\n%.3000s", args, code, all)
		}
		if strings.ContainsAny(all, "\x1b\x07\u202e") || strings.Contains(all, "hunter2") || len(all) > 30000 {
			t.Fatalf("%v: raw escapes, credentials or unbounded (%d bytes):\n%.3000q", args, len(all), all)
		}
	}
}

// FuzzCleanState: whatever a node's answer holds, once it decodes, every string cleanState leaves is escaped
// (escaping it again changes nothing) and bounded, and no URL shows its credentials.
func FuzzCleanState(f *testing.F) {
	f.Add(`{"node":"n\u202e","endpoints":[{"url":"http://u:p@h/","reason":"\u001b[2J","observers":[{"node":"o","error":"e"}]}],"schemas":[{"title":"t","reasons":["r"],"endpoints":[{"url":"http://u:p@h/"}]}]}`)
	f.Add(`{"schemas":[{"title":"` + strings.Repeat("\\u0000", 50) + `"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var st schemasync.StateResponse
		if json.Unmarshal([]byte(body), &st) != nil {
			return
		}
		cleanState(&st)
		check := func(s string, n int) {
			if safetext.Escape(s) != s || len(s) > 10*n {
				t.Fatalf("left %q (bound %d)", s, n)
			}
			if n == maxURLBytes && strings.Contains(s, "://u:p@") {
				t.Fatalf("URL %q shows its credentials", s)
			}
		}
		check(st.Node, maxNameBytes)
		for _, e := range st.Endpoints {
			check(e.URL, maxURLBytes)
			check(e.Reason, maxReasonBytes)
			for _, o := range e.Observers {
				check(o.Node, maxNameBytes)
				check(o.Error, maxReasonBytes)
			}
		}
		for _, s := range st.Schemas {
			check(s.Title, maxTitleBytes)
			for _, r := range s.Reasons {
				check(r, maxReasonBytes)
			}
			for _, e := range s.Endpoints {
				check(e.URL, maxURLBytes)
				check(e.Reason, maxReasonBytes)
			}
		}
	})
}
