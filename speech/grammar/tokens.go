package grammar

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/earshot/earshot/device/wire"
)

// Input limits: Parse refuses longer text before looking at it.
const (
	MaxTextBytes = wire.MaxTextBytes // bytes of one transcript
	maxTokens    = 64                // words of one transcript, numbers spelled out
)

// comma is the token of a comma, semicolon or colon: an optional pause that may also
// separate the lines of an order ("two lattes, a croissant").
const comma = ","

var (
	ones = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
	teen = []string{"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
		"seventeen", "eighteen", "nineteen"}
	tens = []string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}
)

// spell writes 1..999 in words as the grammar says them: "two hundred fifty", "ninety
// five"; ok is false outside that range.
func spell(n int) (ws []string, ok bool) {
	if n < 1 || n > 999 {
		return nil, false
	}
	if h := n / 100; h > 0 {
		ws = append(ws, ones[h], "hundred")
		n %= 100
	}
	switch {
	case n >= 20:
		ws = append(ws, tens[n/10])
		if n%10 > 0 {
			ws = append(ws, ones[n%10])
		}
	case n >= 10:
		ws = append(ws, teen[n-10])
	case n > 0:
		ws = append(ws, ones[n])
	}
	return ws, true
}

// symbols are currency signs a cloud transcript may write, as the word said.
var symbols = map[rune]string{'$': "dollars", '€': "euros", '£': "pounds", '¥': "yen"}

// tokenize turns a transcript into the grammar's words: lower case, apostrophes kept
// inside words ("what's"), hyphens split, commas kept as the comma token, every other
// mark dropped. digitWords spells digits one by one ("1234" -> "one two three four",
// for PINs); otherwise a number is spelled as a whole ("250" -> "two hundred fifty",
// "$12.50" -> "twelve dollars fifty"). A token it cannot spell stays as it is and the
// grammar will not know it.
func tokenize(text string, digitWords bool) ([]string, error) {
	if len(text) > MaxTextBytes {
		return nil, fmt.Errorf("%w: too long (%d bytes, at most %d)", ErrNotUnderstood, len(text), MaxTextBytes)
	}
	var (
		out []string
		cur []rune
	)
	flush := func() {
		w := strings.Trim(string(cur), "'")
		cur = cur[:0]
		if w == "" {
			return
		}
		out = append(out, spellToken(w, digitWords)...)
	}
	rs := []rune(text)
	for i, r := range rs {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			cur = append(cur, unicode.ToLower(r))
		case r == '\'' || r == '\u2019' || r == '\u2018' || r == '\u02bc':
			cur = append(cur, '\'')
		case symbols[r] != "":
			cur = append(cur, r)
		case r == '.' && len(cur) > 0 && unicode.IsDigit(cur[len(cur)-1]) && i+1 < len(rs) && unicode.IsDigit(rs[i+1]):
			cur = append(cur, r)
		case r == ',' || r == ';' || r == ':':
			flush()
			if len(out) > 0 && out[len(out)-1] != comma {
				out = append(out, comma)
			}
		default:
			flush()
		}
		if len(out) > maxTokens {
			break
		}
	}
	flush()
	for len(out) > 0 && out[len(out)-1] == comma {
		out = out[:len(out)-1]
	}
	if len(out) > maxTokens {
		return nil, fmt.Errorf("%w: too long (more than %d words)", ErrNotUnderstood, maxTokens)
	}
	return out, nil
}

// spellToken spells the numbers of one token; words pass through.
func spellToken(w string, digitWords bool) []string {
	if !strings.ContainsFunc(w, func(r rune) bool { return unicode.IsDigit(r) || symbols[r] != "" }) {
		return []string{w}
	}
	if digitWords {
		if len(w) > 16 || strings.TrimLeft(w, "0123456789") != "" {
			return []string{w}
		}
		out := make([]string, len(w))
		for i := range len(w) {
			out[i] = ones[w[i]-'0']
		}
		return out
	}
	// A currency sign before or after the number: "$90", "90€".
	orig := []string{w}
	var cur string
	rs := []rune(w)
	switch {
	case symbols[rs[0]] != "":
		cur, w = symbols[rs[0]], string(rs[1:])
	case symbols[rs[len(rs)-1]] != "":
		cur, w = symbols[rs[len(rs)-1]], string(rs[:len(rs)-1])
	}
	whole, frac, hasFrac := strings.Cut(w, ".")
	if hasFrac && (cur == "" || len(frac) != 2) {
		return orig
	}
	n, ok := smallNumber(whole)
	if !ok {
		return orig
	}
	out, ok := spell(n)
	if !ok {
		return orig
	}
	if cur != "" {
		out = append(out, cur)
	}
	if hasFrac {
		c, _ := smallNumber(frac)
		if c > 0 {
			cs, _ := spell(c)
			out = append(out, cs...)
		}
	}
	return out
}

// smallNumber reads up to four digits.
func smallNumber(s string) (int, bool) {
	if s == "" || len(s) > 4 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
