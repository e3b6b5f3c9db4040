package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestWriteJSONEscapesNonPrintable: --json output holds no rune a terminal acts on or reorders (encoding/json
// escapes only C0 controls, U+2028 and U+2029), and decodes to the same value. On main, U+202E and U+009B
// were written raw.
func TestWriteJSONEscapesNonPrintable(t *testing.T) {
	in := map[string]any{"s": "a\x1b[2J\u202eb\u009b2J\u200bc\U000E0001d é 中 \u00a0", "k\u202e": 1}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, in); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, r := range []string{"\x1b", "\u202e", "\u009b", "\u200b", "\U000E0001"} {
		if strings.Contains(out, r) {
			t.Errorf("%q written raw:\n%s", r, out)
		}
	}
	if !strings.Contains(out, "é 中") {
		t.Errorf("printable text changed:\n%s", out)
	}
	var back map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back["s"] != in["s"] || back["k\u202e"] != 1.0 {
		t.Fatalf("round trip: %v, %#v", err, back)
	}
}
