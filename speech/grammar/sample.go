package grammar

import (
	"math/rand/v2"
	"strings"
)

// maxRepeat bounds how often Sample repeats a starred part ("and" another line).
const maxRepeat = 2

// sample walks the grammar from its public rule, choosing at random as the nodes'
// weights and chances say, and returns the words said and the actions met. It never
// says a noSample node.
func (r *rules) sample(rnd *rand.Rand) ([]string, []act) {
	var (
		words    []string
		acts     []act
		articles []int // indexes of words that are "a" or "an" as the next word takes
	)
	var walk func(n *node)
	walk = func(n *node) {
		if n.noSample {
			return
		}
		chance := func() bool {
			p := n.p
			if p == 0 {
				p = 0.5
			}
			return rnd.Float64() < p
		}
		switch n.kind {
		case nWord:
			words = append(words, n.word)
		case nAct:
			acts = append(acts, n.act)
		case nRef:
			walk(r.byName[n.ref])
		case nSeq:
			for _, k := range n.kids {
				walk(k)
			}
		case nOpt:
			if chance() {
				walk(n.kids[0])
			}
		case nStar:
			for i := 0; i < maxRepeat && chance(); i++ {
				walk(n.kids[0])
			}
		case nAlt:
			if n.article {
				articles = append(articles, len(words))
			}
			if k := pick(rnd, n); k != nil {
				walk(k)
			}
		}
	}
	walk(r.byName[r.public])
	for _, i := range articles {
		if i+1 < len(words) {
			words[i] = article(words[i+1])
		}
	}
	return words, acts
}

// pick chooses a kid of an alternative by weight, never one Sample must not say.
func pick(rnd *rand.Rand, n *node) *node {
	total := 0
	weight := func(i int) int {
		if n.kids[i].noSample {
			return 0
		}
		if i < len(n.weights) {
			return n.weights[i]
		}
		return 1
	}
	for i := range n.kids {
		total += weight(i)
	}
	if total == 0 {
		return nil
	}
	x := rnd.IntN(total)
	for i, k := range n.kids {
		if x < weight(i) {
			return k
		}
		x -= weight(i)
	}
	return nil
}

// Sample draws one random command sentence of the grammar and its intent
// (deterministic given r). About 70% are plain buys of one or two lines; the rest
// buy at a price target or with a tip, tip, ask for status or cancel.
func (g *Grammar) Sample(r *rand.Rand) (text string, in Intent) {
	for range 100 {
		words, acts := g.rules.sample(r)
		in, err := g.interpret(acts)
		if err == nil { // else more than MaxQty of a merged line: draw again
			return strings.Join(words, " "), in
		}
	}
	return "where is my order", Intent{Action: ActionStatus}
}
