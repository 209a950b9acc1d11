package grammar

// The indefinite article depends on the next word: "a latte", "an oat latte", "an
// eleven dollar tip". Sample says the right one (the article flag), but a JSGF of
// "(a | an) <item>" also offers the recogniser "a oat" and "an latte", sentences nobody
// says, and out-of-grammar speech found them: the grammar then fits more than it
// should. So the JSGF gets the article only before the words that take it (a node's
// jsgf form), and Sample and Parse keep the plain form (Parse stays lenient with typed
// text: "a espresso"; Sample's draws stay as they were).

// articleJSGF is, for the JSGF, "a" before the paths of rest whose first word starts
// with a consonant and "an" before the others, each followed by the acts; wa and wan
// weigh the two. Nil when rest says no word.
func (r *rules) articleJSGF(acts []act, rest *node, wa, wan int) *node {
	cons, vow := r.splitFirst(rest, 0)
	said := alt()
	var weights []int
	if cons != nil {
		said.kids = append(said.kids, seq(tagged(acts, w("a")), cons))
		weights = append(weights, wa)
	}
	if vow != nil {
		said.kids = append(said.kids, seq(tagged(acts, w("an")), vow))
		weights = append(weights, wan)
	}
	said.weights = weights
	return nonEmpty(said)
}

// tagged is kid followed by the acts.
func tagged(acts []act, kid *node) *node {
	n := seq(kid)
	for _, a := range acts {
		n.kids = append(n.kids, do(a))
	}
	return n
}

// vowelInitial reports whether a word takes "an".
func vowelInitial(word string) bool { return article(word) == "an" }

// maxSplitDepth bounds the references splitFirst follows.
const maxSplitDepth = 32

// splitFirst returns the paths of n whose first word starts with a consonant and
// those whose first word starts with a vowel, as two nodes (nil when there are none).
// Paths that say no word at all are in neither. References are followed (copied into
// the result), so the parts stay valid wherever they are used.
func (r *rules) splitFirst(n *node, depth int) (cons, vow *node) {
	if depth > maxSplitDepth || n.noJSGF {
		return nil, nil
	}
	if n.jsgf != nil {
		return r.splitFirst(n.jsgf, depth+1)
	}
	switch n.kind {
	case nWord:
		if vowelInitial(n.word) {
			return nil, n
		}
		return n, nil
	case nAct:
		return nil, nil
	case nRef:
		body := r.byName[n.ref]
		if body == nil {
			return nil, nil
		}
		return r.splitFirst(body, depth+1)
	case nOpt:
		return r.splitFirst(n.kids[0], depth+1)
	case nStar:
		c, v := r.splitFirst(n.kids[0], depth+1)
		more := &node{kind: nStar, kids: n.kids, p: n.p}
		if c != nil {
			c = seq(c, more)
		}
		if v != nil {
			v = seq(v, more)
		}
		return c, v
	case nAlt:
		ca, va := alt(), alt()
		var cw, vw []int
		for i, k := range n.kids {
			wt := 1
			if i < len(n.weights) {
				wt = n.weights[i]
			}
			c, v := r.splitFirst(k, depth+1)
			if c != nil {
				ca.kids, cw = append(ca.kids, c), append(cw, wt)
			}
			if v != nil {
				va.kids, vw = append(va.kids, v), append(vw, wt)
			}
		}
		if n.weights != nil {
			ca.weights, va.weights = cw, vw
		}
		return nonEmpty(ca), nonEmpty(va)
	case nSeq:
		// The first word comes from the first kid that says one; the kids before it
		// said nothing (their empty paths carry only actions).
		ca, va := alt(), alt()
		var prefix []*node
		for i, k := range n.kids {
			c, v := r.splitFirst(k, depth+1)
			rest := n.kids[i+1:]
			if c != nil {
				ca.kids = append(ca.kids, seq(append(append(append([]*node{}, prefix...), c), rest...)...))
			}
			if v != nil {
				va.kids = append(va.kids, seq(append(append(append([]*node{}, prefix...), v), rest...)...))
			}
			e, ok := r.emptyPath(k, depth+1)
			if !ok {
				break
			}
			prefix = append(prefix, e)
		}
		return nonEmpty(ca), nonEmpty(va)
	}
	return nil, nil
}

// emptyPath returns the part of n that says no word (its actions), and whether n can
// say nothing at all.
func (r *rules) emptyPath(n *node, depth int) (*node, bool) {
	if depth > maxSplitDepth {
		return nil, false
	}
	if n.noJSGF {
		return seq(), true
	}
	if n.jsgf != nil {
		return r.emptyPath(n.jsgf, depth+1)
	}
	switch n.kind {
	case nAct:
		return n, true
	case nOpt, nStar:
		return seq(), true
	case nRef:
		body := r.byName[n.ref]
		if body == nil {
			return nil, false
		}
		return r.emptyPath(body, depth+1)
	case nAlt:
		for _, k := range n.kids {
			if e, ok := r.emptyPath(k, depth+1); ok {
				return e, true
			}
		}
		return nil, false
	case nSeq:
		out := seq()
		for _, k := range n.kids {
			e, ok := r.emptyPath(k, depth+1)
			if !ok {
				return nil, false
			}
			out.kids = append(out.kids, e)
		}
		return out, true
	}
	return nil, false
}

// nonEmpty returns an alternative, its only kid, or nil when it has none.
func nonEmpty(a *node) *node {
	switch len(a.kids) {
	case 0:
		return nil
	case 1:
		return a.kids[0]
	}
	return a
}
