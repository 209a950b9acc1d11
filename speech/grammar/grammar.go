package grammar

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/earshot/earshot/device/wire"
)

// Errors. Every error Parse and ParseAnswer return wraps ErrNotUnderstood and says why.
var (
	ErrNotUnderstood = errors.New("grammar: not understood")
	ErrBadSource     = errors.New("grammar: bad source")
	ErrBadDict       = errors.New("grammar: bad dictionary")
)

// errTooMany is why Parse refuses a sentence of the JSGF: the only ones it refuses
// order more than MaxQty of one line once lines of the same item are merged.
var errTooMany = fmt.Errorf("more than %d of one item", MaxQty)

// MaxQty is the most of one line (one item in one size with one set of options).
const MaxQty = 20

// Source is what the grammar is generated from: the agent's catalogue.
type Source struct {
	Items []Item
	// Has, when set, reports whether the recogniser's pronunciation dictionary knows a
	// word. A plural the grammar derives ("lattes") that it lacks is left out of the
	// JSGF: after a number the singular stands in ("two oat latte"), and Parse still
	// accepts the plural in text. Aliases are kept whatever Has says: Missing reports
	// their unknown words. Nil keeps every derived plural.
	Has func(word string) bool
}

// Item is one thing that can be bought.
type Item struct {
	SKU  string // "latte-oat"
	Name string // "Oat latte"; said like an alias
	// Aliases are what people say to name the item ("oat latte", "oat milk latte").
	// Upper case is lowered. For an item sold by a unit, a leading "pair of" is
	// dropped: the grammar says the unit itself.
	Aliases []string
	// Plural is the plural of the name ("oat lattes"); by default the last word is
	// made plural. Other aliases always get a derived plural.
	Plural string
	// Unit is what the item is counted in ("pair": "a pair of black leggings", "two
	// pairs of socks"); "" counts the item itself.
	Unit string
	// Sizes ("small", "large") and Options ("decaf", "extra shot") may be said before
	// the item; options also after it: "latte with an extra shot".
	Sizes   []string
	Options []string
	// Currency is the ISO 4217 code of the item's price; "" is DefaultCurrency. All
	// items of one grammar share one currency.
	Currency string
}

// Grammar is the commerce grammar built from a Source. It is safe for concurrent use.
type Grammar struct {
	rules    *rules
	prog     *program
	jsgf     string
	words    []string // both grammars, as the recogniser hears them
	names    []string // the items' names in the JSGF
	currency string
	exp      int
}

// Build makes the grammar of src. A source the grammar cannot say (no items, an alias
// that is not words, a phrase that means two things or is a word every command uses,
// several currencies, a currency it cannot name) is ErrBadSource. Set src.Has to the
// recogniser's dictionary so that the JSGF leaves out the derived plurals it lacks.
func Build(src Source) (*Grammar, error) {
	items, cur, err := prepare(src)
	if err != nil {
		return nil, err
	}
	r, err := commandRules(items, cur)
	if err != nil {
		return nil, err
	}
	prog, err := compile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSource, err)
	}
	set := map[string]bool{}
	r.words(set, false)
	confirm().rules.words(set, false)
	names := map[string]bool{}
	for _, it := range items {
		for _, f := range append(slices.Clone(it.one), it.more...) {
			if !f.noJSGF {
				names[f.text] = true
			}
		}
	}
	return &Grammar{rules: r, prog: prog, jsgf: r.JSGF(), words: slices.Sorted(maps.Keys(set)),
		names: slices.Sorted(maps.Keys(names)), currency: cur, exp: currencies[cur].exp}, nil
}

// CommandJSGF returns the command grammar in JSGF V1.0 for PocketSphinx; its public
// rule is <command>.
func (g *Grammar) CommandJSGF() string { return g.jsgf }

// Words returns every word of both grammars (the JSGF texts), sorted, lower case.
func (g *Grammar) Words() []string { return slices.Clone(g.words) }

// Names returns every way the JSGF names an item ("oat latte", "oat lattes"), sorted.
func (g *Grammar) Names() []string { return slices.Clone(g.names) }

// Currency is the currency of the grammar's amounts.
func (g *Grammar) Currency() string { return g.currency }

// Missing returns the grammar's words that has reports absent from the pronunciation
// dictionary, sorted. A recogniser cannot load a grammar with such words.
func (g *Grammar) Missing(has func(word string) bool) []string {
	var out []string
	for _, w := range g.words {
		if has == nil || !has(w) {
			out = append(out, w)
		}
	}
	return out
}

// Action is what a command asks for.
type Action uint8

// Actions.
const (
	ActionUnknown Action = iota
	ActionBuy            // buy Lines, now or Under a price
	ActionStatus         // "where is my order"
	ActionCancel         // "cancel my order"
	ActionTip            // "add a two dollar tip"
)

func (a Action) String() string {
	switch a {
	case ActionBuy:
		return "buy"
	case ActionStatus:
		return "status"
	case ActionCancel:
		return "cancel"
	case ActionTip:
		return "tip"
	}
	return "unknown"
}

// Line is one item of a buy.
type Line struct {
	SKU     string
	Qty     int    // 1..MaxQty
	Size    string // as said; "" when none was said
	Options []string
}

// Intent is the meaning of a command.
type Intent struct {
	Action Action
	// Lines are what to buy (ActionBuy), in the order said; lines of the same item,
	// size and options are merged. Options are sorted.
	Lines []Line
	// Under is a price target in minor units: buy when the total drops under it; 0
	// buys now.
	Under int64
	// Tip is a tip in minor units (ActionTip, or said at the end of a buy).
	Tip int64
	// Currency is that of the amounts (the grammar's currency: its items', else
	// DefaultCurrency) for ActionBuy and ActionTip; "" otherwise.
	Currency string
}

