package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/evenkeel/evenkeel/internal/origin"
	"github.com/evenkeel/evenkeel/internal/refused"
	"github.com/evenkeel/evenkeel/schemasync/version"
)

// fakeNode answers schema views from a map of "repo/title" to body; "503" as a body means not ready, "hang"
// means never answer within the test's timeout.
func fakeNode(t *testing.T, answers map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/v1/repositories/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		repo, title, _ := strings.Cut(rest, "/schemas/")
		body, ok := answers[repo+"/"+title]
		switch {
		case !ok:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"unknown title"}`))
		case body == "503":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"not ready: first scan not finished"}`))
		case body == "hang":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			_, _ = w.Write([]byte(body))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func view(repo, title, safe string, stale bool) string {
	s := `null`
	if safe != "" {
		s = `"` + safe + `"`
	}
	st := "false"
	if stale {
		st = "true"
	}
	return `{"repository":"` + repo + `","title":"` + title + `","safe_version":` + s +
		`,"latest_version":"1.2.0","dirty":true,"stale":` + st + `,"endpoints":[{"url":"http://h1/","state":"ok","versions":["1.0.0","1.1.0"],"latest":"1.1.0","last_scan":"2026-11-22T07:00:00Z"}]}`
}

func TestSafeVersion(t *testing.T) {
	const title = "mediawiki/page/change"
	downURL := refused.URL(t) // connection refused until the test ends

	tests := []struct {
		name      string
		nodes     func(t *testing.T) []string
		repos     []string
		want      string
		wantRepo  string
		wantStale bool
		wantErr   error
		errHas    []string
	}{
		{
			name: "first node answers",
			nodes: func(t *testing.T) []string {
				return []string{fakeNode(t, map[string]string{"primary/" + title: view("primary", title, "1.1.0", false)}).URL}
			},
			want:     "1.1.0",
			wantRepo: "primary",
		},
		{
			name: "first node down, second answers",
			nodes: func(t *testing.T) []string {
				return []string{downURL, fakeNode(t, map[string]string{"primary/" + title: view("primary", title, "1.1.0", false)}).URL}
			},
			want:     "1.1.0",
			wantRepo: "primary",
		},
		{
			name: "first node not ready, second answers",
			nodes: func(t *testing.T) []string {
				return []string{
					fakeNode(t, map[string]string{"primary/" + title: "503"}).URL,
					fakeNode(t, map[string]string{"primary/" + title: view("primary", title, "1.0.0", false)}).URL,
				}
			},
			want:     "1.0.0",
			wantRepo: "primary",
		},
		{
			name: "first node hangs past the timeout, second answers",
			nodes: func(t *testing.T) []string {
				return []string{
					fakeNode(t, map[string]string{"primary/" + title: "hang"}).URL,
					fakeNode(t, map[string]string{"primary/" + title: view("primary", title, "1.0.0", false)}).URL,
				}
			},
			want:     "1.0.0",
			wantRepo: "primary",
		},
		{
			name: "title only in secondary",
			nodes: func(t *testing.T) []string {
				return []string{fakeNode(t, map[string]string{"secondary/" + title: view("secondary", title, "2.0.0", false)}).URL}
			},
			want:     "2.0.0",
			wantRepo: "secondary",
		},
		{
			name: "repository order is honoured",
			nodes: func(t *testing.T) []string {
				return []string{fakeNode(t, map[string]string{
					"primary/" + title:   view("primary", title, "1.0.0", false),
					"secondary/" + title: view("secondary", title, "2.0.0", false),
				}).URL}
			},
			repos:    []string{"secondary", "primary"},
			want:     "2.0.0",
			wantRepo: "secondary",
		},
		{
			name: "stale view still carries the held safe version",
			nodes: func(t *testing.T) []string {
				return []string{fakeNode(t, map[string]string{"primary/" + title: view("primary", title, "1.1.0", true)}).URL}
			},
			want:      "1.1.0",
			wantRepo:  "primary",
			wantStale: true,
		},
		{
			name: "null safe version",
			nodes: func(t *testing.T) []string {
				return []string{fakeNode(t, map[string]string{"primary/" + title: view("primary", title, "", false)}).URL}
			},
			wantErr: ErrNoSafeVersion,
			errHas:  []string{title, "latest 1.2.0"},
		},
		{
			name:    "unknown on every node",
			nodes:   func(t *testing.T) []string { return []string{fakeNode(t, nil).URL, fakeNode(t, nil).URL} },
			wantErr: ErrUnknownSchema,
			errHas:  []string{title, "primary, secondary"},
		},
		{
			name: "every node failed, each reason listed",
			nodes: func(t *testing.T) []string {
				return []string{downURL, fakeNode(t, map[string]string{"primary/" + title: "503"}).URL}
			},
			errHas: []string{"no schemasync node answered", "connection refused", "HTTP 503", "not ready"},
		},
		{
			name: "garbage answer",
			nodes: func(t *testing.T) []string {
				return []string{fakeNode(t, map[string]string{"primary/" + title: "<html>"}).URL}
			},
			errHas: []string{"not a schema view"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.nodes(t), Options{Timeout: time.Second}) // the answering nodes need far less, even on a loaded machine
			if err != nil {
				t.Fatal(err)
			}
			got, v, err := c.SafeVersion(context.Background(), tt.repos, title)
			if tt.wantErr != nil || tt.errHas != nil {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v does not wrap %v", err, tt.wantErr)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				if tt.wantErr == nil {
					var all *AllNodesFailedError
					if !errors.As(err, &all) && !strings.Contains(err.Error(), "not a schema view") {
						t.Errorf("error %T is not an *AllNodesFailedError", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || v.Repository != tt.wantRepo || v.Stale != tt.wantStale {
				t.Fatalf("got %s from %s stale=%v, want %s from %s stale=%v", got, v.Repository, v.Stale, tt.want, tt.wantRepo, tt.wantStale)
			}
		})
	}
}

func TestNewRejectsBadNodes(t *testing.T) {
	for _, nodes := range [][]string{nil, {"schemasync1:8091"}, {"ftp://x"}, {"http://"}} {
		if _, err := New(nodes, Options{}); err == nil {
			t.Errorf("New(%q) accepted", nodes)
		}
	}
}

func TestParseView(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		safe    string
		wantErr string
	}{
		{"full", view("primary", "a/b", "1.10.0", false), "1.10.0", ""},
		{"null safe", view("primary", "a/b", "", false), "", ""},
		{"not json", "nope", "", "not a schema view"},
		{"array", "[]", "", "not a schema view"},
		{"no title", `{"safe_version":"1.0.0"}`, "", "no title"},
		{"bad version", `{"title":"a","safe_version":"latest"}`, "", "malformed safe_version"},
		{"number version", `{"title":"a","safe_version":1}`, "", "not a schema view"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseView([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if v.SafeVersion != nil {
				got = *v.SafeVersion
			}
			if got != tt.safe {
				t.Fatalf("safe = %q, want %q", got, tt.safe)
			}
		})
	}
}

func FuzzParseView(f *testing.F) {
	f.Add([]byte(view("primary", "a/b", "1.1.0", true)))
	f.Add([]byte(`{"title":"x","safe_version":null,"endpoints":[{}]}`))
	f.Add([]byte(`{"title":"x","safe_version":"1.2"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := ParseView(body)
		if err != nil {
			return
		}
		if v.Title == "" {
			t.Fatal("accepted a view without a title")
		}
		if v.SafeVersion != nil && !version.Valid(*v.SafeVersion) {
			t.Fatalf("accepted safe version %q", *v.SafeVersion)
		}
		if v.LatestVersion != "" && !version.Valid(v.LatestVersion) {
			t.Fatalf("accepted latest version %q", v.LatestVersion)
		}
	})
}

// TestParseViewStrictVersion: the client applies schemasync's one X.Y.Z rule: 01.2.3 is no version.
func TestParseViewStrictVersion(t *testing.T) {
	for _, v := range []string{"01.2.3", "1.02.3", "1.2.3.4", "4294967296.0.0"} {
		if _, err := ParseView([]byte(`{"title":"x","safe_version":"` + v + `"}`)); err == nil {
			t.Errorf("safe_version %q accepted", v)
		}
	}
	if _, err := ParseView([]byte(`{"title":"x","safe_version":"10.2.3"}`)); err != nil {
		t.Fatal(err)
	}
}

// TestErrorMessageBounded: whatever a node puts in an error answer, StatusError.Message stays within
// maxMessageBytes and is cut at a character boundary, in the JSON "error" field and in a plain body alike.
func TestErrorMessageBounded(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2 bytes a rune: a byte cut would split one
	for _, tc := range []struct{ name, body string }{
		{"json error", `{"error":"` + long + `"}`},
		{"plain body", long},
		{"plain body odd offset", "x" + long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := errorMessage([]byte(tc.body))
			if len(m) > maxMessageBytes {
				t.Fatalf("message is %d bytes, more than %d", len(m), maxMessageBytes)
			}
			if !utf8.ValidString(m) {
				t.Fatalf("message is not valid UTF-8: %q", m)
			}
			if !strings.Contains(m, "bytes)") {
				t.Fatalf("message does not say it was cut: %q", m)
			}
		})
	}
	if m := errorMessage([]byte(`{"error":"unknown title"}`)); m != "unknown title" {
		t.Fatalf("short message changed: %q", m)
	}
}

// TestRedirectsStayOnTheNode: a node that redirects to another origin is a failed node, whether the default
// client refuses the redirect or a caller's client follows it (the answer's origin is checked); nothing the
// other origin says becomes a safe version. A redirect within the node's origin is followed.
func TestRedirectsStayOnTheNode(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = w.Write([]byte(view("primary", "a/b", "9.9.9", false)))
	}))
	t.Cleanup(other.Close)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/near/"):
			_, _ = w.Write([]byte(view("primary", "a/b", "1.1.0", false)))
		case strings.HasSuffix(r.URL.Path, "/schemas/away"):
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
		default:
			http.Redirect(w, r, "/near"+r.URL.Path, http.StatusFound)
		}
	}))
	t.Cleanup(node.Close)
	for _, tc := range []struct {
		name string
		doer Doer
	}{{"default client", nil}, {"caller's client follows anything", &http.Client{}}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New([]string{node.URL}, Options{HTTPClient: tc.doer, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			before := elsewhere.Load()
			v, _, err := c.SafeVersion(context.Background(), []string{"primary"}, "away")
			if !errors.Is(err, origin.ErrOffOrigin) || v != "" {
				t.Fatalf("off-origin redirect: version %q, err %v; want ErrOffOrigin", v, err)
			}
			if tc.doer == nil && elsewhere.Load() != before {
				t.Fatal("the default client sent a request to the other origin")
			}
			if v, _, err := c.SafeVersion(context.Background(), []string{"primary"}, "a/b"); err != nil || v != "1.1.0" {
				t.Fatalf("same-origin redirect: version %q, err %v", v, err)
			}
		})
	}
}
