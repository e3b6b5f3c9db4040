package schemasync

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/internal/safetext"
)

// hostileListingHost serves one good schema, good/one at 1.0.0, beside a hostile listing at /bad/ (its root
// names both). Every file below /good/one/ and every path the hostile listing names answers 200, so that
// nothing but the listing itself decides what counts.
func hostileListingHost(bad []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.EscapedPath(); {
		case p == "/":
			_, _ = w.Write(fakeListing(fakeDirEntry("good"), fakeDirEntry("bad")))
		case p == "/good/":
			_, _ = w.Write(fakeListing(fakeDirEntry("one")))
		case p == "/good/one/":
			_, _ = w.Write(fakeListing(fakeFileEntry("1.0.0"), fakeFileEntry("1.0.0.yaml")))
		case p == "/bad/":
			_, _ = w.Write(bad)
		case strings.HasSuffix(p, "/"):
			_, _ = w.Write(fakeListing(fakeFileEntry("9.9.9"), fakeFileEntry("9.9.9.yaml")))
		default:
			_, _ = w.Write([]byte("{}"))
		}
	})
}

// TestHostileListings: a host that serves a hostile listing beside a good schema. Whatever the listing
// holds, no version it names is ever reported safe unless it is a well-formed X.Y.Z that was confirmed, the
// good schema's answer is 1.0.0 (or held, with the endpoint unknown), every reason is bounded, and /v1/state,
// /metrics and the scan table carry no raw control character or invalid UTF-8.
func TestHostileListings(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	raw := func(s string) []byte { return []byte(s) }
	tests := []struct {
		name    string
		listing []byte
	}{
		{"dot dot", fakeListing(fakeDirEntry(".."))},
		{"slash", fakeListing(fakeDirEntry("a/b"))},
		{"percent 2F", fakeListing(fakeDirEntry("a%2Fb"))},
		{"percent 00", fakeListing(fakeDirEntry("a%00b"))},
		{"NUL", raw(`[{"name":"a\u0000b","type":"directory","mtime":"` + fakeMTime + `"}]`)},
		{"control characters", fakeListing(fakeDirEntry("a\rb\x7fc\x01"))},
		{"ANSI escape", fakeListing(fakeDirEntry("\x1b[31mred\x1b]0;title\x07"))},
		{"bidi override", fakeListing(fakeDirEntry("a\u202eb"))},
		{"invalid UTF-8", raw("[{\"name\":\"a\xff\xfeb\",\"type\":\"directory\",\"mtime\":\"" + fakeMTime + "\"}]")},
		{"very long name", fakeListing(fakeDirEntry(long))},
		{"very long version-like name", fakeListing(fakeFileEntry(strings.Repeat("1.", 1<<19) + "1"))},
		{"same title after NFC", fakeListing(fakeDirEntry("caf\u00e9"), fakeDirEntry("cafe\u0301"))},
		{"duplicate entries", fakeListing(fakeDirEntry("a"), fakeDirEntry("a"))},
		{"directory that is also a file", fakeListing(fakeDirEntry("a"), fakeFileEntry("a"))},
		{"version that is a directory", fakeListing(fakeDirEntry("9.9.9"), fakeFileEntry("9.9.9.yaml"))},
		{"unknown fields", raw(`[{"name":"a","type":"directory","mtime":"` + fakeMTime + `","extra":{"x":[1,2]}}]`)},
		{"huge size", raw(`[{"name":"9.9.9","type":"file","mtime":"` + fakeMTime + `","size":1e400}]`)},
		{"huge integer size", raw(`[{"name":"9.9.9","type":"file","mtime":"` + fakeMTime + `","size":99999999999999999999999}]`)},
		{"deep nesting", raw(`[` + strings.Repeat(`[`, 100000) + strings.Repeat(`]`, 100000) + `]`)},
		{"HTML", raw("<html><body><a href=\"9.9.9\">9.9.9</a></body></html>")},
		{"leading zero", fakeListing(fakeFileEntry("01.2.3"), fakeFileEntry("01.2.3.yaml"))},
		{"prerelease", fakeListing(fakeFileEntry("1.2.3-rc1"), fakeFileEntry("1.2.3-rc1.yaml"))},
		{"four parts", fakeListing(fakeFileEntry("1.2.3.4"), fakeFileEntry("1.2.3.4.yaml"))},
		{"overflow", fakeListing(fakeFileEntry("999999999999999999999.0.0"), fakeFileEntry("999999999999999999999.0.0.yaml"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := serve(t, hostileListingHost(tt.listing))
			reg := prometheus.NewRegistry()
			s := newTestService(t, svcConfig(ep), ServiceOptions{Registerer: reg})
			scanNow(t, s)
			v := s.View()
			e := endpointView(t, v, ep)
			if len(e.Reason) > MaxReasonBytes+200 {
				t.Fatalf("reason of %d bytes", len(e.Reason))
			}
			t.Logf("endpoint %s: %s", e.State, e.Reason)
			for _, sv := range v.Schemas {
				if sv.SafeVersion == nil {
					continue
				}
				switch {
				case sv.Title == "good/one" && sv.SafeVersion.String() == "1.0.0":
				case strings.HasPrefix(sv.Title, "bad/") && sv.SafeVersion.String() == "9.9.9" && safetext.Printable(sv.Title):
					// A printable title below /bad/ whose 9.9.9 was listed and confirmed ("bad/9.9.9" too: it
					// is the title EventGate resolves as /bad/9.9.9/9.9.9).
				default:
					t.Fatalf("safe %s %s", sv.Title, sv.SafeVersion)
				}
				t.Logf("safe %q %s", sv.Title, sv.SafeVersion)
			}
			_, state := apiGet(t, s.Handler(reg), "/v1/state")
			_, metrics := apiGet(t, s.Handler(reg), "/metrics")
			for name, out := range map[string]string{"/v1/state": state, "/metrics": metrics} {
				if len(out) > 256<<10 {
					t.Fatalf("%s is %d bytes", name, len(out))
				}
				checkPrintable(t, name, out)
			}
			var st StateResponse
			if err := json.Unmarshal([]byte(state), &st); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkPrintable fails when out holds a control character other than newline and tab, or invalid UTF-8.
func checkPrintable(t *testing.T, name, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%s holds invalid UTF-8", name)
	}
	for i, r := range out {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || 0x80 <= r && r < 0xa0 || r == '\u202e' {
			t.Fatalf("%s holds control character %U at %d: %q", name, r, i, out[max(0, i-80):min(len(out), i+80)])
		}
	}
}

// TestHostileListingBodies: listings that are too big only once decompressed, or never end. Each fails the
// endpoint's scan with a bounded reason, within the request timeout, and nothing of it counts.
func TestHostileListingBodies(t *testing.T) {
	bomb := func() []byte { // 64 MiB of JSON-looking spaces, gzipped to about 64 KiB
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write([]byte("["))
		chunk := bytes.Repeat([]byte(" "), 1<<20)
		for i := 0; i < 64; i++ {
			_, _ = zw.Write(chunk)
		}
		_ = zw.Close()
		return b.Bytes()
	}()
	tests := []struct {
		name    string
		serve   func(w http.ResponseWriter, r *http.Request)
		wantErr string
	}{
		{"gzip bomb", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Length", strconv.Itoa(len(bomb)))
			_, _ = w.Write(bomb)
		}, "max_body_bytes"},
		{"endless listing", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("["))
			entry := append(fakeListing(fakeDirEntry("a"))[1:], ',')
			entry = entry[:len(entry)-2]
			for r.Context().Err() == nil {
				if _, err := w.Write(append(entry, ',')); err != nil {
					return
				}
			}
		}, "max_body_bytes"},
		{"slow drip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000000")
			for i := 0; r.Context().Err() == nil && i < 1000; i++ {
				if _, err := w.Write([]byte(" ")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				time.Sleep(20 * time.Millisecond)
			}
		}, "deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/" {
					_, _ = w.Write(fakeListing(fakeDirEntry("good"), fakeDirEntry("bad")))
					return
				}
				if r.URL.Path == "/bad/" {
					tt.serve(w, r)
					return
				}
				hostileListingHost(nil).ServeHTTP(w, r)
			}))
			cfg := testScanConfig()
			cfg.Timeout = 500 * time.Millisecond
			start := time.Now()
			res := scanOnce(t, cfg, ep)
			if res.OK() || !strings.Contains(res.Err, tt.wantErr) || len(res.Err) > MaxReasonBytes {
				t.Fatalf("scan: %q, %v", res.Err, res.Schemas)
			}
			if d := time.Since(start); d > 10*cfg.Timeout {
				t.Fatalf("the scan took %s, with a request timeout of %s", d, cfg.Timeout)
			}
			if res.Bytes > cfg.MaxBodyBytes+1<<20 {
				t.Fatalf("read %d bytes, max_body_bytes %d", res.Bytes, cfg.MaxBodyBytes)
			}
			t.Logf("%s", res.Err)
		})
	}
}

