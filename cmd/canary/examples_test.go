package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestExampleConfigs keeps examples/canary valid: check-config must accept every example, from the repository
// root, as the README tells users to run it.
func TestExampleConfigs(t *testing.T) {
	t.Chdir("../..")
	for _, tc := range []struct {
		file    string
		streams int
	}{
		{"examples/canary/canary.yml", 2},
		{"examples/canary/canary-streamconfig.yml", 2},
		{"examples/canary/local.yml", 2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"check-config", "--config", tc.file}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if !strings.Contains(stdout.String(), "ok, version source safe,") || strings.Contains(stdout.String(), "PROBLEM") {
				t.Fatalf("stdout:\n%s", stdout.String())
			}
			if n := strings.Count(stdout.String(), " -> "); n != tc.streams {
				t.Fatalf("%d streams, want %d:\n%s", n, tc.streams, stdout.String())
			}
		})
	}
}

// TestServiceUnitHasNoPrecheck: the systemd unit must not gate the run on check-config. check-config exits
// non-zero when one stream cannot run or the stream config is briefly unreachable, and as ExecStartPre that
// would skip every stream; run validates the config itself and fails only the streams that cannot run.
func TestServiceUnitHasNoPrecheck(t *testing.T) {
	data, err := os.ReadFile("../../examples/canary/canary.service")
	if err != nil {
		t.Fatal(err)
	}
	var execStart []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "ExecStartPre=") || strings.HasPrefix(line, "ExecCondition=") {
			t.Errorf("the unit gates the run: %s", line)
		}
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
	}
	if len(execStart) < 2 || execStart[1] != "run" {
		t.Fatalf("ExecStart = %q, want canary run ...", execStart)
	}
}

// TestREADMEMatchesCode checks claims of the README's canary section that the code decides: the step an example
// without meta fails at (canary.ErrNoMeta is returned by BuildEvent, at StepBuild), the shape of --json, and
// check-config's exit codes.
func TestREADMEMatchesCode(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "## canary: ")
	if start < 0 {
		t.Fatal("no canary section")
	}
	section := readme[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	flat := strings.Join(strings.Fields(section), " ")
	_, build, _ := strings.Cut(flat, "`build-event` (")
	build, _, _ = strings.Cut(build, ")")
	_, validate, _ := strings.Cut(flat, "`validate` (")
	validate, _, _ = strings.Cut(validate, ")")
	if !strings.Contains(build, "without `meta`") || strings.Contains(validate, "meta") {
		t.Errorf("README: build-event (%s), validate (%s): an example without meta fails at build-event", build, validate)
	}
	if !strings.Contains(flat, "--json # a JSON array") {
		t.Errorf("README: run --json prints a JSON array")
	}
	if !strings.Contains(flat, "It exits 0 when the config and every stream are fine; 1 when") {
		t.Errorf("README: check-config's exit codes are not documented")
	}
}
