package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBound(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "abc", 10, "abc"},
		{"exact", "abcd", 4, "abcd"},
		{"tiny bound", "abcdef", 3, "abc"},
		{"with note", strings.Repeat("x", 100), 40, strings.Repeat("x", 25) + "...(100 bytes)"},
		{"rune boundary", "é" + strings.Repeat("é", 40), 33, "é" + "...(82 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Bound(tt.in, tt.n)
			if len(got) > tt.n || !utf8.ValidString(got) {
				t.Fatalf("Bound = %q: longer than %d or not UTF-8", got, tt.n)
			}
			if !strings.HasPrefix(tt.want, got[:min(len(got), 2)]) {
				t.Fatalf("Bound = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "mediawiki/page change", "mediawiki/page change"},
		{"unicode text", "título", "título"},
		{"ANSI clear screen", "a\x1b[2Jb", `a\x1b[2Jb`},
		{"OSC title", "\x1b]0;owned\x07", `\x1b]0;owned\a`},
		{"newline", "a\nb", `a\nb`},
		{"bidi override", "abc\u202edef", `abc\u202edef`},
		{"invalid UTF-8", "a\xffb", `a\xffb`},
		{"C1 control", "a\u009bb", `a\u009bb`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Escape(tt.in); got != tt.want {
				t.Fatalf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no credentials", "http://h:80/a/", "http://h:80/a/"},
		{"user and password", "http://u:secret@h/a/", "http://***@h/a/"},
		{"user only", "https://token@h/", "https://***@h/"},
		{"in an error", `Get "http://u:p@h/x": refused`, `Get "http://***@h/x": refused`},
		{"two URLs", "http://a:b@x/ and http://c:d@y", "http://***@x/ and http://***@y"},
		{"already redacted", "http://***@h/", "http://***@h/"},
		{"@ in the path", "http://h/a@b", "http://h/a@b"},
		{"unparseable", "http://u:p@[::1/", "http://***@[::1/"},
		{"password with @", "http://u:p@ss@h/", "http://***@h/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactURL(tt.in); got != tt.want {
				t.Fatalf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"http://u:p@h/", "x://@", "://a@b", "http://h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := RedactURL(s)
		if strings.Contains(s, "://u:p@") && strings.Contains(out, "u:p@") {
			t.Fatalf("credentials kept: %q", out)
		}
		if e := Escape(s); strings.ContainsAny(e, "\x1b\x07\n\r") {
			t.Fatalf("Escape left a control character: %q", e)
		}
		if b := Bound(s, 40); len(b) > 40 {
			t.Fatalf("Bound too long: %d", len(b))
		}
	})
}

func TestEscapePath(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"plain title", "mediawiki/page/change", "mediawiki/page/change"},
		{"directory keeps its slash", "a/b c/", "a/b%20c/"},
		{"version file", "a/b/1.0.0", "a/b/1.0.0"},
		{"query and fragment stay in the path", "a?x=1/b#c", "a%3Fx=1/b%23c"},
		{"an escaped slash is a name, not a separator", "a%2Fb/c", "a%252Fb/c"},
		{"dot segments pass through: callers reject them", "a/../b", "a/../b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EscapePath(tc.in); got != tc.want {
				t.Fatalf("EscapePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestClean: whatever an error holds (a URL's password, escape sequences, invalid UTF-8, any length), Clean
// shows no password and nothing a terminal acts on, in at most n bytes: the bound holds after escaping,
// which makes each control byte four.
func TestClean(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
	}{
		{"password in a URL", "GET http://u:hunter2@host/x: refused", 200},
		{"escape sequences beyond the bound", strings.Repeat("\x1b[2J", 500), 100},
		{"invalid UTF-8", strings.Repeat("\xff", 300), 64},
		{"short and clean", "connection refused", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Clean(tc.in, tc.n)
			if len(got) > tc.n {
				t.Errorf("%d bytes, bound %d: %q", len(got), tc.n, got)
			}
			if strings.Contains(got, "hunter2") || !Printable(got) {
				t.Errorf("not clean: %q", got)
			}
			if tc.name == "short and clean" && got != tc.in {
				t.Errorf("changed clean text: %q", got)
			}
		})
	}
}
