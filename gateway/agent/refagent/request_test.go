package refagent_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent/refagent"
	"github.com/earshot/earshot/speech/grammar"
)

// parseNow is the clock of the parse tests: 1 October 2025, noon UTC.
var parseNow = time.Date(2025, time.October, 1, 12, 0, 0, 0, time.UTC)

func TestParseRequest(t *testing.T) {
	c := defaultCatalog(t)
	day := 24 * time.Hour
	tests := []struct {
		text    string
		tipCur  string // ParseContext.TipCurrency; "USD" unless "-"
		kind    wire.Kind
		summary string
		limit   wire.Amount
		tip     wire.Amount
		every   wire.Period
		times   int
		until   time.Time
		reason  string // an error is expected when set
	}{
		// Price targets: "under" is one minor unit less than said.
		{text: "buy the black leggings when they drop under 90 dollars", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8999},
		{text: "buy the black leggings when it's under 90", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8999},
		{text: "leggings if the price goes below 85", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8499},
		{text: "a pair of black leggings for less than ninety dollars", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8999},
		{text: "a pair of black leggings once it gets down under eighty five dollars and fifty cents", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8549},
		{text: "Leggings when the price drops below $89.50.", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8949},
		{text: "leggings when they drop to 85", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8500},
		{text: "leggings when it's 85 dollars or less", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8500},
		{text: "a water bottle when it drops under a hundred and five dollars", kind: wire.KindPriceTarget, summary: "1 water bottle", limit: 10499},
		{text: "leggings when the leggings drop under twenty", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 1999},
		{text: "two pairs of socks when they drop under 20", kind: wire.KindPriceTarget, summary: "2 pairs of running socks", limit: 1999},
		{text: "leggings when they drop under 90 for ten days", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8999, until: parseNow.Add(10 * day)},
		{text: "leggings when they drop under 90 until november 5th", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8999,
			until: time.Date(2025, time.November, 6, 0, 0, 0, 0, time.UTC)},
		{text: "leggings when they drop under 90 until the 3rd of october", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8999,
			until: time.Date(2025, time.October, 4, 0, 0, 0, 0, time.UTC)},
		{text: "leggings when they drop under 90 for two weeks", kind: wire.KindPriceTarget, summary: "1 pair of black leggings", limit: 8999, until: parseNow.Add(14 * day)},
		{text: "leggings when it drops", reason: "which price"},
		{text: "leggings when it drops under", reason: "which price"},
		{text: "leggings when it's 85", reason: "which price"},
		{text: "leggings when it drops under 90 euros", reason: "Earshot Outfitters takes USD"},
		{text: "leggings when it drops under 89.505", reason: "too many decimals"},
		{text: "leggings when it drops under 1 cent", reason: "too low"},
		{text: "leggings when it drops under 90 until march 5", reason: "at most 90 days"},
		{text: "leggings when it drops under 90 until september 31", reason: "until when"},
		{text: "leggings when it drops under 90 for 3 times", reason: "days, weeks or months"},
		{text: "leggings when it drops under 90 when it drops under 80", reason: "only once"},
		{text: "leggings when it drops under 90 and add a two dollar tip", reason: "can't add a tip to a price watch"},
		{text: "leggings when it drops under 90 every week", reason: "not both"},
		{text: "when it drops under 90", reason: "only take orders"},
		// Subscriptions.
		{text: "buy two oat lattes every week for 4 weeks", kind: wire.KindRecurring, summary: "2 oat lattes", every: wire.PeriodWeek, times: 4, until: parseNow.Add(28 * day)},
		{text: "a croissant every day", kind: wire.KindRecurring, summary: "1 croissant", every: wire.PeriodDay},
		{text: "a croissant daily for ten days", kind: wire.KindRecurring, summary: "1 croissant", every: wire.PeriodDay, times: 10, until: parseNow.Add(10 * day)},
		{text: "a latte weekly 5 times", kind: wire.KindRecurring, summary: "1 latte", every: wire.PeriodWeek, times: 5, until: parseNow.Add(35 * day)},
		{text: "an americano once a week until november 1", kind: wire.KindRecurring, summary: "1 americano", every: wire.PeriodWeek,
			until: time.Date(2025, time.November, 2, 0, 0, 0, 0, time.UTC)},
		{text: "every day get me an espresso for two weeks", kind: wire.KindRecurring, summary: "1 espresso", every: wire.PeriodDay, until: parseNow.Add(14 * day)},
		// Three monthly payments fit in 90 days: the end is held at 90 days.
		{text: "socks every month for 3 months", kind: wire.KindRecurring, summary: "1 pair of running socks", every: wire.PeriodMonth, times: 3, until: parseNow.Add(90 * day)},
		{text: "socks every month for 4 months", reason: "at most 90 days"},
		{text: "socks monthly for a year", reason: "at most 90 days"},
		{text: "a latte every other week", reason: "every day, every week or every month"},
		{text: "a latte every 2 weeks", reason: "every day, every week or every month"},
		{text: "a latte every week weekly", reason: "only once"},
		{text: "a latte every week and a two dollar tip", reason: "can't add a tip to a repeat order"},
		{text: "a latte for ten days", reason: `"for" or "until" goes with`},
		// Tips on their own, on the last order.
		{text: "add a two dollar tip", kind: wire.KindTip, tip: 200},
		{text: "leave a tip of three dollars", kind: wire.KindTip, tip: 300},
		{text: "tip two dollars", kind: wire.KindTip, tip: 200},
		{text: "Can you please add a $2 tip?", kind: wire.KindTip, tip: 200},
		{text: "I'd like to give a five dollar tip", kind: wire.KindTip, tip: 500},
		{text: "leave three dollars fifty as a tip", kind: wire.KindTip, tip: 350},
		{text: "add a 1.50 tip please", kind: wire.KindTip, tip: 150},
		{text: "add a tip", reason: "How much of a tip?"},
		{text: "tip", reason: "How much of a tip?"},
		{text: "add a two dollar tip", tipCur: "-", reason: "no recent order to tip"},
		{text: "add a two euro tip", reason: "your last order takes USD"},
		{text: "add a two dollar tip for ten days", reason: "just an amount"},
		// A tip at the end of an order.
		{text: "two oat lattes and add a two dollar tip", kind: wire.KindOneOff, summary: "2 oat lattes", tip: 200},
		{text: "an espresso plus a tip of one dollar fifty", kind: wire.KindOneOff, summary: "1 espresso", tip: 150},
		{text: "a latte with a three dollar tip", kind: wire.KindOneOff, summary: "1 latte", tip: 300},
		{text: "a latte and a tip", reason: "How much of a tip?"},
		// Orders are as before.
		{text: "a latte with an extra shot", kind: wire.KindOneOff, summary: "1 latte (extra shot)"},
		{text: "give me a latte", kind: wire.KindOneOff, summary: "1 latte"},
		{text: "add two lattes", reason: `didn't catch "add"`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			pc := refagent.ParseContext{Now: parseNow, TipCurrency: "USD"}
			if tt.tipCur == "-" {
				pc.TipCurrency = ""
			}
			r, err := c.ParseRequest(tt.text, pc)
			if tt.reason != "" {
				var pe *refagent.ParseError
				if !errors.As(err, &pe) || !errors.Is(err, refagent.ErrNotUnderstood) || !strings.Contains(pe.Reason, tt.reason) {
					t.Fatalf("ParseRequest = %+v, %v; want a ParseError saying %q", r, err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []any{r.Kind, r.Limit, r.Tip, r.Every, r.Times, r.Until}
			want := []any{tt.kind, tt.limit, tt.tip, tt.every, tt.times, tt.until}
			if !slices.Equal(got, want) {
				t.Errorf("kind, limit, tip, every, times, until = %v, want %v", got, want)
			}
			if tt.kind != wire.KindTip && r.Order.Summary() != tt.summary {
				t.Errorf("order = %q, want %q", r.Order.Summary(), tt.summary)
			}
		})
	}
}

// Whatever the speech recogniser's grammar (speech/grammar, built from the same
// catalogue) can produce for a buy or a tip, the agent understands as the grammar
// means it: the same lines, "under N" as N less one minor unit, the same tip.
func TestParseRequestGrammarSentences(t *testing.T) {
	c := defaultCatalog(t)
	g, err := grammar.Build(c.GrammarSource())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 11))
	var targets, tips, tails int
	for range 3000 {
		text, in := g.Sample(r)
		if in.Action != grammar.ActionBuy && in.Action != grammar.ActionTip {
			continue // status and cancel are the gateway's, not the agent's
		}
		req, err := c.ParseRequest(text, refagent.ParseContext{Now: parseNow, TipCurrency: in.Currency})
		if mixed(c, in) { // the grammar hears them; the agent orders from one shop at a time
			if !errors.Is(err, refagent.ErrMixedMerchants) {
				t.Errorf("%q: %v, want ErrMixedMerchants", text, err)
			}
			continue
		}
		if overQty(c, in) { // "seven cappuccinos and fifteen regular cappuccinos" are 22 of one
			if !errors.Is(err, refagent.ErrQuantity) {
				t.Errorf("%q: %v, want ErrQuantity", text, err)
			}
			continue
		}
		if in.Under > 0 && in.Tip > 0 {
			if err == nil {
				t.Errorf("%q: a price target with a tip was understood: %+v", text, req)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q (%s): %v", text, in, err)
			continue
		}
		switch {
		case in.Action == grammar.ActionTip:
			tips++
			if req.Kind != wire.KindTip || int64(req.Tip) != in.Tip {
				t.Errorf("%q: kind %s tip %d, want a tip of %d", text, req.Kind, req.Tip, in.Tip)
			}
			continue
		case in.Under > 0:
			targets++
			if req.Kind != wire.KindPriceTarget || int64(req.Limit) != in.Under-1 {
				t.Errorf("%q: kind %s limit %d, want a price target of %d", text, req.Kind, req.Limit, in.Under-1)
			}
		default:
			if in.Tip > 0 {
				tails++
			}
			if req.Kind != wire.KindOneOff || int64(req.Tip) != in.Tip {
				t.Errorf("%q: kind %s tip %d, want one_off with tip %d", text, req.Kind, req.Tip, in.Tip)
			}
		}
		if got, want := linesOf(req.Order), grammarLines(c, in); !slices.Equal(got, want) {
			t.Errorf("%q: lines %q, want %q", text, got, want)
		}
	}
	if targets < 20 || tips < 20 || tails < 10 {
		t.Errorf("only %d price targets, %d tips and %d tips after an order sampled", targets, tips, tails)
	}
}

// mixed reports whether the grammar's lines are from more than one merchant.
func mixed(c *refagent.Catalog, in grammar.Intent) bool {
	for _, l := range in.Lines {
		if itemBySKU(c, l.SKU).Merchant() != itemBySKU(c, in.Lines[0].SKU).Merchant() {
			return true
		}
	}
	return false
}

// overQty reports whether the grammar's lines, merged as the agent merges them, hold
// more than MaxQty of one.
func overQty(c *refagent.Catalog, in grammar.Intent) bool {
	for _, l := range grammarLines(c, in) {
		if strings.Count(l, "I") > refagent.MaxQty {
			return true
		}
	}
	return false
}

// linesOf renders an order's lines as "2 latte-oat large iced".
func linesOf(o refagent.Order) []string {
	var out []string
	for _, l := range o.Lines {
		opts := slices.Sorted(slices.Values(l.Options))
		out = append(out, strings.Join(append([]string{strings.Repeat("I", l.Qty), l.Item.SKU, l.Size}, opts...), " "))
	}
	slices.Sort(out)
	return out
}

// grammarLines renders the grammar's lines as linesOf does, the default size filled
// in and lines that are then the same merged, as the agent does.
func grammarLines(c *refagent.Catalog, in grammar.Intent) []string {
	qty := map[string]int{}
	var keys []string
	for _, l := range in.Lines {
		size := l.Size
		if size == "" {
			size = itemBySKU(c, l.SKU).DefaultSize()
		}
		k := strings.Join(append([]string{l.SKU, size}, l.Options...), " ")
		if qty[k] == 0 {
			keys = append(keys, k)
		}
		qty[k] += l.Qty
	}
	var out []string
	for _, k := range keys {
		out = append(out, strings.Repeat("I", qty[k])+" "+k)
	}
	slices.Sort(out)
	return out
}

func itemBySKU(c *refagent.Catalog, sku string) *refagent.Item {
	for _, m := range c.Merchants() {
		for _, it := range m.Items {
			if it.SKU == sku {
				return it
			}
		}
	}
	return nil
}

func BenchmarkParseRequest(b *testing.B) {
	c := defaultCatalog(b)
	texts := []string{
		"buy the black leggings when they drop under 90 dollars",
		"two oat lattes and add a two dollar tip",
		"buy two oat lattes every week for 4 weeks",
		"add a two dollar tip",
	}
	pc := refagent.ParseContext{Now: parseNow, TipCurrency: "USD"}
	for b.Loop() {
		for _, s := range texts {
			_, _ = c.ParseRequest(s, pc) // both outcomes are the point of the benchmark
		}
	}
}
