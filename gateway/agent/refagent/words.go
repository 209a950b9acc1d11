package refagent

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/earshot/earshot/speech/grammar"
)

// token is one word of an utterance: as said (lower case) and stemmed, so that
// "lattes" meets the alias "latte".
type token struct{ raw, stem string }

// normalise lower-cases s, drops apostrophes ("i'd" -> "id"), turns every other rune
// that is not a letter or digit into a space and collapses spaces. A decimal point
// between two digits stays, so that "$89.50" is the one word "89.50".
func normalise(s string) string { return strings.Join(words(s), " ") }

func words(s string) []string {
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range rs {
		switch {
		case r == '\'' || r == '\u2019' || r == '\u02bc':
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		case r == '.' && i > 0 && i+1 < len(rs) && isDigit(rs[i-1]) && isDigit(rs[i+1]):
			b.WriteByte('.')
		default:
			b.WriteByte(' ')
		}
	}
	return strings.Fields(b.String())
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func tokenize(s string) []token {
	ws := words(s)
	out := make([]token, len(ws))
	for i, w := range ws {
		out[i] = token{raw: w, stem: stem(w)}
	}
	return out
}

// stem strips a plural ending. It is crude but applied to the catalogue's phrases and
// to utterances alike, so both sides meet: "leggings" and "legging" are one stem.
func stem(w string) string {
	switch {
	case len(w) > 4 && strings.HasSuffix(w, "ies"):
		return w[:len(w)-3] + "y"
	case len(w) > 4 && (strings.HasSuffix(w, "sses") || strings.HasSuffix(w, "xes") ||
		strings.HasSuffix(w, "ches") || strings.HasSuffix(w, "shes")):
		return w[:len(w)-2]
	case len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") &&
		!strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		return w[:len(w)-1]
	}
	return w
}

// lowerFirst lower-cases the first letter of a display name: "Oat latte" -> "oat latte".
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// singular is the item as a summary names one of it: "oat latte", "pair of black
// leggings".
func (it *Item) singular() string {
	if it.Unit != "" {
		return it.Unit + " of " + lowerFirst(it.Name)
	}
	return lowerFirst(it.Name)
}

// plural is the item as a summary names several: "oat lattes", "pairs of black
// leggings".
func (it *Item) plural() string {
	switch {
	case it.Unit != "" && it.Plural != "":
		return grammar.PluralWord(it.Unit) + " of " + it.Plural
	case it.Unit != "":
		return grammar.PluralWord(it.Unit) + " of " + lowerFirst(it.Name)
	case it.Plural != "":
		return it.Plural
	}
	return grammar.PluralPhrase(lowerFirst(it.Name))
}

// phraseKind is what a phrase of an utterance means.
type phraseKind uint8

const (
	kindUnknown phraseKind = iota
	kindFiller             // "please", "can i get": ignored
	kindWith               // "with": options that follow belong to the item before
	kindArticle            // "a", "an": one of the next item; ignored after "with"
	kindNumber             // "two", "a couple of": n of the next item
	kindVague              // "some", "a few": refused, a number is needed
	kindUnit               // "pair of" (n 0), "a pair of" (n 1): the next item counts in its unit
	kindSize               // "large"
	kindOption             // "decaf"
	kindItem               // an alias
)

func (k phraseKind) String() string {
	switch k {
	case kindFiller:
		return "filler"
	case kindWith:
		return "with"
	case kindArticle:
		return "article"
	case kindNumber:
		return "number"
	case kindVague:
		return "vague quantity"
	case kindUnit:
		return "unit"
	case kindSize:
		return "size"
	case kindOption:
		return "option"
	case kindItem:
		return "item"
	}
	return "unknown"
}

// phrase is a sequence of stems and its meaning.
type phrase struct {
	words []string // stems
	kind  phraseKind
	n     int    // kindNumber, kindArticle, kindUnit
	name  string // kindSize, kindOption, kindUnit: the size, option or unit
	item  *Item  // kindItem
}

func (p *phrase) same(q *phrase) bool {
	return p.kind == q.kind && p.n == q.n && p.name == q.name && p.item == q.item
}

func (p *phrase) describe() string {
	switch p.kind {
	case kindItem:
		return fmt.Sprintf("an alias of sku %q", p.item.SKU)
	case kindSize, kindOption, kindUnit:
		return fmt.Sprintf("the %s %q", p.kind, p.name)
	}
	return "a " + p.kind.String() + " word"
}

// dictionary maps a first stem to the phrases that start with it, longest first.
type dictionary map[string][]*phrase

// fillers are ignored wherever they are. Negations ("not", "don't", "without") and
// "cancel" are deliberately absent: an utterance with them is not understood.
var fillers = []string{
	"please", "pls", "thanks", "thank you", "cheers",
	"i", "id", "ill", "im", "we", "me", "us", "you", "my", "our", "the",
	"want", "wanna", "would", "like", "could", "can", "may", "will", "need", "let",
	"get", "buy", "order", "have", "take", "give", "grab", "make", "purchase",
	"and", "also", "plus", "then", "too", "to", "for", "just", "go",
	"hey", "hi", "hello", "ok", "okay", "um", "uh", "er", "oh",
}

var numberWords = []string{
	"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
	"eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
	"eighteen", "nineteen", "twenty",
}

var tensWords = []string{"thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}

func staticPhrases() []*phrase {
	var ps []*phrase
	add := func(text string, kind phraseKind, n int) {
		ps = append(ps, &phrase{words: stems(text), kind: kind, n: n})
	}
	for _, f := range fillers {
		add(f, kindFiller, 0)
	}
	add("with", kindWith, 0)
	add("a", kindArticle, 1)
	add("an", kindArticle, 1)
	for i, w := range numberWords {
		add(w, kindNumber, i+1)
	}
	for i, w := range tensWords {
		add(w, kindNumber, 30+10*i)
	}
	for _, w := range []string{"hundred", "a hundred", "one hundred"} {
		add(w, kindNumber, 100)
	}
	for _, w := range []string{"a dozen", "dozen", "one dozen"} {
		add(w, kindNumber, 12)
	}
	for _, w := range []string{"a couple of", "a couple", "couple of"} {
		add(w, kindNumber, 2)
	}
	for _, w := range []string{"some", "a few", "few", "several", "a bunch of", "bunch of",
		"any", "many", "lots of", "a lot of"} {
		add(w, kindVague, 0)
	}
	return ps
}

func stems(text string) []string {
	ws := words(text)
	for i, w := range ws {
		ws[i] = stem(w)
	}
	return ws
}

// newDictionary indexes the fixed vocabulary and the catalogue's items, sizes,
// options and units, refusing a catalogue phrase that means two things.
func newDictionary(ms []*Merchant) (dictionary, error) {
	byKey := map[string]*phrase{}
	d := dictionary{}
	add := func(p *phrase, where string) error {
		key := strings.Join(p.words, " ")
		if prev, ok := byKey[key]; ok {
			if prev.same(p) {
				return nil
			}
			return fmt.Errorf("%w: %s: %q (singular) is already %s", ErrBadCatalog, where, key, prev.describe())
		}
		byKey[key] = p
		d[p.words[0]] = append(d[p.words[0]], p)
		return nil
	}
	for _, p := range staticPhrases() {
		if err := add(p, "vocabulary"); err != nil {
			return nil, err
		}
	}
	for _, m := range ms {
		for _, it := range m.Items {
			where := fmt.Sprintf("merchant %q item %q", m.ID, it.SKU)
			if u := it.Unit; u != "" {
				for _, p := range []*phrase{
					{words: stems(u + " of"), kind: kindUnit, name: u},
					{words: stems(grammar.PluralWord(u) + " of"), kind: kindUnit, name: u},
					{words: stems("a " + u + " of"), kind: kindUnit, name: u, n: 1},
					{words: stems("an " + u + " of"), kind: kindUnit, name: u, n: 1},
					{words: stems("one " + u + " of"), kind: kindUnit, name: u, n: 1},
				} {
					if err := add(p, fmt.Sprintf("%s unit %q", where, u)); err != nil {
						return nil, err
					}
				}
			}
			for _, s := range it.Sizes {
				if err := add(&phrase{words: stems(s.Name), kind: kindSize, name: s.Name}, fmt.Sprintf("%s size %q", where, s.Name)); err != nil {
					return nil, err
				}
			}
			for _, o := range it.Options {
				if err := add(&phrase{words: stems(o), kind: kindOption, name: o}, fmt.Sprintf("%s option %q", where, o)); err != nil {
					return nil, err
				}
			}
		}
	}
	// Aliases last, so a collision with a size, option or unit names the alias.
	for _, m := range ms {
		for _, it := range m.Items {
			for _, a := range it.Aliases {
				where := fmt.Sprintf("merchant %q item %q alias %q", m.ID, it.SKU, a)
				if err := add(&phrase{words: stems(a), kind: kindItem, item: it}, where); err != nil {
					return nil, err
				}
			}
		}
	}
	for k, ps := range d {
		slices.SortStableFunc(ps, func(a, b *phrase) int { return len(b.words) - len(a.words) })
		d[k] = ps
	}
	return d, nil
}

// match returns the longest phrase that starts at toks[i], or nil.
func (d dictionary) match(toks []token, i int) *phrase {
next:
	for _, p := range d[toks[i].stem] {
		if len(p.words) > len(toks)-i {
			continue
		}
		for j, w := range p.words[1:] {
			if toks[i+1+j].stem != w {
				continue next
			}
		}
		return p
	}
	return nil
}
