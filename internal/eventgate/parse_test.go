package eventgate

import (
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		messages []string
		wantErr  string
	}{
		{
			name:     "eventgate 500",
			body:     `{"error":[{"status":"error","event":{},"context":{"message":"Failed loading schema at /a/1.2.0"}}]}`,
			messages: []string{"error: Failed loading schema at /a/1.2.0"},
		},
		{
			name:     "ajv errors as objects",
			body:     `{"invalid":[{"status":"invalid","context":{"errors":[{"instancePath":"/meta","message":"must have required property 'dt'"},{"dataPath":".x","message":"bad"}]}}],"error":[]}`,
			messages: []string{"invalid: /meta: must have required property 'dt'; .x: bad"},
		},
		{
			name:     "errorsText",
			body:     `{"invalid":[{"context":{"errorsText":"data/meta must have required property 'dt'"}}]}`,
			messages: []string{"invalid: data/meta must have required property 'dt'"},
		},
		{
			name:     "message with string errors",
			body:     `{"invalid":[{"context":{"message":"nope","errors":["a","b"]}}]}`,
			messages: []string{"invalid: nope: a; b"},
		},
		{
			name:     "no reason",
			body:     `{"invalid":[{}],"error":[{"context":{}}]}`,
			messages: []string{"invalid: no reason given", "error: no reason given"},
		},
		{name: "html", body: `<html>502 Bad Gateway</html>`, wantErr: "not an EventGate result"},
		{name: "empty object", body: `{}`, wantErr: "lists no invalid or failed event"},
		{name: "array", body: `[]`, wantErr: "not an EventGate result"},
		{name: "trailing data", body: `{"error":[{}]} {}`, wantErr: "trailing data"},
		{name: "wrong type", body: `{"error":"boom"}`, wantErr: "not an EventGate result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseResponse([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := r.Messages()
			if strings.Join(got, "\n") != strings.Join(tt.messages, "\n") {
				t.Fatalf("messages %q, want %q", got, tt.messages)
			}
		})
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`{"error":[{"context":{"message":"Failed loading schema at /a/1.2.0"}}]}`))
	f.Add([]byte(`{"invalid":[{"context":{"errors":[{"instancePath":"/x","message":"m"}, 3, "s"]}}],"error":[]}`))
	f.Add([]byte(`{"invalid":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseResponse(body)
		if err != nil {
			return
		}
		if len(r.Messages()) != len(r.Invalid)+len(r.Error) || len(r.Messages()) == 0 {
			t.Fatalf("messages %q for %d+%d entries", r.Messages(), len(r.Invalid), len(r.Error))
		}
	})
}

func TestDecodeDocument(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		check   func(t *testing.T, v any)
		wantErr string
	}{
		{
			name: "schemarepo yaml",
			doc:  string(schemarepo.Doc("a/b", "1.0.0", "f")),
			check: func(t *testing.T, v any) {
				m := v.(map[string]any)
				if m["$id"] != "/a/b/1.0.0" || len(m["examples"].([]any)) != 1 {
					t.Fatalf("decoded %v", m)
				}
			},
		},
		{name: "json", doc: `{"type":"object","maxLength":3}`, check: func(t *testing.T, v any) {
			if v.(map[string]any)["maxLength"].(interface{ String() string }).String() != "3" {
				t.Fatalf("decoded %v", v)
			}
		}},
		{name: "yaml numbers become json numbers", doc: "maxLength: 3\nx: 1.5\n", check: func(t *testing.T, v any) {
			if _, ok := v.(map[string]any)["maxLength"].(interface{ Int64() (int64, error) }); !ok {
				t.Fatalf("maxLength is %T", v.(map[string]any)["maxLength"])
			}
		}},
		{name: "yaml timestamp becomes a string", doc: "dt: 2020-04-02T19:11:20Z\n", check: func(t *testing.T, v any) {
			if s, ok := v.(map[string]any)["dt"].(string); !ok || !strings.HasPrefix(s, "2020-04-02T19:11:20") {
				t.Fatalf("dt is %#v", v.(map[string]any)["dt"])
			}
		}},
		{name: "non-string keys", doc: "1: a\ntrue: b\n", check: func(t *testing.T, v any) {
			if v.(map[string]any)["1"] != "a" {
				t.Fatalf("decoded %v", v)
			}
		}},
		{name: "empty", doc: "  \n", wantErr: "empty document"},
		{name: "garbage", doc: "{: [", wantErr: "neither JSON nor YAML"},
		{name: "infinity", doc: "x: .inf\n", wantErr: "cannot represent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := DecodeDocument([]byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, v)
		})
	}
}

func FuzzDecodeDocument(f *testing.F) {
	f.Add(schemarepo.Doc("a/b", "1.0.0", "f"))
	f.Add([]byte(`{"a":[1,2,{"b":null}]}`))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		v, err := DecodeDocument(doc)
		if err != nil {
			return
		}
		if size, depth := measure(v); size > MaxNodes || depth > MaxDepth {
			t.Fatalf("decoded %d values %d levels deep, beyond the bounds", size, depth)
		}
		// Whatever decodes must compile or fail cleanly, never panic.
		_, _ = Compile("http://fuzz.invalid/s", v)
	})
}

func TestCompileNeverLoadsRemoteReferences(t *testing.T) {
	doc, err := DecodeDocument([]byte(`{"$schema":"http://json-schema.org/draft-07/schema#","$ref":"http://127.0.0.1:1/other"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile("http://h/a/1.0.0", doc); err == nil || !strings.Contains(err.Error(), "self-contained") {
		t.Fatalf("err = %v", err)
	}
	// The https draft-07 meta-schema is embedded: compiling needs no network.
	doc, _ = DecodeDocument(schemarepo.Doc("a/b", "1.0.0"))
	if _, err := Compile("http://127.0.0.1:1/a/b/1.0.0", doc); err != nil {
		t.Fatal(err)
	}
}

func TestValidationMessages(t *testing.T) {
	doc, _ := DecodeDocument(schemarepo.Doc("a/b", "1.0.0", "f"))
	s, err := Compile("http://h/a/b/1.0.0", doc)
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := DecodeDocument([]byte(`{"$schema":"/a/b/1.0.0","meta":{"stream":"s"},"f":1,"g":"x"}`))
	got := strings.Join(ValidationMessages(s.Validate(ev)), "\n")
	for _, want := range []string{"/: additional properties 'g' not allowed", "/f: got number, want string", "/meta: missing property 'dt'"} {
		if !strings.Contains(got, want) {
			t.Errorf("messages lack %q:\n%s", want, got)
		}
	}
}

// measure returns the values v holds and how deeply its objects and arrays nest.
func measure(v any) (size, depth int) {
	var kids []any
	switch t := v.(type) {
	case map[string]any:
		for _, e := range t {
			kids = append(kids, e)
		}
	case []any:
		kids = t
	default:
		return 1, 0
	}
	size = 1
	for _, k := range kids {
		s, d := measure(k)
		size += s
		depth = max(depth, d)
	}
	return size, depth + 1
}
