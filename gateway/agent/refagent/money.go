package refagent

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// Amounts and dates as people say them: the number words of words.go ("ninety five",
// "a hundred and five"), digits ("90", "89.50"; a "$" is dropped by the tokenizer),
// currency words ("dollars", "cents"), and days of the year ("March 5th", "the fifth
// of March").

// alts is a set of phrases, each a sequence of stems; match finds the longest one.
type alts [][]string

func phrases(texts ...string) alts {
	out := make(alts, len(texts))
	for i, t := range texts {
		out[i] = stems(t)
	}
	slices.SortStableFunc(out, func(a, b []string) int { return len(b) - len(a) })
	return out
}

// match returns the index after the longest phrase of as that starts at toks[i].
func (as alts) match(toks []token, i int) (int, bool) {
next:
	for _, p := range as {
		if len(p) > len(toks)-i {
			continue
		}
		for j, w := range p {
			if toks[i+j].stem != w {
				continue next
			}
		}
		return i + len(p), true
	}
	return i, false
}

// numberValue is the value of a number word of words.go: "one" to "twenty" and the
// tens; 0 for any other word.
func numberValue(w string) int64 {
	if i := slices.Index(numberWords, w); i >= 0 {
		return int64(i + 1)
	}
	if i := slices.Index(tensWords, w); i >= 0 {
		return int64(30 + 10*i)
	}
	return 0
}

// maxDigits bounds a number written in digits, far above any amount (2^53-1 has 16).
const maxDigits = 15

// readNumber reads a whole number at toks[i]: digits ("90"), or words from "one" to
// "nine hundred ninety nine" ("ninety five", "a hundred and five", "two hundred
// fifty"). It returns the index after it.
func readNumber(toks []token, i int) (int64, int, bool) {
	if i >= len(toks) {
		return 0, i, false
	}
	if s := toks[i].raw; s != "" && len(s) <= maxDigits && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, i + 1, err == nil
	}
	var n int64
	j := i
	switch v := numberValue(toks[j].raw); {
	case toks[j].raw == "hundred":
		n, j = 100, j+1
	case (toks[j].raw == "a" || v >= 1 && v <= 9) && j+1 < len(toks) && toks[j+1].raw == "hundred":
		n, j = max(v, 1)*100, j+2
	default:
		return upto99(toks, i)
	}
	k := j
	if k < len(toks) && toks[k].raw == "and" {
		k++
	}
	if m, end, ok := upto99(toks, k); ok {
		n, j = n+m, end
	}
	return n, j, true
}

// upto99 reads "seven", "twelve", "ninety", "ninety five".
func upto99(toks []token, i int) (int64, int, bool) {
	if i >= len(toks) {
		return 0, i, false
	}
	v := numberValue(toks[i].raw)
	if v == 0 || v > 20 && v%10 != 0 {
		return 0, i, false
	}
	if v >= 20 && i+1 < len(toks) {
		if u := numberValue(toks[i+1].raw); u >= 1 && u <= 9 {
			return v + u, i + 2, true
		}
	}
	return v, i + 1, true
}

