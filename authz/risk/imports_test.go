package risk

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps risk pure: the standard library without the network, the device
// contract and the YAML reader, nothing else (no gateway, no store, no speech).
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/earshot/earshot/device/wire": true,
		"gopkg.in/yaml.v3":                       true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			std := !strings.Contains(strings.SplitN(p, "/", 2)[0], ".")
			if !std && !allowed[p] || p == "net" || strings.HasPrefix(p, "net/") {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
