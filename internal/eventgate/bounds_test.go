package eventgate

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestDecodeDocumentBounds: a document that would cost far more memory or CPU than its size suggests is
// refused before it is decoded (too many nodes) or before it is compiled (too deep, too many nodes after
// YAML aliases), with an error wrapping ErrTooComplex, and the refusal itself allocates little. On main, a
// 16 MiB YAML sequence of small items allocated 3 GiB while decoding, and a JSON schema nested 5,000 levels
// deep decoded fine and then took 34 s and 169 GB of allocations to compile.
func TestDecodeDocumentBounds(t *testing.T) {
	aliases := "a: &a [" + strings.Repeat("0,", 999) + "0]\nb: [" + strings.Repeat("*a,", 299) + "*a]\n"
	tests := []struct {
		name, doc, errHas string
	}{
		{"16 MiB yaml sequence", "a:\n" + strings.Repeat("- 0\n", 4<<20), "nodes"},
		{"16 MiB json array", "[" + strings.Repeat("0,", 8<<20) + "0]", "nodes"},
		{"16 MiB yaml flow sequence", "a: [" + strings.Repeat("0,", 8<<20) + "0]\n", "nodes"},
		{"json nested 5000 levels", strings.Repeat(`{"not":`, 5000) + "{}" + strings.Repeat("}", 5000), "deeper"},
		{"json nested past the bound", strings.Repeat(`[`, MaxDepth+1) + strings.Repeat("]", MaxDepth+1), "deeper"},
		{"yaml nested past the bound", strings.Repeat(`[`, MaxDepth+1) + strings.Repeat("]", MaxDepth+1) + "\n", "deeper"},
		{"yaml block nesting past the bound", nestedBlock(MaxDepth + 1), "deeper"},
		{"yaml aliases expand past the bound", aliases, "nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			_, err := DecodeDocument([]byte(tt.doc))
			runtime.ReadMemStats(&m1)
			if !errors.Is(err, ErrTooComplex) || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err = %v, want ErrTooComplex saying %q", err, tt.errHas)
			}
			if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 64<<20 {
				t.Fatalf("refusing a %d-byte document allocated %d MiB", len(tt.doc), alloc>>20)
			}
		})
	}
	// At the bounds, documents still decode.
	for _, doc := range []string{
		strings.Repeat(`[`, MaxDepth) + strings.Repeat("]", MaxDepth),
		nestedBlock(MaxDepth),
		"a: &a [0, 1]\nb: [*a, *a]\n",
	} {
		if _, err := DecodeDocument([]byte(doc)); err != nil {
			t.Errorf("%.60q: %v", doc, err)
		}
	}
}

// nestedBlock is a YAML block mapping nested depth levels deep (the innermost value a scalar).
func nestedBlock(depth int) string {
	var b strings.Builder
	for i := 0; i < depth-1; i++ {
		b.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	b.WriteString(strings.Repeat(" ", depth-1) + "k: v\n")
	return b.String()
}
