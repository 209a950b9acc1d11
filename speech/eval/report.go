package eval

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/earshot/earshot/speech/asr"
)

// Utterance is the outcome of one generated utterance.
type Utterance struct {
	Index     int    // in the run's plan (deterministic given the seed)
	Condition string // "command clean", "oog 20dB", ...
	Set       string // SetCommand, SetOOG, SetConfirm, SetChatter
	Voice     string
	Speed     int
	Text      string // what was spoken
	Want      string // the intent or answer (in-grammar sets)
	Result    asr.Result
	Signals   asr.Signals // when the recogniser is an asr.Analyzer
	Correct   bool        // in-grammar sets: accepted with the right meaning
	Audio     time.Duration
	Took      time.Duration
}

// InGrammar reports whether the utterance was in the grammar of its mode.
func (u Utterance) InGrammar() bool { return u.Set == SetCommand || u.Set == SetConfirm }

// OK reports whether the recogniser did the right thing: accepted the right meaning,
// or rejected out-of-grammar speech.
func (u Utterance) OK() bool {
	if u.InGrammar() {
		return u.Correct
	}
	return !u.Result.Accepted
}

func (u Utterance) String() string {
	verdict := "accepted"
	if u.OK() {
		verdict = "OK " + verdict
	} else {
		verdict = "BAD " + verdict
	}
	if !u.Result.Accepted {
		verdict = verdict[:len(verdict)-len("accepted")] + "rejected(" + u.Result.Reject + ")"
	}
	s := fmt.Sprintf("[%s %s %d] said %q heard %q %s", u.Condition, u.Voice, u.Speed, u.Text, u.Result.Text, verdict)
	if u.Want != "" {
		s += " want " + u.Want
	}
	sig := u.Signals
	if sig != (asr.Signals{}) {
		s += fmt.Sprintf(" {warp=%g garbage=%v ratio=%.1f word=%.1f agree=%v frames=%d phones=%d perr=%.3f lmerr=%.3f lmgain=%.1f score=%.1f}", sig.Warp, sig.Garbage, sig.PhoneRatio, sig.WordRatio, sig.Agree, sig.SpeechFrames, sig.Phones, sig.PhoneErr, sig.LMErr, sig.LMGain, sig.Score)
		if sig.LMText != "" {
			s += fmt.Sprintf(" lm %q", sig.LMText)
		}
	}
	return s
}

// Tally counts outcomes.
type Tally struct {
	N, Accepted, Correct int
}

// Rate returns the accuracy of an in-grammar tally or the false-accept rate of an
// out-of-grammar one.
func (t Tally) rate(inGrammar bool) float64 {
	if t.N == 0 {
		return 0
	}
	if inGrammar {
		return float64(t.Correct) / float64(t.N)
	}
	return float64(t.Accepted) / float64(t.N)
}

// Condition is the tally of one set under one noise condition.
type Condition struct {
	Name      string
	Set       string
	InGrammar bool
	Tally
	Accuracy        float64 // in-grammar sets: Correct / N
	FalseAcceptRate float64 // out-of-grammar sets: Accepted / N
	ByVoice         map[string]Tally
}

// Report is the outcome of a Run.
type Report struct {
	Recognizer string
	Conditions []Condition // in the order first seen: command clean, oog clean, ...
	Audio      time.Duration
	Took       time.Duration // recognition time, summed over utterances
	RTF        float64       // Took / Audio
	Utterances []Utterance
	index      map[string]int
}

func newReport(name string) Report { return Report{Recognizer: name, index: map[string]int{}} }

func (r *Report) add(u Utterance) {
	i, ok := r.index[u.Condition]
	if !ok {
		i = len(r.Conditions)
		r.index[u.Condition] = i
		r.Conditions = append(r.Conditions, Condition{Name: u.Condition, Set: u.Set, InGrammar: u.InGrammar(), ByVoice: map[string]Tally{}})
	}
	c := &r.Conditions[i]
	v := c.ByVoice[u.Voice]
	for _, t := range []*Tally{&c.Tally, &v} {
		t.N++
		if u.Result.Accepted {
			t.Accepted++
		}
		if u.Correct {
			t.Correct++
		}
	}
	c.ByVoice[u.Voice] = v
	r.Audio += u.Audio
	r.Took += u.Took
	r.Utterances = append(r.Utterances, u)
}

func (r *Report) finish() {
	sort.SliceStable(r.Conditions, func(i, j int) bool { return order(r.Conditions[i]) < order(r.Conditions[j]) })
	for i := range r.Conditions {
		c := &r.Conditions[i]
		r.index[c.Name] = i
		if c.InGrammar {
			c.Accuracy = c.rate(true)
		} else {
			c.FalseAcceptRate = c.rate(false)
		}
	}
	if r.Audio > 0 {
		r.RTF = r.Took.Seconds() / r.Audio.Seconds()
	}
	sort.SliceStable(r.Utterances, func(i, j int) bool { return r.Utterances[i].Index < r.Utterances[j].Index })
}

func order(c Condition) int {
	for i, s := range []string{SetCommand, SetOOG, SetConfirm, SetChatter} {
		if c.Set == s {
			return i
		}
	}
	return 9
}

// Condition returns the tally of a condition by name ("command clean", "oog 20dB").
func (r Report) Condition(name string) (Condition, bool) {
	for _, c := range r.Conditions {
		if c.Name == name {
			return c, true
		}
	}
	return Condition{}, false
}

// WriteText prints the report: one row per condition, then per voice, then the
// real-time factor.
func (r Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "recogniser %s: %d utterances, %.1f s of audio\n\n", r.Recognizer, len(r.Utterances), r.Audio.Seconds())
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "condition\tN\taccepted\tcorrect\tintent accuracy\tfalse accepts\t")
	for _, c := range r.Conditions {
		acc, fa := "-", "-"
		if c.InGrammar {
			acc = pct(c.Accuracy)
		} else {
			fa = pct(c.FalseAcceptRate)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t\n", c.Name, c.N, c.Accepted, c.Correct, acc, fa)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	var voices []string
	seen := map[string]bool{}
	for _, c := range r.Conditions {
		for v := range c.ByVoice {
			if !seen[v] {
				seen[v] = true
				voices = append(voices, v)
			}
		}
	}
	sort.Strings(voices)
	fmt.Fprintf(tw, "by voice\t%s\t\n", strings.Join(voices, "\t"))
	for _, c := range r.Conditions {
		cells := make([]string, len(voices))
		for i, v := range voices {
			t, ok := c.ByVoice[v]
			if !ok {
				cells[i] = "-"
				continue
			}
			cells[i] = fmt.Sprintf("%s/%d", pct(t.rate(c.InGrammar)), t.N)
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", c.Name, strings.Join(cells, "\t"))
	}
	tw.Flush()
	fmt.Fprintf(w, "(in-grammar rows: intent accuracy; out-of-grammar rows: false accepts)\n\n")
	fmt.Fprintf(w, "real-time factor %.4f (%.1f s of recognition for %.1f s of audio)\n", r.RTF, r.Took.Seconds(), r.Audio.Seconds())
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }
