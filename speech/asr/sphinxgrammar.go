package asr

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// phones are the 39 phones of the CMU dictionary and the en-us acoustic model.
var phones = strings.Fields("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH")

// garbagePrefix starts the pseudo-words of the garbage model: one per phone.
const garbagePrefix = "gbg_"

// garbageWords returns the garbage model's dictionary entries: "gbg_aa" -> "AA".
func garbageWords() map[string]string {
	m := make(map[string]string, len(phones))
	for _, p := range phones {
		m[garbagePrefix+strings.ToLower(p)] = p
	}
	return m
}

var jsgfWeight = regexp.MustCompile(`/([0-9.eE+-]+)/`)

// scaleWeights raises every weight of a JSGF grammar to the power lw. PocketSphinx adds
// the logarithm of a JSGF weight to a path's score as it is, where an n-gram model's
// log probabilities are multiplied by the language weight (-lw, 6.5): with the
// grammar's probabilities as they are, the acoustic score alone decided between
// sentences, and its priors hardly mattered.
func scaleWeights(jsgf string, lw float64) string {
	if lw == 1 {
		return jsgf
	}
	return jsgfWeight.ReplaceAllStringFunc(jsgf, func(m string) string {
		w, err := strconv.ParseFloat(m[1:len(m)-1], 64)
		if err != nil || w <= 0 {
			return m
		}
		return "/" + strconv.FormatFloat(math.Pow(w, lw), 'g', 4, 64) + "/"
	})
}

var publicRule = regexp.MustCompile(`(?m)^(\s*)public\s+<([A-Za-z0-9_.-]+)>`)

// withGarbage rewrites a JSGF grammar (one public rule) so that its public rule becomes
// <utterance> = <rule> | <garbage>, where <garbage> is a loop of phone pseudo-words
// each weighted by perPhone (< 1: a penalty per phone). Out-of-grammar speech is then
// decoded as garbage, because a free phone loop fits it better than any in-grammar
// sentence does, once it pays less than the grammar's mismatch.
func withGarbage(jsgf string, perPhone float64) (string, error) {
	m := publicRule.FindAllStringSubmatch(jsgf, -1)
	if len(m) != 1 {
		return "", fmt.Errorf("%w: grammar has %d public rules, want 1", ErrConfig, len(m))
	}
	rule := m[0][2]
	out := publicRule.ReplaceAllString(jsgf, "$1<$2>")
	var b strings.Builder
	b.WriteString(strings.TrimRight(out, "\n"))
	fmt.Fprintf(&b, "\npublic <utterance> = <%s> | <garbage>;\n<garbage> = <gbgphone> [<garbage>];\n<gbgphone> = ", rule)
	for i, p := range phones {
		if i > 0 {
			b.WriteString(" | ")
		}
		fmt.Fprintf(&b, "/%g/ %s%s", perPhone, garbagePrefix, strings.ToLower(p))
	}
	b.WriteString(";\n")
	return b.String(), nil
}

// pronunciations reads the pronunciation of each word of want from a CMU dictionary
// (first variant only), bounded to maxBytes.
func pronunciations(path string, want map[string]bool, maxBytes int64) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: dictionary: %w", ErrConfig, err)
	}
	defer f.Close()
	return readPronunciations(io.LimitReader(f, maxBytes), want)
}

func readPronunciations(r io.Reader, want map[string]bool) (map[string]string, error) {
	out := make(map[string]string, len(want))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		w := fs[0]
		if i := strings.IndexByte(w, '('); i > 0 {
			w = w[:i]
		}
		if want[w] && out[w] == "" {
			out[w] = strings.Join(fs[1:], " ")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: dictionary: %w", ErrConfig, err)
	}
	return out, nil
}

// vowels are the phones that make a syllable.
var vowels = map[string]bool{"AA": true, "AE": true, "AH": true, "AO": true, "AW": true, "AY": true, "EH": true,
	"ER": true, "EY": true, "IH": true, "IY": true, "OW": true, "OY": true, "UH": true, "UW": true}

// shortNames returns the names of one syllable ("oat"), sorted: a name so short fits
// some stretch of nearly any speech, so the decoder hears it where it was not said
// ("a pair of" as "an oat and" with the oat latte's alias "oat"). prons are the
// pronunciations known; a name without one is left to the missing-words check.
func shortNames(names []string, prons map[string]string) []string {
	var out []string
	for _, n := range names {
		p, ok := prons[n]
		if !ok || strings.Contains(n, " ") {
			continue
		}
		syllables := 0
		for _, ph := range strings.Fields(p) {
			if vowels[ph] {
				syllables++
			}
		}
		if syllables <= 1 {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// voiceless phones take /s/ in a plural, sibilants /ih z/, the rest /z/.
var (
	voiceless = map[string]bool{"P": true, "T": true, "K": true, "F": true, "TH": true}
	sibilant  = map[string]bool{"S": true, "Z": true, "SH": true, "ZH": true, "CH": true, "JH": true}
)

// derive guesses pronunciations of words missing from the dictionary: plurals ("lattes",
// "cappuccinos") from their singular. dict holds the known pronunciations. It returns
// the derived ones and the words it could not derive, sorted.
func derive(missing []string, dict map[string]string) (map[string]string, []string) {
	got := map[string]string{}
	var failed []string
	for _, w := range missing {
		if p, ok := derivePlural(w, dict); ok {
			got[w] = p
			continue
		}
		failed = append(failed, w)
	}
	sort.Strings(failed)
	return got, failed
}

func derivePlural(w string, dict map[string]string) (string, bool) {
	for _, stem := range []string{strings.TrimSuffix(w, "s"), strings.TrimSuffix(w, "es")} {
		if stem == w || stem == "" {
			continue
		}
		p, ok := dict[stem]
		if !ok {
			continue
		}
		ph := strings.Fields(p)
		last := ph[len(ph)-1]
		switch {
		case sibilant[last]:
			return p + " IH Z", true
		case voiceless[last]:
			return p + " S", true
		default:
			return p + " Z", true
		}
	}
	return "", false
}
