package refagent

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/earshot/earshot/device/wire"
)

// MaxQty is the most of one item (same size and options) an order may hold.
const MaxQty = 20

// maxTokens bounds the words of an utterance Parse considers.
const maxTokens = 64

// oneWord is the words of a number written in digits: only its length is used.
var oneWord = []string{"#"}

// Parse errors. Every error Parse returns is a *ParseError and matches
// ErrNotUnderstood; ErrMixedMerchants and ErrQuantity say more.
var (
	ErrNotUnderstood  = errors.New("refagent: not understood")
	ErrMixedMerchants = errors.New("refagent: items from more than one merchant")
	ErrQuantity       = errors.New("refagent: quantity out of range")
)

// ParseError is why an utterance did not parse. Reason is short device-visible text
// (it may be shown or spoken, and quotes at most one clipped word of the utterance);
// Err is the sentinel.
type ParseError struct {
	Reason string
	Err    error
}

func (e *ParseError) Error() string { return e.Err.Error() + ": " + e.Reason }

// Unwrap lets errors.Is match both the sentinel and ErrNotUnderstood.
func (e *ParseError) Unwrap() []error {
	if e.Err == ErrNotUnderstood {
		return []error{ErrNotUnderstood}
	}
	return []error{e.Err, ErrNotUnderstood}
}

func notUnderstood(format string, args ...any) *ParseError {
	return &ParseError{Reason: fmt.Sprintf(format, args...), Err: ErrNotUnderstood}
}

// Order is what an utterance asks to buy: lines from one merchant.
type Order struct {
	Merchant *Merchant
	Lines    []Line
}

// Line is one item of an order, in one size with one set of options.
type Line struct {
	Item *Item
	Qty  int
	// Size is the size said, else the item's default size; "" for items without
	// sizes.
	Size string
	// Options are the options said, in the item's catalogue order.
	Options []string
}

// UnitAmount is the price of one, in the line's size.
func (l Line) UnitAmount() wire.Amount {
	a, _ := l.Item.UnitAmount(l.Size) // Parse only makes lines with a size the item has
	return a
}

// Amount is the line's total: UnitAmount times Qty.
func (l Line) Amount() wire.Amount { return l.UnitAmount() * wire.Amount(l.Qty) }

// Total is the order's total in minor units of the merchant's currency. Parse
// guarantees it is at most wire.MaxAmount.
func (o Order) Total() wire.Amount {
	var t wire.Amount
	for _, l := range o.Lines {
		t += l.Amount()
	}
	return t
}

// Items returns the order as purchase-request items: the size, when the item has
// sizes, is the first option.
func (o Order) Items() []wire.Item {
	out := make([]wire.Item, len(o.Lines))
	for i, l := range o.Lines {
		var opts []string
		if l.Size != "" {
			opts = append(opts, l.Size)
		}
		opts = append(opts, l.Options...)
		out[i] = wire.Item{SKU: l.Item.SKU, Name: l.Item.Name, Qty: l.Qty, UnitAmount: l.UnitAmount(), Options: opts}
	}
	return out
}

// Summary reads the order back in words: "2 oat lattes, 1 large americano (iced)".
// The default size is not said.
func (o Order) Summary() string {
	var b strings.Builder
	for i, l := range o.Lines {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(l.Qty))
		b.WriteByte(' ')
		if l.Size != "" && l.Size != l.Item.DefaultSize() {
			b.WriteString(l.Size)
			b.WriteByte(' ')
		}
		if l.Qty == 1 {
			b.WriteString(l.Item.singular())
		} else {
			b.WriteString(l.Item.plural())
		}
		if len(l.Options) > 0 {
			b.WriteString(" (")
			b.WriteString(strings.Join(l.Options, ", "))
			b.WriteByte(')')
		}
	}
	return b.String()
}

// pending is what has been said about the next item.
type pending struct {
	qty     int // 0: not said
	unit    string
	size    string
	options []string
}

func (p *pending) empty() bool {
	return p.qty == 0 && p.unit == "" && p.size == "" && len(p.options) == 0
}

