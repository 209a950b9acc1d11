package grammar

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/earshot/earshot/device/wire"
)

func TestSampleParse(t *testing.T) {
	g := shipped(t)
	r := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	count := map[string]int{}
	for range n {
		text, want := g.Sample(r)
		got, err := g.Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q): %v (sampled %s)", text, err, want)
		}
		if !got.Equal(want) {
			t.Fatalf("Parse(%q) = %s, sampled %s", text, got, want)
		}
		words := " " + text + " "
		count[want.Action.String()]++
		if want.Action == ActionBuy && want.Under == 0 && want.Tip == 0 {
			count["plain buy"]++
		}
		for _, k := range []string{" and ", " with ", " pair of ", " pairs of ", " lattes ", " latte ", " muffins ", " large ",
			" extra shot ", " a ", " an ", " please ", " um ", " dollars ", " dollar ", " tip "} {
			if strings.Contains(words, k) {
				count[strings.TrimSpace(k)]++
			}
		}
		switch {
		case want.Under > 0:
			count["under"]++
		case want.Tip > 0 && want.Action == ActionBuy:
			count["buy with tip"]++
		}
		if len(want.Lines) >= 2 {
			count["two lines"]++
		}
		for _, l := range want.Lines {
			if l.Qty > 1 {
				count["plural"]++
				break
			}
		}
	}
	t.Logf("%d samples: %v", n, count)
	if p := float64(count["plain buy"]) / n; p < 0.6 || p > 0.8 {
		t.Errorf("plain buys %.0f%%, want about 70%%", 100*p)
	}
	for _, k := range []string{"status", "cancel", "tip", "under", "buy with tip", "two lines", "plural", "with", "pair of",
		"pairs of", "lattes", "muffins", "large", "extra shot", "a", "an", "please", "um", "dollars", "dollar"} {
		if count[k] == 0 {
			t.Errorf("no sample has %q", k)
		}
	}
	for i := range 10 { // deterministic given r
		a, ia := g.Sample(rand.New(rand.NewPCG(uint64(i), 9)))
		b, ib := g.Sample(rand.New(rand.NewPCG(uint64(i), 9)))
		if a != b || !ia.Equal(ib) {
			t.Fatalf("two samples from one seed: %q, %q", a, b)
		}
	}
}

func TestSampleAnswer(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	seen := map[wire.Answer]int{}
	for range 1000 {
		text, want, wantPIN := SampleAnswer(r)
		a, pin, err := ParseAnswer(text)
		if err != nil || a != want || pin != wantPIN {
			t.Fatalf("ParseAnswer(%q) = %q %q %v, sampled %q %q", text, a, pin, err, want, wantPIN)
		}
		if a == wire.AnswerPIN && (len(pin) < MinPIN || len(pin) > MaxPIN) {
			t.Fatalf("PIN %q", pin)
		}
		seen[a]++
	}
	for _, a := range []wire.Answer{wire.AnswerApprove, wire.AnswerDecline, wire.AnswerRepeat, wire.AnswerPIN} {
		if seen[a] == 0 {
			t.Errorf("no %s sampled", a)
		}
	}
}

func TestMissing(t *testing.T) {
	d := cmudict(t)
	has := func(w string) bool { return d[w] }
	g := shipped(t)
	if m := g.Missing(has); len(m) != 0 {
		t.Errorf("the shipped catalogue's grammar has words the CMU dictionary lacks: %v", m)
	}
	for _, w := range ConfirmWords() {
		if !d[w] {
			t.Errorf("confirm word %q is not in the dictionary", w)
		}
	}
	// Without Has the derived plurals stay, and the dictionary lacks two of them.
	plain, err := Build(shippedSource(t))
	if err != nil {
		t.Fatal(err)
	}
	if m := plain.Missing(has); !slices.Equal(m, []string{"cappuccinos", "lattes"}) {
		t.Errorf("Missing without Has = %v, want [cappuccinos lattes]", m)
	}
	if m := g.Missing(nil); len(m) != len(g.Words()) {
		t.Errorf("Missing(nil) = %d words, want all %d", len(m), len(g.Words()))
	}
	// An alias the dictionary lacks is reported, whatever Has says.
	src := shippedSource(t)
	src.Has = has
	src.Items[0].Aliases = append(src.Items[0].Aliases, "oatly flatty")
	g2, err := Build(src)
	if err != nil {
		t.Fatal(err)
	}
	if m := g2.Missing(has); !slices.Equal(m, []string{"flatty", "oatly"}) {
		t.Errorf("Missing = %v, want [flatty oatly]", m)
	}
}

