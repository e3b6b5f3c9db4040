package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evenkeel/evenkeel/internal/refused"
)

func jsonAnswer(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// TestMembersHostileNode: `members` asks only the node it was given (a redirect to another origin is
// refused, and nothing is asked there), reads a bounded answer, prints every string from the node escaped
// and bounded in the table and in --json, and never shows the credentials of --node. On main it used
// http.DefaultClient (any redirect, any body size), printed a 100 kB member name in full and U+202E raw in
// --json, and showed the password of --node when the node was down.
func TestMembersHostileNode(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = w.Write([]byte(`{"node":"other","members":[]}`))
	}))
	t.Cleanup(other.Close)
	away := httptest.NewServer(http.RedirectHandler(other.URL+"/v1/members", http.StatusFound))
	t.Cleanup(away.Close)
	long := strings.Repeat("n", 100000)
	fields := fakeNode(t, jsonAnswer(`{"node":"n\u202e","cluster":true,"keys":["k"],"members":[{"name":"`+long+`","state":"alive","address":"a\u202e","api":"http://x/\u202e"}]}`))
	huge := fakeNode(t, jsonAnswer(`{"node":"n","cluster":true,"members":[{"name":"`+strings.Repeat("x", 8<<20)+`","state":"alive"}]}`))
	down := strings.Replace(refused.URL(t), "http://", "http://u:hunter2@", 1)

	for _, tt := range []struct {
		name string
		args []string
		code int
		has  string
	}{
		{"redirect to another origin", []string{"--node", away.URL}, 1, "another origin"},
		{"fields bounded and escaped", []string{"--node", fields}, 0, `\u202e`},
		{"fields bounded and escaped, json", []string{"--node", fields, "--json"}, 0, `\\u202e`},
		{"answer too large", []string{"--node", huge}, 1, "larger than"},
		{"node down, credentials", []string{"--node", down}, 1, "***@"},
		{"not an http URL", []string{"--node", "ftp://x"}, 2, "http(s) URL"},
		{"not a URL", []string{"--node", "http://[::1"}, 2, "http(s) URL"},
		// Paths are appended to --node: a query or fragment would swallow them (the canary and the client
		// refuse such a node too: one rule, origin.CheckBaseURL).
		{"node with a query", []string{"--node", "http://u:hunter2@127.0.0.1:1/?x=1"}, 2, "has a query"},
		{"node with a fragment", []string{"--node", "http://127.0.0.1:1/#f"}, 2, "has a fragment"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd(append([]string{"members"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out+errs, tt.has) {
				t.Fatalf("exit %d (want %d), want %q in:\n%.2000s\n%.2000s", code, tt.code, tt.has, out, errs)
			}
			if len(out)+len(errs) > 20000 || strings.Contains(out+errs, "\u202e") || strings.Contains(out+errs, "hunter2") {
				t.Fatalf("unbounded (%d bytes), raw U+202E or credentials:\n%.2000q\n%.2000q", len(out)+len(errs), out, errs)
			}
		})
	}
	if elsewhere.Load() != 0 {
		t.Fatalf("%d requests reached the other origin", elsewhere.Load())
	}
}

// TestCheckConfigEscapesTheNodeName: check-config prints the node name from the file escaped.
func TestCheckConfigEscapesTheNodeName(t *testing.T) {
	_, eps := hosts(t, 1)
	path := writeConfig(t, "127.0.0.1:0", eps)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, strings.Replace(string(data), "node_name: test", `node_name: "n\e[2J"`, 1))
	code, out, errs := runCmd("check-config", "--config", path)
	if code != 0 || strings.Contains(out, "\x1b") || !strings.Contains(out, `n\x1b[2J`) {
		t.Fatalf("exit %d:\n%q\n%s", code, out, errs)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
