// Package grammartest builds the commerce grammar of the reference agent's demo
// catalogue for tests of the speech packages, which must not import gateway packages:
// it reads the catalogue's YAML file from the source tree.
package grammartest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/earshot/earshot/speech/grammar"
)

// Source returns the grammar source of gateway/agent/refagent/catalog.yaml, items and
// sizes in the file's order.
func Source(t testing.TB) grammar.Source {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "gateway", "agent", "refagent", "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Merchants []struct {
			Currency string
			Items    []struct {
				SKU, Name, Plural, Unit string
				Aliases, Options        []string
				Sizes                   yaml.Node // a mapping: keys in the file's order
			}
		}
	}
	if err := yaml.Unmarshal(raw, &cat); err != nil {
		t.Fatal(err)
	}
	var src grammar.Source
	for _, m := range cat.Merchants {
		for _, it := range m.Items {
			si := grammar.Item{SKU: it.SKU, Name: it.Name, Plural: it.Plural, Unit: it.Unit,
				Aliases: it.Aliases, Options: it.Options, Currency: m.Currency}
			for i := 0; i+1 < len(it.Sizes.Content); i += 2 {
				si.Sizes = append(si.Sizes, it.Sizes.Content[i].Value)
			}
			src.Items = append(src.Items, si)
		}
	}
	return src
}

// Grammar builds Source.
func Grammar(t testing.TB) *grammar.Grammar {
	t.Helper()
	g, err := grammar.Build(Source(t))
	if err != nil {
		t.Fatal(err)
	}
	return g
}
