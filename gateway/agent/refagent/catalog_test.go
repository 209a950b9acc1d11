package refagent_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent/refagent"
)

func defaultCatalog(t testing.TB) *refagent.Catalog {
	t.Helper()
	c, err := refagent.DefaultCatalog()
	if err != nil {
		t.Fatalf("DefaultCatalog: %v", err)
	}
	return c
}

func TestDefaultCatalog(t *testing.T) {
	c := defaultCatalog(t)
	ms := c.Merchants()
	if len(ms) != 2 || ms[0].ID != "earshot-coffee" || ms[0].Name != "Earshot Coffee" ||
		ms[1].ID != "earshot-outfitters" || ms[1].Name != "Earshot Outfitters" {
		t.Fatalf("merchants = %+v", ms)
	}
	prices := map[string]wire.Amount{}
	for _, m := range ms {
		if m.Currency != "USD" {
			t.Errorf("%s currency = %q", m.ID, m.Currency)
		}
		for _, it := range m.Items {
			prices[it.SKU] = it.Price
			if it.Merchant() != m {
				t.Errorf("%s: Merchant() = %v", it.SKU, it.Merchant())
			}
		}
	}
	want := map[string]wire.Amount{
		"latte-oat": 550, "latte": 500, "americano": 400, "flat-white": 480, "cappuccino": 470,
		"espresso": 300, "croissant": 350, "muffin-blueberry": 380,
		"leggings-black": 8900, "socks-running": 1200, "water-bottle": 2500,
	}
	for sku, p := range want {
		if prices[sku] != p {
			t.Errorf("price of %s = %d, want %d", sku, prices[sku], p)
		}
	}
	if len(prices) != len(want) {
		t.Errorf("%d items, want %d", len(prices), len(want))
	}
	m, ok := c.Merchant("earshot-coffee")
	if !ok {
		t.Fatal("Merchant(earshot-coffee) not found")
	}
	americano := m.Items[slices.IndexFunc(m.Items, func(it *refagent.Item) bool { return it.SKU == "americano" })]
	for size, want := range map[string]wire.Amount{"small": 350, "regular": 400, "large": 450, "": 400} {
		if got, ok := americano.UnitAmount(size); !ok || got != want {
			t.Errorf("americano %q = %d, %v; want %d", size, got, ok, want)
		}
	}
	if _, ok := americano.UnitAmount("huge"); ok {
		t.Error("americano comes in huge")
	}
	if americano.DefaultSize() != "regular" {
		t.Errorf("default size = %q", americano.DefaultSize())
	}
	if _, ok := c.Merchant("nobody"); ok {
		t.Error("Merchant(nobody) found")
	}
	// The kiosk coffee shop lets a spoken tip of up to 5.00 through without a new
	// prompt; the outfitters have no tip cap.
	if m.TipCap != 500 || ms[1].TipCap != 0 {
		t.Errorf("tip caps %d, %d; want 500, 0", m.TipCap, ms[1].TipCap)
	}
}

func TestPhrases(t *testing.T) {
	ps := defaultCatalog(t).Phrases()
	if !slices.IsSorted(ps) || len(slices.Compact(slices.Clone(ps))) != len(ps) {
		t.Errorf("Phrases not sorted and unique: %q", ps)
	}
	for _, want := range []string{"oat latte", "oat lattes", "oat milk latte", "americano", "americanos",
		"flat whites", "blueberry muffins", "black leggings", "pair of black leggings",
		"pairs of black leggings", "running socks", "water bottle", "water bottles", "croissants"} {
		if !slices.Contains(ps, want) {
			t.Errorf("Phrases lacks %q", want)
		}
	}
	for _, p := range ps {
		if p != strings.ToLower(p) || strings.TrimSpace(p) != p {
			t.Errorf("phrase %q is not normalised", p)
		}
	}
}

