package grammar

import (
	"errors"
	"strings"
	"testing"
)

func buy(lines ...Line) Intent { return Intent{Action: ActionBuy, Lines: lines, Currency: "USD"} }

func (in Intent) under(n int64) Intent { in.Under = n; return in }
func (in Intent) tip(n int64) Intent   { in.Tip = n; return in }

func TestParse(t *testing.T) {
	g := shipped(t)
	status := Intent{Action: ActionStatus}
	cancel := Intent{Action: ActionCancel}
	tip := func(n int64) Intent { return Intent{Action: ActionTip, Tip: n, Currency: "USD"} }
	oat := func(n int, size string, opts ...string) Line {
		return Line{SKU: "latte-oat", Qty: n, Size: size, Options: opts}
	}
	ok := []struct {
		text string
		want Intent
	}{
		{"buy two oat lattes", buy(oat(2, ""))},
		{"Can I get two oat lattes, please?", buy(oat(2, ""))},
		{"i'd like a large iced latte with an extra shot", buy(Line{SKU: "latte", Qty: 1, Size: "large", Options: []string{"extra shot", "iced"}})},
		{"I’d like an oat milk latte", buy(oat(1, ""))},
		{"an oat milk latte", buy(oat(1, ""))},
		{"two oat milk lattes", buy(oat(2, ""))},
		{"2 lattes and a croissant", buy(Line{SKU: "latte", Qty: 2}, Line{SKU: "croissant", Qty: 1})},
		{"a latte, a croissant and a muffin", buy(Line{SKU: "latte", Qty: 1}, Line{SKU: "croissant", Qty: 1}, Line{SKU: "muffin-blueberry", Qty: 1})},
		{"two lattes and a latte", buy(Line{SKU: "latte", Qty: 3})},
		{"a latte and a large latte", buy(Line{SKU: "latte", Qty: 1}, Line{SKU: "latte", Qty: 1, Size: "large"})},
		{"a decaf latte and a latte with decaf", buy(Line{SKU: "latte", Qty: 2, Options: []string{"decaf"}})},
		{"small decaf iced americano", buy(Line{SKU: "americano", Qty: 1, Size: "small", Options: []string{"decaf", "iced"}})},
		{"a latte with extra shot and decaf and a croissant", buy(Line{SKU: "latte", Qty: 1, Options: []string{"decaf", "extra shot"}}, Line{SKU: "croissant", Qty: 1})},
		{"a latte with extra shot and decaf latte", buy(Line{SKU: "latte", Qty: 1, Options: []string{"extra shot"}}, Line{SKU: "latte", Qty: 1, Options: []string{"decaf"}})},
		{"three muffins", buy(Line{SKU: "muffin-blueberry", Qty: 3})},
		{"twenty croissants", buy(Line{SKU: "croissant", Qty: 20})},
		{"a couple of flat whites", buy(Line{SKU: "flat-white", Qty: 2})},
		{"two cappuccinos", buy(Line{SKU: "cappuccino", Qty: 2})}, // text only: the dictionary lacks it
		{"two cappuccino", buy(Line{SKU: "cappuccino", Qty: 2})},  // what the recogniser says
		{"two pairs of socks", buy(Line{SKU: "socks-running", Qty: 2})},
		{"two running socks", buy(Line{SKU: "socks-running", Qty: 2})},
		{"a pair of black leggings", buy(Line{SKU: "leggings-black", Qty: 1})},
		{"leggings", buy(Line{SKU: "leggings-black", Qty: 1})},
		{"a pair of black leggings when it drops under ninety dollars", buy(Line{SKU: "leggings-black", Qty: 1}).under(9000)},
		{"buy leggings if it goes below eighty", buy(Line{SKU: "leggings-black", Qty: 1}).under(8000)},
		{"leggings when it drops under $89.50", buy(Line{SKU: "leggings-black", Qty: 1}).under(8950)},
		{"leggings when it drops under $90", buy(Line{SKU: "leggings-black", Qty: 1}).under(9000)},
		{"leggings once it's under twelve dollars fifty", buy(Line{SKU: "leggings-black", Qty: 1}).under(1250)},
		{"leggings for less than a hundred dollars", buy(Line{SKU: "leggings-black", Qty: 1}).under(10000)},
		{"leggings if the price falls below two hundred and fifty dollars", buy(Line{SKU: "leggings-black", Qty: 1}).under(25000)},
		{"leggings if the price falls below 250 dollars", buy(Line{SKU: "leggings-black", Qty: 1}).under(25000)},
		{"leggings when it drops under nine hundred ninety nine dollars and ninety nine cents", buy(Line{SKU: "leggings-black", Qty: 1}).under(99999)},
		{"two lattes and a one dollar tip", buy(Line{SKU: "latte", Qty: 2}).tip(100)},
		{"a bottle when it gets below twenty and a tip of three bucks", buy(Line{SKU: "water-bottle", Qty: 1}).under(2000).tip(300)},
		{"add a two dollar tip", tip(200)},
		{"please leave a tip of five dollars", tip(500)},
		{"add a $2 tip", tip(200)},
		{"tip twenty dollars", tip(2000)},
		{"where is my order", status},
		{"Where's my order?", status},
		{"what's the status of my order", status},
		{"um is my order ready", status},
		{"cancel my order", cancel},
		{"Please cancel the order.", cancel},
		{"could you cancel my order please", cancel},
		{"Um, two lattes.", buy(Line{SKU: "latte", Qty: 2})},
		{"I would like to order an americano", buy(Line{SKU: "americano", Qty: 1})},
		{"  TWO   Oat-Lattes!! ", buy(oat(2, ""))},
	}
	for _, tc := range ok {
		t.Run(tc.text, func(t *testing.T) {
			got, err := g.Parse(tc.text)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !got.Equal(tc.want) {
				t.Fatalf("Parse = %s, want %s", got, tc.want)
			}
		})
	}
	bad := []struct{ text, why string }{
		{"", "nothing said"},
		{"play some music", `unknown word "play"`},
		{"what's the weather", `unknown word "weather"`},
		{"the weather is nice today, buy low sell high", "unknown word"},
		{"the new latte art competition starts today", "unknown word"},
		{"i like turtles", "unknown word"},
		{"buy two oat", "incomplete"},
		{"one lattes", `"lattes" cannot follow "one"`},
		{"buy a car", `unknown word "car"`},
		{"two lattes and a rocket", `unknown word "rocket"`},
		{"latte latte", `"latte" cannot follow "latte"`},
		{"a large croissant", `"croissant" cannot follow "large"`},
		{"an iced espresso", `"espresso" cannot follow "iced"`},
		{"a croissant with decaf", `"decaf" cannot follow "with"`},
		{"twenty five lattes", "cannot follow"},
		{"25 lattes", `"five" cannot follow "twenty"`},
		{"0 lattes", `unknown word "0"`},
		{"eleven lattes and ten lattes", "more than 20 of one item: 21 of latte"},
		{"buy", "incomplete"},
		{"cancel", "incomplete"},
		{"and a latte", `cannot start with "and"`},
		{"a latte under ninety dollars", `"under" cannot follow "latte"`},
		{"add a fifty dollar tip", "cannot follow"},
		{"a latte when it drops under zero dollars", `unknown word "zero"`},
		{"yes", `unknown word "yes"`},
		{"latte with", "incomplete"},
		{"two pairs of lattes", `"lattes" cannot follow "of"`},
		{strings.Repeat("latte and ", 103) + "latte", "too long"},
		{strings.Repeat("a ", 70), "too long"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.text, func(t *testing.T) {
			in, err := g.Parse(tc.text)
			if err == nil {
				t.Fatalf("Parse = %s, want an error", in)
			}
			if !errors.Is(err, ErrNotUnderstood) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Parse error %q, want ErrNotUnderstood saying %q", err, tc.why)
			}
		})
	}
}

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		text   string
		answer string
		pin    string
	}{
		{"yes", "approve", ""}, {"Yes.", "approve", ""}, {"yeah", "approve", ""}, {"yep", "approve", ""},
		{"confirm", "approve", ""}, {"approve", "approve", ""}, {"yes please", "approve", ""},
		{"confirm it", "approve", ""}, {"yes, confirm", "approve", ""},
		{"no", "decline", ""}, {"nope", "decline", ""}, {"cancel", "decline", ""}, {"decline", "decline", ""},
		{"don't", "decline", ""}, {"Don’t!", "decline", ""}, {"cancel it", "decline", ""}, {"no, cancel", "decline", ""},
		{"repeat", "repeat", ""}, {"say that again", "repeat", ""}, {"What?", "repeat", ""},
		{"pardon", "repeat", ""}, {"pardon me", "repeat", ""},
		{"one two three four", "pin", "1234"}, {"oh one two three", "pin", "0123"},
		{"zero zero zero zero", "pin", "0000"}, {"1234", "pin", "1234"}, {"1 2 3 4 5 6 7 8", "pin", "12345678"},
		{"12345678", "pin", "12345678"}, {"nine eight seven six five", "pin", "98765"},
		{"one", "", ""}, {"one two three", "", ""}, {"123", "", ""}, {"123456789", "", ""},
		{"one two three four five six seven eight nine", "", ""},
		{"yes no", "", ""}, {"maybe", "", ""}, {"", "", ""}, {"yes i want to buy a latte", "", ""},
		{"two lattes", "", ""}, {"12ab", "", ""}, {strings.Repeat("yes ", 300), "", ""},
	} {
		t.Run(tc.text, func(t *testing.T) {
			a, pin, err := ParseAnswer(tc.text)
			if tc.answer == "" {
				if err == nil || !errors.Is(err, ErrNotUnderstood) {
					t.Fatalf("ParseAnswer = %q %q %v, want ErrNotUnderstood", a, pin, err)
				}
				return
			}
			if err != nil || string(a) != tc.answer || pin != tc.pin {
				t.Fatalf("ParseAnswer = %q %q %v, want %q %q", a, pin, err, tc.answer, tc.pin)
			}
		})
	}
}

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		in     string
		digits bool
		want   string
	}{
		{"Two Oat-Lattes, please.", false, "two oat lattes , please"},
		{"What’s up?", false, "what's up"},
		{"'quoted' words'", false, "quoted words"},
		{"$12.50", false, "twelve dollars fifty"},
		{"12.50", false, "12.50"},
		{"$90.00", false, "ninety dollars"},
		{"90€", false, "ninety euros"},
		{"105", false, "one hundred five"},
		{"1000", false, "1000"},
		{"1,5", false, "one , five"},
		{", , a ,", false, "a"},
		{"1234", true, "one two three four"},
		{"12 34", true, "one two three four"},
		{"$5", true, "$5"},
		{"$", false, "$"},
		{"$1.5", false, "$1.5"},
	} {
		got, err := tokenize(tc.in, tc.digits)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("tokenize(%q, %v) = %q, %v; want %q", tc.in, tc.digits, got, err, tc.want)
		}
	}
}

