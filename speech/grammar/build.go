package grammar

import (
	"fmt"
	"slices"
	"strings"
)

// item is a source item made ready for the grammar.
type item struct {
	sku     string
	unit    string
	sizes   []string
	options []string
	one     []form // said after "a", "one" or no number
	more    []form // said after two or more
}

// form is one way to name an item.
type form struct {
	text   string
	noJSGF bool // the recogniser's dictionary lacks a word of it
	stand  bool // a stand-in in the JSGF for a form it lacks: Sample never says it
}

// reserved words mean something in every command: no alias, size, option or unit may
// be one of them on its own.
var reserved = []string{"a", "an", "and", "with", "of", "please", "thanks", "tip", "one", "two",
	"under", "below", "hundred", "couple", "my", "order"}

// prepare checks and normalises the source.
func prepare(src Source) ([]*item, string, error) {
	if len(src.Items) == 0 {
		return nil, "", fmt.Errorf("%w: no items", ErrBadSource)
	}
	var (
		items []*item
		cur   string
		owner = map[string]string{} // phrase -> what it is
	)
	claim := func(phrase, what string) error {
		if prev, ok := owner[phrase]; ok && prev != what {
			return fmt.Errorf("%w: %q is both %s and %s", ErrBadSource, phrase, prev, what)
		}
		if slices.Contains(reserved, phrase) {
			return fmt.Errorf("%w: %s %q is a word every command uses", ErrBadSource, what, phrase)
		}
		owner[phrase] = what
		return nil
	}
	skus := map[string]bool{}
	for i, si := range src.Items {
		where := fmt.Sprintf("item %d (%q)", i, si.SKU)
		if si.SKU == "" {
			return nil, "", fmt.Errorf("%w: %s: no sku", ErrBadSource, where)
		}
		if skus[si.SKU] {
			return nil, "", fmt.Errorf("%w: %s: sku repeated", ErrBadSource, where)
		}
		skus[si.SKU] = true
		c := strings.ToUpper(si.Currency)
		if c == "" {
			c = DefaultCurrency
		}
		if _, ok := currencies[c]; !ok {
			return nil, "", fmt.Errorf("%w: %s: currency %q is not one the grammar can say", ErrBadSource, where, si.Currency)
		}
		if cur != "" && c != cur {
			return nil, "", fmt.Errorf("%w: %s: currency %s, other items are in %s (one grammar speaks one currency)", ErrBadSource, where, c, cur)
		}
		cur = c
		it := &item{sku: si.SKU}
		var err error
		if si.Unit != "" {
			if it.unit, err = phrase(si.Unit); err != nil || strings.Contains(it.unit, " ") {
				return nil, "", fmt.Errorf("%w: %s: unit %q must be one word", ErrBadSource, where, si.Unit)
			}
		}
		for _, s := range si.Sizes {
			p, err := phrase(s)
			if err != nil {
				return nil, "", fmt.Errorf("%w: %s: size: %v", ErrBadSource, where, err)
			}
			if err := claim(p, "a size"); err != nil {
				return nil, "", err
			}
			if !slices.Contains(it.sizes, p) {
				it.sizes = append(it.sizes, p)
			}
		}
		for _, o := range si.Options {
			p, err := phrase(o)
			if err != nil {
				return nil, "", fmt.Errorf("%w: %s: option: %v", ErrBadSource, where, err)
			}
			if err := claim(p, "an option"); err != nil {
				return nil, "", err
			}
			if !slices.Contains(it.options, p) {
				it.options = append(it.options, p)
			}
		}
		if err := it.names(si, src.Has, claim); err != nil {
			return nil, "", fmt.Errorf("%w: %s: %v", ErrBadSource, where, err)
		}
		items = append(items, it)
	}
	for _, it := range items {
		if it.unit != "" {
			if err := claim(it.unit, "a unit"); err != nil {
				return nil, "", err
			}
		}
	}
	return items, cur, nil
}