// Equal reports whether in and o mean the same.
func (in Intent) Equal(o Intent) bool {
	return in.Action == o.Action && in.Under == o.Under && in.Tip == o.Tip && in.Currency == o.Currency &&
		slices.EqualFunc(in.Lines, o.Lines, func(a, b Line) bool {
			return a.SKU == b.SKU && a.Qty == b.Qty && a.Size == b.Size && slices.Equal(a.Options, b.Options)
		})
}

// String is a compact form for logs and reports: "buy 2 latte-oat[large,iced], 1
// croissant under 9000 tip 200".
func (in Intent) String() string {
	var b strings.Builder
	if in.Action != ActionTip {
		b.WriteString(in.Action.String())
	}
	for i, l := range in.Lines {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %d %s", l.Qty, l.SKU)
		var mods []string
		if l.Size != "" {
			mods = append(mods, l.Size)
		}
		mods = append(mods, l.Options...)
		if len(mods) > 0 {
			b.WriteString("[" + strings.Join(mods, ",") + "]")
		}
	}
	if in.Under > 0 {
		fmt.Fprintf(&b, " under %d", in.Under)
	}
	if in.Tip > 0 {
		fmt.Fprintf(&b, " tip %d", in.Tip)
	}
	return strings.TrimPrefix(b.String(), " ")
}

// Parse turns a transcript into an Intent. The transcript may be as a recogniser
// writes it (lower case words) or as a cloud recogniser does (capitals, punctuation,
// digits: "Two oat lattes, please.", "$90"). Parse is strict: every word must be
// accounted for by the grammar, else the error wraps ErrNotUnderstood and says which
// word did not fit. Numbers in digits are read as their words, so "25 lattes" fails
// like "twenty five lattes".
func (g *Grammar) Parse(text string) (Intent, error) {
	words, err := tokenize(text, false)
	if err != nil {
		return Intent{}, err
	}
	acts, err := g.prog.run(words)
	if err != nil {
		return Intent{}, err
	}
	return g.interpret(acts)
}

// interpret gives the actions of a reading their meaning.
func (g *Grammar) interpret(acts []act) (Intent, error) {
	in := Intent{Currency: g.currency}
	var (
		qty   int
		size  string
		opts  []string
		lines []Line
		money struct {
			kind              int64
			acc, major        int64
			majorSaid, active bool
		}
	)
	scale := int64(1)
	for range g.exp {
		scale *= 10
	}
	endMoney := func() {
		if !money.active {
			return
		}
		amount := money.acc * scale
		if money.majorSaid {
			amount = money.major*scale + money.acc
		}
		switch money.kind {
		case moneyUnder:
			in.Under = amount
		case moneyTip:
			in.Tip = amount
		}
		money.active = false
	}
	for _, a := range acts {
		switch a.op {
		case opAction:
			in.Action = Action(a.n)
		case opQty:
			qty = int(a.n)
		case opSize:
			size = a.s
		case opOpt:
			opts = append(opts, a.s)
		case opItem:
			lines = append(lines, Line{SKU: a.s, Qty: max(qty, 1), Size: size, Options: opts})
			qty, size, opts = 0, "", nil
		case opPostOpt:
			if len(lines) > 0 {
				l := &lines[len(lines)-1]
				l.Options = append(l.Options, a.s)
			}
		case opMoney:
			endMoney()
			money.kind, money.acc, money.major, money.majorSaid, money.active = a.n, 0, 0, false, true
		case opAdd:
			money.acc += a.n
		case opHundred:
			money.acc *= 100
		case opMajor:
			money.major, money.acc, money.majorSaid = money.acc, 0, true
		}
	}
	endMoney()
	switch in.Action {
	case ActionTip:
		return in, nil
	case ActionBuy:
	default:
		in.Currency = ""
		return in, nil
	}
	for _, l := range lines {
		slices.Sort(l.Options)
		l.Options = slices.Compact(l.Options)
		k := slices.IndexFunc(in.Lines, func(m Line) bool {
			return m.SKU == l.SKU && m.Size == l.Size && slices.Equal(m.Options, l.Options)
		})
		if k < 0 {
			in.Lines = append(in.Lines, l)
			continue
		}
		in.Lines[k].Qty += l.Qty
	}
	for _, l := range in.Lines {
		if l.Qty > MaxQty {
			return Intent{}, fmt.Errorf("%w: %w: %d of %s", ErrNotUnderstood, errTooMany, l.Qty, l.SKU)
		}
	}
	if len(in.Lines) > wire.MaxItems {
		return Intent{}, fmt.Errorf("%w: %d different items, at most %d", ErrNotUnderstood, len(in.Lines), wire.MaxItems)
	}
	return in, nil
}

// confirmGrammar is the confirm grammar, the same for every catalogue.
type confirmGrammar struct {
	rules *rules
	prog  *program
	jsgf  string
	words []string
}

var confirm = sync.OnceValue(func() *confirmGrammar {
	r := confirmRules()
	prog, err := compile(r)
	if err != nil { // a fixed grammar: TestConfirmJSGF keeps it valid
		prog = &program{words: map[string]int32{}, comma: -1, insts: []inst{{op: iJmp}}}
	}
	set := map[string]bool{}
	r.words(set, false)
	return &confirmGrammar{rules: r, prog: prog, jsgf: r.JSGF(), words: slices.Sorted(maps.Keys(set))}
})
