package wire_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/wire"
)

func TestAmountJSON(t *testing.T) {
	tests := []struct {
		in   string
		want wire.Amount
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"550", 550, true},
		{"-0", 0, true},
		{"9007199254740991", wire.MaxAmount, true}, // 2^53-1
		{"1.5", 0, false},
		{"2.0", 0, false},
		{"1e3", 0, false},
		{"1E3", 0, false},
		{"0.0", 0, false},
		{`"100"`, 0, false},
		{"-1", 0, false},
		{"9007199254740992", 0, false},     // 2^53
		{"9223372036854775807", 0, false},  // int64 max
		{"9223372036854775808", 0, false},  // over int64
		{"18446744073709551616", 0, false}, // over uint64
		{"true", 0, false},
		{"null", 0, false},
		{"[1]", 0, false},
		{"{}", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var item struct {
				A wire.Amount `json:"a"`
			}
			err := json.Unmarshal([]byte(`{"a":`+tt.in+`}`), &item)
			if !tt.ok {
				if err == nil {
					t.Fatalf("accepted %s as %d", tt.in, item.A)
				}
				if !errors.Is(err, wire.ErrBadAmount) {
					t.Errorf("error %v is not ErrBadAmount", err)
				}
				return
			}
			if err != nil || item.A != tt.want {
				t.Fatalf("got %d, %v; want %d", item.A, err, tt.want)
			}
			out, err := json.Marshal(item.A)
			if err != nil || string(out) != strings.TrimPrefix(tt.in, "-") {
				t.Errorf("marshal = %s, %v", out, err)
			}
		})
	}
}

func TestMaxAmount(t *testing.T) {
	if wire.MaxAmount != 1<<53-1 {
		t.Errorf("MaxAmount = %d", wire.MaxAmount)
	}
}

// validTerms returns a copy of the golden terms that Validate accepts.
func validTerms() wire.Terms {
	t := goldenTerms()
	t.Items = append([]wire.Item(nil), t.Items...)
	return t
}

func TestTermsValidate(t *testing.T) {
	tests := []struct {
		name      string
		mut       func(t *wire.Terms)
		badAmount bool // errors.Is ErrBadAmount
		tooLarge  bool // errors.Is ErrTooLarge
	}{
		{"total mismatch", func(t *wire.Terms) { t.Total = 1000 }, false, false},
		{"total off by one", func(t *wire.Terms) { t.Total++ }, false, false},
		{"negative total", func(t *wire.Terms) { t.Total = -1 }, true, false},
		{"line overflow", func(t *wire.Terms) {
			t.Items[0].UnitAmount, t.Items[0].Qty = wire.MaxAmount, 2
			t.Total = wire.MaxAmount
		}, true, false},
		{"line overflows int64", func(t *wire.Terms) {
			t.Items[0].UnitAmount, t.Items[0].Qty = wire.MaxAmount, 999
		}, true, false},
		{"sum overflow", func(t *wire.Terms) {
			it := wire.Item{SKU: "gold", Name: "Gold bar", Qty: 1, UnitAmount: wire.MaxAmount}
			t.Items = []wire.Item{it, it}
			t.Total = wire.MaxAmount
		}, true, false},
		{"negative unit amount", func(t *wire.Terms) {
			t.Items = append(t.Items, wire.Item{SKU: "refund", Name: "Refund", Qty: 1, UnitAmount: -100})
			t.Total -= 100
		}, true, false},
		{"currency lower case", func(t *wire.Terms) { t.Currency = "usd" }, false, false},
		{"currency two letters", func(t *wire.Terms) { t.Currency = "US" }, false, false},
		{"currency four letters", func(t *wire.Terms) { t.Currency = "USDT" }, false, false},
		{"currency symbol", func(t *wire.Terms) { t.Currency = "U$D" }, false, false},
		{"currency empty", func(t *wire.Terms) { t.Currency = "" }, false, false},
		{"kind empty", func(t *wire.Terms) { t.Kind = "" }, false, false},
		{"kind unknown", func(t *wire.Terms) { t.Kind = "subscription" }, false, false},
		{"kind wrong case", func(t *wire.Terms) { t.Kind = "ONE_OFF" }, false, false},
		{"no items", func(t *wire.Terms) { t.Items, t.Total = nil, 0 }, false, false},
		{"too many items", func(t *wire.Terms) {
			t.Items, t.Total = nil, 0
			for range wire.MaxItems + 1 {
				t.Items = append(t.Items, wire.Item{SKU: "cookie", Name: "Cookie", Qty: 1, UnitAmount: 250})
				t.Total += 250
			}
		}, false, false},
		{"qty zero", func(t *wire.Terms) { t.Items[0].Qty, t.Total = 0, 0 }, false, false},
		{"qty negative", func(t *wire.Terms) { t.Items[0].Qty, t.Total = -2, 0 }, false, false},
		{"qty 1000", func(t *wire.Terms) { t.Items[0].Qty, t.Total = 1000, 550000 }, false, false},
		{"sku missing", func(t *wire.Terms) { t.Items[0].SKU = "" }, false, false},
		{"item name missing", func(t *wire.Terms) { t.Items[0].Name = "" }, false, false},
		{"item name too long", func(t *wire.Terms) { t.Items[0].Name = strings.Repeat("n", wire.MaxNameBytes+1) }, false, true},
		{"nine options", func(t *wire.Terms) { t.Items[0].Options = make([]string, 9) }, false, false},
		{"option too long", func(t *wire.Terms) { t.Items[0].Options = []string{strings.Repeat("o", wire.MaxNameBytes+1)} }, false, true},
		{"merchant id missing", func(t *wire.Terms) { t.Merchant.ID = "" }, false, false},
		{"merchant name missing", func(t *wire.Terms) { t.Merchant.Name = "" }, false, false},
		{"merchant name too long", func(t *wire.Terms) { t.Merchant.Name = strings.Repeat("m", wire.MaxNameBytes+1) }, false, true},
		{"tx missing", func(t *wire.Terms) { t.Tx = "" }, false, false},
		{"tx too long", func(t *wire.Terms) { t.Tx = strings.Repeat("t", wire.MaxIDBytes+1) }, false, true},
		{"device missing", func(t *wire.Terms) { t.Device = "" }, false, false},
		{"session missing", func(t *wire.Terms) { t.Session = "" }, false, false},
		{"nonce missing", func(t *wire.Terms) { t.Nonce = "" }, false, false},
		{"expires_at missing", func(t *wire.Terms) { t.ExpiresAt = 0 }, false, false},
		{"expires_at negative", func(t *wire.Terms) { t.ExpiresAt = -1 }, false, false},
	}
	base := validTerms()
	if err := base.Validate(); err != nil {
		t.Fatalf("golden terms invalid: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terms := validTerms()
			tt.mut(&terms)
			err := terms.Validate()
			if err == nil {
				t.Fatalf("Validate accepted %+v", terms)
			}
			if got := errors.Is(err, wire.ErrBadAmount); got != tt.badAmount {
				t.Errorf("errors.Is(%v, ErrBadAmount) = %v, want %v", err, got, tt.badAmount)
			}
			if got := errors.Is(err, wire.ErrTooLarge); got != tt.tooLarge {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooLarge)
			}
		})
	}
}

func TestTermsValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		mut  func(t *wire.Terms)
	}{
		{"golden", func(*wire.Terms) {}},
		{"free item", func(t *wire.Terms) {
			t.Items = append(t.Items, wire.Item{SKU: "napkin", Name: "Napkin", Qty: 3, UnitAmount: 0})
		}},
		{"max amount", func(t *wire.Terms) {
			t.Items = []wire.Item{{SKU: "car", Name: "Car", Qty: 1, UnitAmount: wire.MaxAmount}}
			t.Total = wire.MaxAmount
		}},
		{"max items and qty", func(t *wire.Terms) {
			t.Items, t.Total = nil, 0
			for range wire.MaxItems {
				t.Items = append(t.Items, wire.Item{SKU: "cookie", Name: "Cookie", Qty: 999, UnitAmount: 250})
				t.Total += 999 * 250
			}
		}},
		{"eight options", func(t *wire.Terms) { t.Items[0].Options = make([]string, 8) }},
		{"yen", func(t *wire.Terms) { t.Currency = "JPY" }},
		{"price target", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindPriceTarget, &wire.Conditions{Until: t.ExpiresAt + 86400000}
		}},
		{"recurring", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindRecurring, &wire.Conditions{Until: t.ExpiresAt + 1, Every: wire.PeriodWeek,
				Times: 4, PeriodCap: t.Total}
		}},
		{"recurring without a count", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindRecurring, &wire.Conditions{Until: t.ExpiresAt + 1, Every: wire.PeriodMonth,
				PeriodCap: 2 * t.Total}
		}},
		{"tip", func(t *wire.Terms) { t.Kind, t.Conditions = wire.KindTip, &wire.Conditions{Parent: "tx_parent"} }},
		{"one-off with a tip cap", func(t *wire.Terms) { t.Conditions = &wire.Conditions{TipCap: 300} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terms := validTerms()
			tt.mut(&terms)
			if err := terms.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestTermsConditionsRefused(t *testing.T) {
	week := func(t *wire.Terms) *wire.Conditions {
		return &wire.Conditions{Until: t.ExpiresAt + 1, Every: wire.PeriodWeek, Times: 4, PeriodCap: t.Total}
	}
	tests := []struct {
		name, want string
		mut        func(t *wire.Terms)
	}{
		{"price target without conditions", "required for kind price_target", func(t *wire.Terms) { t.Kind = wire.KindPriceTarget }},
		{"recurring without conditions", "required for kind recurring", func(t *wire.Terms) { t.Kind = wire.KindRecurring }},
		{"tip without conditions", "required for kind tip", func(t *wire.Terms) { t.Kind = wire.KindTip }},
		{"tip without parent", "parent: required", func(t *wire.Terms) { t.Kind, t.Conditions = wire.KindTip, &wire.Conditions{} }},
		{"price target that ends before the prompt", "until", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindPriceTarget, &wire.Conditions{Until: t.ExpiresAt}
		}},
		{"price target with a period", "takes only until", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindPriceTarget, week(t)
		}},
		{"recurring without a period", "every", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindRecurring, week(t)
			t.Conditions.Every = "fortnight"
		}},
		{"recurring period cap under one payment", "less than one payment", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindRecurring, week(t)
			t.Conditions.PeriodCap = t.Total - 1
		}},
		{"recurring too many times", "times", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindRecurring, week(t)
			t.Conditions.Times = wire.MaxTimes + 1
		}},
		{"recurring with a tip cap", "takes only", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindRecurring, week(t)
			t.Conditions.TipCap = 1
		}},
		{"one-off until", "takes only tip_cap", func(t *wire.Terms) { t.Conditions = &wire.Conditions{Until: t.ExpiresAt + 1} }},
		{"negative tip cap", "tip_cap", func(t *wire.Terms) { t.Conditions = &wire.Conditions{TipCap: -1} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terms := validTerms()
			tt.mut(&terms)
			err := terms.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestBindingCode(t *testing.T) {
	terms := validTerms()
	h, err := terms.Hash()
	if err != nil {
		t.Fatal(err)
	}
	code := wire.BindingCode(h)
	if len(code) != 4 || strings.Trim(code, "0123456789") != "" {
		t.Fatalf("BindingCode = %q, want four digits", code)
	}
	terms.Total++
	terms.Items[0].UnitAmount++
	terms.Items[0].Qty = 1
	terms.Total = terms.Items[0].UnitAmount
	for _, it := range terms.Items[1:] {
		terms.Total += it.UnitAmount * wire.Amount(it.Qty)
	}
	h2, _ := terms.Hash()
	if wire.BindingCode(h2) == code && h2 != h {
		t.Logf("different terms share the code %s (1 in 10000)", code)
	}
	if wire.BindingCode("!!") != "" || wire.BindingCode("") != "" {
		t.Fatal("BindingCode of a malformed hash is not empty")
	}
}

func TestValidCurrency(t *testing.T) {
	for _, c := range []string{"USD", "EUR", "JPY", "KWD", "XXX"} {
		if err := wire.ValidCurrency(c); err != nil {
			t.Errorf("ValidCurrency(%q) = %v", c, err)
		}
	}
	for _, c := range []string{"", "US", "usd", "Usd", "USDT", "U1D", "ÜSD", "US "} {
		if err := wire.ValidCurrency(c); err == nil {
			t.Errorf("ValidCurrency(%q) accepted", c)
		}
	}
}

func TestMoney(t *testing.T) {
	tests := []struct {
		a        wire.Amount
		currency string
		want     string
	}{
		{550, "USD", "USD 5.50"},
		{1100, "USD", "USD 11.00"},
		{5, "USD", "USD 0.05"},
		{0, "USD", "USD 0.00"},
		{123456789, "EUR", "EUR 1234567.89"},
		{wire.MaxAmount, "USD", "USD 90071992547409.91"},
		{950, "JPY", "JPY 950"},
		{0, "JPY", "JPY 0"},
		{1234, "KWD", "KWD 1.234"},
		{5, "KWD", "KWD 0.005"},
		{1000, "BHD", "BHD 1.000"},
		{1999, "XYZ", "XYZ 19.99"}, // unknown currencies get two decimals
	}
	for _, tt := range tests {
		if got := wire.Money(tt.a, tt.currency); got != tt.want {
			t.Errorf("Money(%d, %s) = %q, want %q", tt.a, tt.currency, got, tt.want)
		}
	}
}

// goldenCanonical is the RFC 8785 form of the golden terms: members sorted, no
// whitespace. Its SHA-256 is the golden confirm.request's hash.
const goldenCanonical = `{"currency":"USD","device":"dev_72asyextvngonlc5w2nm","expires_at":1773480722000,` +
	`"items":[{"name":"Oat latte","options":["oat milk","12 oz"],"qty":2,"sku":"latte-oat-12oz","unit_amount":550}],` +
	`"kind":"one_off","merchant":{"id":"earshot-coffee","name":"Earshot Coffee"},"nonce":"n_Yk2vQ8sLmP4wR7tZ3xC6",` +
	`"session":"ses_7QmX2c9KpL4vTz","total":1100,"tx":"tx_01JPB5Q3YF8V2K7M9N4R6T0W1X"}`

const goldenHash = "aQmQk1s6Ku6mfv4JHmpldNz_ohwAYCbK8_FvzLZpAOE"

func TestTermsCanonicalAndHash(t *testing.T) {
	terms := goldenTerms()
	c, err := terms.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if string(c) != goldenCanonical {
		t.Errorf("Canonical() =\n%s\nwant\n%s", c, goldenCanonical)
	}
	sum := sha256.Sum256([]byte(goldenCanonical))
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); want != goldenHash {
		t.Fatalf("goldenHash is stale: %s", want)
	}
	for range 3 {
		h, err := terms.Hash()
		if err != nil || h != goldenHash {
			t.Fatalf("Hash() = %q, %v; want %q", h, err, goldenHash)
		}
	}
	// A device that builds the terms JSON in another member order, with whitespace,
	// gets the same canonical form.
	shuffled := `{ "tx":"tx_01JPB5Q3YF8V2K7M9N4R6T0W1X", "total":1100, "session":"ses_7QmX2c9KpL4vTz",
		"nonce":"n_Yk2vQ8sLmP4wR7tZ3xC6", "merchant":{"name":"Earshot Coffee","id":"earshot-coffee"},
		"kind":"one_off", "items":[{"unit_amount":550,"sku":"latte-oat-12oz","qty":2,"options":["oat milk","12 oz"],"name":"Oat latte"}],
		"expires_at":1773480722000, "device":"dev_72asyextvngonlc5w2nm", "currency":"USD" }`
	got, err := wire.Canonicalize([]byte(shuffled))
	if err != nil || string(got) != goldenCanonical {
		t.Errorf("Canonicalize(shuffled) = %s, %v", got, err)
	}
}

func TestTermsHashChangesWithEveryField(t *testing.T) {
	muts := map[string]func(t *wire.Terms){
		"tx":               func(t *wire.Terms) { t.Tx += "x" },
		"device":           func(t *wire.Terms) { t.Device = "dev_aaaaaaaaaaaaaaaaaaaa" },
		"session":          func(t *wire.Terms) { t.Session += "x" },
		"merchant.id":      func(t *wire.Terms) { t.Merchant.ID = "earshot-coffee-2" },
		"merchant.name":    func(t *wire.Terms) { t.Merchant.Name = "Earshot Coffee " },
		"items[0].sku":     func(t *wire.Terms) { t.Items[0].SKU = "latte-oat-16oz" },
		"items[0].name":    func(t *wire.Terms) { t.Items[0].Name = "Oat Latte" },
		"items[0].qty":     func(t *wire.Terms) { t.Items[0].Qty = 3 },
		"items[0].unit":    func(t *wire.Terms) { t.Items[0].UnitAmount = 551 },
		"items[0].options": func(t *wire.Terms) { t.Items[0].Options = []string{"oat milk"} },
		"options order":    func(t *wire.Terms) { t.Items[0].Options = []string{"12 oz", "oat milk"} },
		"no options":       func(t *wire.Terms) { t.Items[0].Options = nil },
		"extra item": func(t *wire.Terms) {
			t.Items = append(t.Items, wire.Item{SKU: "cookie", Name: "Cookie", Qty: 1, UnitAmount: 0})
		},
		"item split": func(t *wire.Terms) {
			it := t.Items[0]
			it.Qty = 1
			t.Items = []wire.Item{it, it}
		},
		"total":      func(t *wire.Terms) { t.Total = 1101 },
		"currency":   func(t *wire.Terms) { t.Currency = "EUR" },
		"kind":       func(t *wire.Terms) { t.Kind = wire.KindTip },
		"expires_at": func(t *wire.Terms) { t.ExpiresAt++ },
		"nonce":      func(t *wire.Terms) { t.Nonce += "x" },
	}
	base := validTerms()
	baseHash, err := base.Hash()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{baseHash: "golden"}
	for name, mut := range muts {
		terms := validTerms()
		terms.Items[0].Options = append([]string(nil), terms.Items[0].Options...)
		mut(&terms)
		h, err := terms.Hash()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if prev, dup := seen[h]; dup {
			t.Errorf("changing %s gives the same hash as %s", name, prev)
		}
		seen[h] = name
	}
	// Empty and absent options are the same terms: the field is omitted.
	terms := validTerms()
	terms.Items[0].Options = []string{}
	h1, _ := terms.Hash()
	terms.Items[0].Options = nil
	h2, _ := terms.Hash()
	if h1 != h2 {
		t.Errorf("empty and nil options hash differently")
	}
	// The golden terms were not modified by the mutations.
	if h, _ := base.Hash(); h != baseHash {
		t.Errorf("base terms changed")
	}
}
