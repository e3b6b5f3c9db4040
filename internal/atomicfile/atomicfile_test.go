package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.cnf")
	if err := Write(p, 0o644, func(w io.Writer) error { _, err := io.WriteString(w, "one\n"); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := Write(p, 0o644, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "one\n" {
		t.Fatalf("after a failed write: %q", b)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".f.cnf.tmp-*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, path, err string
	}{
		{"new file in a writable directory", filepath.Join(dir, "x.cnf"), ""},
		{"the target is a directory", dir, "is a directory"},
		{"missing directory", filepath.Join(dir, "missing", "x.cnf"), "cannot write"},
		{"a directory nobody may write, root included", "/proc/x.cnf", "cannot write"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckWritable(c.path)
			if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
		})
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the probe left %v", left)
	}
}
