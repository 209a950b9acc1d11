package refagent

import (
	"time"

	"github.com/earshot/earshot/device/wire"
)

// The clauses ParseRequest finds around an order. Each matcher looks at toks[i] and
// returns the index after its clause, i when there is none there, or a ParseError
// when its first words leave no doubt about what was meant but the rest does not fit
// ("when it drops under" with no amount).

var (
	// Subscriptions: "every week", "weekly", "each month", "once a day", "a week".
	everyStrong = phrases("every")
	everyWeak   = phrases("each", "once a", "once an", "once every", "once per", "per", "a")
	periods     = map[string]wire.Period{"day": wire.PeriodDay, "week": wire.PeriodWeek, "month": wire.PeriodMonth}
	adverbs     = map[string]wire.Period{"daily": wire.PeriodDay, "everyday": wire.PeriodDay,
		"weekly": wire.PeriodWeek, "monthly": wire.PeriodMonth}

	// Durations: "for four weeks", "four times", "until March 5".
	durFor    = phrases("for", "for the next", "for another")
	durUnits  = map[string]bool{"day": true, "week": true, "month": true, "year": true, "time": true}
	durUntil  = phrases("until", "till", "til", "through", "thru", "up until")
	maxPeriod = int64(1000)

	// Price targets: "when it drops under 90", "if the price goes below 85 dollars",
	// "once it's under 90", "for less than 90", "when they drop to 85".
	targetTrigger = phrases("when", "if", "once", "as soon as", "whenever")
	targetFor     = phrases("for less than", "for under", "for below")
	targetForIncl = phrases("for at most", "for no more than")
	// targetSubject are the words between the trigger and the comparison, stemmed.
	targetSubject = stemSet("it", "its", "they", "theyre", "the", "price", "prices", "of", "them", "their",
		"that", "those", "these", "one", "drop", "drops", "go", "goes", "gone", "going", "fall", "falls",
		"get", "gets", "getting", "is", "are", "come", "comes", "down", "dip", "dips", "cost", "costs")
	cmpStrict = phrases("under", "below", "less than", "lower than", "beneath", "cheaper than")
	cmpIncl   = phrases("to", "at most", "at or below", "at or under", "no more than")
	orLess    = phrases("or less", "or lower", "or under", "or below", "or cheaper")

	// Tips: "and add a two dollar tip", "plus a tip of three dollars", "tip two dollars".
	tipConnector = phrases("and", "plus", "with", "and also")
	tipVerb      = phrases("add", "leave", "give", "include", "put in", "throw in", "add on")
	tipOf        = phrases("a tip of", "tip of", "an extra tip of")
	tipWord      = phrases("tip", "gratuity")
	tipAs        = phrases("as a tip", "as tip", "for a tip", "for the tip", "in tip", "tip")
	tipArticle   = phrases("a", "an")
)

func stemSet(ws ...string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[stem(w)] = true
	}
	return m
}

func oneOf(toks []token, i int, set map[string]bool) bool { return i < len(toks) && set[toks[i].stem] }

// clause tries each matcher at toks[i] and records what it finds in cl.
func (c *Catalog) clause(cl *clauses, toks []token, i int, now time.Time) (int, error) {
	twice := func(what string) error { return notUnderstood("Sorry, please say %s only once.", what) }
	if p, next, err := matchEvery(toks, i); err != nil || next > i {
		if err == nil && cl.every != "" {
			err = twice("how often")
		}
		cl.every = p
		return next, err
	}
	if d, next, err := matchDuration(toks, i, now); err != nil || next > i {
		if err == nil && cl.dur != nil {
			err = twice("for how long")
		}
		cl.dur = &d
		return next, err
	}
	if t, next, err := c.matchTarget(toks, i); err != nil || next > i {
		if err == nil && cl.target != nil {
			err = twice("the price to wait for")
		}
		cl.target = &t
		return next, err
	}
	if s, next, err := matchTip(toks, i); err != nil || next > i {
		if err == nil && cl.tip != nil {
			err = twice("the tip")
		}
		cl.tip = &s
		return next, err
	}
	return i, nil
}

