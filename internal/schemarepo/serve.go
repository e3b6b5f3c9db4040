package schemarepo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// node is one entry of the served tree.
type node struct {
	dir      bool
	other    bool // a dangling symlink: listed with type "other", 404 on GET (as nginx does)
	data     []byte
	mod      time.Time
	children map[string]*node
	listing  []byte // the JSON autoindex body, for directories
}

// build returns the served tree, rebuilding it after a change. Callers hold r.mu for writing.
func (r *Repo) build() *node {
	if r.tree != nil {
		return r.tree
	}
	root := &node{dir: true, children: map[string]*node{}}
	dirAt := func(p string) *node {
		n := root
		if p == "" || p == "." {
			return n
		}
		for _, part := range strings.Split(p, "/") {
			c := n.children[part]
			if c == nil {
				c = &node{dir: true, children: map[string]*node{}}
				n.children[part] = c
			}
			n = c
		}
		return n
	}
	for title, vs := range r.schemas {
		d := dirAt(title)
		var highest string
		for v, f := range vs {
			if f.pending {
				d.children[v] = &node{other: true, mod: f.mod}
				continue
			}
			d.children[v+".yaml"] = &node{data: f.doc, mod: f.mod}
			d.children[v] = &node{data: f.doc, mod: f.mod}
			if r.legacy {
				d.children[v+".json"] = &node{data: toJSON(f.doc), mod: f.mod}
			}
			if highest == "" || lessVersion(highest, v) {
				highest = v
			}
		}
		if highest != "" {
			f := vs[highest]
			d.children["latest"] = &node{data: f.doc, mod: f.mod}
			d.children["latest.yaml"] = &node{data: f.doc, mod: f.mod}
			d.children["current.yaml"] = &node{data: f.doc, mod: f.mod}
			if r.legacy {
				d.children["latest.json"] = &node{data: toJSON(f.doc), mod: f.mod}
			}
		}
	}
	for p, f := range r.extra {
		dirAt(path.Dir(p)).children[path.Base(p)] = &node{data: f.data, mod: f.mod}
	}
	var walk func(p string, n *node)
	walk = func(p string, n *node) {
		n.mod = r.dirMod[p]
		if n.mod.IsZero() {
			n.mod = r.now()
		}
		for name, c := range n.children {
			if c.dir {
				walk(path.Join(p, name), c)
			}
		}
		n.listing = listingJSON(n)
	}
	walk("", root)
	r.tree = root
	return root
}

func toJSON(doc []byte) []byte {
	v, err := yamlToJSONable(doc)
	if err != nil {
		return doc
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return append(b, '\n')
}

// listingJSON renders a directory the way nginx 1.22 does with autoindex_format json: one entry a line, sorted
// by name, mtime in HTTP date format, size for files only.
func listingJSON(n *node) []byte {
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, name := range names {
		c := n.children[name]
		q, _ := json.Marshal(name)
		typ := "file"
		switch {
		case c.dir:
			typ = "directory"
		case c.other:
			typ = "other"
		}
		b.WriteString(`{ "name":`)
		b.Write(q)
		b.WriteString(`, "type":"` + typ + `", "mtime":"` + c.mod.UTC().Format(http.TimeFormat) + `"`)
		if typ == "file" {
			b.WriteString(`, "size":` + strconv.Itoa(len(c.data)))
		}
		b.WriteString(" }")
		if i < len(names)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	return b.Bytes()
}

// ServeHTTP serves the repository's jsonschema/ directory at "/": listings for directory URLs that end in "/",
// a 301 to the slashed URL for directories without one, files as text/plain, and 404 for anything else.
func (r *Repo) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.mu.Lock()
	root := r.build()
	r.mu.Unlock()
	p := strings.TrimPrefix(req.URL.Path, "/")
	n := root
	if p != "" {
		for _, part := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
			if n == nil || !n.dir {
				n = nil
				break
			}
			n = n.children[part]
		}
	}
	switch {
	case n == nil || n.other:
		http.NotFound(w, req)
	case n.dir && !strings.HasSuffix(req.URL.Path, "/"):
		http.Redirect(w, req, req.URL.Path+"/", http.StatusMovedPermanently)
	case n.dir:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(n.listing)))
		if req.Method == http.MethodGet {
			_, _ = w.Write(n.listing)
		}
	case strings.HasSuffix(req.URL.Path, "/"):
		http.NotFound(w, req)
	default:
		// As nginx does: Last-Modified, conditional and Range requests (a scanner confirms with bytes=0-0).
		w.Header().Set("Content-Type", "text/plain")
		http.ServeContent(w, req, "", n.mod, bytes.NewReader(n.data))
	}
}

