// Package safetext makes outside strings safe to store, print and export: it bounds their length, escapes
// what a terminal would interpret (control characters, escape sequences, bidirectional overrides, invalid
// UTF-8), redacts the credentials of URLs, and escapes the segments of a path put into one. Every string from
// a schema host, a gossip peer or an intake goes through it before it reaches an answer, a log line, a metric
// label or a terminal.
package safetext

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bound returns s if it is at most n bytes long; otherwise a prefix of s, cut at a character boundary, that
// says how long s was, the whole at most n bytes (n below 32 cuts without the note).
func Bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 0 {
		n = 0
	}
	note := "...(" + strconv.Itoa(len(s)) + " bytes)"
	cut := n - len(note)
	if cut < 0 || n < 32 {
		note, cut = "", n
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + note
}

// Escape returns s with every character a terminal could act on written as a Go escape (\x1b, \u202e):
// control characters, format characters such as bidirectional overrides, other non-printable runes, and
// bytes that are not UTF-8. Printable text, spaces included, is unchanged.
func Escape(s string) string {
	if Printable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// Printable reports whether s is valid UTF-8 of printable runes only (spaces included), which Escape leaves
// unchanged: no control or format character, nothing a terminal could act on.
func Printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// EscapePath escapes each "/"-separated segment of p (a title, "a/b c/", "a/b/1.0.0") for a URL path, and
// keeps the separators, a trailing one included: "?", "#" and "%" in a name stay in the path, and a name
// "a%2Fb" is fetched as a%252Fb, never as a/b.
func EscapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// Quote is strconv.Quote: a double-quoted Go string literal, safe on a terminal.
func Quote(s string) string { return strconv.Quote(s) }

// Clean is what an outside error or URL goes through before an operator sees it: its URLs' credentials shown
// as ***, escaped for terminals, and then bounded, so that the result is at most n bytes whatever it held.
func Clean(s string, n int) string { return Bound(Escape(RedactURL(s)), n) }

// Redacted is what replaces a URL's credentials.
const Redacted = "***"

// RedactURL replaces the user information of every URL in s (the part before '@' in "scheme://user:pass@host")
// with ***. It works on text that holds a URL too (an error message), and on URLs that do not parse.
func RedactURL(s string) string {
	var b strings.Builder
	rest := s
	changed := false
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		auth := rest[i+3:]
		end := strings.IndexAny(auth, "/?#\" \t\n'<>")
		if end < 0 {
			end = len(auth)
		}
		at := strings.LastIndex(auth[:end], "@")
		if at < 0 || auth[:at] == Redacted {
			b.WriteString(rest[:i+3])
			rest = auth
			continue
		}
		b.WriteString(rest[:i+3])
		b.WriteString(Redacted)
		rest = auth[at:]
		changed = true
	}
	if !changed {
		return s
	}
	b.WriteString(rest)
	return b.String()
}
