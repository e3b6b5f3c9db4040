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

// TestDuplicateAndOddKeys: as EventGate's loaders do, a YAML mapping with a duplicate key is refused
// (js-yaml throws "duplicated mapping key"), a JSON object with one keeps the last value (JSON.parse), and a
// YAML key that is a sequence or mapping is refused; scalar keys become strings, null as "null". (Held on
// main, except the null key, which became "<nil>".)
func TestDuplicateAndOddKeys(t *testing.T) {
	if _, err := DecodeDocument([]byte("a: 1\nb: 2\na: 3\n")); err == nil || !strings.Contains(err.Error(), `"a" already defined`) {
		t.Errorf("yaml duplicate: %v", err)
	}
	v, err := DecodeDocument([]byte(`{"a":1,"a":"last"}`))
	if err != nil || v.(map[string]any)["a"] != "last" {
		t.Errorf("json duplicate: %v, %v", v, err)
	}
	for _, doc := range []string{"? [1, 2]\n: x\n", "? {a: 1}\n: x\n"} {
		if _, err := DecodeDocument([]byte(doc)); err == nil {
			t.Errorf("%q: a collection as a key was accepted", doc)
		}
	}
	v, err = DecodeDocument([]byte("1: a\ntrue: b\n2.5: c\nnull: d\n"))
	m, _ := v.(map[string]any)
	if err != nil || m["1"] != "a" || m["true"] != "b" || m["2.5"] != "c" || m["null"] != "d" {
		t.Errorf("scalar keys: %v, %v", v, err)
	}
}
