package grammar

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A grammar is a tree of nodes with named rules. The same tree is written out as JSGF
// for the recogniser, compiled into the matcher Parse runs and walked by Sample, so
// the three agree by construction. Action nodes carry the meaning: they match nothing,
// the JSGF leaves them out, and the matcher and Sample record them in the order met.

type nodeKind uint8

const (
	nWord nodeKind = iota + 1
	nSeq
	nAlt
	nOpt
	nStar
	nRef
	nAct
)

type node struct {
	kind nodeKind
	word string  // nWord
	kids []*node // nSeq, nAlt; nOpt and nStar have one
	ref  string  // nRef
	act  act     // nAct

	noJSGF   bool    // Parse only: left out of the JSGF (a word the recogniser lacks, a comma)
	noSample bool    // Sample never says it (a stand-in the recogniser needs but people don't say)
	lazy     bool    // nOpt: Parse prefers skipping it when both readings match
	article  bool    // nAlt of "a" and "an": Sample says the one the next word takes
	weights  []int   // nAlt: Sample's weights of the kids; nil is uniform
	p        float64 // nOpt, nStar: Sample's chance of saying it (once more); 0 is one half
	// jsgf, when set, is what the JSGF says instead of this node: a narrower form of
	// the same sentences (see articleJSGF). Parse and Sample use the node itself.
	jsgf *node
}

// opcode is what an action means.
type opcode uint8

const (
	opAction  opcode = iota + 1 // n: the Action
	opQty                       // n: how many of the next item
	opSize                      // s: size of the next item
	opOpt                       // s: option of the next item
	opItem                      // s: SKU; ends a line
	opPostOpt                   // s: option of the item just said ("with ...")
	opMoney                     // n: moneyUnder or moneyTip; an amount follows
	opAdd                       // n: add to the number being said
	opHundred                   // the number said so far is hundreds
	opMajor                     // the number said so far is major units ("dollars")
	opAnswer                    // s: a wire.Answer
	opDigit                     // n: a PIN digit
)

const (
	moneyUnder = 1
	moneyTip   = 2
)

type act struct {
	op opcode
	n  int64
	s  string
}

// Builders.

// w is a word or a phrase of words separated by spaces.
func w(phrase string) *node {
	ws := strings.Fields(phrase)
	if len(ws) == 1 {
		return &node{kind: nWord, word: ws[0]}
	}
	n := &node{kind: nSeq}
	for _, x := range ws {
		n.kids = append(n.kids, &node{kind: nWord, word: x})
	}
	return n
}

// ws is one of the phrases.
func ws(phrases ...string) *node {
	n := &node{kind: nAlt}
	for _, p := range phrases {
		n.kids = append(n.kids, w(p))
	}
	return n
}

func seq(kids ...*node) *node { return &node{kind: nSeq, kids: kids} }
func alt(kids ...*node) *node { return &node{kind: nAlt, kids: kids} }
func ref(name string) *node   { return &node{kind: nRef, ref: name} }
func do(a act) *node          { return &node{kind: nAct, act: a} }

func opt(kid *node) *node { return &node{kind: nOpt, kids: []*node{kid}} }

// lazyOpt is an optional part Parse skips when the rest still matches.
func lazyOpt(kid *node) *node { return &node{kind: nOpt, kids: []*node{kid}, lazy: true} }

func star(kid *node) *node { return &node{kind: nStar, kids: []*node{kid}} }

// tag is kid meaning a. The action comes after the kid, so that the matcher only
// records it for readings that said the kid.
func tag(a act, kid *node) *node { return seq(kid, do(a)) }

func (n *node) weigh(ws ...int) *node  { n.weights = ws; return n }
func (n *node) chance(p float64) *node { n.p = p; return n }
func (n *node) parseOnly() *node       { n.noJSGF, n.noSample = true, true; return n }

// rules is a grammar: named rules, one public.
type rules struct {
	name   string // the JSGF grammar name
	public string
	order  []string
	byName map[string]*node
}

func newRules(name, public string) *rules {
	return &rules{name: name, public: public, byName: map[string]*node{}}
}

func (r *rules) add(name string, n *node) {
	if _, ok := r.byName[name]; !ok {
		r.order = append(r.order, name)
	}
	r.byName[name] = n
}

// check reports rules referenced but not defined, and rules that refer to themselves
// (the matcher inlines rules, so the grammar must not be recursive).
func (r *rules) check() error {
	if r.byName[r.public] == nil {
		return fmt.Errorf("no public rule <%s>", r.public)
	}
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string) error
	var walk func(n *node) error
	walk = func(n *node) error {
		if n.kind == nRef {
			return visit(n.ref)
		}
		for _, k := range n.kids {
			if err := walk(k); err != nil {
				return err
			}
		}
		return nil
	}
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("rule <%s> refers to itself", name)
		case 2:
			return nil
		}
		n := r.byName[name]
		if n == nil {
			return fmt.Errorf("rule <%s> is not defined", name)
		}
		state[name] = 1
		if err := walk(n); err != nil {
			return err
		}
		state[name] = 2
		return nil
	}
	return visit(r.public)
}

