package main

import (
	"bytes"
	"context"
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