func (p *pending) setQty(n int) error {
	if p.qty != 0 || p.size != "" || len(p.options) > 0 {
		return notUnderstood("Sorry, I didn't catch how many.")
	}
	if n < 1 || n > MaxQty {
		return &ParseError{Reason: fmt.Sprintf("Sorry, I can take 1 to %d of each item.", MaxQty), Err: ErrQuantity}
	}
	p.qty = n
	return nil
}

// line makes the line for it from what was said before it.
func (p *pending) line(it *Item) (Line, error) {
	l := Line{Item: it, Qty: max(p.qty, 1), Size: it.DefaultSize()}
	if p.unit != "" && p.unit != it.Unit {
		return l, notUnderstood("Sorry, %s isn't sold by the %s.", it.singular(), p.unit)
	}
	if p.size != "" {
		if _, ok := it.UnitAmount(p.size); !ok {
			return l, notUnderstood("Sorry, %s doesn't come in %s.", it.singular(), p.size)
		}
		l.Size = p.size
	}
	for _, o := range p.options {
		if err := addOption(&l, o); err != nil {
			return l, err
		}
	}
	return l, nil
}

func addOption(l *Line, o string) error {
	if !l.Item.hasOption(o) {
		return notUnderstood("Sorry, %q isn't an option for %s.", o, l.Item.singular())
	}
	if !slices.Contains(l.Options, o) {
		l.Options = append(l.Options, o)
	}
	return nil
}

// Parse understands commerce text: a quantity (digits, "one" to "twenty", "a", "a
// couple of", "a pair of"), an optional size and options, and an item alias, singular
// or plural, repeated and joined by "and" or commas, among filler words ("can I get",
// "I'd like", "please"). Options may also follow an item after "with". Any word it
// does not know makes the whole utterance not understood: it never guesses a
// purchase from part of a sentence. Lines that repeat an item in the same size and
// options are merged. All items must come from one merchant.
func (c *Catalog) Parse(text string) (Order, error) {
	toks, err := tokenizeUtterance(text)
	if err != nil {
		return Order{}, err
	}
	return c.parseOrder(toks)
}

// tokenizeUtterance splits text into tokens, refusing an empty or overlong one.
func tokenizeUtterance(text string) ([]token, error) {
	if len(text) > wire.MaxTextBytes {
		return nil, notUnderstood("Sorry, that was too long for one order.")
	}
	toks := tokenize(text)
	switch {
	case len(toks) == 0:
		return nil, notUnderstood("Sorry, I didn't hear an order.")
	case len(toks) > maxTokens:
		return nil, notUnderstood("Sorry, that was too long for one order.")
	}
	return toks, nil
}

// parseOrder is Parse after tokenizing.
func (c *Catalog) parseOrder(toks []token) (Order, error) {
	var (
		lines []Line
		pend  pending
		with  bool // options now belong to the last line
		digit phrase
	)
	for i := 0; i < len(toks); {
		p := c.dict.match(toks, i)
		if n, ok := digits(toks[i].raw); ok {
			digit = phrase{words: oneWord, kind: kindNumber, n: n}
			p = &digit
		}
		if p == nil {
			if c.mentionsItem(toks) {
				return Order{}, notUnderstood("Sorry, I didn't catch %q.", clip(toks[i].raw))
			}
			return Order{}, notUnderstood("Sorry, I can only take orders, like %q.", c.example)
		}
		i += len(p.words)
		var err error
		switch p.kind {
		case kindFiller:
		case kindWith:
			with = len(lines) > 0 && pend.empty()
		case kindArticle:
			// After "with", an article goes with the option that follows ("with an extra
			// shot"), unless options and sizes lead to an item: then it is one of that
			// item ("with an extra shot and a decaf espresso").
			if with && !c.leadsToItem(toks, i) {
				break
			}
			with = false
			err = pend.setQty(p.n)
		case kindNumber:
			with = false
			err = pend.setQty(p.n)
		case kindVague:
			err = notUnderstood("How many? Please say a number, like %q.", c.example)
		case kindUnit:
			with = false
			if pend.unit != "" {
				err = notUnderstood("Sorry, I didn't catch how many.")
				break
			}
			pend.unit = p.name
			if p.n > 0 {
				err = pend.setQty(p.n)
			}
		case kindSize:
			with = false
			if pend.size != "" {
				err = notUnderstood("Sorry, which size: %s or %s?", pend.size, p.name)
				break
			}
			pend.size = p.name
		case kindOption:
			if with && c.leadsToItem(toks, i-len(p.words)) { // "with decaf and decaf espresso"
				with = false
			}
			if with {
				err = addOption(&lines[len(lines)-1], p.name)
			} else if !slices.Contains(pend.options, p.name) {
				pend.options = append(pend.options, p.name)
			}
		case kindItem:
			with = false
			var l Line
			if l, err = pend.line(p.item); err == nil {
				lines = append(lines, l)
				pend = pending{}
			}
		}
		if err != nil {
			return Order{}, err
		}
	}
	if !pend.empty() {
		return Order{}, notUnderstood("Sorry, which item did you mean?")
	}
	if len(lines) == 0 {
		return Order{}, notUnderstood("Sorry, I can only take orders, like %q.", c.example)
	}
	return finish(lines)
}