// JSGF writes the rules in JSGF V1.0, the public rule first.
func (r *rules) JSGF() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#JSGF V1.0;\n\ngrammar %s;\n\n", r.name)
	for _, name := range r.order {
		if name == r.public {
			b.WriteString("public ")
		}
		body, _ := emit(r.byName[name])
		fmt.Fprintf(&b, "<%s> = %s;\n", name, body)
	}
	return b.String()
}

// Precedences of emitted JSGF.
const (
	precAlt = iota
	precSeq
	precAtom
)

// emit writes n as a JSGF expansion; "" when nothing of it is in the JSGF.
func emit(n *node) (string, int) {
	if n.noJSGF {
		return "", precAtom
	}
	if n.jsgf != nil {
		return emit(n.jsgf)
	}
	switch n.kind {
	case nWord:
		return n.word, precAtom
	case nRef:
		return "<" + n.ref + ">", precAtom
	case nAct:
		return "", precAtom
	case nOpt:
		s, prec := emit(n.kids[0])
		if s == "" {
			return "", precAtom
		}
		if prec == precAlt {
			s = "(" + s + ")"
		}
		return optional(s, n.p, 1), precAtom
	case nStar:
		// Unrolled to Sample's maxRepeat, so that every repetition costs its chance.
		s, prec := emit(n.kids[0])
		if s == "" {
			return "", precAtom
		}
		if prec == precAlt {
			s = "(" + s + ")"
		}
		return optional(s, n.p, maxRepeat), precAtom
	case nSeq:
		var parts []string
		for _, k := range n.kids {
			s, p := emit(k)
			if s == "" {
				continue
			}
			if p == precAlt {
				s = "(" + s + ")"
			}
			parts = append(parts, s)
		}
		if len(parts) == 1 {
			s, p := emit(firstEmitted(n.kids))
			return s, p
		}
		return strings.Join(parts, " "), precSeq
	case nAlt:
		var parts []string
		var ws []float64
		var precs []int
		for i, k := range n.kids {
			s, prec := emit(k)
			if s == "" {
				continue
			}
			wt := 1.0
			if i < len(n.weights) {
				wt = float64(max(n.weights[i], 1))
			}
			if prec == precAlt && strings.HasPrefix(s, "/") {
				// A weighted alternative inside another keeps its own weights.
				s, prec = "("+s+")", precAtom
			}
			if j := slices.Index(parts, s); j >= 0 {
				ws[j] += wt
				continue
			}
			parts, ws, precs = append(parts, s), append(ws, wt), append(precs, prec)
		}
		switch len(parts) {
		case 0:
			return "", precAtom
		case 1:
			for _, k := range n.kids {
				if s, p := emit(k); s != "" {
					return s, p
				}
			}
		}
		{
			var sum float64
			for _, x := range ws {
				sum += x
			}
			for i := range parts {
				if precs[i] == precAlt {
					parts[i] = "(" + parts[i] + ")"
				}
				parts[i] = "/" + jsgfWeight(ws[i]/sum) + "/ " + parts[i]
			}
		}
		return strings.Join(parts, " | "), precAlt
	}
	return "", precAtom
}

func firstEmitted(kids []*node) *node {
	for _, k := range kids {
		if s, _ := emit(k); s != "" {
			return k
		}
	}
	return nil
}

// words adds the words of the JSGF, or with parse also those Parse alone knows.
func (r *rules) words(set map[string]bool, parse bool) {
	var walk func(n *node)
	walk = func(n *node) {
		if n.noJSGF && !parse {
			return
		}
		if n.jsgf != nil && !parse {
			walk(n.jsgf)
			return
		}
		if n.kind == nWord {
			set[n.word] = true
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	for _, name := range r.order {
		walk(r.byName[name])
	}
}

// optional writes s said with chance p (0: one half), up to times times in a row, as
// weighted JSGF: "(/0.7/ <NULL> | /0.3/ s (/0.7/ <NULL> | /0.3/ s))". The decoder adds
// the logarithm of a weight to a path's score and normalises nothing, so every choice
// of the grammar carries its probability: a bracketed [s] or an unweighted alternative
// would cost nothing, and sentences with more optional words would come for free.
func optional(s string, p float64, times int) string {
	if p <= 0 || p >= 1 {
		p = 0.5
	}
	out := ""
	for range times {
		inner := s
		if out != "" {
			inner += " " + out
		}
		out = fmt.Sprintf("(/%s/ <NULL> | /%s/ %s)", jsgfWeight(1-p), jsgfWeight(p), inner)
	}
	return out
}

// jsgfWeight formats a JSGF weight.
func jsgfWeight(p float64) string { return strconv.FormatFloat(p, 'g', 4, 64) }
