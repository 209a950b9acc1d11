package main

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		said  string
		order string // "" when not understood
		total int64
	}{
		{"buy two croissants", "2 croissants", 700},
		{"Two croissants.", "2 croissants", 700},
		{"buy 3 baguettes", "3 baguettes", 1260},
		{"I'd like a sourdough loaf, please", "1 sourdough loaf", 780},
		{"a loaf of sourdough and two croissants", "1 sourdough loaf and 2 croissants", 1480},
		{"a croissant, a baguette and a croissant", "2 croissants and 1 baguette", 1120},
		{"croissants", "1 croissant", 350},
		{"twelve baguettes", "12 baguettes", 5040},
		{"buy 13 baguettes", "", 0},
		{"buy two pizzas", "", 0},
		{"play some jazz", "", 0},
		{"buy two", "", 0},
		{"two two croissants", "", 0},
		{"buy 0 croissants", "", 0},
		{"", "", 0},
	} {
		t.Run(tc.said, func(t *testing.T) {
			o, ok := parse(tc.said)
			if ok != (tc.order != "") {
				t.Fatalf("parse(%q) understood %v (%s)", tc.said, ok, o)
			}
			if ok && (o.String() != tc.order || o.total() != tc.total) {
				t.Fatalf("parse(%q) = %s for %d, want %s for %d", tc.said, o, o.total(), tc.order, tc.total)
			}
		})
	}
}

func TestReadyText(t *testing.T) {
	for said, want := range map[string]string{
		"two croissants":             "Your 2 croissants are ready at the counter.",
		"a baguette":                 "Your 1 baguette is ready at the counter.",
		"a baguette and a sourdough": "Your 1 baguette and 1 sourdough loaf are ready at the counter.",
	} {
		o, ok := parse(said)
		if !ok || o.readyText() != want {
			t.Errorf("%q: %v %q, want %q", said, ok, o.readyText(), want)
		}
	}
}

// The bakery redeems only a mandate for what it proposed.
func TestMismatch(t *testing.T) {
	proposed, _ := parse("two croissants")
	good := func() *mandate {
		return &mandate{ID: "mnd_1", Payee: merchantID, AmountCap: 700, Currency: "USD", Kind: "one_off",
			Items: []lineItem{{SKU: "croissant", Name: "Croissant", Qty: 2, UnitAmount: 350}}}
	}
	for _, tc := range []struct {
		name   string
		change func(m *mandate)
		known  bool
		bad    bool
	}{
		{"as proposed", func(*mandate) {}, true, false},
		{"another payee", func(m *mandate) { m.Payee = "other-shop" }, true, true},
		{"a higher cap", func(m *mandate) { m.AmountCap = 800 }, true, true},
		{"another currency", func(m *mandate) { m.Currency = "EUR" }, true, true},
		{"another kind", func(m *mandate) { m.Kind = "recurring" }, true, true},
		{"other items", func(m *mandate) { m.Items[0].Qty, m.Items[0].UnitAmount = 1, 700 }, true, true},
		{"no proposal", func(*mandate) {}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.change(m)
			if why := mismatch(m, proposed, tc.known); (why != "") != tc.bad {
				t.Fatalf("mismatch = %q, want a reason: %v", why, tc.bad)
			}
		})
	}
	// After a restart the bakery rebuilds the order from the mandate and its menu,
	// and refuses prices that are not the menu's.
	if o, ok := fromItems(good().Items); !ok || mismatch(good(), o, ok) != "" {
		t.Fatalf("fromItems = %v %v", o, ok)
	}
	if _, ok := fromItems([]lineItem{{SKU: "croissant", Qty: 2, UnitAmount: 1}}); ok {
		t.Fatal("fromItems took a price off the menu")
	}
}
