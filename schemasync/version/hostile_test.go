package version

import (
	"errors"
	"strings"
	"testing"
)

// TestParseHostile: what a host or a node may call a version, and what the error says about it: the error
// quotes the input escaped and bounded, whatever its size. On main, a 1 MiB "version" was quoted whole.
func TestParseHostile(t *testing.T) {
	for _, in := range []string{
		"1.2.3-rc1", "1.2.3+build", "1.2.3\n", "\t1.2.3", "1.2.-3", "1.2.3.", ".1.2.3", "1e3.0.0", "0x1.0.0",
		"١.٢.٣", "１.２.３", "1.2.3\x00", "18446744073709551616.0.0", "99999999999999999999999.1.1",
		"1.2.\x1b[2J", strings.Repeat("1", 1<<20) + ".0.0", strings.Repeat("1.", 1<<19) + "1",
	} {
		_, err := Parse(in)
		if !errors.Is(err, ErrBad) {
			t.Errorf("Parse(%.40q) = %v, want ErrBad", in, err)
			continue
		}
		if msg := err.Error(); len(msg) > 200 || strings.ContainsAny(msg, "\x00\x1b\n\t") {
			t.Errorf("Parse(%.40q): error unbounded (%d bytes) or not escaped: %.200q", in, len(msg), msg)
		}
	}
}
