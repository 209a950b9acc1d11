package refagent

import (
	"bytes"
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech/grammar"
)

// ErrBadCatalog reports a catalogue that does not load: bad YAML, an unknown field, a
// price that is not an integer in minor units, a duplicate sku or alias. The message
// says what and where (merchant, item and YAML line).
var ErrBadCatalog = errors.New("refagent: bad catalogue")

// MaxCatalogBytes bounds the catalogue LoadCatalog reads.
const MaxCatalogBytes = 1 << 20

//go:embed catalog.yaml
var defaultCatalogYAML []byte

// Catalog is a set of merchants and the items they sell, with the phrases that name
// them. It is read-only once loaded and safe for concurrent use; the merchants and
// items it hands out must not be modified.
type Catalog struct {
	merchants []*Merchant
	dict      dictionary
	phrases   []string
	example   string // a device-visible example order, "two oat lattes"
}

// Merchant is a payee and what it sells.
type Merchant struct {
	ID       string
	Name     string
	Currency string // ISO 4217
	// TipCap is the most a tip may be, in minor units, that the user allows when
	// approving a one-off order from this merchant, so that a tip spoken afterwards
	// needs no new prompt (wire.Conditions.TipCap). 0: none.
	TipCap wire.Amount
	Items  []*Item
}

// Item is one thing a merchant sells.
type Item struct {
	SKU  string
	Name string // as shown on the prompt: "Oat latte"
	// Plural is the lower-case plural used in summaries ("oat lattes"); by default it
	// is derived from Name.
	Plural string
	// Unit is what a quantity counts when it is not the item itself, such as "pair"
	// for leggings: "a pair of black leggings" is one. Empty for most items.
	Unit string
	// Aliases are the normalised phrases that name the item (lower case, single
	// spaces), singular as written in the catalogue. The name is always one of them.
	Aliases []string
	// Price is the unit price of the default size in minor units of the merchant's
	// currency.
	Price wire.Amount
	// Sizes are the sizes the item comes in, cheapest first, or none. Exactly one has
	// a zero delta: the default.
	Sizes []Size
	// Options are free variations ("decaf", "iced"), in catalogue order.
	Options []string

	merchant *Merchant
}

// Size is a size and how it changes an item's price.
type Size struct {
	Name  string
	Delta int64 // minor units added to Item.Price; may be negative
}

// Merchant returns the merchant that sells the item.
func (it *Item) Merchant() *Merchant { return it.merchant }

// DefaultSize returns the size assumed when none is said, or "" for an item without
// sizes.
func (it *Item) DefaultSize() string {
	for _, s := range it.Sizes {
		if s.Delta == 0 {
			return s.Name
		}
	}
	return ""
}

// UnitAmount returns the unit price in the given size ("" for the default) and
// whether the item comes in that size.
func (it *Item) UnitAmount(size string) (wire.Amount, bool) {
	if size == "" {
		return it.Price, true
	}
	for _, s := range it.Sizes {
		if s.Name == size {
			return it.Price + wire.Amount(s.Delta), true
		}
	}
	return 0, false
}

func (it *Item) hasOption(o string) bool { return slices.Contains(it.Options, o) }

// Merchants returns the catalogue's merchants in catalogue order.
func (c *Catalog) Merchants() []*Merchant { return slices.Clone(c.merchants) }

// Merchant returns the merchant with the given id.
func (c *Catalog) Merchant(id string) (*Merchant, bool) {
	for _, m := range c.merchants {
		if m.ID == id {
			return m, true
		}
	}
	return nil, false
}

// Phrases returns every phrase that names an item, in lower case, singular and
// plural ("oat latte", "oat lattes", "pairs of black leggings"), sorted and without
// duplicates: the item vocabulary of the speech grammar. Sizes and options are on the
// items.
func (c *Catalog) Phrases() []string { return slices.Clone(c.phrases) }

var defaultCatalog = sync.OnceValues(func() (*Catalog, error) {
	return LoadCatalog(bytes.NewReader(defaultCatalogYAML))
})