// manyVersionsHost serves titles t0..t(n-1), each listing versions 1.0.0 to 1.0.(m-1), every file 200.
func manyVersionsHost(n, m int) http.Handler {
	var titles, versions []fakeEntry
	for i := 0; i < n; i++ {
		titles = append(titles, fakeDirEntry(fmt.Sprintf("t%d", i)))
	}
	for i := 0; i < m; i++ {
		versions = append(versions, fakeFileEntry(fmt.Sprintf("1.0.%d", i)))
	}
	root, dir := fakeListing(titles...), fakeListing(versions...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/":
			_, _ = w.Write(root)
		case strings.HasSuffix(r.URL.Path, "/"):
			_, _ = w.Write(dir)
		default:
			_, _ = w.Write([]byte("x"))
		}
	})
}

// TestScannerVersionCaps: a host that lists more versions of one title than max_title_versions, or more
// versions in all than max_versions, is unknown with that reason, without a confirmation per version. On
// main, one title of 2,000 versions cost 2,000 GETs per scan and made that schema's answer (the canary's
// lookup) 24 KB per endpoint; 90,000 made it 1 MB, at 90,000 GETs per scan.
func TestScannerVersionCaps(t *testing.T) {
	t.Run("one title", func(t *testing.T) {
		res := scanOnce(t, testScanConfig(), serve(t, manyVersionsHost(1, 2000)))
		if res.OK() || !strings.Contains(res.Err, "max_title_versions 1000") || res.Requests > 10 {
			t.Fatalf("scan: %q, %d requests", res.Err, res.Requests)
		}
		t.Logf("%s (%d requests)", res.Err, res.Requests)
	})
	t.Run("all titles", func(t *testing.T) {
		cfg := testScanConfig()
		cfg.MaxVersions = 2500
		res := scanOnce(t, cfg, serve(t, manyVersionsHost(5, 900)))
		if res.OK() || !strings.Contains(res.Err, "max_versions 2500") || res.Requests > 2500+10 {
			t.Fatalf("scan: %q, %d requests", res.Err, res.Requests)
		}
		t.Logf("%s (%d requests)", res.Err, res.Requests)
	})
	t.Run("within the caps", func(t *testing.T) {
		res := scanOnce(t, testScanConfig(), serve(t, manyVersionsHost(3, 1000)))
		if !res.OK() || len(res.Schemas) != 3 || len(res.Schemas["t0"]) != 1000 {
			t.Fatalf("scan: %q, %d titles", res.Err, len(res.Schemas))
		}
	})
}

