package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEverySubcommandHelpAndBadFlags: every canary subcommand answers --help on stdout with examples and
// exit 0, and an unknown flag, a stray argument or a flag value that means nothing with exit 2 and nothing on
// stdout.
func TestEverySubcommandHelpAndBadFlags(t *testing.T) {
	runCanary := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := run(context.Background(), args, &out, &errs)
		return code, out.String(), errs.String()
	}
	configFor, _ := world(t)
	cfg := writeConfig(t, configFor("streams:\n  - {name: test.event, schema_title: test/event, destinations: [INTAKE]}\n"))
	if code, out, errs := runCanary("check-config", "--config", cfg); code != 0 {
		t.Fatalf("the config itself is not valid: exit %d\n%s%s", code, out, errs)
	}
	for _, cmd := range []string{"run", "check-config"} {
		t.Run(cmd, func(t *testing.T) {
			code, out, errs := runCanary(cmd, "--help")
			if code != 0 || !strings.Contains(out, "Example") || errs != "" {
				t.Fatalf("--help: exit %d, stdout %q, stderr %q", code, out, errs)
			}
			bads := [][]string{{"--nope"}, {"--config", cfg, "stray"}, {"--config", cfg, "--log-level", "loud"}, {"--config", cfg, "--log-format", "xml"}}
			if cmd == "run" {
				bads = append(bads, []string{"--config", cfg, "--version-source", "newest"}, []string{"--config", cfg, "--textfile", "metrics.txt"},
					[]string{"--config", cfg, "--pushgateway", "not a url"})
			}
			for _, bad := range bads {
				code, out, errs := runCanary(append([]string{cmd}, bad...)...)
				if code != 2 || out != "" || errs == "" {
					t.Fatalf("%v: exit %d, stdout %q, stderr %q; want 2, a message on stderr only", bad, code, out, errs)
				}
			}
		})
	}
}
