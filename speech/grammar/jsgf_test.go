package grammar

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// A small JSGF reader, independent of the generator: it checks that the text is
// well formed, expands it at random and tells whether it generates a sentence.

type jnode struct {
	kind byte // 'w' word, 'n' <NULL>, 'r' rule ref, '|' alternatives, ' ' sequence, '[' optional, '*' star, '+' plus
	text string
	kids []*jnode
}

type jgrammar struct {
	name   string
	public []string
	rules  map[string]*jnode
}

func parseJSGF(src string) (*jgrammar, error) {
	if !strings.HasPrefix(src, "#JSGF V1.0;") {
		return nil, fmt.Errorf("no #JSGF V1.0; header")
	}
	src = strings.TrimPrefix(src, "#JSGF V1.0;")
	g := &jgrammar{rules: map[string]*jnode{}}
	stmts := strings.Split(src, ";")
	if strings.TrimSpace(stmts[len(stmts)-1]) != "" {
		return nil, fmt.Errorf("text after the last ';': %q", stmts[len(stmts)-1])
	}
	for _, st := range stmts[:len(stmts)-1] {
		st = strings.TrimSpace(st)
		if name, ok := strings.CutPrefix(st, "grammar "); ok {
			if g.name != "" {
				return nil, fmt.Errorf("two grammar names")
			}
			g.name = strings.TrimSpace(name)
			continue
		}
		if g.name == "" {
			return nil, fmt.Errorf("rule before the grammar name: %q", st)
		}
		public := false
		if rest, ok := strings.CutPrefix(st, "public "); ok {
			public, st = true, rest
		}
		head, body, ok := strings.Cut(st, "=")
		head = strings.TrimSpace(head)
		if !ok || !strings.HasPrefix(head, "<") || !strings.HasSuffix(head, ">") {
			return nil, fmt.Errorf("not a rule: %q", st)
		}
		name := head[1 : len(head)-1]
		if g.rules[name] != nil {
			return nil, fmt.Errorf("rule <%s> defined twice", name)
		}
		p := &jparser{toks: jtokens(body)}
		n, err := p.alt()
		if err != nil {
			return nil, fmt.Errorf("rule <%s>: %v", name, err)
		}
		if p.i != len(p.toks) {
			return nil, fmt.Errorf("rule <%s>: unexpected %q", name, p.toks[p.i])
		}
		g.rules[name] = n
		if public {
			g.public = append(g.public, name)
		}
	}
	if len(g.public) == 0 {
		return nil, fmt.Errorf("no public rule")
	}
	var check func(n *jnode) error
	check = func(n *jnode) error {
		if n.kind == 'r' && g.rules[n.text] == nil {
			return fmt.Errorf("<%s> is not defined", n.text)
		}
		for _, k := range n.kids {
			if err := check(k); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range g.rules {
		if err := check(n); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func jtokens(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\n' || c == '\t':
			i++
		case strings.IndexByte("|()[]*+", c) >= 0:
			out = append(out, s[i:i+1])
			i++
		case c == '/': // a weight: /0.25/
			j := strings.IndexByte(s[i+1:], '/')
			if j < 0 {
				return append(out, s[i:])
			}
			out = append(out, s[i:i+j+2])
			i += j + 2
		case c == '<':
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				return append(out, s[i:])
			}
			out = append(out, s[i:i+j+1])
			i += j + 1
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \n\t|()[]*+<>/", s[j]) < 0 {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out
}

type jparser struct {
	toks []string
	i    int
}

func (p *jparser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

// alt parses alternatives; if one has a weight, all must (JSGF 1.0 section 4.7), and
// weights must be positive numbers.
func (p *jparser) alt() (*jnode, error) {
	n := &jnode{kind: '|'}
	weighted, sum := 0, 0.0
	for {
		if t := p.peek(); strings.HasPrefix(t, "/") {
			w, err := strconv.ParseFloat(strings.Trim(t, "/"), 64)
			if err != nil || !(w > 0) {
				return nil, fmt.Errorf("bad weight %q", t)
			}
			weighted++
			sum += w
			p.i++
		}
		if weighted != 0 && weighted != len(n.kids)+1 {
			return nil, fmt.Errorf("some alternatives are weighted, some not")
		}
		s, err := p.seq()
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, s)
		if p.peek() != "|" {
			// Not a JSGF rule, but the generator's: its weights are probabilities.
			if weighted > 0 && math.Abs(sum-1) > 0.01 {
				return nil, fmt.Errorf("weights add up to %g, not 1", sum)
			}
			return n, nil
		}
		p.i++
	}
}

func (p *jparser) seq() (*jnode, error) {
	n := &jnode{kind: ' '}
	for {
		var k *jnode
		switch t := p.peek(); {
		case t == "" || t == "|" || t == ")" || t == "]":
			if len(n.kids) == 0 {
				return nil, fmt.Errorf("empty expansion before %q", t)
			}
			return n, nil
		case t == "(" || t == "[":
			p.i++
			inner, err := p.alt()
			if err != nil {
				return nil, err
			}
			want := map[string]string{"(": ")", "[": "]"}[t]
			if p.peek() != want {
				return nil, fmt.Errorf("unbalanced %q", t)
			}
			p.i++
			k = inner
			if t == "[" {
				k = &jnode{kind: '[', kids: []*jnode{inner}}
			}
		case t == "<NULL>":
			p.i++
			k = &jnode{kind: 'n'}
		case strings.HasPrefix(t, "/"):
			return nil, fmt.Errorf("weight %q inside a sequence", t)
		case strings.HasPrefix(t, "<"):
			if !strings.HasSuffix(t, ">") || len(t) < 3 {
				return nil, fmt.Errorf("bad rule reference %q", t)
			}
			p.i++
			k = &jnode{kind: 'r', text: t[1 : len(t)-1]}
		case t == "*" || t == "+":
			return nil, fmt.Errorf("%q follows nothing", t)
		default:
			for _, r := range t {
				if !unicode.IsLower(r) && r != '\'' {
					return nil, fmt.Errorf("word %q is not lower-case letters", t)
				}
			}
			p.i++
			k = &jnode{kind: 'w', text: t}
		}
		if t := p.peek(); t == "*" || t == "+" {
			p.i++
			k = &jnode{kind: t[0], kids: []*jnode{k}}
		}
		n.kids = append(n.kids, k)
	}
}

// expand draws one sentence of the rule.
func (g *jgrammar) expand(r *rand.Rand, rule string) []string {
	var out []string
	var walk func(n *jnode)
	walk = func(n *jnode) {
		switch n.kind {
		case 'w':
			out = append(out, n.text)
		case 'r':
			walk(g.rules[n.text])
		case '|':
			walk(n.kids[r.IntN(len(n.kids))])
		case ' ':
			for _, k := range n.kids {
				walk(k)
			}
		case '[':
			if r.IntN(2) == 0 {
				walk(n.kids[0])
			}
		case '*', '+':
			reps := r.IntN(3)
			if n.kind == '+' {
				reps++
			}
			for range reps {
				walk(n.kids[0])
			}
		}
	}
	walk(g.rules[rule])
	return out
}

// match returns the positions where n can end when it starts at i.
func (g *jgrammar) match(n *jnode, words []string, i int) []int {
	switch n.kind {
	case 'w':
		if i < len(words) && words[i] == n.text {
			return []int{i + 1}
		}
		return nil
	case 'n':
		return []int{i}
	case 'r':
		return g.match(g.rules[n.text], words, i)
	case '|':
		var out []int
		for _, k := range n.kids {
			out = append(out, g.match(k, words, i)...)
		}
		slices.Sort(out)
		return slices.Compact(out)
	case ' ':
		at := []int{i}
		for _, k := range n.kids {
			var next []int
			for _, j := range at {
				next = append(next, g.match(k, words, j)...)
			}
			slices.Sort(next)
			at = slices.Compact(next)
		}
		return at
	case '[':
		out := append([]int{i}, g.match(n.kids[0], words, i)...)
		slices.Sort(out)
		return slices.Compact(out)
	case '*', '+':
		seen := map[int]bool{}
		at := []int{i}
		var out []int
		if n.kind == '*' {
			out = append(out, i)
		}
		for len(at) > 0 {
			var next []int
			for _, j := range at {
				for _, e := range g.match(n.kids[0], words, j) {
					if !seen[e] && e > j {
						seen[e] = true
						next = append(next, e)
						out = append(out, e)
					}
				}
			}
			at = next
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return nil
}

func (g *jgrammar) accepts(rule string, words []string) bool {
	return slices.Contains(g.match(g.rules[rule], words, 0), len(words))
}

func (g *jgrammar) words() []string {
	set := map[string]bool{}
	var walk func(n *jnode)
	walk = func(n *jnode) {
		if n.kind == 'w' {
			set[n.text] = true
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	for _, n := range g.rules {
		walk(n)
	}
	var out []string
	for w := range set {
		out = append(out, w)
	}
	slices.Sort(out)
	return out
}

func TestJSGF(t *testing.T) {
	g := shipped(t)
	cmd, err := parseJSGF(g.CommandJSGF())
	if err != nil {
		t.Fatalf("command JSGF: %v\n%s", err, g.CommandJSGF())
	}
	conf, err := parseJSGF(ConfirmJSGF())
	if err != nil {
		t.Fatalf("confirm JSGF: %v\n%s", err, ConfirmJSGF())
	}
	if !slices.Equal(cmd.public, []string{"command"}) || !slices.Equal(conf.public, []string{"answer"}) {
		t.Fatalf("public rules %v and %v, want [command] and [answer]", cmd.public, conf.public)
	}
	all := append(cmd.words(), conf.words()...)
	slices.Sort(all)
	if all = slices.Compact(all); !slices.Equal(all, g.Words()) {
		t.Errorf("Words() = %v\nthe JSGF texts have %v", g.Words(), all)
	}
	if !slices.Equal(conf.words(), ConfirmWords()) {
		t.Errorf("ConfirmWords() = %v\nthe JSGF has %v", ConfirmWords(), conf.words())
	}

	r := rand.New(rand.NewPCG(3, 4))
	t.Run("every expansion parses", func(t *testing.T) {
		for range 2000 {
			s := strings.Join(cmd.expand(r, "command"), " ")
			if _, err := g.Parse(s); err != nil && !errors.Is(err, errTooMany) {
				t.Fatalf("JSGF sentence %q: %v", s, err)
			}
			a := strings.Join(conf.expand(r, "answer"), " ")
			if _, _, err := ParseAnswer(a); err != nil {
				t.Fatalf("JSGF answer %q: %v", a, err)
			}
		}
	})
	t.Run("every sample the recogniser can say is in the JSGF", func(t *testing.T) {
		inJSGF := 0
		for range 2000 {
			s, _ := g.Sample(r)
			words := strings.Fields(s)
			if slices.ContainsFunc(words, func(w string) bool { _, ok := slices.BinarySearch(all, w); return !ok }) {
				continue // a plural only text says ("cappuccinos")
			}
			inJSGF++
			if !cmd.accepts("command", words) {
				t.Fatalf("sample %q is not in the JSGF", s)
			}
			a, _, _ := SampleAnswer(r)
			if !conf.accepts("answer", strings.Fields(a)) {
				t.Fatalf("answer %q is not in the JSGF", a)
			}
		}
		if inJSGF < 1500 {
			t.Errorf("only %d of 2000 samples use the JSGF's words alone", inJSGF)
		}
	})
	t.Run("each article before the words that take it", func(t *testing.T) {
		for _, s := range []string{"a latte", "an oat latte", "an iced latte", "a large oat latte", "an extra shot latte",
			"a pair of socks", "an espresso", "a decaf espresso", "get me an americano and a croissant"} {
			if !cmd.accepts("command", strings.Fields(s)) {
				t.Errorf("JSGF refuses %q", s)
			}
		}
		for _, s := range []string{"a espresso", "an latte", "an pair of socks"} { // typed text stays lenient
			if in, err := g.Parse(s); err != nil || len(in.Lines) != 1 || in.Lines[0].Qty != 1 {
				t.Errorf("Parse(%q) = %v, %v", s, in, err)
			}
		}
	})
	t.Run("near misses are not in the JSGF", func(t *testing.T) {
		for _, s := range []string{"buy two oat", "one lattes", "latte latte", "a large croissant", "two cappuccinos", "yes",
			"a oat latte", "an latte", "an large latte", "a extra shot latte", "an pair of socks", "a espresso", "an decaf espresso"} {
			if cmd.accepts("command", strings.Fields(s)) {
				t.Errorf("JSGF accepts %q", s)
			}
		}
	})
}

func TestJSGFReader(t *testing.T) {
	for _, bad := range []string{
		"grammar x; public <a> = b;",
		"#JSGF V1.0; public <a> = b;",
		"#JSGF V1.0; grammar x; <a> = b;",
		"#JSGF V1.0; grammar x; public <a> = (b;",
		"#JSGF V1.0; grammar x; public <a> = [b;",
		"#JSGF V1.0; grammar x; public <a> = b c);",
		"#JSGF V1.0; grammar x; public <a> = <b>;",
		"#JSGF V1.0; grammar x; public <a> = b | ;",
		"#JSGF V1.0; grammar x; public <a> = B;",
		"#JSGF V1.0; grammar x; public <a> = b; <a> = c;",
		"#JSGF V1.0; grammar x; public <a> = b",
	} {
		if _, err := parseJSGF(bad); err == nil {
			t.Errorf("parseJSGF(%q) accepted it", bad)
		}
	}
	g, err := parseJSGF("#JSGF V1.0; grammar x; public <a> = b (c | d)* [e <f>]; <f> = f+;")
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{"b": true, "b c d c": true, "b e f f": true, "b e": false, "c": false} {
		if got := g.accepts("a", strings.Fields(s)); got != want {
			t.Errorf("accepts(%q) = %v", s, got)
		}
	}
}

// The recogniser's grammar carries the sampler's priors: rare optional words cost the
// decoder what they are unlikely to be said.
func TestJSGFWeights(t *testing.T) {
	g := shipped(t)
	for _, want := range []string{
		"(/0.95/ <NULL> | /0.05/ (/0.5/ um | /0.5/ uh))",                    // hesitations are rare
		"(/0.85/ <buy> | /0.05/ <status> | /0.05/ <cancel> | /0.05/ <tip>)", // weighted alternatives
	} {
		if !strings.Contains(g.CommandJSGF(), want) {
			t.Errorf("the command JSGF lacks %q", want)
		}
	}
	for _, bad := range []string{
		"/0.5/ a | b",     // one weighted, one not
		"/0.5/ a | /0/ b", // zero
		"/x/ a | /1/ b",   // not a number
		"/0.2/ a | /0.2/ b",
		"a /0.5/ b",
	} {
		if _, err := parseJSGF("#JSGF V1.0; grammar g; public <r> = " + bad + ";"); err == nil {
			t.Errorf("the test reader accepted %q", bad)
		}
	}
}
