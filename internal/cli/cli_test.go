package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestParseHelpPrintsUsageOnce: -h and --help print the usage exactly once, on stdout, and exit 0; a flag error
// prints the error and the usage once, on stderr, and exits 2.
func TestParseHelpPrintsUsageOnce(t *testing.T) {
	const usage = "Usage: prog sub --config FILE\n\nExamples:\n  prog sub --config x.yml\n"
	for _, tc := range []struct {
		name         string
		args         []string
		wantCode     int
		wantDone     bool
		stdoutUsages int
		stderrUsages int
		stderrHas    string
	}{
		{name: "-h", args: []string{"-h"}, wantCode: ExitOK, wantDone: true, stdoutUsages: 1},
		{name: "--help", args: []string{"--help"}, wantCode: ExitOK, wantDone: true, stdoutUsages: 1},
		{name: "-help after a flag", args: []string{"--config", "x", "-help"}, wantCode: ExitOK, wantDone: true, stdoutUsages: 1},
		{name: "unknown flag", args: []string{"--colour"}, wantCode: ExitUsage, wantDone: true, stderrUsages: 1, stderrHas: "flag provided but not defined: -colour"},
		{name: "missing value", args: []string{"--config"}, wantCode: ExitUsage, wantDone: true, stderrUsages: 1, stderrHas: "flag needs an argument: -config"},
		{name: "stray argument", args: []string{"extra"}, wantCode: ExitUsage, wantDone: true, stderrHas: "prog sub: unexpected arguments: extra"},
		{name: "ok", args: []string{"--config", "x"}, wantCode: ExitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			fs := NewFlagSet("prog sub", usage, &stderr)
			fs.String("config", "", "config file")
			done, code := Parse(fs, tc.args, &stdout)
			if done != tc.wantDone || code != tc.wantCode {
				t.Fatalf("done %v code %d, want %v %d", done, code, tc.wantDone, tc.wantCode)
			}
			if n := strings.Count(stdout.String(), "Usage: prog sub"); n != tc.stdoutUsages {
				t.Errorf("stdout has the usage %d times, want %d:\n%s", n, tc.stdoutUsages, stdout.String())
			}
			if n := strings.Count(stderr.String(), "Usage: prog sub"); n != tc.stderrUsages {
				t.Errorf("stderr has the usage %d times, want %d:\n%s", n, tc.stderrUsages, stderr.String())
			}
			if tc.stdoutUsages > 0 && !strings.Contains(stdout.String(), "-config string") {
				t.Errorf("help lacks the flags:\n%s", stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderrHas, stderr.String())
			}
			// The FlagSet still writes to stderr afterwards (a command may report more errors through it).
			if fs.Output() != &stderr {
				t.Errorf("the FlagSet's output was not restored")
			}
		})
	}
}