func TestLoadDict(t *testing.T) {
	d, err := LoadDict(strings.NewReader(";;; comment\nlatte L AA T EY\nread R IY D\nread(2) R EH D\n\nWhat's W AH T S\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 3 || !d["latte"] || !d["read"] || !d["what's"] {
		t.Errorf("LoadDict = %v", d)
	}
	for _, tc := range []struct {
		name, in string
		max      int64
	}{
		{"no phones", "latte\n", 0},
		{"not a phone", "latte L aa T\n", 0},
		{"too large", "latte L AA T EY\n", 10},
		{"long line", "latte " + strings.Repeat("AA ", 2000) + "\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LoadDict(strings.NewReader(tc.in), tc.max); !errors.Is(err, ErrBadDict) {
				t.Errorf("LoadDict: %v, want ErrBadDict", err)
			}
		})
	}
	if _, err := LoadDict(bytes.NewReader(nil), 0); err != nil {
		t.Errorf("empty dictionary: %v", err)
	}
}

func TestBuild(t *testing.T) {
	item := func(sku string, aliases ...string) Item { return Item{SKU: sku, Aliases: aliases, Currency: "USD"} }
	for _, tc := range []struct {
		name string
		src  Source
		why  string
	}{
		{"no items", Source{}, "no items"},
		{"no sku", Source{Items: []Item{item("", "tea")}}, "no sku"},
		{"sku twice", Source{Items: []Item{item("t", "tea"), item("t", "green tea")}}, "sku repeated"},
		{"no alias", Source{Items: []Item{item("t")}}, "no name or alias"},
		{"digits", Source{Items: []Item{item("s", "7up")}}, "not a word"},
		{"punctuation only", Source{Items: []Item{item("s", "tea", "!!")}}, ""},
		{"currency", Source{Items: []Item{{SKU: "t", Name: "tea", Currency: "XTS"}}}, "currency"},
		{"two currencies", Source{Items: []Item{item("t", "tea"), {SKU: "c", Name: "coffee", Currency: "EUR"}}}, "one currency"},
		{"alias twice", Source{Items: []Item{item("t", "tea"), item("g", "tea")}}, `"tea" is both`},
		{"plural is another alias", Source{Items: []Item{item("t", "tea"), item("g", "teas")}}, `"teas" is both`},
		{"alias is an option", Source{Items: []Item{item("t", "tea"), {SKU: "c", Name: "coffee", Options: []string{"tea"}}}}, `"tea" is both`},
		{"reserved", Source{Items: []Item{item("t", "tip")}}, "every command uses"},
		{"unit of two words", Source{Items: []Item{{SKU: "s", Name: "socks", Unit: "big pair"}}}, "one word"},
		{"bad size", Source{Items: []Item{{SKU: "s", Name: "tea", Sizes: []string{"12oz"}}}}, "size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Build(tc.src)
			if tc.why == "" {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				return
			}
			if g != nil || !errors.Is(err, ErrBadSource) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Build: %v, want ErrBadSource saying %q", err, tc.why)
			}
		})
	}
}

