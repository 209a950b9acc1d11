package grammar

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// dictPath is the CMU dictionary of Debian's pocketsphinx-en-us.
const dictPath = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"

// shippedSource reads the reference agent's catalogue (gateway/agent/refagent/catalog.yaml)
// into a Source, as the gateway does.
func shippedSource(t testing.TB) Source {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "gateway", "agent", "refagent", "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Merchants []struct {
			Currency string
			Items    []struct {
				SKU     string         `yaml:"sku"`
				Name    string         `yaml:"name"`
				Unit    string         `yaml:"unit"`
				Plural  string         `yaml:"plural"`
				Aliases []string       `yaml:"aliases"`
				Sizes   map[string]int `yaml:"sizes"`
				Options []string       `yaml:"options"`
			}
		}
	}
	if err := yaml.Unmarshal(b, &cat); err != nil {
		t.Fatal(err)
	}
	var src Source
	for _, m := range cat.Merchants {
		for _, it := range m.Items {
			gi := Item{SKU: it.SKU, Name: it.Name, Aliases: it.Aliases, Plural: it.Plural, Unit: it.Unit,
				Options: it.Options, Currency: m.Currency}
			// Map order is random: sizes in price order, as the catalogue means them.
			for _, s := range []string{"small", "regular", "medium", "large"} {
				if _, ok := it.Sizes[s]; ok {
					gi.Sizes = append(gi.Sizes, s)
				}
			}
			if len(gi.Sizes) != len(it.Sizes) {
				t.Fatalf("item %s: sizes %v: add the new size to shippedSource", it.SKU, it.Sizes)
			}
			src.Items = append(src.Items, gi)
		}
	}
	return src
}

var (
	dictOnce sync.Once
	dict     map[string]bool
	dictErr  error
)

// cmudict loads the real dictionary once, or skips the test when it is not installed.
func cmudict(t testing.TB) map[string]bool {
	t.Helper()
	dictOnce.Do(func() {
		f, err := os.Open(dictPath)
		if err != nil {
			dictErr = err
			return
		}
		defer f.Close()
		dict, dictErr = LoadDict(f, 0)
	})
	if os.IsNotExist(dictErr) {
		t.Skipf("no CMU dictionary (%v): install pocketsphinx-en-us", dictErr)
	}
	if dictErr != nil {
		t.Fatal(dictErr)
	}
	return dict
}

// shipped builds the grammar of the shipped catalogue against the real dictionary
// when it is installed.
func shipped(t testing.TB) *Grammar {
	t.Helper()
	src := shippedSource(t)
	if _, err := os.Stat(dictPath); err == nil {
		d := cmudict(t)
		src.Has = func(w string) bool { return d[w] }
	}
	g, err := Build(src)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
