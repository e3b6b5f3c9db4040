package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleConfigs keeps examples/schemasync valid: check-config must accept every example from the
// repository root, as the README tells users to run it (the cluster examples name their keyring by a path
// relative to the root).
func TestExampleConfigs(t *testing.T) {
	t.Chdir("../..")
	files, err := filepath.Glob("examples/schemasync/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("examples/schemasync/cluster/node*.yml")
	files = append(files, more...)
	if len(files) < 4 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"check-config", "--config", f}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if !strings.Contains(stdout.String(), ": OK: node ") {
				t.Fatalf("stdout:\n%s", stdout.String())
			}
		})
	}
}