func matchEvery(toks []token, i int) (wire.Period, int, error) {
	if p, ok := adverbs[toks[i].stem]; ok {
		return p, i + 1, nil
	}
	if j, ok := everyStrong.match(toks, i); ok {
		if j < len(toks) && periods[toks[j].stem] != "" {
			return periods[toks[j].stem], j + 1, nil
		}
		return "", i, notUnderstood("Sorry, I can repeat an order every day, every week or every month.")
	}
	if j, ok := everyWeak.match(toks, i); ok && j < len(toks) && periods[toks[j].stem] != "" {
		return periods[toks[j].stem], j + 1, nil
	}
	return "", i, nil
}

func matchDuration(toks []token, i int, now time.Time) (duration, int, error) {
	if j, ok := durUntil.match(toks, i); ok {
		t, end, ok := readDate(toks, j, now)
		if !ok {
			return duration{}, i, notUnderstood("Sorry, until when? Say a date, like %q.", "until March 5")
		}
		return duration{until: t}, end, nil
	}
	j := i
	if e, ok := durFor.match(toks, i); ok {
		j = e
	}
	var (
		n   int64
		end int
		ok  bool
	)
	if j > i && j < len(toks) && (toks[j].raw == "a" || toks[j].raw == "an") {
		n, end, ok = 1, j+1, true
	} else {
		n, end, ok = readNumber(toks, j)
	}
	if !ok || end >= len(toks) || !durUnits[toks[end].stem] || j == i && toks[end].stem != "time" {
		return duration{}, i, nil
	}
	if n < 1 || n > maxPeriod {
		return duration{}, i, notUnderstood("Sorry, for how long? Say, for example, %q.", "for four weeks")
	}
	return duration{n: n, unit: toks[end].stem}, end + 1, nil
}

func (c *Catalog) matchTarget(toks []token, i int) (targetClause, int, error) {
	var t targetClause
	j, inclusive := i, false
	if e, ok := targetFor.match(toks, i); ok {
		j, t.strict = e, true
	} else if e, ok := targetForIncl.match(toks, i); ok {
		j, inclusive = e, true
	} else if e, ok := targetTrigger.match(toks, i); ok {
		j = e
		for j < len(toks) {
			if p := c.dict.match(toks, j); p != nil && p.kind == kindItem { // "when the leggings drop"
				j += len(p.words)
				continue
			}
			if !oneOf(toks, j, targetSubject) {
				break
			}
			j++
		}
		if e, ok := cmpStrict.match(toks, j); ok {
			j, t.strict = e, true
		} else if e, ok := cmpIncl.match(toks, j); ok {
			j, inclusive = e, true
		}
	} else {
		return t, i, nil
	}
	money, end, ok := readMoney(toks, j)
	if !ok {
		return t, i, notUnderstood("Sorry, which price should I wait for? Say, for example, %q.", "when it drops under 80 dollars")
	}
	if e, ok := orLess.match(toks, end); ok {
		end, t.strict, inclusive = e, false, true
	}
	if !t.strict && !inclusive {
		return t, i, notUnderstood("Sorry, which price should I wait for? Say, for example, %q.", "when it drops under 80 dollars")
	}
	t.limit = money
	return t, end, nil
}

func matchTip(toks []token, i int) (spoken, int, error) {
	noAmount := notUnderstood("How much of a tip? Say, for example, %q.", "add a two dollar tip")
	j := i
	conn, verb := false, false
	if e, ok := tipConnector.match(toks, j); ok {
		j, conn = e, true
	}
	if e, ok := tipVerb.match(toks, j); ok {
		j, verb = e, true
	}
	// "a tip of two dollars"
	if e, ok := tipOf.match(toks, j); ok {
		if s, end, ok := readMoney(toks, e); ok {
			return s, end, nil
		}
		return spoken{}, i, noAmount
	}
	// "tip two dollars"
	if e, ok := tipWord.match(toks, j); ok {
		if s, end, ok := readMoney(toks, e); ok {
			return s, end, nil
		}
		if verb || j == i || e == len(toks) {
			return spoken{}, i, noAmount
		}
		return spoken{}, i, nil
	}
	// "a two dollar tip", "two dollars as a tip"
	k := j
	if e, ok := tipArticle.match(toks, k); ok {
		k = e
		if _, ok := tipWord.match(toks, k); ok && (verb || conn) { // "add a tip"
			return spoken{}, i, noAmount
		}
	}
	s, end, ok := readMoney(toks, k)
	if !ok {
		return spoken{}, i, nil
	}
	if e, ok := tipWord.match(toks, end); ok {
		return s, e, nil
	}
	if e, ok := tipAs.match(toks, end); ok && verb {
		return s, e, nil
	}
	return spoken{}, i, nil
}
