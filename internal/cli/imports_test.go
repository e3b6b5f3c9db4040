package cli

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportRules checks the module's layering on every Go file of the tree: no library imports this package
// (only commands and examples, package main, parse flags and print tables), production code never imports the
// fake EventGate intake (a test and demo helper), and nothing imports the unmaintained gopkg.in/yaml.v3.
func TestImportRules(t *testing.T) {
	const module = "github.com/evenkeel/evenkeel/"
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == "testdata" || strings.HasPrefix(n, ".") || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		test := strings.HasSuffix(p, "_test.go")
		main := f.Name.Name == "main"
		demo := strings.HasPrefix(rel, "examples/")
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case path == module+"internal/cli" && !main && !test:
				t.Errorf("%s: the library package %s imports internal/cli; only commands may", rel, f.Name.Name)
			case path == module+"internal/eventgate/fakeintake" && !test && !demo:
				t.Errorf("%s: production code imports the fake intake, a test and demo helper", rel)
			case path == "gopkg.in/yaml.v3":
				t.Errorf("%s: imports gopkg.in/yaml.v3, which is unmaintained; use go.yaml.in/yaml/v3", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("checked only %d Go files under %s: the walk missed the tree", files, root)
	}
}
