package authz

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps authz pure logic: the standard library, the device contract, the
// kv contract and go-jose, nothing else (no gateway, no Badger, no network library).
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/earshot/earshot/device/wire":     true,
		"github.com/earshot/earshot/device/identity": true,
		"github.com/earshot/earshot/authz/kv":        true,
		"github.com/go-jose/go-jose/v4":              true,
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
			p, _ := strconv.Unquote(imp.Path.Value)
			std := !strings.Contains(strings.SplitN(p, "/", 2)[0], ".")
			if !std && !allowed[p] || p == "net" || strings.HasPrefix(p, "net/") {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