// GrammarSource returns what the speech grammar (speech/grammar) is built from: every
// item with its aliases, sizes and options.
func (c *Catalog) GrammarSource() grammar.Source {
	var src grammar.Source
	for _, m := range c.merchants {
		for _, it := range m.Items {
			gi := grammar.Item{SKU: it.SKU, Name: it.Name, Aliases: it.Aliases, Plural: it.Plural,
				Unit: it.Unit, Options: it.Options, Currency: m.Currency}
			for _, sz := range it.Sizes {
				gi.Sizes = append(gi.Sizes, sz.Name)
			}
			src.Items = append(src.Items, gi)
		}
	}
	return src
}

// DefaultCatalog returns the embedded demo catalogue (catalog.yaml): Earshot Coffee
// and Earshot Outfitters. It is loaded once and shared. It fails only if the embedded
// file is broken, which the package's tests rule out.
func DefaultCatalog() (*Catalog, error) { return defaultCatalog() }

// The YAML form. Unknown fields are refused (KnownFields). Scalars that carry money or
// identify a merchant or item keep their line, so errors can say where they are.
type yamlCatalog struct {
	Merchants []yamlMerchant `yaml:"merchants"`
}

type yamlMerchant struct {
	ID       located    `yaml:"id"`
	Name     string     `yaml:"name"`
	Currency string     `yaml:"currency"`
	TipCap   minor      `yaml:"tip_cap"`
	Items    []yamlItem `yaml:"items"`
}

type yamlItem struct {
	SKU     located          `yaml:"sku"`
	Name    string           `yaml:"name"`
	Plural  string           `yaml:"plural"`
	Unit    string           `yaml:"unit"`
	Aliases []string         `yaml:"aliases"`
	Price   minor            `yaml:"price"`
	Sizes   map[string]minor `yaml:"sizes"`
	Options []string         `yaml:"options"`
}

// located is a string scalar and its line.
type located struct {
	s    string
	line int
}

func (l *located) UnmarshalYAML(n *yaml.Node) error {
	l.line = n.Line
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%w: line %d: want a string", ErrBadCatalog, n.Line)
	}
	l.s = n.Value
	return nil
}

// minor is an amount in minor units as written in YAML. A value that is not a YAML
// integer is kept as text so validation can refuse it with its full location.
type minor struct {
	v    int64
	set  bool
	bad  string // the offending text when the value is not an integer
	line int
}

func (m *minor) UnmarshalYAML(n *yaml.Node) error {
	m.set, m.line = true, n.Line
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		m.bad = n.Value
		if n.Kind != yaml.ScalarNode {
			m.bad = "a " + kindName(n.Kind)
		}
		return nil
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil {
		m.bad = n.Value
		return nil
	}
	m.v = v
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "non-scalar"
}

// LoadCatalog reads a YAML catalogue (the format of the embedded catalog.yaml) and
// validates it: at least one merchant; ids, names and ISO 4217 currencies present;
// skus unique across the catalogue; prices positive integers in minor units (a
// decimal such as 5.50 is refused: write 550); an optional merchant tip_cap, an
// integer in minor units too; sizes with integer deltas, exactly one of them 0; aliases that name exactly one item and do not collide with number,
// size, option or filler words. Errors wrap ErrBadCatalog.
func LoadCatalog(r io.Reader) (*Catalog, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxCatalogBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %w", ErrBadCatalog, err)
	}
	if len(raw) > MaxCatalogBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadCatalog, MaxCatalogBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var y yamlCatalog
	if err := dec.Decode(&y); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty", ErrBadCatalog)
		}
		if errors.Is(err, ErrBadCatalog) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrBadCatalog, err)
	}
	return build(y)
}