// finish checks the merchant, sorts options, merges repeated lines and checks the
// limits.
func finish(lines []Line) (Order, error) {
	o := Order{Merchant: lines[0].Item.merchant}
	var names []string
	for _, l := range lines {
		if m := l.Item.merchant; m != o.Merchant && !slices.Contains(names, m.Name) {
			names = append(names, m.Name)
		}
	}
	if len(names) > 0 {
		return Order{}, &ParseError{
			Reason: fmt.Sprintf("Sorry, I can only order from one shop at a time: %s and %s.", o.Merchant.Name, strings.Join(names, ", ")),
			Err:    ErrMixedMerchants,
		}
	}
	for _, l := range lines {
		slices.SortFunc(l.Options, func(a, b string) int {
			return slices.Index(l.Item.Options, a) - slices.Index(l.Item.Options, b)
		})
		k := slices.IndexFunc(o.Lines, func(m Line) bool {
			return m.Item == l.Item && m.Size == l.Size && slices.Equal(m.Options, l.Options)
		})
		if k < 0 {
			o.Lines = append(o.Lines, l)
			continue
		}
		o.Lines[k].Qty += l.Qty
		if o.Lines[k].Qty > MaxQty {
			return Order{}, &ParseError{Reason: fmt.Sprintf("Sorry, I can take 1 to %d of each item.", MaxQty), Err: ErrQuantity}
		}
	}
	if len(o.Lines) > wire.MaxItems {
		return Order{}, notUnderstood("Sorry, that's too many different items for one order.")
	}
	// No overflow: unit prices are at most wire.MaxAmount (2^53-1), quantities at
	// most 20 and lines at most 32, so the sum stays under 2^63.
	if o.Total() > wire.MaxAmount {
		return Order{}, notUnderstood("Sorry, that order is too large.")
	}
	return o, nil
}

// leadsToItem reports whether toks[i:] starts with sizes and options, or none, and
// then an item.
func (c *Catalog) leadsToItem(toks []token, i int) bool {
	for i < len(toks) {
		p := c.dict.match(toks, i)
		if p == nil {
			return false
		}
		switch p.kind {
		case kindItem:
			return true
		case kindOption, kindSize:
			i += len(p.words)
		default:
			return false
		}
	}
	return false
}

// mentionsItem reports whether any item alias occurs in toks.
func (c *Catalog) mentionsItem(toks []token) bool {
	for i := range toks {
		if p := c.dict.match(toks, i); p != nil && p.kind == kindItem {
			return true
		}
	}
	return false
}

// digits reads a quantity written in digits. Long numbers read as out of range.
func digits(s string) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	if len(s) > 4 {
		return 10000, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// clip bounds a word quoted back to the device.
func clip(w string) string {
	const limit = 32
	if len(w) <= limit {
		return w
	}
	return truncate(w, limit) + "..."
}
