package eval_test

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/earshot/earshot/speech/grammar"
)

// testGrammar builds the grammar of the reference agent's demo catalogue, read from its
// YAML file (speech must not import gateway packages).
func testGrammar(t testing.TB) *grammar.Grammar {
	t.Helper()
	raw, err := os.ReadFile("../../gateway/agent/refagent/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Merchants []struct {
			Currency string
			Items    []struct {
				SKU, Name, Plural, Unit string
				Aliases, Options        []string
				Sizes                   yaml.Node
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
			for i := 0; i+1 < len(it.Sizes.Content); i += 2 { // mapping: keys in order
				si.Sizes = append(si.Sizes, it.Sizes.Content[i].Value)
			}
			src.Items = append(src.Items, si)
		}
	}
	g, err := grammar.Build(src)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
