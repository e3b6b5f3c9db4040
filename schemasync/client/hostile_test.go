package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAnswerForAnotherSchemaIsRefused: a node whose answer names another title or repository than the one
// asked (a misrouted proxy, a buggy or hostile node) is a failed node: its safe version is not used for the
// title asked, and the next node is asked. On main, the other title's safe version was returned as this
// title's.
func TestAnswerForAnotherSchemaIsRefused(t *testing.T) {
	const title = "a/b"
	good := fakeNode(t, map[string]string{"primary/" + title: view("primary", title, "1.0.0", false)}).URL
	for _, tc := range []struct{ name, body, errHas string }{
		{"other title", view("primary", "some/other", "9.9.9", false), `answered for title "some/other"`},
		{"other repository", view("secondary", title, "9.9.9", false), `answered for repository "secondary"`},
		{"title with escapes", view("primary", "a/b\\u001b[2J", "9.9.9", false), `answered for title "a/b\x1b[2J"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			liar := fakeNode(t, map[string]string{"primary/" + title: tc.body}).URL
			c, err := New([]string{liar, good}, Options{Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			v, view, err := c.SafeVersion(context.Background(), []string{"primary"}, title)
			if err != nil || v != "1.0.0" || view.Node != good {
				t.Fatalf("version %q from %v, err %v; want 1.0.0 from the second node", v, view, err)
			}
			c, _ = New([]string{liar}, Options{Timeout: 2 * time.Second})
			_, _, err = c.SafeVersion(context.Background(), []string{"primary"}, title)
			var all *AllNodesFailedError
			if !errors.As(err, &all) || !strings.Contains(err.Error(), tc.errHas) || strings.Contains(err.Error(), "\x1b") {
				t.Fatalf("err = %v, want a failed node saying %q", err, tc.errHas)
			}
		})
	}
}

// TestMalformedViewsFallBack: an answer that lacks safe_version, gives it as "", gives a latest_version that
// is no version, or has fields of the wrong type, is a failed node (named, its credentials shown as ***),
// and the next node is asked. On main, a missing or empty safe_version ended the search with
// ErrNoSafeVersion, and a latest_version of any length and content was copied into the error.
func TestMalformedViewsFallBack(t *testing.T) {
	const title = "a/b"
	good := fakeNode(t, map[string]string{"primary/" + title: view("primary", title, "1.0.0", false)}).URL
	for _, tc := range []struct{ name, body, errHas string }{
		{"missing safe_version", `{"repository":"primary","title":"a/b","latest_version":"1.0.0"}`, "no safe_version"},
		{"empty safe_version", `{"repository":"primary","title":"a/b","safe_version":"","latest_version":"1.0.0"}`, "malformed safe_version"},
		{"latest not a version", `{"repository":"primary","title":"a/b","safe_version":null,"latest_version":"\u001b[2J` + strings.Repeat("x", 100000) + `"}`, "malformed latest_version"},
		{"dirty is a string", `{"repository":"primary","title":"a/b","safe_version":"1.0.0","dirty":"yes"}`, "not a schema view"},
		{"stale is a number", `{"repository":"primary","title":"a/b","safe_version":"1.0.0","stale":1}`, "not a schema view"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(fakeNode(t, map[string]string{"primary/" + title: tc.body}).URL, "http://", "http://u:hunter2@", 1)
			c, err := New([]string{bad, good}, Options{Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if v, _, err := c.SafeVersion(context.Background(), []string{"primary"}, title); err != nil || v != "1.0.0" {
				t.Fatalf("version %q, err %v; want 1.0.0 from the second node", v, err)
			}
			c, _ = New([]string{bad}, Options{Timeout: 2 * time.Second})
			_, _, err = c.SafeVersion(context.Background(), []string{"primary"}, title)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			if !strings.Contains(msg, tc.errHas) || !strings.Contains(msg, "http://***@") {
				t.Fatalf("err = %.500s, want %q naming the node", msg, tc.errHas)
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "\x1b") || len(msg) > 2000 {
				t.Fatalf("err shows credentials, escapes or is unbounded (%d bytes): %.500q", len(msg), msg)
			}
		})
	}
}

// TestNoSafeVersionErrorIsSafe: the error for a view without a safe version names the node without its
// credentials.
func TestNoSafeVersionErrorIsSafe(t *testing.T) {
	node := strings.Replace(fakeNode(t, map[string]string{"primary/a/b": view("primary", "a/b", "", false)}).URL, "http://", "http://u:hunter2@", 1)
	c, _ := New([]string{node}, Options{Timeout: 2 * time.Second})
	_, view, err := c.SafeVersion(context.Background(), []string{"primary"}, "a/b")
	if !errors.Is(err, ErrNoSafeVersion) || view == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

// TestHugeAnswerFallsBack: an answer over MaxAnswerBytes is a failed node whose error says so (not a JSON
// syntax error at the cut), and the next node is asked. On main the cut answer read as "unexpected end of
// JSON input".
func TestHugeAnswerFallsBack(t *testing.T) {
	huge := `{"repository":"primary","title":"a/b","safe_version":"9.9.9","endpoints":[{"url":"` + strings.Repeat("h", MaxAnswerBytes) + `"}]}`
	big := fakeNode(t, map[string]string{"primary/a/b": huge}).URL
	good := fakeNode(t, map[string]string{"primary/a/b": view("primary", "a/b", "1.0.0", false)}).URL
	c, _ := New([]string{big, good}, Options{Timeout: 5 * time.Second})
	if v, _, err := c.SafeVersion(context.Background(), []string{"primary"}, "a/b"); err != nil || v != "1.0.0" {
		t.Fatalf("version %q, err %v", v, err)
	}
	c, _ = New([]string{big}, Options{Timeout: 5 * time.Second})
	_, _, err := c.SafeVersion(context.Background(), []string{"primary"}, "a/b")
	if err == nil || !strings.Contains(err.Error(), "larger than") || strings.Contains(err.Error(), "unexpected end") {
		t.Fatalf("err = %v", err)
	}
}

// TestNotFoundFromSomethingElse: a 404 counts as "this repository does not know the title" only when it is
// schemasync's JSON error answer. A 404 page from something that is not a schemasync node (a proxy, a web
// server at the wrong port) is a failed node, and the next node is asked. On main, a node that answered
// every request with an HTML 404 made the title "unknown to schemasync".
func TestNotFoundFromSomethingElse(t *testing.T) {
	notSchemasync := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<html><body>404 Not Found</body></html>"))
	}))
	t.Cleanup(notSchemasync.Close)
	c, _ := New([]string{notSchemasync.URL}, Options{Timeout: 2 * time.Second})
	_, _, err := c.SafeVersion(context.Background(), nil, "a/b")
	var all *AllNodesFailedError
	if errors.Is(err, ErrUnknownSchema) || !errors.As(err, &all) || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("err = %v, want a failed node answering 404 without schemasync's error", err)
	}
	good := fakeNode(t, map[string]string{"secondary/a/b": view("secondary", "a/b", "1.0.0", false)}).URL
	c, _ = New([]string{notSchemasync.URL, good}, Options{Timeout: 2 * time.Second})
	if v, _, err := c.SafeVersion(context.Background(), nil, "a/b"); err != nil || v != "1.0.0" {
		t.Fatalf("version %q, err %v", v, err)
	}
	// schemasync's own 404 still means unknown.
	c, _ = New([]string{fakeNode(t, nil).URL}, Options{Timeout: 2 * time.Second})
	if _, _, err := c.SafeVersion(context.Background(), nil, "a/b"); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("err = %v, want ErrUnknownSchema", err)
	}
}

// TestNewRejectsNodesPathsCannotFollow: a node URL with a query or fragment (paths appended to it would land
// after them) is refused, and the error shows no password. On main both were accepted, and a malformed URL's
// password was quoted.
func TestNewRejectsNodesPathsCannotFollow(t *testing.T) {
	for _, n := range []string{"http://n:8091?x=1", "http://n:8091/#f", "http://n:8091?", "http://u:hunter2@[::1"} {
		if _, err := New([]string{n}, Options{}); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%q): %v", n, err)
		}
	}
}
