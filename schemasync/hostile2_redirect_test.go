package schemasync

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evenkeel/evenkeel/internal/origin"
)

// elsewhereHost is a host on another origin that answers an empty listing, and counts the requests that
// reach it (none should).
func elsewhereHost(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write(fakeListing())
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// redirectHost serves faultRepo below /moved/, and answers every other path with a redirect that to(r)
// chooses ("" means serve the repository at that path after all).
func redirectHost(to func(r *http.Request) (string, int)) http.Handler {
	repo := faultRepo()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := strings.CutPrefix(r.URL.Path, "/moved"); ok {
			r.URL.Path = p
			repo.ServeHTTP(w, r)
			return
		}
		loc, code := to(r)
		if loc == "" {
			repo.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(code)
	})
}

// TestScannerRedirectRules: the scanner follows same-origin redirects, relative or absolute, up to
// origin.MaxRedirects of them in a row, and refuses the one after, a loop, and any redirect off the
// endpoint's scheme, host and port (userinfo in the Location changes neither), saying which.
func TestScannerRedirectRules(t *testing.T) {
	other, elsewhere := elsewhereHost(t)
	otherPort := other.Listener.Addr().String()[strings.LastIndexByte(other.Listener.Addr().String(), ':')+1:]
	// chain redirects n times (via ?hop=k) and then to /moved.
	chain := func(n int) func(r *http.Request) (string, int) {
		return func(r *http.Request) (string, int) {
			hop, _ := strconv.Atoi(r.URL.Query().Get("hop"))
			if hop+1 >= n {
				return "/moved" + r.URL.Path, http.StatusFound
			}
			return fmt.Sprintf("%s?hop=%d", r.URL.Path, hop+1), http.StatusMovedPermanently
		}
	}
	for _, tt := range []struct {
		name    string
		to      func(r *http.Request) (string, int)
		wantErr string // "" means the scan succeeds with faultRepo's schemas
	}{
		{"one redirect", chain(1), ""},
		{"a chain at the bound", chain(origin.MaxRedirects), ""},
		{"a chain over the bound", chain(origin.MaxRedirects + 1), "redirects"},
		{"a 301 loop", func(r *http.Request) (string, int) { return r.URL.Path, http.StatusMovedPermanently }, "redirect loop"},
		{"relative Location", func(r *http.Request) (string, int) {
			dir := r.URL.Path[:strings.LastIndexByte(r.URL.Path, '/')+1] // "/a/b/" for /a/b/ and /a/b/1.1.0
			return strings.Repeat("../", strings.Count(dir, "/")-1) + "moved" + r.URL.Path, http.StatusTemporaryRedirect
		}, ""},
		{"scheme-relative Location, same host", func(r *http.Request) (string, int) {
			return "//" + r.Host + "/moved" + r.URL.Path, http.StatusFound
		}, ""},
		{"userinfo, same origin", func(r *http.Request) (string, int) {
			return "http://evil:secret@" + r.Host + "/moved" + r.URL.Path, http.StatusFound
		}, ""},
		{"userinfo, another host", func(r *http.Request) (string, int) {
			return "http://" + r.Host + ":x@" + other.Listener.Addr().String() + r.URL.Path, http.StatusFound
		}, "another origin"},
		{"same host, another port", func(r *http.Request) (string, int) {
			host := r.Host[:strings.LastIndexByte(r.Host, ':')]
			return "http://" + host + ":" + otherPort + r.URL.Path, http.StatusFound
		}, "another origin"},
		{"localhost for 127.0.0.1", func(r *http.Request) (string, int) {
			return "http://localhost:" + r.Host[strings.LastIndexByte(r.Host, ':')+1:] + "/moved" + r.URL.Path, http.StatusFound
		}, "another origin"},
		{"scheme upgrade", func(r *http.Request) (string, int) { return "https://" + r.Host + r.URL.Path, http.StatusFound }, "another origin"},
		{"ftp", func(r *http.Request) (string, int) { return "ftp://" + r.Host + r.URL.Path, http.StatusFound }, "another origin"},
		{"a redirect only for the version file", func(r *http.Request) (string, int) {
			if strings.HasSuffix(r.URL.Path, "/1.1.0") {
				return other.URL + r.URL.Path, http.StatusFound
			}
			return "", 0
		}, "another origin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := elsewhere.Load()
			ep := serve(t, redirectHost(tt.to))
			res := scanOnce(t, testScanConfig(), ep)
			if tt.wantErr == "" {
				assertSchemas(t, res, faultRepoSchemas)
				return
			}
			if res.OK() || !strings.Contains(res.Err, tt.wantErr) {
				t.Fatalf("scan: %q %v, want an error naming %q", res.Err, res.Schemas, tt.wantErr)
			}
			if strings.Contains(res.Err, "secret") || strings.Contains(res.Err, ":x@") {
				t.Fatalf("the reason repeats the Location's userinfo: %s", res.Err)
			}
			if elsewhere.Load() != before {
				t.Fatal("a request reached the other origin")
			}
			t.Logf("%s", res.Err)
		})
	}
}

// TestScannerRedirectDowngrade: an https endpoint that redirects to http on the same host and port is
// refused before the request is sent; with a Fetcher of the caller's that follows any redirect, the answer
// from the other origin is still refused, never counted.
func TestScannerRedirectDowngrade(t *testing.T) {
	other := httptest.NewServer(redirectHost(func(*http.Request) (string, int) { return "", 0 }))
	t.Cleanup(other.Close)
	var tlsURL string
	srv := httptest.NewUnstartedServer(redirectHost(func(r *http.Request) (string, int) {
		return "http://" + strings.TrimPrefix(tlsURL, "https://") + "/moved" + r.URL.Path, http.StatusFound
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the plain request to the TLS port is logged otherwise
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tlsURL = srv.URL
	for _, tt := range []struct {
		name string
		f    Fetcher
	}{
		{"the scanner's redirect rule", &http.Client{Transport: srv.Client().Transport, CheckRedirect: origin.Redirects(origin.MaxRedirects)}},
		{"a Fetcher that follows any redirect", srv.Client()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := NewScanner(testScanConfig(), tt.f).Scan(t.Context(), "primary", srv.URL+"/")
			if res.OK() || !strings.Contains(res.Err, "another origin") || !strings.Contains(res.Err, "to http://") {
				t.Fatalf("scan: %q %v", res.Err, res.Schemas)
			}
			t.Logf("%s", res.Err)
		})
	}
	t.Run("to another origin", func(t *testing.T) {
		srv2 := httptest.NewTLSServer(redirectHost(func(r *http.Request) (string, int) { return other.URL + "/moved" + r.URL.Path, http.StatusFound }))
		t.Cleanup(srv2.Close)
		res := NewScanner(testScanConfig(), srv2.Client()).Scan(t.Context(), "primary", srv2.URL+"/")
		if res.OK() || !strings.Contains(res.Err, "another origin") {
			t.Fatalf("scan: %q %v", res.Err, res.Schemas)
		}
	})
}
