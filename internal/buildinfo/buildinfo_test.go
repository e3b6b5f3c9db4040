package buildinfo

import (
	"os"
	"strings"
	"testing"
)

// TestMakefileStampsThisVariable keeps make build's -X flag pointed at the variable Version reads: a -X that
// names a variable that does not exist is silently ignored by the linker, and every binary would say "devel".
func TestMakefileStampsThisVariable(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "-X github.com/evenkeel/evenkeel/internal/buildinfo.version=") {
		t.Fatal("Makefile's LDFLAGS must set github.com/evenkeel/evenkeel/internal/buildinfo.version")
	}
}
