package schemasync

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nginxSample is nginx 1.22's JSON autoindex of a title directory: a version, a dangling symlink and a subdirectory.
const nginxSample = `[
{ "name":"1.0.0", "type":"file", "mtime":"Sun, 22 Nov 2026 07:37:43 GMT", "size":11 },
{ "name":"2.0.0", "type":"other", "mtime":"Sun, 22 Nov 2026 07:37:43 GMT" },
{ "name":"sub", "type":"directory", "mtime":"Sun, 22 Nov 2026 07:37:43 GMT" }
]
`

var sampleMTime = time.Date(2026, 11, 22, 7, 37, 43, 0, time.UTC)

func TestParseListing(t *testing.T) {
	entry := func(name string, typ EntryType, size int64) Entry {
		return Entry{Name: name, Type: typ, MTime: sampleMTime, Size: size}
	}
	const mt = `"mtime":"Sun, 22 Nov 2026 07:37:43 GMT"`
	tests := []struct {
		name    string
		in      string
		want    []Entry // when wantErr is empty
		wantErr string  // a substring of the error
	}{
		{"nginx 1.22", nginxSample, []Entry{
			entry("1.0.0", TypeFile, 11), entry("2.0.0", TypeOther, 0), entry("sub", TypeDirectory, 0)}, ""},
		{"CRLF line ends", strings.ReplaceAll(nginxSample, "\n", "\r\n"), []Entry{
			entry("1.0.0", TypeFile, 11), entry("2.0.0", TypeOther, 0), entry("sub", TypeDirectory, 0)}, ""},
		{"empty array", "[]", []Entry{}, ""},
		{"empty nginx listing", "[\r\n]\r\n", []Entry{}, ""},
		{"trailing whitespace", "[] \n\t\r\n", []Entry{}, ""},
		{"no mtime", `[{"name":"a","type":"file","size":1}]`, []Entry{{Name: "a", Type: TypeFile, Size: 1}}, ""},
		{"zero size", `[{"name":"a","type":"file",` + mt + `,"size":0}]`, []Entry{entry("a", TypeFile, 0)}, ""},
		{"escaped quote and backslash", `[{"name":"we\"ird\\name","type":"file",` + mt + `,"size":1}]`,
			[]Entry{entry(`we"ird\name`, TypeFile, 1)}, ""},
		{"unicode escape", `[{"name":"\u00fcber.md","type":"file",` + mt + `,"size":1}]`,
			[]Entry{entry("über.md", TypeFile, 1)}, ""},
		{"raw UTF-8", `[{"name":"ünï.txt","type":"file",` + mt + `,"size":1}]`, []Entry{entry("ünï.txt", TypeFile, 1)}, ""},
		{"dot file", `[{"name":".git","type":"directory",` + mt + `}]`, []Entry{entry(".git", TypeDirectory, 0)}, ""},
		{"unknown fields ignored", `[{"name":"a","type":"file",` + mt + `,"size":1,"x":[1]}]`,
			[]Entry{entry("a", TypeFile, 1)}, ""},

		{"empty input", "", nil, "EOF"},
		{"null", "null", nil, "not a JSON array"},
		{"object", `{"name":"a","type":"file"}`, nil, "malformed"},
		{"string", `"[]"`, nil, "malformed"},
		{"number", `0`, nil, "malformed"},
		{"HTML page", "<html>\r\n<head><title>Index of /</title></head>\r\n<body>\r\n<h1>Index of /</h1><hr><pre>" +
			"<a href=\"../\">../</a>\r\n</pre><hr></body>\r\n</html>\r\n", nil, "malformed"},
		{"HTML error page", "<html><head><title>502 Bad Gateway</title></head></html>", nil, "malformed"},
		{"truncated", `[{"name":"a","type":"file"`, nil, "malformed"},
		{"trailing garbage", "[] x", nil, "after the array"},
		{"trailing second array", "[][]", nil, "after the array"},
		{"trailing object", `[]{"name":"a"}`, nil, "after the array"},
		{"trailing close bracket", "[]]", nil, "after the array"},
		{"trailing close brace", `[{"name":"a","type":"file"}]}`, nil, "after the array"},
		{"trailing comma", `[{"name":"a","type":"file"},]`, nil, "malformed"},
		{"null entry", `[null]`, nil, "no name"},
		{"missing name", `[{"type":"file",` + mt + `}]`, nil, "no name"},
		{"null name", `[{"name":null,"type":"file"}]`, nil, "no name"},
		{"numeric name", `[{"name":1,"type":"file"}]`, nil, "malformed"},
		{"empty name", `[{"name":"","type":"file"}]`, nil, "invalid name"},
		{"dot", `[{"name":".","type":"directory"}]`, nil, "invalid name"},
		{"dot dot", `[{"name":"..","type":"directory"}]`, nil, "invalid name"},
		{"slash", `[{"name":"a/b","type":"file"}]`, nil, "invalid name"},
		{"escaped slash", `[{"name":"a\/b","type":"file"}]`, nil, "invalid name"},
		{"leading slash", `[{"name":"/etc","type":"directory"}]`, nil, "invalid name"},
		{"NUL", `[{"name":"a\u0000b","type":"file"}]`, nil, "invalid name"},
		{"unknown type", `[{"name":"a","type":"symlink",` + mt + `}]`, nil, "unknown type"},
		{"missing type", `[{"name":"a",` + mt + `}]`, nil, "unknown type"},
		{"type case", `[{"name":"a","type":"File",` + mt + `}]`, nil, "unknown type"},
		{"duplicate names", `[{"name":"a","type":"file"},{"name":"a","type":"directory"}]`, nil, "duplicate"},
		{"duplicate via escape", `[{"name":"a","type":"file"},{"name":"\u0061","type":"file"}]`, nil, "duplicate"},
		{"bad mtime", `[{"name":"a","type":"file","mtime":"yesterday"}]`, nil, "invalid mtime"},
		{"RFC 3339 mtime", `[{"name":"a","type":"file","mtime":"2026-11-22T07:37:43Z"}]`, nil, "invalid mtime"},
		{"numeric mtime", `[{"name":"a","type":"file","mtime":1700000000}]`, nil, "malformed"},
		{"negative size", `[{"name":"a","type":"file",` + mt + `,"size":-1}]`, nil, "negative size"},
		{"fractional size", `[{"name":"a","type":"file","size":1.5}]`, nil, "malformed"},
		{"string size", `[{"name":"a","type":"file","size":"1"}]`, nil, "malformed"},
		{"huge size", `[{"name":"a","type":"file","size":99999999999999999999}]`, nil, "malformed"},
		{"array of arrays", `[[]]`, nil, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseListing([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseListing(%q) = %+v, want an error containing %q", tt.in, got, tt.wantErr)
				}
				if !errors.Is(err, ErrMalformedListing) {
					t.Fatalf("error %v does not wrap ErrMalformedListing", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				if got != nil {
					t.Fatalf("ParseListing returned entries %+v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseListing(%q): %v", tt.in, err)
			}
			assertEntries(t, got, tt.want)
		})
	}
}

func assertEntries(t *testing.T, got, want []Entry) {
	t.Helper()
	if got == nil {
		t.Fatal("ParseListing returned nil entries without an error")
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Type != want[i].Type || got[i].Size != want[i].Size ||
			!got[i].MTime.Equal(want[i].MTime) {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestParseListingFixtures parses listings captured from real nginx 1.22.1 (see testdata/listing/README.md).
func TestParseListingFixtures(t *testing.T) {
	e := func(name string, typ EntryType, size int64) Entry {
		return Entry{Name: name, Type: typ, MTime: sampleMTime, Size: size}
	}
	tests := []struct {
		file string
		want []Entry
	}{
		{"nginx-1.22-title.json", []Entry{
			e("sub", TypeDirectory, 0),
			e("1.0.0", TypeFile, 9),
			e("1.0.0.yaml", TypeFile, 9),
			e("2.0.0", TypeOther, 0),
			e(`back\slash`, TypeFile, 2),
			e("current.yaml", TypeFile, 9),
			e("latest", TypeFile, 9),
			e("latest.yaml", TypeFile, 9),
			e(`we"ird name&<>.md`, TypeFile, 3),
			e("ünïcödé.txt", TypeFile, 2),
		}},
		{"nginx-1.22-root.json", []Entry{e("t", TypeDirectory, 0)}},
		{"nginx-1.22-empty.json", []Entry{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "listing", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "\r\n") {
				t.Fatalf("fixture %s lost nginx's CRLF line ends", tt.file)
			}
			got, err := ParseListing(data)
			if err != nil {
				t.Fatal(err)
			}
			assertEntries(t, got, tt.want)
		})
	}
}

func FuzzParseListing(f *testing.F) {
	f.Add([]byte(nginxSample))
	f.Add([]byte("[]"))
	f.Add([]byte("null"))
	f.Add([]byte(`[{"name":"a","type":"file"},{"name":"a","type":"file"}]`))
	f.Add([]byte(`[{"name":"a\/b","type":"file","size":-1}]`))
	f.Add([]byte("<html></html>"))
	f.Add([]byte("[] x"))
	if files, err := filepath.Glob(filepath.Join("testdata", "listing", "*.json")); err == nil {
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseListing(data)
		if err != nil {
			if entries != nil {
				t.Fatalf("entries %+v returned with error %v", entries, err)
			}
			if !errors.Is(err, ErrMalformedListing) {
				t.Fatalf("error %v does not wrap ErrMalformedListing", err)
			}
			return
		}
		if entries == nil {
			t.Fatal("nil entries without an error")
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
				t.Fatalf("accepted invalid name %q", e.Name)
			}
			if seen[e.Name] {
				t.Fatalf("accepted duplicate name %q", e.Name)
			}
			seen[e.Name] = true
			switch e.Type {
			case TypeFile, TypeDirectory, TypeOther:
			default:
				t.Fatalf("accepted unknown type %q", e.Type)
			}
			if e.Size < 0 {
				t.Fatalf("accepted negative size %d", e.Size)
			}
		}
	})
}
