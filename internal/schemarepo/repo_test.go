package schemarepo

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

type entry struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size *int   `json:"size"`
}

func list(t *testing.T, srv *httptest.Server, p string) map[string]string {
	t.Helper()
	resp, err := http.Get(srv.URL + p)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", p, resp.Status)
	}
	var es []entry
	if err := json.NewDecoder(resp.Body).Decode(&es); err != nil {
		t.Fatalf("GET %s: %v", p, err)
	}
	out := map[string]string{}
	for _, e := range es {
		out[e.Name] = e.Type
	}
	return out
}

func status(t *testing.T, srv *httptest.Server, p string) int {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.URL + p)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeLikeNginx(t *testing.T) {
	r := New()
	r.SetLegacy(true)
	r.Put("a/b", "1.0.0", Doc("a/b", "1.0.0"))
	r.Put("a/b", "1.10.0", Doc("a/b", "1.10.0"))
	r.PutPending("a/b", "2.0.0", Doc("a/b", "2.0.0"))
	r.PutFile("a/b/CHANGELOG.md", []byte("x"))
	srv := httptest.NewServer(r)
	defer srv.Close()

	if got, want := list(t, srv, "/"), map[string]string{"a": "directory"}; !reflect.DeepEqual(got, want) {
		t.Errorf("root listing = %v, want %v", got, want)
	}
	want := map[string]string{
		"1.0.0": "file", "1.0.0.yaml": "file", "1.0.0.json": "file",
		"1.10.0": "file", "1.10.0.yaml": "file", "1.10.0.json": "file",
		"2.0.0": "other", "latest": "file", "latest.yaml": "file", "latest.json": "file",
		"current.yaml": "file", "CHANGELOG.md": "file",
	}
	if got := list(t, srv, "/a/b/"); !reflect.DeepEqual(got, want) {
		t.Errorf("title listing = %v, want %v", got, want)
	}
	for p, code := range map[string]int{"/a/b/1.10.0": 200, "/a/b/2.0.0": 404, "/a/b": 301, "/a/b/1.0.0/": 404, "/nope/": 404} {
		if got := status(t, srv, p); got != code {
			t.Errorf("GET %s = %d, want %d", p, got, code)
		}
	}
	latest, _ := r.Doc("a/b", "1.10.0")
	resp, _ := http.Get(srv.URL + "/a/b/latest")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != string(latest) {
		t.Errorf("latest is not 1.10.0")
	}
	if got := r.Versions("a/b"); !reflect.DeepEqual(got, []string{"1.0.0", "1.10.0"}) {
		t.Errorf("Versions = %v", got)
	}
}

func TestWriteDir(t *testing.T) {
	r := New()
	r.Put("x/y", "1.0.0", Doc("x/y", "1.0.0"))
	r.Put("x/y", "1.1.0", Doc("x/y", "1.1.0"))
	r.PutPending("x/y", "1.2.0", nil)
	dir := t.TempDir()
	for i := 0; i < 2; i++ { // a second write replaces the first
		if err := r.WriteDir(dir); err != nil {
			t.Fatal(err)
		}
	}
	d := filepath.Join(dir, "jsonschema", "x", "y")
	for name, target := range map[string]string{"1.0.0": "1.0.0.yaml", "latest": "1.1.0.yaml", "latest.yaml": "1.1.0.yaml", "1.2.0": "1.2.0.yaml"} {
		got, err := os.Readlink(filepath.Join(d, name))
		if err != nil || got != target {
			t.Errorf("%s -> %q (%v), want %q", name, got, err, target)
		}
	}
	if _, err := os.Stat(filepath.Join(d, "1.2.0")); !os.IsNotExist(err) {
		t.Errorf("pending 1.2.0 should dangle, stat err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only jsonschema", len(entries))
	}
}
