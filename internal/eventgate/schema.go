package eventgate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// Bounds on a document's shape. A document's size alone does not bound what decoding and compiling it cost:
// 16 MiB of "- 0" lines are 4 million YAML nodes (3 GiB while decoding), a few kilobytes of YAML aliases can
// expand to millions of values, and the schema compiler's work grows faster than linearly with the number of
// subschemas and with the cube of the nesting depth (a schema 5,000 levels deep took 34 s and 169 GB of
// allocations; 62,000 subschemas 16 levels deep, in 1.3 MB, took 20 s). DecodeDocument refuses such documents
// with an error wrapping ErrTooComplex, before decoding or before compiling; at the bounds, the worst documents
// found decode and compile in 1.3 to 1.5 s and 94 to 301 MB of allocations on a 2-core Xeon (canary's
// BenchmarkSchemaAtBounds, whose numbers the README shows). Real schemas nest fewer than 20 levels and hold
// a few thousand values.
const (
	// MaxDepth bounds how deeply objects and arrays nest (a scalar at the top is depth 0, [1] depth 1).
	MaxDepth = 64
	// MaxNodes bounds the values a document holds, YAML aliases expanded. Before decoding, the document's
	// separators (commas, colons, dashes, brackets, braces and line breaks), each of which may start a value,
	// are held to the same bound.
	MaxNodes = 1 << 16
)

// ErrTooComplex is wrapped by the error for a document beyond MaxDepth or MaxNodes.
var ErrTooComplex = errors.New("document too complex")

// DecodeDocument decodes a schema or event document served as JSON or YAML (the extensionless X.Y.Z file is
// YAML) into the values jsonschema validates: map[string]any, []any, string, bool, nil and json.Number.
// A document that is not a single JSON or YAML value is an error, and so is one beyond MaxDepth or MaxNodes.
func DecodeDocument(b []byte) (any, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, errors.New("empty document")
	}
	if err := CheckNodes(b, MaxNodes); err != nil {
		return nil, err
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		if err := jsonDepth(trimmed); err != nil {
			return nil, err
		}
		if v, err := jsonschema.UnmarshalJSON(bytes.NewReader(trimmed)); err == nil {
			return v, nil
		}
	}
	var node yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&node); err != nil {
		return nil, fmt.Errorf("document is neither JSON nor YAML: %w", err)
	}
	// Measured on the node tree, where an alias is still one node, before decoding expands it.
	size, height := shape(&node, map[*yaml.Node][2]int{})
	switch {
	case height > MaxDepth:
		return nil, fmt.Errorf("%w: it nests deeper than %d levels", ErrTooComplex, MaxDepth)
	case size > MaxNodes:
		return nil, fmt.Errorf("%w: it holds more than %d nodes (YAML aliases expanded)", ErrTooComplex, MaxNodes)
	}
	var y any
	if err := node.Decode(&y); err != nil {
		return nil, fmt.Errorf("document is neither JSON nor YAML: %w", err)
	}
	norm, err := normalize(y, 0)
	if err != nil {
		return nil, err
	}
	// Round-trip through JSON so that numbers become json.Number, as for JSON documents.
	j, err := json.Marshal(norm)
	if err != nil {
		return nil, fmt.Errorf("document cannot be represented as JSON: %w", err)
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(j))
}

// CheckNodes returns an error wrapping ErrTooComplex when the JSON or YAML text b may hold more than max
// nodes before aliases, judged without decoding it: by its separators (see separators).
func CheckNodes(b []byte, max int) error {
	if n := separators(b); n > max {
		return fmt.Errorf("%w: %d separators (commas, colons, dashes, brackets, line breaks) could start as many nodes, more than %d", ErrTooComplex, n, max)
	}
	return nil
}

// separators counts the bytes of b that may start a JSON or YAML value, whether or not they are inside a
// string: a bound, from above, of the nodes decoding b can make before aliases.
func separators(b []byte) int {
	n := 0
	for _, c := range b {
		switch c {
		case ',', ':', '-', '[', '{', '\n':
			n++
		}
	}
	return n
}

// jsonDepth returns an error wrapping ErrTooComplex when the arrays and objects of the JSON text b nest
// deeper than MaxDepth. It does not validate b.
func jsonDepth(b []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > MaxDepth {
				return fmt.Errorf("%w: it nests deeper than %d levels", ErrTooComplex, MaxDepth)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}

// shape returns the number of values n stands for, aliases expanded, and how deeply mappings and sequences
// nest in it. memo holds the answer for nodes already measured, so that aliases cost one lookup each.
func shape(n *yaml.Node, memo map[*yaml.Node][2]int) (size, height int) {
	if r, ok := memo[n]; ok {
		return r[0], r[1]
	}
	memo[n] = [2]int{0, 0} // a cycle (an alias inside its own anchor) counts nothing more: yaml refuses it
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias != nil {
			size, height = shape(n.Alias, memo)
		}
	default:
		for _, c := range n.Content {
			s, h := shape(c, memo)
			size += s
			height = max(height, h)
			if size > MaxNodes { // the answer is known: stop adding
				break
			}
		}
		switch n.Kind {
		case yaml.MappingNode, yaml.SequenceNode:
			size, height = size+1, height+1
		case yaml.ScalarNode:
			size = 1
		}
	}
	memo[n] = [2]int{size, height}
	return size, height
}

// normalize turns YAML values into JSON-compatible ones: mapping keys become strings, timestamps RFC 3339.
func normalize(v any, depth int) (any, error) {
	if depth > MaxDepth { // shape checked it already: a safety net
		return nil, fmt.Errorf("%w: it nests deeper than %d levels", ErrTooComplex, MaxDepth)
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			key := fmt.Sprint(k)
			if k == nil {
				key = "null" // as JavaScript names it, not Go's "<nil>"
			}
			m[key] = n
		}
		return m, nil
	case []any:
		for i, e := range t {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
		return t, nil
	case time.Time:
		return t.UTC().Format(time.RFC3339Nano), nil
	case float64:
		if t != t || t > 1e308 || t < -1e308 { // NaN, ±Inf: not JSON
			return nil, fmt.Errorf("document holds a number JSON cannot represent: %v", t)
		}
		return t, nil
	default:
		return v, nil
	}
}

// Compile compiles doc, loaded from uri, as a draft-07 schema (the default when the document has no $schema).
// Meta-schemas come from the library's embedded copies, and no other reference is loaded: a schema that
// refers to anything outside itself fails to compile rather than reaching the network.
func Compile(uri string, doc any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.UseLoader(noLoader{})
	if err := c.AddResource(uri, doc); err != nil {
		return nil, fmt.Errorf("schema at %s: %w", uri, err)
	}
	s, err := c.Compile(uri)
	if err != nil {
		return nil, fmt.Errorf("schema at %s does not compile: %w", uri, err)
	}
	return s, nil
}

type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("refusing to load %s: schemas must be self-contained", url)
}

// ValidationMessages flattens a validation error into one line per failing location, e.g.
// "/meta/dt: 'x' is not valid date-time", sorted. Other errors give their text.
func ValidationMessages(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []string{err.Error()}
	}
	var out []string
	seen := map[string]bool{}
	for _, u := range ve.BasicOutput().Errors {
		if u.Error == nil {
			continue
		}
		m := u.Error.String()
		if strings.HasPrefix(m, "validation failed") { // the summary unit: its causes are listed too
			continue
		}
		loc := u.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		m = loc + ": " + m
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		out = append(out, ve.Error())
	}
	sort.Strings(out)
	return out
}