// A small catalogue in another currency, with an explicit plural and a unit.
func TestBuildOther(t *testing.T) {
	g, err := Build(Source{Items: []Item{
		{SKU: "tea", Name: "Green Tea", Plural: "cups of green tea", Sizes: []string{"Small", "Large"}, Currency: "eur"},
		{SKU: "glove", Name: "Gloves", Unit: "pair", Aliases: []string{"a pair of gloves", "wool gloves"}, Currency: "EUR"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]string{
		"a large green tea":                             "buy 1 tea[large]",
		"two cups of green tea":                         "buy 2 tea",
		"three pairs of wool gloves and one green tea":  "buy 3 glove, 1 tea",
		"gloves when it drops under twelve euros fifty": "buy 1 glove under 1250",
		"gloves if it goes below 10€":                   "buy 1 glove under 1000",
		"add a two euro tip":                            "tip 200",
	} {
		got, err := g.Parse(text)
		if err != nil || got.String() != want || got.Currency != "EUR" {
			t.Errorf("Parse(%q) = %s %s, %v; want %s EUR", text, got, got.Currency, err, want)
		}
	}
	if _, err := g.Parse("two green teas"); err == nil {
		t.Error("a plural other than the one given was accepted")
	}
	if g.Currency() != "EUR" {
		t.Errorf("Currency = %s", g.Currency())
	}
}

func FuzzParse(f *testing.F) {
	g, err := Build(shippedSource(f))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"buy two oat lattes", "Can I get 2 lattes, please?", "where's my order", "add a $2 tip",
		"leggings when it drops under $89.50", "one two three four", "yes", "a latte, a croissant and a muffin",
		"latte with extra shot and decaf latte", "'''", "$", "1.2.3", "ünïcødé lattes", ",,,", strings.Repeat("a", 1100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4*MaxTextBytes {
			return
		}
		in, err := g.Parse(s)
		if err != nil {
			if !errors.Is(err, ErrNotUnderstood) {
				t.Fatalf("Parse(%q): %v does not wrap ErrNotUnderstood", s, err)
			}
		} else {
			if len(s) > MaxTextBytes {
				t.Fatalf("Parse accepted %d bytes", len(s))
			}
			if in.Action == ActionUnknown || (in.Currency == "USD") != (in.Action == ActionBuy || in.Action == ActionTip) {
				t.Fatalf("Parse(%q) = %+v", s, in)
			}
			for _, l := range in.Lines {
				if l.Qty < 1 || l.Qty > MaxQty || !slices.IsSorted(l.Options) {
					t.Fatalf("Parse(%q) = %+v", s, in)
				}
			}
		}
		a, pin, err := ParseAnswer(s)
		if err != nil {
			if !errors.Is(err, ErrNotUnderstood) {
				t.Fatalf("ParseAnswer(%q): %v does not wrap ErrNotUnderstood", s, err)
			}
		} else if (a == wire.AnswerPIN) != (len(pin) >= MinPIN && len(pin) <= MaxPIN) {
			t.Fatalf("ParseAnswer(%q) = %q %q", s, a, pin)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	g := shipped(b)
	texts := []string{
		"buy two oat lattes",
		"can i get a large iced latte with an extra shot and two blueberry muffins please",
		"a pair of black leggings when it drops under ninety dollars and a two dollar tip",
		"the weather is nice today buy low sell high",
		"i like turtles and a latte",
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _ = g.Parse(texts[i%len(texts)]) // refusals are part of the load
	}
}

func BenchmarkParseAnswer(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseAnswer("one two three four five six"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	src := shippedSource(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSample(b *testing.B) {
	g := shipped(b)
	r := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		g.Sample(r)
	}
}

func TestConcurrentParse(t *testing.T) {
	g := shipped(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for range 200 {
				text, want := g.Sample(r)
				if got, err := g.Parse(text); err != nil || !got.Equal(want) {
					errs <- fmt.Errorf("Parse(%q) = %s, %v; want %s", text, got, err, want)
					return
				}
				if _, _, err := ParseAnswer("one two three four"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestNames: Names lists how the JSGF names the items, without the plurals it leaves out.
func TestNames(t *testing.T) {
	src := Source{Items: []Item{{SKU: "tea", Name: "Tea", Aliases: []string{"green tea"}}}}
	g, err := Build(src)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := g.Names(), []string{"green tea", "green teas", "tea", "teas"}; !slices.Equal(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
	src.Has = func(w string) bool { return w != "teas" }
	if g, err = Build(src); err != nil {
		t.Fatal(err)
	}
	if got, want := g.Names(), []string{"green tea", "tea"}; !slices.Equal(got, want) {
		t.Errorf("Names without \"teas\" in the dictionary = %q, want %q", got, want)
	}
}