// Host serves several repositories the way a schema host does: /repositories/<name>/jsonschema/...
type Host struct {
	mux   *http.ServeMux
	Repos map[string]*Repo
}

// NewHost returns a host serving repos at /repositories/<name>/jsonschema/.
func NewHost(repos map[string]*Repo) *Host {
	h := &Host{mux: http.NewServeMux(), Repos: repos}
	for name, repo := range repos {
		prefix := "/repositories/" + name + "/jsonschema"
		h.mux.Handle(prefix+"/", http.StripPrefix(prefix, repo))
	}
	return h
}

func (h *Host) ServeHTTP(w http.ResponseWriter, req *http.Request) { h.mux.ServeHTTP(w, req) }

// WriteDir writes the repository under dir/jsonschema with real files and symlinks, replacing what was there
// by a rename, so that a server reading dir never sees a half-written tree. Pending versions are written as a
// dangling X.Y.Z symlink, as a git pull in progress can leave them.
func (r *Repo) WriteDir(dir string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	tmp, err := os.MkdirTemp(dir, ".jsonschema-")
	if err != nil {
		return err
	}
	for title, vs := range r.schemas {
		d := filepath.Join(tmp, filepath.FromSlash(title))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		var highest string
		for v, f := range vs {
			if err := os.Symlink(v+".yaml", filepath.Join(d, v)); err != nil {
				return err
			}
			if f.pending {
				continue
			}
			if err := os.WriteFile(filepath.Join(d, v+".yaml"), f.doc, 0o644); err != nil {
				return err
			}
			if r.legacy {
				if err := os.WriteFile(filepath.Join(d, v+".json"), toJSON(f.doc), 0o644); err != nil {
					return err
				}
			}
			if highest == "" || lessVersion(highest, v) {
				highest = v
			}
		}
		if highest == "" {
			continue
		}
		links := map[string]string{"latest": highest + ".yaml", "latest.yaml": highest + ".yaml"}
		if r.legacy {
			links["latest.json"] = highest + ".json"
		}
		for name, target := range links {
			if err := os.Symlink(target, filepath.Join(d, name)); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(d, "current.yaml"), vs[highest].doc, 0o644); err != nil {
			return err
		}
	}
	for p, f := range r.extra {
		fp := filepath.Join(tmp, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(fp, f.data, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	final := filepath.Join(dir, "jsonschema")
	old := final + ".old"
	_ = os.RemoveAll(old)
	if _, err := os.Stat(final); err == nil {
		if err := os.Rename(final, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// Fleet starts `hosts` loopback HTTP hosts (closed when tb, a testing.TB, ends), each serving `repos` synthetic
// repositories repo0, repo1, ... of n schemas × m versions, with contents pulled an hour ago (so that a
// listing cache may trust their mtimes). It returns, per repository, the endpoint on every host.
func Fleet(tb interface {
	Helper()
	Cleanup(func())
}, hosts, repos, n, m int) [][]string {
	tb.Helper()
	base := SyntheticAt(n, m, time.Now().Add(-time.Hour))
	base.SetClock(func() time.Time { return time.Now().Add(-time.Hour) })
	eps := make([][]string, repos)
	for h := 0; h < hosts; h++ {
		rs := map[string]*Repo{}
		for r := 0; r < repos; r++ {
			rs[fmt.Sprintf("repo%d", r)] = base.Clone()
		}
		srv := httptest.NewServer(NewHost(rs))
		tb.Cleanup(srv.Close)
		for r := 0; r < repos; r++ {
			eps[r] = append(eps[r], fmt.Sprintf("%s/repositories/repo%d/jsonschema/", srv.URL, r))
		}
	}
	return eps
}
