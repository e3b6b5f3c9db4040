package schemasync

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// muxLookup is what the mux makes of target: the repo and title it routes to the lookup, if it does.
func muxLookup(target string) (repo, title string, ok bool) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/repositories/{repo}/schemas/{title...}", func(http.ResponseWriter, *http.Request) {})
	r := httptest.NewRequest(http.MethodGet, "http://x/", nil)
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return "", "", false
	}
	r.URL = u
	if _, pattern := mux.Handler(r); pattern != "GET /v1/repositories/{repo}/schemas/{title...}" {
		return "", "", false
	}
	// A pattern matched after a redirect (a path to clean) is not the lookup itself.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		return "", "", false
	}
	return r.PathValue("repo"), r.PathValue("title"), true
}

// TestLookupPath: the lookup's own path split takes a path only when the mux would route the same path to the
// lookup with the same repo and title; everything else is left to the mux.
func TestLookupPath(t *testing.T) {
	for _, tt := range []struct {
		name, target, repo, title string
		ok                        bool
	}{
		{"plain", "/v1/repositories/primary/schemas/a/b", "primary", "a/b", true},
		{"one segment title", "/v1/repositories/r/schemas/t", "r", "t", true},
		{"trailing slash", "/v1/repositories/r/schemas/a/", "r", "a/", true},
		{"schemas inside the title", "/v1/repositories/r/schemas/x/schemas/y", "r", "x/schemas/y", true},
		{"space escaped", "/v1/repositories/r/schemas/a%20b", "r", "a b", true},
		{"escaped slash", "/v1/repositories/r/schemas/a%2Fb", "", "", false},
		{"dot dot", "/v1/repositories/r/schemas/a/../b", "", "", false},
		{"dot", "/v1/repositories/r/schemas/./b", "", "", false},
		{"double slash", "/v1/repositories/r/schemas/a//b", "", "", false},
		{"empty title", "/v1/repositories/r/schemas/", "", "", false},
		{"empty repo", "/v1/repositories//schemas/a", "", "", false},
		{"repo with a slash", "/v1/repositories/a/b/schemas/t", "", "", false},
		{"other endpoint", "/v1/state", "", "", false},
		{"prefix only", "/v1/repositories/", "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.ParseRequestURI(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			repo, title, ok := lookupPath(u.Path, u.RawPath)
			if ok != tt.ok || repo != tt.repo || title != tt.title {
				t.Fatalf("lookupPath(%q) = %q, %q, %v; want %q, %q, %v", tt.target, repo, title, ok, tt.repo, tt.title, tt.ok)
			}
			if ok {
				if mr, mt, mok := muxLookup(tt.target); !mok || mr != repo || mt != title {
					t.Fatalf("the mux routes %q to %q, %q, %v", tt.target, mr, mt, mok)
				}
			}
		})
	}
}

// FuzzLookupPath: whatever the request target, a path the lookup takes is one the mux routes to the lookup with
// the same repo and title.
func FuzzLookupPath(f *testing.F) {
	for _, s := range []string{"/v1/repositories/primary/schemas/a/b", "/v1/repositories/r/schemas/a%2Fb",
		"/v1/repositories/r/schemas/a/../b", "/v1/repositories//schemas/a", "/v1/repositories/r/schemas/%zz",
		"/v1/repositories/r/schemas/a%20b/", "/v1/repositories/r/schemas/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		repo, title, ok := lookupPath(u.Path, u.RawPath)
		if !ok {
			return
		}
		if mr, mt, mok := muxLookup(target); !mok || mr != repo || mt != title {
			t.Fatalf("lookupPath(%q) = %q, %q; the mux: %q, %q, %v", target, repo, title, mr, mt, mok)
		}
	})
}
