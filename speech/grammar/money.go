package grammar

// currency is how amounts of one ISO 4217 currency are said.
type currency struct {
	major []string // "dollars", "dollar", "bucks"
	minor []string // "cents", "cent"; none when exp is 0
	exp   int      // minor units per major unit: 10^exp
}

// currencies the grammar can speak. A source in another currency is refused: the
// grammar would not know how its amounts are said.
var currencies = map[string]currency{
	"USD": {major: []string{"dollars", "dollar", "bucks"}, minor: []string{"cents", "cent"}, exp: 2},
	"CAD": {major: []string{"dollars", "dollar", "bucks"}, minor: []string{"cents", "cent"}, exp: 2},
	"AUD": {major: []string{"dollars", "dollar", "bucks"}, minor: []string{"cents", "cent"}, exp: 2},
	"NZD": {major: []string{"dollars", "dollar", "bucks"}, minor: []string{"cents", "cent"}, exp: 2},
	"SGD": {major: []string{"dollars", "dollar"}, minor: []string{"cents", "cent"}, exp: 2},
	"HKD": {major: []string{"dollars", "dollar"}, minor: []string{"cents", "cent"}, exp: 2},
	"EUR": {major: []string{"euros", "euro"}, minor: []string{"cents", "cent"}, exp: 2},
	"GBP": {major: []string{"pounds", "pound", "quid"}, minor: []string{"pence", "p"}, exp: 2},
	"CHF": {major: []string{"francs", "franc"}, minor: []string{"centimes", "centime"}, exp: 2},
	"JPY": {major: []string{"yen"}, exp: 0},
}

// DefaultCurrency is the currency of a tip when the source names none.
const DefaultCurrency = "USD"

// Amount limits of the grammar, in major units.
const (
	MaxUnder = 999 // "under nine hundred ninety nine dollars"
	MaxTip   = 20  // "a twenty dollar tip"
)

// numberRules adds the number rules every command grammar shares. Numbers are
// accumulated by the actions: "two hundred fifty" is add 2, hundred, add 50.
func numberRules(r *rules) {
	digits := alt()
	for i := 1; i <= 9; i++ {
		digits.kids = append(digits.kids, tag(act{op: opAdd, n: int64(i)}, w(ones[i])))
	}
	r.add("digit", digits)
	teens := alt()
	for i, t := range teen {
		teens.kids = append(teens.kids, tag(act{op: opAdd, n: int64(10 + i)}, w(t)))
	}
	r.add("teen", teens)
	tensRule := alt()
	for i := 2; i <= 9; i++ {
		tensRule.kids = append(tensRule.kids, tag(act{op: opAdd, n: int64(10 * i)}, w(tens[i])))
	}
	r.add("tens", tensRule)
	// 1..99: "seven", "twelve", "ninety", "ninety five".
	r.add("upto99", alt(ref("digit"), ref("teen"), seq(ref("tens"), opt(ref("digit")).chance(0.6))))
	// 1..999: "a hundred", "two hundred and five", "four hundred fifty".
	r.add("upto999", alt(
		ref("upto99"),
		seq(alt(tag(act{op: opAdd, n: 1}, w("a")), ref("digit")), tag(act{op: opHundred}, w("hundred")),
			opt(seq(opt(w("and")).chance(0.3), ref("upto99"))).chance(0.7)),
	).weigh(3, 1))
	// 1..20: tips.
	r.add("upto20", alt(ref("digit"), ref("teen"), tag(act{op: opAdd, n: 20}, w("twenty"))))
	// Quantities of two or more.
	many := alt()
	for i := 2; i <= 20; i++ {
		var word string
		switch {
		case i < 10:
			word = ones[i]
		case i < 20:
			word = teen[i-10]
		default:
			word = "twenty"
		}
		many.kids = append(many.kids, tag(act{op: opQty, n: int64(i)}, w(word)))
	}
	many.kids = append(many.kids, tag(act{op: opQty, n: 2}, w("a couple of")))
	weights := make([]int, len(many.kids))
	for i := range weights {
		weights[i] = 2
	}
	weights[0], weights[1], weights[len(weights)-1] = 8, 4, 1 // "two" most of all
	r.add("many", many.weigh(weights...))
}

// moneyRules adds <money> (an amount, the currency word optional: "ninety dollars",
// "eighty", "twelve dollars fifty") and <tipamount> ("two dollars").
func moneyRules(r *rules, c currency) {
	major := alt()
	for i, m := range c.major {
		major.kids = append(major.kids, w(m))
		major.weights = append(major.weights, max(3-i, 1)) // Sample: "dollars" more than "bucks"
	}
	r.add("major", major)
	unit := seq(do(act{op: opMajor}), ref("major"))
	if len(c.minor) > 0 {
		r.add("minor", ws(c.minor...))
		unit.kids = append(unit.kids, opt(seq(opt(w("and")), ref("upto99"), opt(ref("minor")))).chance(0.2))
	}
	r.add("money", seq(ref("upto999"), opt(unit).chance(0.7)))
	r.add("tipamount", seq(ref("upto20"), do(act{op: opMajor}), ref("major")))
}