func build(y yamlCatalog) (*Catalog, error) {
	if len(y.Merchants) == 0 {
		return nil, fmt.Errorf("%w: no merchants", ErrBadCatalog)
	}
	c := &Catalog{}
	merchantIDs := map[string]bool{}
	skus := map[string]string{} // sku -> where
	for mi, ym := range y.Merchants {
		where := fmt.Sprintf("merchants[%d]", mi)
		if ym.ID.line > 0 {
			where += fmt.Sprintf(" (line %d)", ym.ID.line)
		}
		if err := checkID(where+".id", ym.ID.s); err != nil {
			return nil, err
		}
		where = fmt.Sprintf("merchant %q (line %d)", ym.ID.s, ym.ID.line)
		if merchantIDs[ym.ID.s] {
			return nil, fmt.Errorf("%w: %s: duplicate merchant id", ErrBadCatalog, where)
		}
		merchantIDs[ym.ID.s] = true
		if err := checkName(where+": name", ym.Name); err != nil {
			return nil, err
		}
		if err := wire.ValidCurrency(ym.Currency); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadCatalog, where, err)
		}
		if len(ym.Items) == 0 {
			return nil, fmt.Errorf("%w: %s: no items", ErrBadCatalog, where)
		}
		m := &Merchant{ID: ym.ID.s, Name: ym.Name, Currency: ym.Currency}
		if ym.TipCap.set {
			tc, err := checkMinor(where+": tip_cap", ym.TipCap)
			if err != nil {
				return nil, err
			}
			if tc < 0 {
				return nil, fmt.Errorf("%w: %s: tip_cap (line %d): %d, want 0 (none) or a positive amount in minor units", ErrBadCatalog, where, ym.TipCap.line, tc)
			}
			m.TipCap = wire.Amount(tc)
		}
		for ii, yi := range ym.Items {
			it, err := buildItem(where, ii, yi)
			if err != nil {
				return nil, err
			}
			itWhere := fmt.Sprintf("%s item %q (line %d)", where, it.SKU, yi.SKU.line)
			if prev, dup := skus[it.SKU]; dup {
				return nil, fmt.Errorf("%w: %s: duplicate sku, first at %s", ErrBadCatalog, itWhere, prev)
			}
			skus[it.SKU] = itWhere
			it.merchant = m
			m.Items = append(m.Items, it)
		}
		c.merchants = append(c.merchants, m)
	}
	dict, err := newDictionary(c.merchants)
	if err != nil {
		return nil, err
	}
	c.dict = dict
	c.phrases = phrasesOf(c.merchants)
	first := c.merchants[0].Items[0]
	c.example = "two " + first.plural()
	return c, nil
}

func buildItem(merchant string, i int, yi yamlItem) (*Item, error) {
	if err := checkID(fmt.Sprintf("%s items[%d].sku", merchant, i), yi.SKU.s); err != nil {
		return nil, err
	}
	where := fmt.Sprintf("%s item %q (line %d)", merchant, yi.SKU.s, yi.SKU.line)
	if err := checkName(where+": name", yi.Name); err != nil {
		return nil, err
	}
	price, err := checkMinor(where+": price", yi.Price)
	if err != nil {
		return nil, err
	}
	if price <= 0 {
		return nil, fmt.Errorf("%w: %s: price: %d, want a positive amount in minor units", ErrBadCatalog, where, price)
	}
	it := &Item{SKU: yi.SKU.s, Name: yi.Name, Price: wire.Amount(price)}
	if yi.Unit != "" {
		u := normalise(yi.Unit)
		if u == "" || strings.Contains(u, " ") {
			return nil, fmt.Errorf("%w: %s: unit %q: want one word", ErrBadCatalog, where, yi.Unit)
		}
		it.Unit = u
	}
	if yi.Plural != "" {
		if err := checkName(where+": plural", yi.Plural); err != nil {
			return nil, err
		}
		it.Plural = yi.Plural
	}
	if err := buildSizes(where, it, yi.Sizes); err != nil {
		return nil, err
	}
	for _, o := range yi.Options {
		n := normalise(o)
		if n == "" {
			return nil, fmt.Errorf("%w: %s: option %q: no words", ErrBadCatalog, where, o)
		}
		if len(n) > wire.MaxNameBytes {
			return nil, fmt.Errorf("%w: %s: option %q: longer than %d bytes", ErrBadCatalog, where, o, wire.MaxNameBytes)
		}
		if it.hasOption(n) {
			return nil, fmt.Errorf("%w: %s: option %q listed twice", ErrBadCatalog, where, o)
		}
		it.Options = append(it.Options, n)
	}
	if len(it.Options)+1 > 8 { // wire.Item allows 8 options, one of them the size
		return nil, fmt.Errorf("%w: %s: %d options, limit 7", ErrBadCatalog, where, len(it.Options))
	}
	for _, a := range append([]string{yi.Name}, yi.Aliases...) {
		n := normalise(a)
		if n == "" {
			return nil, fmt.Errorf("%w: %s: alias %q: no words", ErrBadCatalog, where, a)
		}
		if !slices.Contains(it.Aliases, n) {
			it.Aliases = append(it.Aliases, n)
		}
	}
	return it, nil
}

