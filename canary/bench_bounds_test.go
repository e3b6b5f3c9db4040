package canary

import (
	"fmt"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/internal/eventgate"
)

// worstSchema is the costliest schema to compile found within the shape bounds: as many sibling subschemas as
// the node bound allows, each nested levels deep (levels 1 is the worst found; deeper chains cost more each,
// but fewer fit).
func worstSchema(levels int) []byte {
	chain := strings.Repeat(`{"properties":{"a":`, levels) + "{}" + strings.Repeat("}}", levels)
	var b strings.Builder
	b.WriteString(`{"properties":{`)
	seps := func(s string) int { // what eventgate counts before decoding
		n := 0
		for _, c := range []byte(s) {
			if strings.IndexByte(",:-[{\n", c) >= 0 {
				n++
			}
		}
		return n
	}
	total := seps(b.String())
	for n := 0; ; n++ {
		next := fmt.Sprintf(`,"p%d":%s`, n, chain)
		if n == 0 {
			next = next[1:]
		}
		if total+seps(next) > eventgate.MaxNodes {
			break
		}
		total += seps(next)
		b.WriteString(next)
	}
	b.WriteString("}}")
	return []byte(b.String())
}

// BenchmarkSchemaAtBounds: what a hostile schema host can make the canary spend on one schema version within
// the shape bounds (decode and compile; a compiled version is cached, so this is once per version).
func BenchmarkSchemaAtBounds(b *testing.B) {
	for _, levels := range []int{1, 8, 30} {
		doc := worstSchema(levels)
		b.Run(fmt.Sprintf("levels=%d/bytes=%d", levels, len(doc)), func(b *testing.B) {
			for b.Loop() {
				v, err := eventgate.DecodeDocument(doc)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := eventgate.Compile("https://schema.canary.invalid/x/1.0.0", v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
