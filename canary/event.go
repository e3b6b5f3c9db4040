package canary

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync/version"
)

// Outcomes of building an event that callers can branch on (with errors.Is).
var (
	// ErrFragmentSchema: the schema is not an event schema (no type: object with properties.meta), e.g. a
	// fragment meant to be $ref'd from others. A canary event cannot be built from it.
	ErrFragmentSchema = errors.New("schema is a fragment, not an event schema: it needs type: object and properties.meta")
	// ErrNoExample: the schema has no usable examples[0].
	ErrNoExample = errors.New("schema has no usable example")
	// ErrNoMeta: examples[0] has no meta object to set stream, domain and dt in.
	ErrNoMeta = errors.New("example has no meta object")
)

// CanaryDomain is meta.domain of every canary event: consumers filter canary events out by it.
const CanaryDomain = "canary"

// BuildEvent builds the canary event for stream from a decoded schema document (as eventgate.DecodeDocument
// returns it) at title and version: a deep copy of examples[0] with meta.stream, meta.domain, meta.dt (now, RFC
// 3339 UTC) and $schema = /<title>/<version>. It does not validate; the caller does, against the same schema.
func BuildEvent(schema any, title, version, stream string, now time.Time) (map[string]any, error) {
	doc, ok := schema.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w (the document is not an object)", ErrFragmentSchema)
	}
	props, _ := doc["properties"].(map[string]any)
	if typ, _ := doc["type"].(string); typ != "object" || props == nil {
		return nil, ErrFragmentSchema
	}
	if _, ok := props["meta"].(map[string]any); !ok {
		return nil, fmt.Errorf("%w (properties has no meta)", ErrFragmentSchema)
	}
	examples, ok := doc["examples"].([]any)
	switch {
	case doc["examples"] == nil:
		return nil, fmt.Errorf("%w: no examples", ErrNoExample)
	case !ok:
		return nil, fmt.Errorf("%w: examples is not a list", ErrNoExample)
	case len(examples) == 0:
		return nil, fmt.Errorf("%w: examples is empty", ErrNoExample)
	}
	ex, ok := examples[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: examples[0] is not an object", ErrNoExample)
	}
	ev := deepCopy(ex).(map[string]any)
	meta, ok := ev["meta"].(map[string]any)
	if !ok {
		if ev["meta"] == nil {
			return nil, ErrNoMeta
		}
		return nil, fmt.Errorf("%w: meta is %s", ErrNoMeta, jsonKind(ev["meta"]))
	}
	meta["stream"] = stream
	meta["domain"] = CanaryDomain
	meta["dt"] = now.UTC().Format(time.RFC3339)
	ev["$schema"] = "/" + strings.Trim(title, "/") + "/" + version
	return ev, nil
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = deepCopy(e)
		}
		return s
	default:
		return v
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, int:
		return "a number"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// versionFromID returns X.Y.Z from a schema's $id "/<title>/X.Y.Z", checking the title; used in latest mode,
// where the document fetched from .../latest names its own version.
func versionFromID(schema any, title string) (string, error) {
	doc, _ := schema.(map[string]any)
	id, _ := doc["$id"].(string)
	if id == "" {
		return "", errors.New("the latest schema has no $id to tell its version")
	}
	path := strings.Trim(id, "/")
	i := strings.LastIndex(path, "/")
	if i < 0 {
		return "", fmt.Errorf("the latest schema's $id %q is not /<title>/X.Y.Z", id)
	}
	t, v := path[:i], path[i+1:]
	if t != strings.Trim(title, "/") {
		return "", fmt.Errorf("the latest schema's $id %q does not match title %q", id, title)
	}
	if !version.Valid(v) {
		return "", fmt.Errorf("the latest schema's $id %q has no X.Y.Z version", id)
	}
	return v, nil
}

// pathMismatch says where a schema document disagrees with the path it was served at, /<title>/<version>:
// a $id or a title that names something else. The path is the truth (EventGate resolves the path), so these
// are warnings, with the document's words quoted, bounded and escaped.
func pathMismatch(schema any, title, version string) []string {
	doc, _ := schema.(map[string]any)
	var out []string
	want := "/" + strings.Trim(title, "/") + "/" + version
	if id, ok := doc["$id"].(string); ok && id != want {
		out = append(out, fmt.Sprintf("the schema's $id %s is not its path %s: the path is used", safetext.Quote(safetext.Bound(id, 200)), want))
	}
	if t, ok := doc["title"].(string); ok && strings.Trim(t, "/") != strings.Trim(title, "/") {
		out = append(out, fmt.Sprintf("the schema's title %s is not its path's %s: the path is used", safetext.Quote(safetext.Bound(t, 200)), strings.Trim(title, "/")))
	}
	return out
}