// Currency words, by stem, and the currencies they can name. A word that is not
// here is not a currency word.
var (
	majorWords = map[string][]string{
		"dollar": {"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "TWD"},
		"buck":   {"USD", "CAD", "AUD", "NZD"},
		"euro":   {"EUR"},
		"pound":  {"GBP"},
		"quid":   {"GBP"},
		"franc":  {"CHF"},
		"yen":    {"JPY"},
	}
	minorWords = map[string][]string{
		"cent":    {"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "TWD", "EUR"},
		"penny":   {"GBP"},
		"pence":   {"GBP"},
		"p":       {"GBP"},
		"centime": {"CHF"},
	}
)

// spoken is an amount as said, before its currency is known: major units, and minor
// units when said ("twelve dollars fifty": 12 and "50"; "89.50": 89 and "50"; "fifty
// cents": 0 and "50", in minor units already).
type spoken struct {
	major int64
	minor string // digits of the fraction ("5" of "89.5" is 50 cents), or of the minor units said
	// minorWord says minor holds whole minor units ("fifty cents", "twelve dollars
	// and five"): not a decimal fraction.
	minorWord bool
	unit      string // the currency word said (a stem), "" if none
	minorUnit string // the minor currency word said, "" if none
}

// readMoney reads an amount at toks[i]: "ninety", "90", "89.50", "ninety dollars",
// "twelve dollars fifty", "twelve dollars and fifty cents", "fifty cents".
func readMoney(toks []token, i int) (spoken, int, bool) {
	var s spoken
	j := i
	if j < len(toks) {
		if whole, frac, ok := strings.Cut(toks[j].raw, "."); ok && whole != "" && frac != "" &&
			len(whole) <= maxDigits && strings.Trim(whole+frac, "0123456789") == "" {
			s.major, _ = strconv.ParseInt(whole, 10, 64)
			s.minor, j = frac, j+1
			if j < len(toks) && majorWords[toks[j].stem] != nil {
				s.unit, j = toks[j].stem, j+1
			}
			return s, j, true
		}
	}
	n, j, ok := readNumber(toks, j)
	if !ok {
		return s, i, false
	}
	if j < len(toks) && minorWords[toks[j].stem] != nil { // "fifty cents"
		s.minor, s.minorWord, s.minorUnit = strconv.FormatInt(n, 10), true, toks[j].stem
		return s, j + 1, true
	}
	s.major = n
	if j >= len(toks) || majorWords[toks[j].stem] == nil {
		return s, j, true
	}
	s.unit, j = toks[j].stem, j+1
	k := j
	if k < len(toks) && toks[k].raw == "and" {
		k++
	}
	if m, end, ok := upto99(toks, k); ok { // "twelve dollars [and] fifty [cents]"
		s.minor, s.minorWord, j = strconv.FormatInt(m, 10), true, end
		if j < len(toks) && minorWords[toks[j].stem] != nil {
			s.minorUnit, j = toks[j].stem, j+1
		}
	}
	return s, j, true
}

// minorPerMajor is how many minor units make a major one: 100 for USD, 1 for JPY. It
// reads wire.Money's formatting, so that there is one table of decimals.
func minorPerMajor(currency string) int64 {
	s := wire.Money(0, currency)
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return 1
	}
	return int64(math.Pow10(len(s) - i - 1))
}

// in converts the amount into minor units of currency. Reason is device-visible text
// when it cannot.
func (s spoken) in(currency, shop string) (wire.Amount, string) {
	for _, w := range []string{s.unit, s.minorUnit} {
		if w == "" {
			continue
		}
		cs := majorWords[w]
		if cs == nil {
			cs = minorWords[w]
		}
		if !slices.Contains(cs, currency) {
			return 0, "Sorry, " + shop + " takes " + currency + "."
		}
	}
	per := minorPerMajor(currency)
	var minor int64
	switch {
	case s.minor == "":
	case s.minorWord:
		minor, _ = strconv.ParseInt(s.minor, 10, 64)
		if minor >= per && s.major > 0 || per == 1 {
			return 0, "Sorry, I didn't catch that amount."
		}
	default: // a decimal fraction: "5" of 89.5 is 50 cents
		digits := len(strconv.FormatInt(per, 10)) - 1
		if len(s.minor) > digits {
			return 0, "Sorry, that amount has too many decimals for " + currency + "."
		}
		minor, _ = strconv.ParseInt(s.minor+strings.Repeat("0", digits-len(s.minor)), 10, 64)
	}
	if s.major > (int64(wire.MaxAmount)-minor)/per {
		return 0, "Sorry, that amount is too large."
	}
	return wire.Amount(s.major*per + minor), ""
}

// Dates: "until March 5", "until the 5th of March", "until March fifth 2026".
var monthNames = map[string]time.Month{
	"january": time.January, "jan": time.January, "february": time.February, "feb": time.February,
	"march": time.March, "mar": time.March, "april": time.April, "apr": time.April, "may": time.May,
	"june": time.June, "jun": time.June, "july": time.July, "jul": time.July, "august": time.August,
	"aug": time.August, "september": time.September, "sep": time.September, "sept": time.September,
	"october": time.October, "oct": time.October, "november": time.November, "nov": time.November,
	"december": time.December, "dec": time.December,
}

var ordinalWords = []string{"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
	"ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
	"seventeenth", "eighteenth", "nineteenth", "twentieth"}

// readDay reads a day of the month: "5", "5th", "fifth", "twenty first", "five".
func readDay(toks []token, i int) (int, int, bool) {
	if i >= len(toks) {
		return 0, i, false
	}
	w := toks[i].raw
	for _, suf := range []string{"st", "nd", "rd", "th"} {
		if d, ok := strings.CutSuffix(w, suf); ok && d != "" && strings.Trim(d, "0123456789") == "" {
			w = d
		}
	}
	if w != "" && len(w) <= 2 && strings.Trim(w, "0123456789") == "" {
		n, _ := strconv.Atoi(w)
		return n, i + 1, n >= 1 && n <= 31
	}
	if k := slices.Index(ordinalWords, w); k >= 0 {
		return k + 1, i + 1, true
	}
	if w == "thirtieth" {
		return 30, i + 1, true
	}
	if (w == "twenty" || w == "thirty") && i+1 < len(toks) {
		if k := slices.Index(ordinalWords, toks[i+1].raw); k >= 0 && k < 9 {
			return int(numberValue(w)) + k + 1, i + 2, true
		}
	}
	n, j, ok := upto99(toks, i)
	return int(n), j, ok && n <= 31
}

// readDate reads "March 5", "March 5th 2026", "the 5th of March", "5 March" and
// returns the end of that day (the next midnight, in now's location): the first day
// after now that has that month and day, unless a year is said.
func readDate(toks []token, i int, now time.Time) (time.Time, int, bool) {
	j := i
	var (
		month time.Month
		day   int
		ok    bool
	)
	if j < len(toks) && toks[j].raw == "the" {
		j++
	}
	if j < len(toks) && monthNames[toks[j].raw] != 0 {
		month = monthNames[toks[j].raw]
		if j+1 < len(toks) && toks[j+1].raw == "the" {
			j++
		}
		if day, j, ok = readDay(toks, j+1); !ok {
			return time.Time{}, i, false
		}
	} else {
		if day, j, ok = readDay(toks, j); !ok {
			return time.Time{}, i, false
		}
		if j < len(toks) && toks[j].raw == "of" {
			j++
		}
		if j >= len(toks) || monthNames[toks[j].raw] == 0 {
			return time.Time{}, i, false
		}
		month, j = monthNames[toks[j].raw], j+1
	}
	year, explicit := now.Year(), false
	if j < len(toks) && len(toks[j].raw) == 4 {
		if y, err := strconv.Atoi(toks[j].raw); err == nil && y >= 2000 && y <= 2200 {
			year, explicit, j = y, true, j+1
		}
	}
	end := func(y int) (time.Time, bool) {
		d := time.Date(y, month, day, 0, 0, 0, 0, now.Location())
		return d.AddDate(0, 0, 1), d.Month() == month // false for "February 30"
	}
	t, valid := end(year)
	if !valid {
		return time.Time{}, i, false
	}
	if !explicit && !t.After(now) {
		t, _ = end(year + 1)
	}
	return t, j, true
}
