package schemarepo

import (
	"fmt"
	"strings"
	"time"
)

// Doc renders an event schema as the real repositories hold them: $id /<title>/<version>,
// draft-07 $schema, required $schema and meta, meta.dt and meta.stream required, additionalProperties false,
// and one example. fields are extra string properties, each required and set in the example, so that later
// versions of a schema can differ from earlier ones.
func Doc(title, version string, fields ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "title: %s\n", title)
	fmt.Fprintf(&b, "description: Synthetic event schema %s.\n", title)
	fmt.Fprintf(&b, "$id: /%s/%s\n", title, version)
	b.WriteString("$schema: https://json-schema.org/draft-07/schema#\n")
	b.WriteString("type: object\nadditionalProperties: false\n")
	b.WriteString("required:\n  - $schema\n  - meta\n")
	for _, f := range fields {
		fmt.Fprintf(&b, "  - %s\n", f)
	}
	b.WriteString(`properties:
  $schema:
    type: string
    description: A URI identifying the JSONSchema for this event.
  meta:
    type: object
    required:
      - dt
      - stream
    properties:
      uri:
        type: string
        format: uri-reference
      id:
        type: string
      dt:
        type: string
        format: date-time
        maxLength: 128
      stream:
        type: string
        minLength: 1
      domain:
        type: string
        minLength: 1
`)
	for _, f := range fields {
		fmt.Fprintf(&b, "  %s:\n    type: string\n", f)
	}
	b.WriteString("examples:\n")
	fmt.Fprintf(&b, "  - $schema: /%s/%s\n", title, version)
	b.WriteString("    meta:\n      dt: '2020-04-02T19:11:20.942Z'\n      stream: example.stream\n      domain: test.example.org\n")
	for _, f := range fields {
		fmt.Fprintf(&b, "    %s: example %s\n", f, f)
	}
	return []byte(b.String())
}

// Synthetic returns a repository of n schemas with versions 1.0.0 .. 1.(m-1).0 each, titles nested three
// levels deep (synthetic/groupGG/schemaNNNNN), and the odd non-schema files real repositories have, dated now.
func Synthetic(n, m int) *Repo { return SyntheticAt(n, m, time.Now()) }

// SyntheticAt is Synthetic with every file and directory dated at, as a checkout pulled then; later changes
// are dated by the clock (time.Now, unless SetClock changes it).
func SyntheticAt(n, m int, at time.Time) *Repo {
	r := New()
	r.SetClock(func() time.Time { return at })
	defer r.SetClock(time.Now)
	for i := 0; i < n; i++ {
		title := SyntheticTitle(i)
		for j := 0; j < m; j++ {
			r.Put(title, fmt.Sprintf("1.%d.0", j), Doc(title, fmt.Sprintf("1.%d.0", j)))
		}
	}
	r.PutFile("README.md", []byte("# synthetic schemas\n"))
	r.PutFile("synthetic/CHANGELOG.md", []byte("nothing yet\n"))
	return r
}

// SyntheticTitle is the title of the i-th schema of Synthetic: 20 schemas to a group.
func SyntheticTitle(i int) string {
	return fmt.Sprintf("synthetic/group%02d/schema%05d", i/20, i)
}

// Demo returns the small repository that `make demo` rolls out: real-looking titles, nested as in production.
func Demo() *Repo {
	r := New()
	put := func(title string, versions map[string][]string) {
		for v, f := range versions {
			r.Put(title, v, Doc(title, v, f...))
		}
	}
	put("analytics/mediawiki/structured_task/article/link_suggestion_interaction", map[string][]string{
		"1.0.0": {"action"},
		"1.1.0": {"action", "active_interface"},
	})
	put("mediawiki/page/change", map[string][]string{
		"1.0.0": {"page_title"},
		"1.1.0": {"page_title", "page_namespace"},
	})
	put("test/event", map[string][]string{
		"1.0.0": {"test"},
	})
	r.PutFile("mediawiki/page/change/CHANGELOG.md", []byte("1.1.0: add page_namespace\n"))
	r.PutFile("README.md", []byte("# primary schema repository\n"))
	return r
}
