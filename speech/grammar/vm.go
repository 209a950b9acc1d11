package grammar

import (
	"fmt"
	"slices"
	"sync"
)

// The matcher is a Pike VM (Thompson's construction with threads that carry what they
// did): the grammar compiles into a program of word, split, jump, action and match
// instructions, rules inlined; Parse runs all readings of the transcript in lock step,
// one word at a time, so its time is linear in the words. When a transcript has two
// readings, the one whose choices come first in the grammar wins (alternatives in
// order, optional parts taken unless lazy).

type instOp uint8

const (
	iWord  instOp = iota + 1 // match word, go to x
	iSplit                   // go to x, else y
	iJmp                     // go to x
	iAct                     // record act, go to x
	iMatch                   // the whole transcript matched
)

type inst struct {
	op   instOp
	word int32 // iWord
	x, y int32
	act  int32 // iAct: index into program.acts
}

// maxProgram bounds a compiled grammar (a catalogue with thousands of aliases would
// make a grammar no recogniser handles well anyway).
const maxProgram = 1 << 20

type program struct {
	insts  []inst
	acts   []act
	words  map[string]int32 // every word Parse knows
	comma  int32            // id of the comma token, -1 if the grammar has none
	byWord []string
	pool   sync.Pool // *machine
}

func compile(r *rules) (*program, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	p := &program{words: map[string]int32{}, comma: -1}
	c := compiler{p: p, r: r}
	c.node(ref(r.public))
	if c.err != nil {
		return nil, c.err
	}
	p.emit(inst{op: iMatch})
	if len(p.insts) > maxProgram {
		return nil, fmt.Errorf("grammar too large (%d instructions, at most %d)", len(p.insts), maxProgram)
	}
	if id, ok := p.words[comma]; ok {
		p.comma = id
	}
	return p, nil
}

func (p *program) emit(in inst) int32 {
	p.insts = append(p.insts, in)
	return int32(len(p.insts) - 1)
}

type compiler struct {
	p     *program
	r     *rules
	depth int
	err   error
}

// node compiles n so that it falls through to the next instruction.
func (c *compiler) node(n *node) {
	p := c.p
	if c.err != nil {
		return
	}
	if len(p.insts) > maxProgram {
		c.err = fmt.Errorf("grammar too large (more than %d instructions)", maxProgram)
		return
	}
	next := func() int32 { return int32(len(p.insts)) }
	switch n.kind {
	case nWord:
		id, ok := p.words[n.word]
		if !ok {
			id = int32(len(p.byWord))
			p.words[n.word] = id
			p.byWord = append(p.byWord, n.word)
		}
		p.emit(inst{op: iWord, word: id, x: next() + 1})
	case nAct:
		p.acts = append(p.acts, n.act)
		p.emit(inst{op: iAct, act: int32(len(p.acts) - 1), x: next() + 1})
	case nSeq:
		for _, k := range n.kids {
			c.node(k)
		}
	case nRef:
		c.depth++
		if c.depth > 64 {
			c.err = fmt.Errorf("rules nested too deep at <%s>", n.ref)
			return
		}
		c.node(c.r.byName[n.ref])
		c.depth--
	case nAlt:
		// split L1, next; L1: kid1; jmp end; next: split L2, ...; last kid
		var jumps []int32
		for i, k := range n.kids {
			if i == len(n.kids)-1 {
				c.node(k)
				break
			}
			s := p.emit(inst{op: iSplit})
			p.insts[s].x = next()
			c.node(k)
			jumps = append(jumps, p.emit(inst{op: iJmp}))
			p.insts[s].y = next()
		}
		for _, j := range jumps {
			p.insts[j].x = next()
		}
	case nOpt:
		s := p.emit(inst{op: iSplit})
		body := next()
		c.node(n.kids[0])
		if n.lazy {
			p.insts[s].x, p.insts[s].y = next(), body
		} else {
			p.insts[s].x, p.insts[s].y = body, next()
		}
	case nStar:
		s := p.emit(inst{op: iSplit})
		p.insts[s].x = next()
		c.node(n.kids[0])
		p.emit(inst{op: iJmp, x: s})
		p.insts[s].y = next()
	}
}

