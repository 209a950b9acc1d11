package grammar

import (
	"fmt"
	"slices"
	"strings"
)

// commandRules builds the command grammar of the items.
//
//	public <command> = [um | uh] (<buy> | <status> | <cancel> | <tip>) [please | thanks | thank you];
//	<buy>   = [<ask>] <order> [<target>] [<tiptail>];
//	<order> = <line> (and <line>)*;
//	<line>  = <line1> | <line2> | ...    one per group of items sold alike
//	<lineN> = ([a | an | one] [<sizeN>] [<optN> [<optN>]] <oneN> | <many> ... <moreN>) [<withN>];
//
// Items that share their unit, sizes and options share a group, so a size or option is
// only heard before an item that has it.
func commandRules(items []*item, cur string) (*rules, error) {
	r := newRules("commerce", "command")
	r.add("command", seq(
		opt(ws("um", "uh")).chance(0.05),
		alt(
			tag(act{op: opAction, n: int64(ActionBuy)}, ref("buy")),
			tag(act{op: opAction, n: int64(ActionStatus)}, ref("status")),
			tag(act{op: opAction, n: int64(ActionCancel)}, ref("cancel")),
			tag(act{op: opAction, n: int64(ActionTip)}, ref("tip")),
		).weigh(85, 5, 5, 5),
		opt(ws("please", "thanks", "thank you")).chance(0.1),
	))
	r.add("buy", seq(opt(ref("ask")).chance(0.6), ref("order"),
		opt(ref("target")).chance(0.12), opt(ref("tiptail")).chance(0.06)))
	r.add("ask", alt(seq(w("please"), opt(ref("request")).chance(0.7)), ref("request")).weigh(1, 6))
	r.add("request", alt(
		seq(ws("can", "could", "may"), w("i"), opt(w("please")).chance(0.1), ws("get", "have", "order", "buy")),
		seq(ws("i'd", "i would"), w("like"), opt(seq(w("to"), ws("buy", "order", "get", "have"))).chance(0.3)),
		seq(w("i want"), opt(seq(w("to"), ws("buy", "order", "get"))).chance(0.3)),
		seq(w("i'll"), ws("have", "take", "get")),
		seq(ws("give", "get"), w("me")),
		seq(ws("can", "could"), w("you"), opt(w("please")).chance(0.1), ws("get me", "order", "buy")),
		seq(w("let me"), ws("get", "have")),
		ws("buy", "order", "get"),
	))
	r.add("order", seq(ref("line"), star(seq(alt(w("and"), w(comma).parseOnly()), ref("line"))).chance(0.3)))

	numberRules(r)
	moneyRules(r, currencies[cur])
	r.add("target", seq(
		alt(
			seq(ws("when", "if", "once"), ws("it", "the price"), ws("drops", "goes", "falls", "gets", "is"),
				opt(w("down")).chance(0.1), ws("under", "below")),
			seq(ws("when", "if", "once"), w("it's"), ws("under", "below")),
			w("for less than"),
		).weigh(6, 2, 1),
		do(act{op: opMoney, n: moneyUnder}), ref("money"),
	))
	tipNP := alt(seq(w("a"), ref("tipamount"), w("tip")), seq(w("a tip of"), ref("tipamount")))
	tipAmount := seq(do(act{op: opMoney, n: moneyTip}), tipNP)
	r.add("tiptail", seq(alt(ws("and", "plus", "with"), seq(w("and"), ws("add", "leave"))), tipAmount))
	r.add("tip", alt(
		seq(opt(ref("politely")).chance(0.3), ws("add", "leave", "give"), tipAmount),
		seq(w("tip"), do(act{op: opMoney, n: moneyTip}), ref("tipamount")),
	).weigh(4, 1))
	r.add("politely", alt(w("please"), seq(ws("can", "could"), w("you"), opt(w("please"))), seq(w("i want to")),
		seq(ws("i'd", "i would"), w("like to"))))
	r.add("status", alt(
		seq(ws("where is", "where's"), w("my order")),
		seq(ws("what's", "what is"), w("the status of my order")),
		seq(ws("what's", "what is"), w("my order status")),
		w("is my order ready"),
		w("check on my order"),
		w("order status"),
	))
	r.add("cancel", seq(opt(ref("politely")).chance(0.3), w("cancel"), ws("my", "the", "that"), w("order")))

	lines, err := itemRules(r, items)
	if err != nil {
		return nil, err
	}
	r.add("line", lines)
	return r, nil
}

// group is the items sold alike: same unit, sizes and options.
type group struct {
	unit    string
	sizes   []string
	options []string
	items   []*item
}

func (g *group) alike(it *item) bool {
	return g.unit == it.unit && slices.Equal(g.sizes, it.sizes) && slices.Equal(g.options, it.options)
}

