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

// TestBadFlagValues: a flag value that means nothing is a usage error (exit 2, nothing on stdout), with a
// valid config, so that the value is what is refused. (Held on main, but for --node values, see
// TestMembersHostileNode.)
func TestBadFlagValues(t *testing.T) {
	_, eps := hosts(t, 1)
	cfg := writeConfig(t, "127.0.0.1:0", eps)
	for _, args := range [][]string{
		{"scan", "--config", cfg, "--timeout", "0"},
		{"scan", "--config", cfg, "--timeout", "-1s"},
		{"scan", "--config", cfg, "--timeout", "soon"},
		{"serve", "--config", cfg, "--log-level", "loud"},
		{"serve", "--config", cfg, "--log-format", "xml"},
		{"state", "--node", "ftp://x"},
		{"state", "--node", "http://"},
		{"members", "--node", "not a url"},
		{"keys", "show", "--keyring", ""},
	} {
		code, out, errs := runCmd(args...)
		if code != 2 || out != "" || errs == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2", args, code, out, errs)
		}
	}
}
