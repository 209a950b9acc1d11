package asr

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/earshot/earshot/speech/grammar"
)

// ngramDiscount is the absolute discount of the back-off n-gram model: what each seen
// n-gram gives up for the words its history has not been seen with.
const ngramDiscount = 0.7

// arpa returns a back-off n-gram model of the sentences (words separated by spaces) in
// ARPA text form, of the given order (>= 1), with absolute discounting. Every word of
// vocab gets a unigram even if no sentence says it. Sentences are wrapped in <s> and
// </s>.
func arpa(sentences []string, vocab []string, order int) string {
	if order < 1 {
		order = 1
	}
	// counts[n-1]["w1 w2 .. wn"]: n-gram counts; hist[n-1][h]: count of history h (n-1
	// words) followed by anything, and its distinct followers.
	counts := make([]map[string]int, order)
	for i := range counts {
		counts[i] = map[string]int{}
	}
	for _, s := range sentences {
		ws := append(append([]string{"<s>"}, strings.Fields(s)...), "</s>")
		for i := range ws {
			for n := 1; n <= order && i+n <= len(ws); n++ {
				if n == 1 && ws[i] == "<s>" {
					continue
				}
				counts[n-1][strings.Join(ws[i:i+n], " ")]++
			}
		}
	}
	// Unigrams: discounted counts plus a floor for every word, normalised.
	uni := map[string]float64{}
	total := 0.0
	for g, c := range counts[0] {
		uni[g] = float64(c)
		total += float64(c)
	}
	for _, w := range vocab {
		if _, ok := uni[w]; !ok {
			uni[w] = 0
		}
	}
	floor := 0.5
	total += floor * float64(len(uni))
	prob := make([]map[string]float64, order) // log10 probabilities
	prob[0] = map[string]float64{}
	p1 := map[string]float64{} // linear unigram probabilities
	for w, c := range uni {
		p1[w] = (c + floor) / total
		prob[0][w] = math.Log10(p1[w])
	}
	prob[0]["<s>"] = -99
	p1["<s>"] = 0
	// lower returns the back-off probability of an n-gram (linear), computed from the
	// lower orders.
	backoff := make([]map[string]float64, order) // log10 back-off weights by history
	for i := range backoff {
		backoff[i] = map[string]float64{}
	}
	var lower func(words []string) float64
	lower = func(words []string) float64 {
		n := len(words)
		if n == 1 {
			return p1[words[0]]
		}
		g := strings.Join(words, " ")
		if lp, ok := prob[n-1][g]; ok {
			return math.Pow(10, lp)
		}
		h := strings.Join(words[:n-1], " ")
		bo := 0.0
		if b, ok := backoff[n-2][h]; ok {
			bo = b
		}
		return math.Pow(10, bo) * lower(words[1:])
	}
	for n := 2; n <= order; n++ {
		prob[n-1] = map[string]float64{}
		histCount := map[string]int{}
		followers := map[string][]string{}
		for g, c := range counts[n-1] {
			ws := strings.Fields(g)
			h := strings.Join(ws[:n-1], " ")
			histCount[h] += c
			followers[h] = append(followers[h], ws[n-1])
		}
		for g, c := range counts[n-1] {
			ws := strings.Fields(g)
			h := strings.Join(ws[:n-1], " ")
			prob[n-1][g] = math.Log10((float64(c) - ngramDiscount) / float64(histCount[h]))
		}
		// Back-off weights of the histories of order n-1.
		for h, fs := range followers {
			seen, seenLower := 0.0, 0.0
			hw := strings.Fields(h)
			for _, f := range fs {
				seen += math.Pow(10, prob[n-1][h+" "+f])
				seenLower += lower(append(slices.Clone(hw[1:]), f))
			}
			left, leftLower := 1-seen, 1-seenLower
			if left <= 0 || leftLower <= 0 {
				continue
			}
			backoff[n-2][h] = math.Log10(left / leftLower)
		}
	}
	var b strings.Builder
	b.WriteString("\\data\\\n")
	for n := 1; n <= order; n++ {
		fmt.Fprintf(&b, "ngram %d=%d\n", n, len(prob[n-1]))
	}
	for n := 1; n <= order; n++ {
		fmt.Fprintf(&b, "\n\\%d-grams:\n", n)
		keys := make([]string, 0, len(prob[n-1]))
		for g := range prob[n-1] {
			keys = append(keys, g)
		}
		slices.Sort(keys)
		for _, g := range keys {
			fmt.Fprintf(&b, "%.4f %s", prob[n-1][g], g)
			if n < order {
				bo, ok := backoff[n-1][g]
				if !ok && n == 1 {
					bo, ok = 0, true
				}
				if ok {
					fmt.Fprintf(&b, " %.4f", bo)
				}
			}
			b.WriteByte('\n')
		}
	}
	b.WriteString("\n\\end\\\n")
	return b.String()
}

// lmSearch is the name of the command mode's n-gram search.
const lmSearch = "command-lm"

// commandLM returns the domain n-gram model of the command grammar: trigrams of
// sentences sampled from it (its priors), so that it hears the grammar's words in
// orders the grammar does not allow.
func commandLM(g *grammar.Grammar) string {
	r := rand.New(rand.NewPCG(1, 2))
	sents := make([]string, 0, lmSamples)
	for range lmSamples {
		s, _ := g.Sample(r)
		sents = append(sents, s)
	}
	return arpa(sents, nil, 3)
}

// lmSamples is the size of the n-gram model's corpus.
const lmSamples = 20000

// wordDistance is the edit distance between two word sequences.
func wordDistance(a, b []string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// lmFiller are words whose presence or absence does not change what a command means
// (or that the recognisers confuse for one another): the agreement between the grammar
// and the n-gram hypotheses ignores them.
var lmFiller = map[string]bool{"um": true, "uh": true, "a": true, "an": true, "please": true, "thanks": true}

// lmWords returns the words of a hypothesis as the agreement compares them: fillers
// left out, plurals made singular ("espressos", "dollars": the final /z/ is the sound
// the models hear least reliably).
func lmWords(text string) []string {
	var out []string
	for _, w := range strings.Fields(text) {
		if lmFiller[w] {
			continue
		}
		if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
			w = w[:len(w)-1]
		}
		out = append(out, w)
	}
	return out
}

// lmDisagreement measures how far the n-gram hypothesis lm is from the grammar
// hypothesis text: 0 when both mean the same command, else the edit distance of their
// words (see lmWords) per word of text, a quarter of that when lm is an order too.
func lmDisagreement(g *grammar.Grammar, text, lm string) float64 {
	a, errA := g.Parse(text)
	b, errB := g.Parse(lm)
	if errA == nil && errB == nil && a.Equal(b) {
		return 0
	}
	want, got := lmWords(text), lmWords(lm)
	d := float64(wordDistance(want, got)) / float64(max(len(want), 1))
	if errA == nil && errB == nil && a.Action == b.Action {
		// The n-gram model heard an order too, of other items or numbers ("fifteen
		// bottles" for "fifteen croissants"): the words are in doubt, which the prompt
		// settles, but not that it was an order. Of 400 out-of-grammar utterances, 2
		// came out this way; of 600 commands, 11 that the grammar had right.
		d /= 4
	}
	return d
}
