package eventgate

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCompileReachesNothingOutside: whatever a schema refers to (a remote $ref, a file:// $ref, a relative
// $ref, a $schema naming a draft that is not embedded, an $id that moves the base elsewhere), compiling
// neither sends a request nor reads a file: it fails, naming what it refused. (Held on main.)
func TestCompileReachesNothingOutside(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"type":"string"}`))
	}))
	t.Cleanup(srv.Close)
	for name, doc := range map[string]string{
		"remote $ref":        `{"$ref":"` + srv.URL + `/x"}`,
		"nested remote $ref": `{"properties":{"a":{"items":{"$ref":"` + srv.URL + `/y#/z"}}}}`,
		"file $ref":          `{"$ref":"file:///etc/passwd"}`,
		"relative $ref":      `{"$ref":"other.json"}`,
		"unknown $schema":    `{"$schema":"` + srv.URL + `/my-draft#"}`,
		"$id elsewhere":      `{"$id":"` + srv.URL + `/base/","properties":{"a":{"$ref":"a.json"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			v, err := DecodeDocument([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Compile("https://schema.canary.invalid/a/1.0.0", v)
			if err == nil || !strings.Contains(err.Error(), "self-contained") {
				t.Fatalf("err = %v, want a refusal", err)
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server", hits.Load())
	}
}
