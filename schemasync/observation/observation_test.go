package observation

import (
	"testing"

	"github.com/evenkeel/evenkeel/schemasync/version"
)

// TestContentHash: the hash names content, not the order it was built in, tells apart contents that differ
// only in where a version sits, and is what ValidHash accepts.
func TestContentHash(t *testing.T) {
	v := version.MustParse
	a := map[string][]version.Version{"a/b": {v("1.0.0"), v("1.1.0")}, "c": {v("2.0.0")}}
	b := map[string][]version.Version{"c": {v("2.0.0")}, "a/b": {v("1.0.0"), v("1.1.0")}}
	moved := map[string][]version.Version{"a/b": {v("1.0.0")}, "c": {v("1.1.0"), v("2.0.0")}}
	joined := map[string][]version.Version{"a/b\x00c": {v("1.0.0")}}
	if ContentHash(a) != ContentHash(b) {
		t.Error("the same content built in another order hashes differently")
	}
	for name, other := range map[string]map[string][]version.Version{"a version moved to another title": moved,
		"titles joined": joined, "empty": nil} {
		if ContentHash(other) == ContentHash(a) {
			t.Errorf("%s: same hash", name)
		}
	}
	for _, h := range []string{ContentHash(a), ContentHash(nil)} {
		if !ValidHash(h) {
			t.Errorf("ValidHash(%q) = false", h)
		}
	}
	for _, h := range []string{"", "../../etc/passwd", ContentHash(a)[:31], ContentHash(a) + "0",
		"0123456789ABCDEF0123456789abcdef"} {
		if ValidHash(h) {
			t.Errorf("ValidHash(%q) = true", h)
		}
	}
}
