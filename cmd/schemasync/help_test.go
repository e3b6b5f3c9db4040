package main

import (
	"strings"
	"testing"
)

// TestEverySubcommandHelpAndBadFlags: every subcommand answers --help on stdout with examples and exit 0,
// and an unknown flag or a stray argument with exit 2 and nothing on stdout. On main, `keys generate --help`
// printed a new key instead, and `keys generate --nope` or `keys generate extra` exited 0 with a key.
func TestEverySubcommandHelpAndBadFlags(t *testing.T) {
	for _, cmd := range [][]string{{"serve"}, {"scan"}, {"check-config"}, {"state"}, {"members"}, {"keys"}, {"keys", "show"}, {"keys", "generate"}} {
		name := strings.Join(cmd, " ")
		t.Run(name, func(t *testing.T) {
			code, out, errs := runCmd(append(cmd, "--help")...)
			if code != 0 || !strings.Contains(out, "Example") || errs != "" {
				t.Fatalf("--help: exit %d, stdout %q, stderr %q", code, out, errs)
			}
			for _, bad := range [][]string{{"--nope"}, {"stray-argument"}} {
				if cmd[0] == "keys" && len(cmd) == 1 {
					continue // "keys <word>" names a subcommand: TestKeysUnknownSubcommand
				}
				code, out, errs := runCmd(append(cmd, bad...)...)
				if code != 2 || out != "" || errs == "" {
					t.Fatalf("%v: exit %d, stdout %q, stderr %q; want 2, a message on stderr only", bad, code, out, errs)
				}
			}
		})
	}
}

func TestKeysUnknownSubcommand(t *testing.T) {
	if code, out, errs := runCmd("keys", "rotate"); code != 2 || out != "" || !strings.Contains(errs, `unknown subcommand "rotate"`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
