package observation

import (
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/schemasync/version"
)

func TestValidTitle(t *testing.T) {
	tests := []struct {
		name, title string
		want        bool
	}{
		{"one segment", "test", true},
		{"nested", "analytics/mediawiki/structured_task/article/link_suggestion_interaction", true},
		{"escape (the scanner skips such a directory)", "a/\x1b[2J", false},
		{"bidirectional override", "a/\u202eb", false},
		{"not UTF-8", "a/\xff", false},
		{"space and unicode letters", "a b/é", true},
		{"at the bound", strings.Repeat("a", MaxTitleBytes), true},
		{"past the bound", strings.Repeat("a", MaxTitleBytes+1), false},
		{"empty", "", false},
		{"empty segment", "a//b", false},
		{"leading slash", "/a", false},
		{"trailing slash", "a/", false},
		{"dot", "a/./b", false},
		{"dot dot", "a/../b", false},
		{"NUL", "a\x00b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidTitle(tt.title); got != tt.want {
				t.Fatalf("ValidTitle(%q) = %v, want %v", tt.title, got, tt.want)
			}
		})
	}
}

func TestCheckContent(t *testing.T) {
	v := version.MustParse
	tests := []struct {
		name    string
		content map[string][]version.Version
		ok      bool
	}{
		{"none", nil, true},
		{"ascending", map[string][]version.Version{"a/x": {v("1.0.0"), v("1.10.0"), v("2.0.0")}}, true},
		{"a title without versions", map[string][]version.Version{"a/x": {}}, true},
		{"descending", map[string][]version.Version{"a/x": {v("1.10.0"), v("1.9.0")}}, false},
		{"twice", map[string][]version.Version{"a/x": {v("1.0.0"), v("1.0.0")}}, false},
		{"bad title", map[string][]version.Version{"a/../x": {v("1.0.0")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckContent(tt.content); (err == nil) != tt.ok {
				t.Fatalf("CheckContent = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// FuzzValidTitle: a valid title is within the bound, holds no NUL, and has no empty, "." or ".." segment; so
// ContentHash's NUL separator cannot occur inside one.
func FuzzValidTitle(f *testing.F) {
	for _, s := range []string{"a/b", "a//b", "a/../b", "a\x00b", "/", ".", strings.Repeat("x/", 3000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidTitle(s) {
			return
		}
		if len(s) > MaxTitleBytes || strings.Contains(s, "\x00") {
			t.Fatalf("ValidTitle(%q)", s)
		}
		for _, seg := range strings.Split(s, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("ValidTitle(%q): segment %q", s, seg)
			}
		}
	})
}