// names makes the item's forms from its name and aliases.
func (it *item) names(si Item, has func(string) bool, claim func(phrase, what string) error) error {
	name, err := phrase(si.Name)
	if si.Name != "" && err != nil {
		return fmt.Errorf("name: %v", err)
	}
	var aliases []string
	for _, a := range append([]string{name}, si.Aliases...) {
		if a == "" {
			continue
		}
		p, err := phrase(a)
		if err != nil {
			return fmt.Errorf("alias: %v", err)
		}
		if it.unit != "" { // "pair of black leggings" is the alias "black leggings"
			for _, pre := range []string{"a " + it.unit + " of ", "one " + it.unit + " of ", it.unit + " of ", PluralWord(it.unit) + " of "} {
				p = strings.TrimPrefix(p, pre)
			}
		}
		if p != "" && !slices.Contains(aliases, p) {
			aliases = append(aliases, p)
		}
	}
	if len(aliases) == 0 {
		return fmt.Errorf("no name or alias")
	}
	known := func(p string) bool {
		if has == nil {
			return true
		}
		for _, x := range strings.Fields(p) {
			if !has(x) {
				return false
			}
		}
		return true
	}
	plural, err := phrase(si.Plural)
	if si.Plural != "" && err != nil {
		return fmt.Errorf("plural: %v", err)
	}
	addOne := func(f form) {
		if !slices.ContainsFunc(it.one, func(g form) bool { return g.text == f.text }) {
			it.one = append(it.one, f)
		}
	}
	addMore := func(f form) {
		if !slices.ContainsFunc(it.more, func(g form) bool { return g.text == f.text }) {
			it.more = append(it.more, f)
		}
	}
	for _, a := range aliases {
		if err := claim(a, fmt.Sprintf("an alias of %q", it.sku)); err != nil {
			return err
		}
		pl := PluralPhrase(a)
		if a == name && plural != "" {
			pl = plural
		}
		if pl != a {
			if err := claim(pl, fmt.Sprintf("an alias of %q", it.sku)); err != nil {
				return err
			}
		}
		addOne(form{text: a})
		if it.unit != "" {
			// "a pair of black leggings", "two pairs of running socks": both forms
			// are said whatever the number.
			addOne(form{text: pl, noJSGF: !known(pl)})
			continue
		}
		if known(pl) {
			addMore(form{text: pl})
			continue
		}
		// The recogniser cannot say "lattes": after a number it hears "two oat
		// latte", and text may still say "two oat lattes".
		addMore(form{text: pl, noJSGF: true})
		addMore(form{text: a, stand: true})
	}
	// Longest first, so that the matcher prefers "oat milk latte" to "oat".
	byLen := func(a, b form) int { return len(strings.Fields(b.text)) - len(strings.Fields(a.text)) }
	slices.SortStableFunc(it.one, byLen)
	slices.SortStableFunc(it.more, byLen)
	return nil
}

// phrase normalises a catalogue phrase to the grammar's words: lower case letters and
// inner apostrophes, single spaces.
func phrase(s string) (string, error) {
	toks, err := tokenize(s, false)
	if err != nil {
		return "", fmt.Errorf("%q: too long", s)
	}
	for _, t := range toks {
		if !isWord(t) {
			return "", fmt.Errorf("%q: %q is not a word (letters only; numbers spelled out)", s, t)
		}
	}
	return strings.Join(toks, " "), nil
}

func isWord(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '\'' {
			return false
		}
	}
	return true
}

// PluralWord makes an English plural; a word that already ends in a single s is taken
// to be plural ("leggings"). The reference agent's text parser uses the same rules.
func PluralWord(w string) string {
	switch {
	case strings.HasSuffix(w, "ss") || strings.HasSuffix(w, "x") || strings.HasSuffix(w, "z") ||
		strings.HasSuffix(w, "ch") || strings.HasSuffix(w, "sh"):
		return w + "es"
	case strings.HasSuffix(w, "s"):
		return w
	case len(w) > 1 && strings.HasSuffix(w, "y") && !strings.ContainsRune("aeiou", rune(w[len(w)-2])):
		return w[:len(w)-1] + "ies"
	}
	return w + "s"
}

// PluralPhrase pluralises the head of a phrase: the word before "of" ("cups of tea"),
// else the last word ("oat lattes").
func PluralPhrase(p string) string {
	ws := strings.Fields(p)
	if len(ws) == 0 {
		return p
	}
	head := len(ws) - 1
	if k := slices.Index(ws, "of"); k > 0 {
		head = k - 1
	}
	ws[head] = PluralWord(ws[head])
	return strings.Join(ws, " ")
}
