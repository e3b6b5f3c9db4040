// Package schemarepo builds schema repositories laid out as the real ones are, for tests, the demo
// and benchmarks. A Repo lives in memory. It can serve itself over HTTP the way nginx does with
// "autoindex on; autoindex_format json;", and it can write itself to a directory with real symlinks, for a
// real nginx to serve.
//
// Layout of one schema, under the repository's jsonschema/ directory:
//
//	<title>/current.yaml      the editable copy (the highest version's document)
//	<title>/X.Y.Z.yaml        materialized, immutable
//	<title>/X.Y.Z             symlink to X.Y.Z.yaml: what EventGate resolves
//	<title>/latest, latest.yaml   symlinks to the highest version
//	<title>/X.Y.Z.json, latest.json   only in legacy (pre-2022) repositories
package schemarepo

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Repo is an in-memory schema repository. It is safe for concurrent use: one goroutine can roll versions out
// while HTTP handlers serve it.
type Repo struct {
	mu      sync.RWMutex
	legacy  bool                               // also serve X.Y.Z.json and latest.json
	schemas map[string]map[string]*versionFile // title -> version -> file
	extra   map[string]extraFile               // other files, by path relative to jsonschema/
	dirMod  map[string]time.Time               // directory path ("" is the root) -> last change of its entries
	now     func() time.Time
	tree    *node // built lazily from the fields above; nil after any change
}

type versionFile struct {
	doc     []byte
	pending bool // listed, but the extensionless file is not there yet (a git pull still writing)
	mod     time.Time
}

type extraFile struct {
	data []byte
	mod  time.Time
}

// New returns an empty repository whose clock is time.Now.
func New() *Repo {
	return &Repo{
		schemas: map[string]map[string]*versionFile{},
		extra:   map[string]extraFile{},
		dirMod:  map[string]time.Time{},
		now:     time.Now,
	}
}

// SetLegacy makes the repository also carry X.Y.Z.json and latest.json, as repositories before 2022 did.
func (r *Repo) SetLegacy(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.legacy = on
	r.changed("")
}

// SetClock replaces the clock that stamps modification times (for deterministic tests).
func (r *Repo) SetClock(now func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = now
}

// Put adds (or replaces) version of title with the given YAML document.
func (r *Repo) Put(title, version string, doc []byte) {
	r.put(title, version, doc, false)
}

// PutPending lists version of title (X.Y.Z.yaml and the X.Y.Z symlink appear in the directory listing) while the
// extensionless file does not resolve yet: a listing that runs ahead of a git pull still writing files.
// A later Put completes it.
func (r *Repo) PutPending(title, version string, doc []byte) {
	r.put(title, version, doc, true)
}

func (r *Repo) put(title, version string, doc []byte, pending bool) {
	title = strings.Trim(title, "/")
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := r.schemas[title]
	if vs == nil {
		vs = map[string]*versionFile{}
		r.schemas[title] = vs
		// A new title creates directories: each parent's entry list changes.
		for d := title; d != "."; d = path.Dir(d) {
			r.changed(path.Dir(d))
		}
	}
	vs[version] = &versionFile{doc: append([]byte(nil), doc...), pending: pending, mod: r.now()}
	r.changed(title)
}

// Remove deletes version of title (a rollback). The title disappears with its last version.
func (r *Repo) Remove(title, version string) {
	title = strings.Trim(title, "/")
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := r.schemas[title]
	if vs == nil {
		return
	}
	delete(vs, version)
	r.changed(title)
	if len(vs) == 0 {
		delete(r.schemas, title)
		for d := title; d != "."; d = path.Dir(d) {
			r.changed(path.Dir(d))
		}
	}
}

// PutFile adds any other file (CHANGELOG.md, README.md, a stray file), by path relative to jsonschema/.
func (r *Repo) PutFile(p string, data []byte) {
	p = strings.Trim(p, "/")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extra[p] = extraFile{data: append([]byte(nil), data...), mod: r.now()}
	r.changed(path.Dir(p))
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		r.changed(path.Dir(d))
	}
}

// Versions returns the versions of title that are fully present (not pending), in ascending order.
func (r *Repo) Versions(title string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for v, f := range r.schemas[strings.Trim(title, "/")] {
		if !f.pending {
			out = append(out, v)
		}
	}
	SortVersions(out)
	return out
}

// Titles returns every schema title, sorted.
func (r *Repo) Titles() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.schemas))
	for t := range r.schemas {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Doc returns the document of title at version, and whether it exists.
func (r *Repo) Doc(title, version string) ([]byte, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.schemas[strings.Trim(title, "/")][version]
	if !ok {
		return nil, false
	}
	return f.doc, true
}

// Clone returns an independent copy, e.g. to start several hosts from the same contents.
func (r *Repo) Clone() *Repo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := New()
	c.legacy, c.now = r.legacy, r.now
	for t, vs := range r.schemas {
		m := make(map[string]*versionFile, len(vs))
		for v, f := range vs {
			cp := *f
			m[v] = &cp
		}
		c.schemas[t] = m
	}
	for p, f := range r.extra {
		c.extra[p] = f
	}
	for d, t := range r.dirMod {
		c.dirMod[d] = t
	}
	return c
}

// changed records that directory dir's entries changed. Callers hold r.mu.
func (r *Repo) changed(dir string) {
	if dir == "." {
		dir = ""
	}
	r.dirMod[dir] = r.now()
	r.tree = nil
}

// SortVersions sorts X.Y.Z strings numerically (1.10.0 after 1.9.0); malformed ones sort first, by text.
func SortVersions(vs []string) {
	sort.Slice(vs, func(i, j int) bool { return lessVersion(vs[i], vs[j]) })
}

func lessVersion(a, b string) bool {
	pa, oka := splitVersion(a)
	pb, okb := splitVersion(b)
	if oka != okb {
		return !oka
	}
	if !oka {
		return a < b
	}
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}

func splitVersion(v string) ([3]uint64, bool) {
	var out [3]uint64
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// yamlToJSONable converts a YAML document to a value encoding/json accepts, for the legacy .json files.
func yamlToJSONable(doc []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("schemarepo: document is not YAML: %w", err)
	}
	return jsonable(v), nil
}

func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = jsonable(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = jsonable(e)
		}
		return t
	default:
		return v
	}
}