func buildSizes(where string, it *Item, sizes map[string]minor) error {
	defaults := 0
	for name, d := range sizes {
		n := normalise(name)
		if n == "" || strings.Contains(n, " ") || n != name {
			return fmt.Errorf("%w: %s: size %q: want one lower-case word", ErrBadCatalog, where, name)
		}
		delta, err := checkMinor(fmt.Sprintf("%s: size %q", where, name), d)
		if err != nil {
			return err
		}
		if p := int64(it.Price) + delta; p > int64(wire.MaxAmount) {
			return fmt.Errorf("%w: %s: size %q: delta %d makes the price %d, over %d", ErrBadCatalog, where, name, delta, p, wire.MaxAmount)
		}
		if int64(it.Price)+delta <= 0 {
			return fmt.Errorf("%w: %s: size %q: delta %d makes the price %d, want positive", ErrBadCatalog, where, name, delta, int64(it.Price)+delta)
		}
		if delta == 0 {
			defaults++
		}
		it.Sizes = append(it.Sizes, Size{Name: n, Delta: delta})
	}
	if len(sizes) > 0 && defaults != 1 {
		return fmt.Errorf("%w: %s: sizes: %d have delta 0, want exactly one (the default size, at the item's price)", ErrBadCatalog, where, defaults)
	}
	slices.SortFunc(it.Sizes, func(a, b Size) int {
		return cmp.Or(cmp.Compare(a.Delta, b.Delta), strings.Compare(a.Name, b.Name))
	})
	return nil
}

// checkMinor returns an amount written in YAML, refusing anything but an integer
// within wire.MaxAmount.
func checkMinor(where string, m minor) (int64, error) {
	switch {
	case !m.set:
		return 0, fmt.Errorf("%w: %s: required (an integer in minor units, 550 for 5.50)", ErrBadCatalog, where)
	case m.bad != "":
		return 0, fmt.Errorf("%w: %s (line %d): %q is not an integer in minor units (write 550 for 5.50)", ErrBadCatalog, where, m.line, m.bad)
	case m.v > int64(wire.MaxAmount) || m.v < -int64(wire.MaxAmount):
		return 0, fmt.Errorf("%w: %s (line %d): %d is out of range", ErrBadCatalog, where, m.line, m.v)
	}
	return m.v, nil
}

// checkID accepts ids of lower-case ASCII letters, digits, '-' and '_'.
func checkID(where, id string) error {
	if id == "" {
		return fmt.Errorf("%w: %s: required", ErrBadCatalog, where)
	}
	if len(id) > wire.MaxIDBytes {
		return fmt.Errorf("%w: %s: %q is longer than %d bytes", ErrBadCatalog, where, id, wire.MaxIDBytes)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%w: %s: %q: want lower-case letters, digits, '-' and '_'", ErrBadCatalog, where, id)
		}
	}
	return nil
}

func checkName(where, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("%w: %s: required", ErrBadCatalog, where)
	case len(name) > wire.MaxNameBytes:
		return fmt.Errorf("%w: %s: longer than %d bytes", ErrBadCatalog, where, wire.MaxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %s: not UTF-8", ErrBadCatalog, where)
	}
	return nil
}

// phrasesOf lists every alias, singular and plural.
func phrasesOf(ms []*Merchant) []string {
	var out []string
	for _, m := range ms {
		for _, it := range m.Items {
			for _, a := range it.Aliases {
				out = append(out, a, grammar.PluralPhrase(a))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