func TestLoadCatalog(t *testing.T) {
	const doc = `
merchants:
  - id: tea-house
    name: Tea House
    currency: JPY
    items:
      - sku: sencha
        name: Sencha
        aliases: [green tea, "Sencha!"]
        price: 1_200
        sizes: {small: -200, regular: 0}
        options: [iced]
      - sku: box-mochi
        name: Mochi
        plural: mochi
        unit: box
        aliases: [mochi]
        price: 0x3E8
`
	c, err := refagent.LoadCatalog(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Parse("two boxes of mochi and a small iced green tea")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.Summary(), "2 boxes of mochi, 1 small sencha (iced)"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	if got := o.Total(); got != 2*1000+1000 {
		t.Errorf("total = %d", got)
	}
	if ps := c.Phrases(); !slices.Contains(ps, "sencha") || !slices.Contains(ps, "green teas") {
		t.Errorf("phrases = %q", ps)
	}
}

func TestLoadCatalogErrors(t *testing.T) {
	// item renders a one-merchant catalogue around an item body.
	item := func(body string) string {
		return "merchants:\n  - id: shop\n    name: Shop\n    currency: USD\n    items:\n      - sku: latte\n        name: Latte\n" + body
	}
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error
	}{
		{"empty", "", []string{"empty"}},
		{"not yaml", "merchants: [", []string{"yaml"}},
		{"no merchants", "merchants: []", []string{"no merchants"}},
		{"unknown top field", "shops: []", []string{"field shops not found"}},
		{"unknown item field", item("        prcie: 500\n"), []string{"line 8", "field prcie not found"}},
		{"float price", item("        price: 5.50\n"), []string{`item "latte" (line 6): price (line 8)`, `"5.50" is not an integer in minor units`}},
		{"string price", item("        price: \"550\"\n"), []string{"price (line 8)", `"550" is not an integer`}},
		{"list price", item("        price: [5]\n"), []string{"price", "a list"}},
		{"missing price", item(""), []string{`item "latte" (line 6): price: required`}},
		{"zero price", item("        price: 0\n"), []string{"want a positive amount"}},
		{"negative price", item("        price: -5\n"), []string{"want a positive amount"}},
		{"huge price", item("        price: 9007199254740992\n"), []string{"out of range"}},
		{"float size delta", item("        price: 500\n        sizes: {regular: 0, large: 0.5}\n"),
			[]string{`size "large" (line 9)`, `"0.5" is not an integer`}},
		{"no default size", item("        price: 500\n        sizes: {small: -50, large: 50}\n"), []string{"0 have delta 0, want exactly one"}},
		{"two default sizes", item("        price: 500\n        sizes: {small: 0, large: 0}\n"), []string{"2 have delta 0"}},
		{"size makes price negative", item("        price: 500\n        sizes: {small: -500, regular: 0}\n"), []string{`size "small"`, "want positive"}},
		{"size not one word", item("        price: 500\n        sizes: {extra large: 50, regular: 0}\n"), []string{"want one lower-case word"}},
		{"missing name", "merchants:\n  - id: shop\n    name: Shop\n    currency: USD\n    items:\n      - sku: latte\n        price: 500\n",
			[]string{`item "latte" (line 6): name: required`}},
		{"missing sku", "merchants:\n  - id: shop\n    name: Shop\n    currency: USD\n    items:\n      - name: Latte\n        price: 500\n",
			[]string{`merchant "shop" (line 2) items[0].sku: required`}},
		{"bad currency", "merchants:\n  - id: shop\n    name: Shop\n    currency: usd\n    items:\n      - {sku: latte, name: Latte, price: 500}\n",
			[]string{`merchant "shop" (line 2)`, "ISO 4217"}},
		{"missing currency", "merchants:\n  - id: shop\n    name: Shop\n    items:\n      - {sku: latte, name: Latte, price: 500}\n",
			[]string{"ISO 4217"}},
		{"bad merchant id", "merchants:\n  - id: Big Shop\n    name: Shop\n    currency: USD\n    items:\n      - {sku: latte, name: Latte, price: 500}\n",
			[]string{"merchants[0] (line 2).id", "lower-case letters"}},
		{"missing merchant name", "merchants:\n  - id: shop\n    currency: USD\n    items:\n      - {sku: latte, name: Latte, price: 500}\n",
			[]string{`merchant "shop" (line 2): name: required`}},
		{"no items", "merchants:\n  - id: shop\n    name: Shop\n    currency: USD\n", []string{"no items"}},
		{"duplicate merchant", "merchants:\n  - {id: shop, name: Shop, currency: USD, items: [{sku: a, name: A, price: 1}]}\n" +
			"  - {id: shop, name: Shop, currency: USD, items: [{sku: b, name: B, price: 1}]}\n",
			[]string{`merchant "shop" (line 3): duplicate merchant id`}},
		{"duplicate sku", "merchants:\n  - {id: shop, name: Shop, currency: USD, items: [{sku: a, name: A, price: 1}]}\n" +
			"  - {id: other, name: Other, currency: USD, items: [{sku: a, name: B, price: 1}]}\n",
			[]string{`merchant "other"`, `item "a" (line 3): duplicate sku, first at merchant "shop"`}},
		{"duplicate alias", item("        price: 500\n        aliases: [coffee]\n      - {sku: mocha, name: Mocha, price: 500, aliases: [coffees]}\n"),
			[]string{`item "mocha" alias "coffees"`, `"coffee" (singular) is already an alias of sku "latte"`}},
		{"alias is a filler", item("        price: 500\n        aliases: [please]\n"), []string{`alias "please"`, "already a filler word"}},
		{"alias is a number", item("        price: 500\n        aliases: [two]\n"), []string{`alias "two"`, "already a number word"}},
		{"alias is a size", item("        price: 500\n        aliases: [large]\n        sizes: {regular: 0, large: 50}\n"),
			[]string{`alias "large"`, `already the size "large"`}},
		{"option is a filler", item("        price: 500\n        options: [thanks]\n"), []string{`option "thanks": "thank" (singular) is already a filler word`}},
		{"duplicate option", item("        price: 500\n        options: [iced, Iced]\n"), []string{`option "Iced" listed twice`}},
		{"unit not one word", item("        price: 500\n        unit: six pack\n"), []string{`unit "six pack": want one word`}},
		{"float tip cap", "merchants:\n  - id: shop\n    name: Shop\n    currency: USD\n    tip_cap: 5.00\n    items:\n      - {sku: latte, name: Latte, price: 500}\n",
			[]string{`merchant "shop" (line 2): tip_cap (line 5): "5.00" is not an integer in minor units`}},
		{"negative tip cap", "merchants:\n  - id: shop\n    name: Shop\n    currency: USD\n    tip_cap: -1\n    items:\n      - {sku: latte, name: Latte, price: 500}\n",
			[]string{`merchant "shop" (line 2): tip_cap (line 5): -1, want 0 (none) or a positive amount`}},
		{"list tip cap", "merchants:\n  - id: shop\n    name: Shop\n    currency: USD\n    tip_cap: [5]\n    items:\n      - {sku: latte, name: Latte, price: 500}\n",
			[]string{`tip_cap (line 5): "a list" is not an integer`}},
		{"item tip cap", item("        price: 500\n        tip_cap: 100\n"), []string{"line 9", "field tip_cap not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := refagent.LoadCatalog(strings.NewReader(tt.doc))
			if err == nil {
				t.Fatalf("loaded %+v, want an error", c.Merchants())
			}
			if !errors.Is(err, refagent.ErrBadCatalog) {
				t.Errorf("error %v does not wrap ErrBadCatalog", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadCatalogTooLarge(t *testing.T) {
	big := strings.Repeat("#", refagent.MaxCatalogBytes+1)
	if _, err := refagent.LoadCatalog(strings.NewReader(big)); !errors.Is(err, refagent.ErrBadCatalog) {
		t.Fatalf("err = %v", err)
	}
}
