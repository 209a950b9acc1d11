package asr

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/earshot/earshot/speech/grammar/grammartest"
)

// arpaSections reads an ARPA text into order -> n-gram -> (log10 prob, back-off).
func arpaSections(t *testing.T, text string) map[int]map[string][2]float64 {
	t.Helper()
	out := map[int]map[string][2]float64{}
	order := 0
	counts := map[int]int{}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "ngram "):
			f := strings.Split(strings.TrimPrefix(line, "ngram "), "=")
			n, _ := strconv.Atoi(f[0])
			c, _ := strconv.Atoi(f[1])
			counts[n] = c
		case strings.HasSuffix(line, "-grams:"):
			order, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(line, "\\"), "-grams:"))
			out[order] = map[string][2]float64{}
		case line == "" || line == "\\data\\" || line == "\\end\\":
		case order > 0:
			f := strings.Fields(line)
			p, err := strconv.ParseFloat(f[0], 64)
			if err != nil || len(f) < 1+order {
				t.Fatalf("bad line %q", line)
			}
			var bo float64
			if len(f) == order+2 {
				bo, _ = strconv.ParseFloat(f[order+1], 64)
			}
			out[order][strings.Join(f[1:1+order], " ")] = [2]float64{p, bo}
		}
	}
	for n, c := range counts {
		if len(out[n]) != c {
			t.Errorf("header says %d %d-grams, the section has %d", c, n, len(out[n]))
		}
	}
	return out
}

func TestARPA(t *testing.T) {
	text := arpa([]string{"buy a latte", "buy two lattes", "buy a latte please"}, []string{"croissant"}, 3)
	if !strings.HasPrefix(text, "\\data\\\n") || !strings.HasSuffix(text, "\\end\\\n") {
		t.Fatalf("not an ARPA text:\n%s", text)
	}
	s := arpaSections(t, text)
	sum := 0.0
	for g, pb := range s[1] {
		if g != "<s>" {
			sum += math.Pow(10, pb[0])
		}
	}
	if math.Abs(sum-1) > 0.01 {
		t.Errorf("unigrams sum to %.3f, want 1", sum)
	}
	if _, ok := s[1]["croissant"]; !ok {
		t.Error("a vocabulary word no sentence says has no unigram")
	}
	if _, ok := s[3]["buy a latte"]; !ok {
		t.Error("trigram 'buy a latte' missing")
	}
	// Seen continuations of a history, plus what it leaves to the back-off, sum to 1.
	bo := math.Pow(10, s[1]["buy"][1])
	total := 0.0
	for g, pb := range s[2] {
		if strings.HasPrefix(g, "buy ") {
			total += math.Pow(10, pb[0])
		}
	}
	unseen := 0.0
	for g, pb := range s[1] {
		if g != "<s>" && g != "a" && g != "two" {
			unseen += math.Pow(10, pb[0])
		}
	}
	if got := total + bo*unseen; math.Abs(got-1) > 0.01 {
		t.Errorf("p(.|buy) sums to %.3f, want 1", got)
	}
}

func TestCommandLM(t *testing.T) {
	g := grammartest.Grammar(t)
	s := arpaSections(t, commandLM(g))
	words := map[string]bool{}
	for _, w := range g.Words() {
		words[w] = true
	}
	for w := range s[1] {
		if w != "<s>" && w != "</s>" && !words[w] {
			t.Errorf("unigram %q is not a grammar word", w)
		}
	}
	if len(s[3]) < 1000 {
		t.Errorf("%d trigrams: the corpus is too small", len(s[3]))
	}
}

func TestLMDisagreement(t *testing.T) {
	g := grammartest.Grammar(t)
	for _, c := range []struct {
		text, lm string
		want     float64
	}{
		{"buy two lattes", "buy two lattes", 0},
		{"can i get butter croissant", "can i have butter croissant", 0}, // same command
		{"um two espressos with decaf", "two espresso with decaf", 0},    // fillers and plurals
		{"order a water bottle", "order water bottle", 0},
		{"ten flat whites", "two flat whites", 1.0 / 3 / 4}, // an order too: a quarter
		{"fifteen croissants", "fifteen bottles", 1.0 / 2 / 4},
		{"where is my order", "let me bottle the", 1},
		{"can i get a flat white", "can i get a flat white and", 1.0 / 5},
	} {
		if got := lmDisagreement(g, c.text, c.lm); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("lmDisagreement(%q, %q) = %.3f, want %.3f", c.text, c.lm, got, c.want)
		}
	}
}