func TestIntent(t *testing.T) {
	a := buy(Line{SKU: "latte-oat", Qty: 2, Size: "large", Options: []string{"iced"}}, Line{SKU: "croissant", Qty: 1}).under(9000).tip(200)
	if got, want := a.String(), "buy 2 latte-oat[large,iced], 1 croissant under 9000 tip 200"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		in   Intent
		want string
	}{
		{Intent{Action: ActionTip, Tip: 200}, "tip 200"},
		{Intent{Action: ActionStatus}, "status"},
		{Intent{Action: ActionCancel}, "cancel"},
		{Intent{}, "unknown"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("String = %q, want %q", got, tc.want)
		}
	}
	if Action(99).String() != "unknown" {
		t.Error("Action(99) has a name")
	}
	b := a
	b.Lines = []Line{a.Lines[0], {SKU: "croissant", Qty: 1, Options: []string{}}}
	if !a.Equal(b) {
		t.Error("nil and empty options differ")
	}
	for _, change := range []func(*Intent){
		func(in *Intent) { in.Action = ActionTip },
		func(in *Intent) { in.Under = 1 },
		func(in *Intent) { in.Tip = 1 },
		func(in *Intent) { in.Currency = "EUR" },
		func(in *Intent) { in.Lines = in.Lines[:1] },
		func(in *Intent) { in.Lines = []Line{{SKU: "latte-oat", Qty: 2, Size: "large"}, in.Lines[1]} },
		func(in *Intent) {
			in.Lines = []Line{{SKU: "latte-oat", Qty: 3, Size: "large", Options: []string{"iced"}}, in.Lines[1]}
		},
	} {
		c := a
		change(&c)
		if a.Equal(c) {
			t.Errorf("%s equals %s", a, c)
		}
	}
}
