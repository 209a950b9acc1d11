package main

import (
	"fmt"
	"strconv"
	"strings"
)

// The bakery as the gateway and the user see it: the payee of its mandates, and the
// currency of its prices.
const (
	merchantID   = "corner-bakery"
	merchantName = "Corner Bakery"
	currency     = "USD"
)

// notUnderstood is what the user hears when the bakery cannot make an order of what
// they said.
const notUnderstood = "Corner Bakery sells croissants, baguettes and sourdough loaves."

// maxQty bounds one line of an order.
const maxQty = 12

// product is one thing on the menu.
type product struct {
	SKU   string
	Name  string // on the prompt
	One   string // "2 croissants", "1 sourdough loaf": how a notice counts it
	Many  string
	Price int64 // USD cents (minor units), never a float
	// Also are other names users give it.
	Also []string
}

// menu is the bakery's hard-coded menu.
var menu = []product{
	{SKU: "croissant", Name: "Croissant", One: "croissant", Many: "croissants", Price: 350},
	{SKU: "baguette", Name: "Baguette", One: "baguette", Many: "baguettes", Price: 420},
	{SKU: "sourdough-loaf", Name: "Sourdough loaf", One: "sourdough loaf", Many: "sourdough loaves", Price: 780,
		Also: []string{"sourdough", "sourdoughs", "loaf of sourdough", "loaves of sourdough"}},
}

// line is a product and how many of it.
type line struct {
	product
	Qty int
}

// order is what the bakery proposes for one transaction.
type order []line

func (o order) total() int64 {
	var t int64
	for _, l := range o {
		t += int64(l.Qty) * l.Price
	}
	return t
}

// String counts the order: "2 croissants and 1 baguette".
func (o order) String() string {
	parts := make([]string, len(o))
	for i, l := range o {
		name := l.Many
		if l.Qty == 1 {
			name = l.One
		}
		parts[i] = strconv.Itoa(l.Qty) + " " + name
	}
	if len(parts) < 2 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// readyText is the notice sent once the order is paid.
func (o order) readyText() string {
	verb := "are"
	if len(o) == 1 && o[0].Qty == 1 {
		verb = "is"
	}
	return fmt.Sprintf("Your %s %s ready at the counter.", o, verb)
}

// add puts qty of p on the order, on p's line if it has one.
func (o order) add(p product, qty int) order {
	for i := range o {
		if o[i].SKU == p.SKU {
			o[i].Qty += qty
			return o
		}
	}
	return append(o, line{product: p, Qty: qty})
}

// numbers are the quantities users say in words.
var numbers = map[string]int{
	"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
	"seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}

// fillers are words an order may contain that change nothing.
var fillers = map[string]bool{
	"buy": true, "order": true, "get": true, "me": true, "i": true, "id": true, "ill": true,
	"like": true, "want": true, "would": true, "to": true, "take": true, "have": true,
	"can": true, "could": true, "please": true, "and": true, "some": true, "just": true,
}

// parse makes an order of what the user said: "buy two croissants", "a baguette and
// 2 sourdough loaves, please". It reports false for anything else, including a word
// it does not know ("buy two pizzas").
func parse(text string) (order, bool) {
	words := strings.Fields(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r == '\'' || r == '’':
			return -1 // "i'd" -> "id"
		}
		return ' '
	}, strings.ToLower(text)))
	var (
		o   order
		qty int // said, not yet given to a product
	)
	for i := 0; i < len(words); {
		if p, n := productAt(words[i:]); n > 0 {
			o = o.add(p, max(qty, 1))
			qty, i = 0, i+n
			continue
		}
		w := words[i]
		i++
		if n, ok := numbers[w]; ok && qty == 0 {
			qty = n
			continue
		}
		if n, err := strconv.Atoi(w); err == nil && qty == 0 && n > 0 {
			qty = n
			continue
		}
		if !fillers[w] {
			return nil, false
		}
	}
	if len(o) == 0 || qty != 0 {
		return nil, false
	}
	for _, l := range o {
		if l.Qty > maxQty {
			return nil, false
		}
	}
	return o, true
}

// productAt finds the product named at the start of words, the longest name first,
// and how many words its name took (0: none).
func productAt(words []string) (product, int) {
	best, took := product{}, 0
	for _, p := range menu {
		for _, name := range append([]string{p.One, p.Many}, p.Also...) {
			n := len(strings.Fields(name))
			if n > took && n <= len(words) && strings.Join(words[:n], " ") == name {
				best, took = p, n
			}
		}
	}
	return best, took
}

// fromItems rebuilds an order from a mandate's lines when the bakery no longer
// remembers its proposal (after a restart): every line must be on the menu at the
// menu's price.
func fromItems(items []lineItem) (order, bool) {
	var o order
	for _, it := range items {
		p, ok := bySKU(it.SKU)
		if !ok || it.UnitAmount != p.Price || it.Qty <= 0 {
			return nil, false
		}
		o = o.add(p, it.Qty)
	}
	return o, len(o) > 0
}

func bySKU(sku string) (product, bool) {
	for _, p := range menu {
		if p.SKU == sku {
			return p, true
		}
	}
	return product{}, false
}

// lineItem is one line of a purchase as the REST API has it (device/wire.Item).
type lineItem struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Qty        int    `json:"qty"`
	UnitAmount int64  `json:"unit_amount"`
}

// items are the order's lines for the REST API.
func (o order) items() []lineItem {
	out := make([]lineItem, len(o))
	for i, l := range o {
		out[i] = lineItem{SKU: l.SKU, Name: l.Name, Qty: l.Qty, UnitAmount: l.Price}
	}
	return out
}
