package grammar

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/earshot/earshot/device/wire"
)

// PIN lengths the confirm grammar hears.
const (
	MinPIN = 4
	MaxPIN = 8
)

// confirmRules is the small grammar of answers to a prompt:
//
//	public <answer> = <yes> | <no> | <again> | <pin>;
//	<pin> = <digit> <digit> <digit> <digit> [<digit> [<digit> [<digit> [<digit>]]]];
func confirmRules() *rules {
	r := newRules("confirm", "answer")
	r.add("answer", alt(
		tag(act{op: opAnswer, s: string(wire.AnswerApprove)}, ref("yes")),
		tag(act{op: opAnswer, s: string(wire.AnswerDecline)}, ref("no")),
		tag(act{op: opAnswer, s: string(wire.AnswerRepeat)}, ref("again")),
		tag(act{op: opAnswer, s: string(wire.AnswerPIN)}, ref("pin")),
	).weigh(4, 3, 2, 2))
	r.add("yes", alt(
		seq(ws("yes", "yeah", "yep"), opt(w("please")).chance(0.2)),
		seq(opt(w("yes")).chance(0.2), ws("confirm", "approve"), opt(w("it")).chance(0.3)),
	))
	r.add("no", alt(
		ws("no", "nope"),
		seq(opt(w("no")).chance(0.2), ws("cancel", "decline"), opt(w("it")).chance(0.3)),
		seq(opt(w("no")).chance(0.2), w("don't")),
	))
	r.add("again", alt(
		seq(w("repeat"), opt(w("that")).chance(0.3)),
		w("say that again"),
		w("say again"),
		w("what"),
		seq(w("pardon"), opt(w("me")).chance(0.3)),
	))
	digit := alt(tag(act{op: opDigit, n: 0}, ws("zero", "oh")))
	for i := 1; i <= 9; i++ {
		digit.kids = append(digit.kids, tag(act{op: opDigit, n: int64(i)}, w(ones[i])))
	}
	r.add("digit", digit)
	d := ref("digit")
	var tail *node
	for range MaxPIN - MinPIN {
		if tail == nil {
			tail = opt(d).chance(0.4)
		} else {
			tail = opt(seq(d, tail)).chance(0.4)
		}
	}
	pin := seq()
	for range MinPIN {
		pin.kids = append(pin.kids, d)
	}
	pin.kids = append(pin.kids, tail)
	r.add("pin", pin)
	return r
}

// ConfirmJSGF returns the confirm grammar in JSGF V1.0 for PocketSphinx; its public
// rule is <answer>.
func ConfirmJSGF() string { return confirm().jsgf }

// ConfirmWords returns the words of the confirm grammar, sorted.
func ConfirmWords() []string { return append([]string(nil), confirm().words...) }

// ParseAnswer understands an answer to a prompt: yes, yeah, yep, confirm, approve
// ("yes please", "confirm it") approve; no, nope, cancel, decline, don't ("cancel it")
// decline; repeat, "say that again", what, pardon ask to repeat; 4 to 8 digits said one
// by one ("one two three four", "oh" for zero, or "1234" in text) are a PIN, returned
// as digits. Anything else wraps ErrNotUnderstood.
func ParseAnswer(text string) (answer wire.Answer, pin string, err error) {
	words, err := tokenize(text, true)
	if err != nil {
		return "", "", err
	}
	acts, err := confirm().prog.run(words)
	if err != nil {
		return "", "", err
	}
	return answerOf(acts)
}

func answerOf(acts []act) (wire.Answer, string, error) {
	var (
		a   wire.Answer
		pin strings.Builder
	)
	for _, x := range acts {
		switch x.op {
		case opAnswer:
			a = wire.Answer(x.s)
		case opDigit:
			pin.WriteByte(byte('0' + x.n))
		}
	}
	if a == "" || (a == wire.AnswerPIN) != (pin.Len() > 0) {
		return "", "", fmt.Errorf("%w: no answer", ErrNotUnderstood)
	}
	return a, pin.String(), nil
}

// SampleAnswer draws a confirm-grammar sentence and its answer (deterministic given r).
func SampleAnswer(r *rand.Rand) (text string, a wire.Answer, pin string) {
	c := confirm()
	words, acts := c.rules.sample(r)
	a, pin, err := answerOf(acts)
	if err != nil { // cannot happen: every reading of <answer> says one
		return "yes", wire.AnswerApprove, ""
	}
	return strings.Join(words, " "), a, pin
}
