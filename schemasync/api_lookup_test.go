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

// TestPlainPathByte: the bytes the raw lookup takes as they are are exactly those net/url leaves unescaped in
// a path, so that a path of them is the path net/http decodes (with no RawPath).
func TestPlainPathByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		target := "/x" + string([]byte{byte(c)})
		u, err := url.ParseRequestURI(target)
		asIs := err == nil && u.RawPath == "" && u.Path == target && u.RawQuery == "" && !u.ForceQuery
		if plainPathByte(byte(c)) && !asIs {
			t.Errorf("byte %#x is taken as it is, but net/url makes %q of %q (%v)", c, u, target, err)
		}
	}
}

// TestRawLookupPath: the raw request targets that Server serves itself, and those it hands to net/http.
func TestRawLookupPath(t *testing.T) {
	for _, tt := range []struct {
		name, uri, repo, title string
		ok                     bool
	}{
		{"plain", "/v1/repositories/primary/schemas/a/b", "primary", "a/b", true},
		{"query", "/v1/repositories/primary/schemas/a/b?x=1", "primary", "a/b", true},
		{"empty query", "/v1/repositories/primary/schemas/a/b?", "primary", "a/b", true},
		{"sub-delims", "/v1/repositories/r/schemas/a+b,c;d=e@f:g", "r", "a+b,c;d=e@f:g", true},
		{"escape", "/v1/repositories/r/schemas/a%20b", "", "", false},
		{"non-ASCII", "/v1/repositories/r/schemas/\xc3\xa9", "", "", false},
		{"control byte in the query", "/v1/repositories/r/schemas/a?\x01", "", "", false},
		{"fragment mark", "/v1/repositories/r/schemas/a#b", "", "", false},
		{"absolute form", "http://x/v1/repositories/r/schemas/a", "", "", false},
		{"dot dot", "/v1/repositories/r/schemas/a/../b", "", "", false},
		{"empty", "", "", "", false},
		{"asterisk", "*", "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			repo, title, ok := rawLookupPath([]byte(tt.uri))
			if ok != tt.ok || repo != tt.repo || title != tt.title {
				t.Fatalf("rawLookupPath(%q) = %q, %q, %v; want %q, %q, %v", tt.uri, repo, title, ok, tt.repo, tt.title, tt.ok)
			}
		})
	}
}

// FuzzRawLookupPath: a raw target that Server serves itself is one net/http parses to the same path, which the
// mux routes to the lookup with the same repo and title.
func FuzzRawLookupPath(f *testing.F) {
	for _, s := range []string{"/v1/repositories/primary/schemas/a/b", "/v1/repositories/r/schemas/a/b?x=%zz",
		"/v1/repositories/r/schemas/a%2Fb", "/v1/repositories/r/schemas/a//b", "/v1/repositories/r/schemas/a?\x7f",
		"/v1/repositories/r/schemas/(a)!*'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		repo, title, ok := rawLookupPath([]byte(uri))
		if !ok {
			return
		}
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			t.Fatalf("rawLookupPath takes %q, which net/http refuses: %v", uri, err)
		}
		if mr, mt, mok := muxLookup(uri); !mok || mr != repo || mt != title || u.RawPath != "" {
			t.Fatalf("rawLookupPath(%q) = %q, %q; the mux: %q, %q, %v (RawPath %q)", uri, repo, title, mr, mt, mok, u.RawPath)
		}
	})
}
