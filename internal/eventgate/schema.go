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

// DecodeDocument decodes a schema or event document served as JSON or YAML (the extensionless X.Y.Z file is
// YAML) into the values jsonschema validates: map[string]any, []any, string, bool, nil and json.Number.
// A document that is not a single JSON or YAML value is an error.
func DecodeDocument(b []byte) (any, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, errors.New("empty document")
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		if v, err := jsonschema.UnmarshalJSON(bytes.NewReader(trimmed)); err == nil {
			return v, nil
		}
	}
	var y any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&y); err != nil {
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

// normalize turns YAML values into JSON-compatible ones: mapping keys become strings, timestamps RFC 3339.
func normalize(v any, depth int) (any, error) {
	if depth > 200 {
		return nil, errors.New("document nests deeper than 200 levels")
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
			m[fmt.Sprint(k)] = n
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