// trail is what a thread did: a list shared between threads, newest first.
type trail struct {
	act  int32
	prev *trail
}

type thread struct {
	pc    int32
	trail *trail
}

type machine struct {
	seen      []uint32 // generation a pc was last added in
	gen       uint32
	cur, next []thread
	stack     []thread
}

func (p *program) machine() *machine {
	if m, ok := p.pool.Get().(*machine); ok {
		return m
	}
	return &machine{seen: make([]uint32, len(p.insts))}
}

// add follows jumps, splits and actions from t, appending the threads that wait on a
// word (or matched) to list in priority order.
func (p *program) add(m *machine, list []thread, t thread) []thread {
	m.stack = append(m.stack[:0], t)
	for len(m.stack) > 0 {
		t := m.stack[len(m.stack)-1]
		m.stack = m.stack[:len(m.stack)-1]
		if m.seen[t.pc] == m.gen {
			continue
		}
		m.seen[t.pc] = m.gen
		in := &p.insts[t.pc]
		switch in.op {
		case iJmp:
			m.stack = append(m.stack, thread{in.x, t.trail})
		case iSplit:
			m.stack = append(m.stack, thread{in.y, t.trail}, thread{in.x, t.trail})
		case iAct:
			m.stack = append(m.stack, thread{in.x, &trail{act: in.act, prev: t.trail}})
		default:
			list = append(list, t)
		}
	}
	return list
}

// run matches the words and returns the actions of the winning reading. On failure it
// says where the transcript left the grammar.
func (p *program) run(words []string) ([]act, error) {
	if p.comma < 0 { // a grammar without commas: they are only pauses
		words = slices.DeleteFunc(slices.Clone(words), func(w string) bool { return w == comma })
	}
	ids := make([]int32, len(words))
	for i, wd := range words {
		id, ok := p.words[wd]
		if !ok {
			return nil, fmt.Errorf("%w: unknown word %q", ErrNotUnderstood, clip(wd))
		}
		ids[i] = id
	}
	m := p.machine()
	defer p.pool.Put(m)
	m.step()
	m.cur = p.add(m, m.cur[:0], thread{pc: 0})
	for i, id := range ids {
		m.step()
		m.next = m.next[:0]
		for _, t := range m.cur {
			if in := &p.insts[t.pc]; in.op == iWord && in.word == id {
				m.next = p.add(m, m.next, thread{in.x, t.trail})
			}
		}
		if id == p.comma {
			// A comma is a pause: a reading may also go on as if it were not there.
			for _, t := range m.cur {
				if m.seen[t.pc] != m.gen {
					m.seen[t.pc] = m.gen
					m.next = append(m.next, t)
				}
			}
		}
		m.cur, m.next = m.next, m.cur
		if len(m.cur) == 0 {
			if i == 0 {
				return nil, fmt.Errorf("%w: cannot start with %q", ErrNotUnderstood, clip(words[i]))
			}
			return nil, fmt.Errorf("%w: %q cannot follow %q", ErrNotUnderstood, clip(words[i]), clip(words[i-1]))
		}
	}
	for _, t := range m.cur {
		if p.insts[t.pc].op == iMatch {
			var out []act
			for tr := t.trail; tr != nil; tr = tr.prev {
				out = append(out, p.acts[tr.act])
			}
			slices.Reverse(out)
			return out, nil
		}
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%w: nothing said", ErrNotUnderstood)
	}
	return nil, fmt.Errorf("%w: incomplete after %q", ErrNotUnderstood, clip(words[len(words)-1]))
}

// step starts a new generation of the seen set.
func (m *machine) step() {
	m.gen++
	if m.gen == 0 { // wrapped: forget every mark
		clear(m.seen)
		m.gen = 1
	}
}

// clip bounds a word quoted in an error.
func clip(s string) string {
	const limit = 24
	if len(s) <= limit {
		return s
	}
	r := []rune(s)
	if len(r) > limit {
		r = r[:limit]
	}
	return string(r) + "..."
}
