package authz

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps authz and its packages pure logic: the standard library without
// the network, the device contract, the kv contract and the few libraries each needs,
// nothing else (no gateway, no Badger, no speech).
func TestImports(t *testing.T) {
	const (
		wire     = "github.com/earshot/earshot/device/wire"
		identity = "github.com/earshot/earshot/device/identity"
		kv       = "github.com/earshot/earshot/authz/kv"
	)
	for dir, allowed := range map[string][]string{
		".":     {wire, identity, kv, "github.com/go-jose/go-jose/v4"},
		"kv":    {},
		"audit": {kv},
		"risk":  {wire, "gopkg.in/yaml.v3"},
	} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
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
				ok := std || slices.Contains(allowed, p)
				if !ok || p == "net" || strings.HasPrefix(p, "net/") {
					t.Errorf("%s imports %s", name, p)
				}
			}
		}
	}
}
