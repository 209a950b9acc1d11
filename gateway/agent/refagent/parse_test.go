package refagent_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent/refagent"
)

func TestParse(t *testing.T) {
	c := defaultCatalog(t)
	tests := []struct {
		text     string
		summary  string // "" when an error is expected
		total    wire.Amount
		merchant string
		err      error // a sentinel the error must match, besides ErrNotUnderstood
		reason   string
	}{
		// Understood.
		{text: "buy two oat lattes", summary: "2 oat lattes", total: 1100, merchant: "earshot-coffee"},
		{text: "a large americano", summary: "1 large americano", total: 450, merchant: "earshot-coffee"},
		{text: "one pair of black leggings", summary: "1 pair of black leggings", total: 8900, merchant: "earshot-outfitters"},
		{text: "get me an espresso and two croissants", summary: "1 espresso, 2 croissants", total: 1000, merchant: "earshot-coffee"},
		{text: "I'd like 3 flat whites", summary: "3 flat whites", total: 1440, merchant: "earshot-coffee"},
		{text: "I’d like 3 flat whites", summary: "3 flat whites", total: 1440, merchant: "earshot-coffee"},
		{text: "two large oat lattes please", summary: "2 large oat lattes", total: 1200, merchant: "earshot-coffee"},
		{text: "Can I get a small latte?", summary: "1 small latte", total: 450, merchant: "earshot-coffee"},
		{text: "could I have a couple of blueberry muffins", summary: "2 blueberry muffins", total: 760, merchant: "earshot-coffee"},
		{text: "a couple muffins", summary: "2 blueberry muffins", total: 760, merchant: "earshot-coffee"},
		{text: "I want a pair of running socks", summary: "1 pair of running socks", total: 1200, merchant: "earshot-outfitters"},
		{text: "two pairs of socks and a water bottle", summary: "2 pairs of running socks, 1 water bottle", total: 4900, merchant: "earshot-outfitters"},
		{text: "order leggings", summary: "1 pair of black leggings", total: 8900, merchant: "earshot-outfitters"},
		{text: "an oat milk latte", summary: "1 oat latte", total: 550, merchant: "earshot-coffee"},
		{text: "two oat milk lattes", summary: "2 oat lattes", total: 1100, merchant: "earshot-coffee"},
		{text: "twenty espressos", summary: "20 espressos", total: 6000, merchant: "earshot-coffee"},
		{text: "Get me 2 cappuccinos, 1 croissant, thanks!", summary: "2 cappuccinos, 1 croissant", total: 1290, merchant: "earshot-coffee"},
		{text: "a latte and another", err: refagent.ErrNotUnderstood, reason: `didn't catch "another"`},
		{text: "a large iced latte with an extra shot", summary: "1 large latte (iced, extra shot)", total: 550, merchant: "earshot-coffee"},
		{text: "a decaf americano and a regular americano", summary: "1 americano (decaf), 1 americano", total: 800, merchant: "earshot-coffee"},
		{text: "a latte and two lattes", summary: "3 lattes", total: 1500, merchant: "earshot-coffee"},
		{text: "a dozen croissants", summary: "12 croissants", total: 4200, merchant: "earshot-coffee"},
		{text: "hey, can you grab me three americanos to go", summary: "3 americanos", total: 1200, merchant: "earshot-coffee"},
		// Not understood.
		{text: "play some music", err: refagent.ErrNotUnderstood, reason: "only take orders"},
		{text: "what's the weather", err: refagent.ErrNotUnderstood, reason: "only take orders"},
		{text: "I like turtles", err: refagent.ErrNotUnderstood, reason: "only take orders"},
		{text: "", err: refagent.ErrNotUnderstood, reason: "didn't hear"},
		{text: "please", err: refagent.ErrNotUnderstood, reason: "only take orders"},
		{text: "don't buy a latte", err: refagent.ErrNotUnderstood, reason: `didn't catch "dont"`},
		{text: "a latte without milk", err: refagent.ErrNotUnderstood, reason: `"without"`},
		{text: "get some croissants", err: refagent.ErrNotUnderstood, reason: "How many?"},
		{text: "two large", err: refagent.ErrNotUnderstood, reason: "which item"},
		{text: "two three lattes", err: refagent.ErrNotUnderstood, reason: "how many"},
		{text: "a large small latte", err: refagent.ErrNotUnderstood, reason: "which size"},
		{text: "a large croissant", err: refagent.ErrNotUnderstood, reason: "croissant doesn't come in large"},
		{text: "an iced croissant", err: refagent.ErrNotUnderstood, reason: `"iced" isn't an option for croissant`},
		{text: "a pair of lattes", err: refagent.ErrNotUnderstood, reason: "isn't sold by the pair"},
		{text: "a latte and a pair of leggings", err: refagent.ErrMixedMerchants, reason: "Earshot Coffee and Earshot Outfitters"},
		{text: "21 lattes", err: refagent.ErrQuantity, reason: "1 to 20"},
		{text: "thirty lattes", err: refagent.ErrQuantity, reason: "1 to 20"},
		{text: "0 lattes", err: refagent.ErrQuantity},
		{text: "999999999999 lattes", err: refagent.ErrQuantity},
		{text: "twenty lattes and a latte", err: refagent.ErrQuantity},
		{text: strings.Repeat("latte ", 200), err: refagent.ErrNotUnderstood, reason: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			o, err := c.Parse(tt.text)
			if tt.summary == "" {
				if err == nil {
					t.Fatalf("parsed as %q, want an error", o.Summary())
				}
				if !errors.Is(err, refagent.ErrNotUnderstood) || !errors.Is(err, tt.err) {
					t.Errorf("err = %v, want %v and ErrNotUnderstood", err, tt.err)
				}
				var pe *refagent.ParseError
				if !errors.As(err, &pe) || pe.Reason == "" || !strings.Contains(pe.Reason, tt.reason) {
					t.Errorf("reason of %v lacks %q", err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := o.Summary(); got != tt.summary {
				t.Errorf("summary = %q, want %q", got, tt.summary)
			}
			if got := o.Total(); got != tt.total {
				t.Errorf("total = %d, want %d", got, tt.total)
			}
			if o.Merchant.ID != tt.merchant {
				t.Errorf("merchant = %s, want %s", o.Merchant.ID, tt.merchant)
			}
		})
	}
}

func TestOrderItems(t *testing.T) {
	c := defaultCatalog(t)
	o, err := c.Parse("two oat lattes, a large decaf americano and an espresso")
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.Item{
		{SKU: "latte-oat", Name: "Oat latte", Qty: 2, UnitAmount: 550, Options: []string{"regular"}},
		{SKU: "americano", Name: "Americano", Qty: 1, UnitAmount: 450, Options: []string{"large", "decaf"}},
		{SKU: "espresso", Name: "Espresso", Qty: 1, UnitAmount: 300},
	}
	if got := o.Items(); !reflect.DeepEqual(got, want) {
		t.Errorf("items =\n%+v\nwant\n%+v", got, want)
	}
	var sum wire.Amount
	for _, it := range o.Items() {
		sum += it.UnitAmount * wire.Amount(it.Qty)
	}
	if sum != o.Total() || o.Total() != 1850 {
		t.Errorf("items add up to %d, total %d", sum, o.Total())
	}
	// The terms the gateway will build from these items validate.
	terms := wire.Terms{Tx: "tx_1", Device: "dev_1", Session: "ses_1",
		Merchant: wire.Merchant{ID: o.Merchant.ID, Name: o.Merchant.Name}, Items: o.Items(),
		Total: o.Total(), Currency: o.Merchant.Currency, Kind: wire.KindOneOff, ExpiresAt: 1, Nonce: "n"}
	if err := terms.Validate(); err != nil {
		t.Errorf("terms from the order do not validate: %v", err)
	}
}

func BenchmarkParse(b *testing.B) {
	c := defaultCatalog(b)
	texts := []string{
		"buy two oat lattes",
		"get me an espresso and two croissants",
		"hey, can you grab me three large iced americanos with an extra shot to go",
		"I like turtles",
	}
	for b.Loop() {
		for _, s := range texts {
			_, _ = c.Parse(s) // both outcomes are the point of the benchmark
		}
	}
}

func BenchmarkLoadDefaultCatalog(b *testing.B) {
	doc := mustDefaultYAML(b)
	for b.Loop() {
		if _, err := refagent.LoadCatalog(strings.NewReader(doc)); err != nil {
			b.Fatal(err)
		}
	}
}

func mustDefaultYAML(tb testing.TB) string {
	tb.Helper()
	raw, err := os.ReadFile("catalog.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return string(raw)
}