// rawHost answers every request with resp, written as it is on the connection, which it then closes.
func rawHost(t *testing.T, resp string) string {
	t.Helper()
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, resp)
	}))
}

// TestScannerReasonsPrintable: what a host puts in its answer's status line or headers reaches a reason
// only escaped: no control or format character reaches /v1/state (whose JSON leaves DEL and U+202E as they
// are) or a log line.
func TestScannerReasonsPrintable(t *testing.T) {
	for _, tt := range []struct{ name, resp string }{
		{"ANSI escape in the reason phrase", "HTTP/1.1 500 \x1b[31mred\x1b[0m\r\nContent-Length: 0\r\n\r\n"},
		{"bidi override in the reason phrase", "HTTP/1.1 502 a\u202eb\r\nContent-Length: 0\r\n\r\n"},
		{"DEL in the reason phrase", "HTTP/1.1 503 a\x7fb\r\nContent-Length: 0\r\n\r\n"},
		{"invalid UTF-8 in the reason phrase", "HTTP/1.1 500 a\xff\xfeb\r\nContent-Length: 0\r\n\r\n"},
		{"a long reason phrase", "HTTP/1.1 500 " + strings.Repeat("\x1b", 3000) + "\r\nContent-Length: 0\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ep := rawHost(t, tt.resp)
			s := newTestService(t, svcConfig(ep), ServiceOptions{})
			scanNow(t, s)
			e := endpointView(t, s.View(), ep)
			if e.State != EndpointUnknown || len(e.Reason) > MaxReasonBytes+100 {
				t.Fatalf("%s, reason of %d bytes: %q", e.State, len(e.Reason), e.Reason)
			}
			if !safetext.Printable(e.Reason) {
				t.Fatalf("reason %q is not printable as it is", e.Reason)
			}
			_, state := apiGet(t, s.Handler(), "/v1/state")
			checkPrintable(t, "/v1/state", state)
			t.Logf("%s", e.Reason)
		})
	}
}

// TestStateRejectsUnprintableTitles: content from a peer (which holds the gossip key, or is buggy) that names
// a title no scan would produce, with an ANSI escape, a bidi override or bytes that are not UTF-8, is not
// recorded, and a held version for such a title is not adopted, so it reaches no answer, label or terminal.
func TestStateRejectsUnprintableTitles(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	eps := []string{"http://h1/j/"}
	v1 := []Version{MustParseVersion("1.0.0")}
	for _, title := range []string{"evil\x1b[2J", "a\u202eb", "a\xffb", "a\x7f", ""} {
		t.Run(fmt.Sprintf("%q", title), func(t *testing.T) {
			st := NewState([]Repository{{Name: "primary", Endpoints: eps}}, time.Minute)
			bad := map[string][]Version{title: v1, "a/b": v1}
			if st.Observe(Observation{Repository: "primary", Endpoint: eps[0], Observer: "peer", Seq: 1, At: now,
				Schemas: bad, Hash: ContentHash(bad)}, now) {
				t.Fatal("recorded")
			}
			if st.AdoptHeld([]HeldVersion{{Repository: "primary", Title: title, Version: v1[0]}},
				map[string]string{"primary": EndpointSetHash(eps)}, now) {
				t.Fatal("adopted a held version")
			}
			if v := st.View(now); len(v.Schemas) != 0 {
				t.Fatalf("view: %+v", v.Schemas)
			}
		})
	}
}