// itemRules adds the rules of the items and returns <line>.
func itemRules(r *rules, items []*item) (*node, error) {
	var groups []*group
	for _, it := range items {
		i := slices.IndexFunc(groups, func(g *group) bool { return g.alike(it) })
		if i < 0 {
			groups = append(groups, &group{unit: it.unit, sizes: it.sizes, options: it.options})
			i = len(groups) - 1
		}
		groups[i].items = append(groups[i].items, it)
	}
	names := map[string]bool{}
	ruleName := func(base string) string {
		var b strings.Builder
		for _, c := range strings.ToLower(base) {
			switch {
			case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
				b.WriteRune(c)
			default:
				b.WriteByte('_')
			}
		}
		name := "item_" + b.String()
		for k := 2; names[name] || r.byName[name] != nil; k++ {
			name = fmt.Sprintf("item_%s_%d", b.String(), k)
		}
		names[name] = true
		return name
	}
	line := alt()
	for gi, g := range groups {
		n := gi + 1
		mods := seq()
		if len(g.sizes) > 0 {
			sz := alt()
			for _, s := range g.sizes {
				sz.kids = append(sz.kids, tag(act{op: opSize, s: s}, w(s)))
			}
			r.add(fmt.Sprintf("size%d", n), sz)
			mods.kids = append(mods.kids, opt(ref(fmt.Sprintf("size%d", n))).chance(0.35))
		}
		var with *node
		if len(g.options) > 0 {
			op, post := alt(), alt()
			for _, o := range g.options {
				op.kids = append(op.kids, tag(act{op: opOpt, s: o}, w(o)))
				said := w(o)
				if strings.Contains(o, " ") { // "with an extra shot"
					said = seq(opt(w(article(o))).chance(0.7), w(o))
				}
				post.kids = append(post.kids, tag(act{op: opPostOpt, s: o}, said))
			}
			r.add(fmt.Sprintf("option%d", n), op)
			r.add(fmt.Sprintf("withoption%d", n), post)
			o := ref(fmt.Sprintf("option%d", n))
			mods.kids = append(mods.kids, opt(seq(o, opt(ref(fmt.Sprintf("option%d", n))).chance(0.2))).chance(0.25))
			wo := ref(fmt.Sprintf("withoption%d", n))
			with = opt(seq(w("with"), wo, lazyOpt(seq(w("and"), ref(fmt.Sprintf("withoption%d", n)))).chance(0.2))).chance(0.15)
		}
		one, more := alt(), alt()
		for _, it := range g.items {
			name := ruleName(it.sku)
			r.add(name, forms(it.one))
			one.kids = append(one.kids, tag(act{op: opItem, s: it.sku}, ref(name)))
			if g.unit == "" {
				r.add(name+"_more", forms(it.more))
				more.kids = append(more.kids, tag(act{op: opItem, s: it.sku}, ref(name+"_more")))
			}
		}
		r.add(fmt.Sprintf("one%d", n), one)
		articles := ws("a", "an")
		articles.article = true
		qtyOne := tag(act{op: opQty, n: 1}, alt(articles, w("one")).weigh(3, 1))
		var single, plural *node
		qty1 := []act{{op: opQty, n: 1}}
		if g.unit == "" {
			r.add(fmt.Sprintf("more%d", n), more)
			single = seq(opt(qtyOne).chance(0.6), mods, ref(fmt.Sprintf("one%d", n)))
			plural = seq(ref("many"), mods, ref(fmt.Sprintf("more%d", n)))
			// The JSGF: nothing, "one", or the article the next word takes (Sample's
			// chances: 0.4, 0.6*1/4, 0.6*3/4 shared by the two articles).
			rest := seq(mods, ref(fmt.Sprintf("one%d", n)))
			said := alt(rest, seq(tagged(qty1, w("one")), rest)).weigh(40, 15)
			if a := r.articleJSGF(qty1, rest, 30, 15); a != nil {
				said.kids, said.weights = append(said.kids, a), append(said.weights, 45)
			}
			single.jsgf = said
		} else {
			// "a pair of black leggings", "black leggings", "two pairs of socks", "two socks".
			single = seq(opt(seq(qtyOne, w(g.unit+" of"))).chance(0.7), mods, ref(fmt.Sprintf("one%d", n)))
			plural = seq(ref("many"), opt(w(PluralWord(g.unit)+" of")).chance(0.7), mods, ref(fmt.Sprintf("one%d", n)))
			// The JSGF: the article the unit takes ("a pair of", never "an pair of").
			rest := seq(w(g.unit+" of"), mods, ref(fmt.Sprintf("one%d", n)))
			said := alt(seq(mods, ref(fmt.Sprintf("one%d", n))), seq(tagged(qty1, w("one")), rest)).weigh(30, 18)
			if a := r.articleJSGF(qty1, rest, 52, 52); a != nil {
				said.kids, said.weights = append(said.kids, a), append(said.weights, 52)
			}
			single.jsgf = said
		}
		body := seq(alt(single, plural))
		if with != nil {
			body.kids = append(body.kids, with)
		}
		r.add(fmt.Sprintf("line%d", n), body)
		line.kids = append(line.kids, ref(fmt.Sprintf("line%d", n)))
	}
	return line, nil
}

// forms is the alternatives naming an item.
func forms(fs []form) *node {
	n := alt()
	for _, f := range fs {
		k := w(f.text)
		k.noJSGF = f.noJSGF
		k.noSample = f.stand
		n.kids = append(n.kids, k)
	}
	return n
}

// article is the indefinite article of a phrase.
func article(p string) string {
	if strings.ContainsRune("aeiou", rune(p[0])) {
		return "an"
	}
	return "a"
}
