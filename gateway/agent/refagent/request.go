package refagent

import (
	"time"

	"github.com/earshot/earshot/device/wire"
)

// MaxValidity is the longest a price target or a subscription may run: the gateway's
// ledger refuses a consent that stays open longer (authz.MaxOpenValidity).
const MaxValidity = 90 * 24 * time.Hour

// Request is what an utterance asks for: an order now, an order when its price comes
// down, an order repeated, or a tip on the last order.
type Request struct {
	// Kind is one_off, price_target, recurring or tip (see wire.Kind).
	Kind wire.Kind
	// Order is what to buy, at catalogue prices; empty for a tip.
	Order Order
	// Limit is, for a price target, the most the order may cost in minor units of
	// the merchant's currency: the amount said, less one minor unit after "under",
	// "below" or "less than" ("under 90 dollars" is at most 89.99), so that the prompt
	// says exactly what the ledger enforces.
	Limit wire.Amount
	// Tip is, for a tip, the tip in minor units of ParseContext.TipCurrency; for a
	// one-off order that ended in "... and add a two dollar tip", the tip to add once
	// the order is paid, in the merchant's currency.
	Tip wire.Amount
	// Every and Times are a subscription's period and number of payments (0: as many
	// as there are periods until Until).
	Every wire.Period
	Times int
	// Until is when a price target or subscription lapses, when the utterance said
	// ("until March 5", "for ten days", "for four weeks"); zero: the agent's default.
	Until time.Time
}

// ParseContext is what ParseRequest needs besides the words.
type ParseContext struct {
	// Now is when the words were said, for "until March 5" and "for ten days". Zero:
	// time.Now().
	Now time.Time
	// TipCurrency is the currency of the order a tip on its own would be added to,
	// or "" when there is no such order: then a tip is refused.
	TipCurrency string
}

// clauses are the parts of an utterance around its order.
type clauses struct {
	target *targetClause
	tip    *spoken
	every  wire.Period
	dur    *duration
}

type targetClause struct {
	limit  spoken
	strict bool // "under", "below", "less than": the limit itself is not enough
}

// duration is "for four weeks", "four times" (unit "time") or "until March 5".
type duration struct {
	n     int64
	unit  string // "day", "week", "month", "year", "time"; "" with until
	until time.Time
}

// ParseRequest understands what Parse does and, around the order:
//
//   - a price target at its end: "... when it drops under 90 dollars", "... when it's
//     under 90", "... if the price goes below 85", "... for less than 90", "... when
//     they drop to 85", "... when it's 85 or less"; optionally "until March 5" or "for
//     ten days";
//   - a subscription: "... every week" (day, week, month; "weekly", "each month",
//     "once a day"), optionally "for four weeks", "four times" or "until March 5";
//   - a tip at the end of an order: "... and add a two dollar tip", "... plus a tip of
//     three dollars", "... with a $2 tip";
//   - a tip on its own: "add a two dollar tip", "leave a tip of three dollars", "tip
//     two dollars", "can you add a 2 dollar tip please".
//
// Amounts are said in number words or digits ("ninety", "ninety dollars fifty",
// "$89.50"); without a currency word they are in major units of the merchant's
// currency. It is as strict as Parse: a word it does not place makes the whole
// utterance not understood. Every error is a *ParseError.
func (c *Catalog) ParseRequest(text string, pc ParseContext) (Request, error) {
	toks, err := tokenizeUtterance(text)
	if err != nil {
		return Request{}, err
	}
	now := pc.Now
	if now.IsZero() {
		now = time.Now()
	}
	var (
		cl   clauses
		rest []token
	)
	for i := 0; i < len(toks); {
		next, err := c.clause(&cl, toks, i, now)
		if err != nil {
			return Request{}, err
		}
		if next > i {
			i = next
			continue
		}
		rest = append(rest, toks[i])
		i++
	}
	if cl.tip != nil && c.onlyFillers(rest) {
		return tipRequest(cl, pc.TipCurrency)
	}
	order, err := c.parseOrder(rest)
	if err != nil {
		return Request{}, err
	}
	return orderRequest(order, cl, now)
}

func tipRequest(cl clauses, currency string) (Request, error) {
	if cl.target != nil || cl.every != "" || cl.dur != nil {
		return Request{}, notUnderstood("Sorry, a tip is just an amount, like %q.", "add a two dollar tip")
	}
	if currency == "" {
		return Request{}, notUnderstood("Sorry, there is no recent order to tip.")
	}
	tip, reason := cl.tip.in(currency, "your last order")
	switch {
	case reason != "":
		return Request{}, notUnderstood("%s", reason)
	case tip <= 0:
		return Request{}, notUnderstood("Sorry, a tip has to be more than nothing.")
	}
	return Request{Kind: wire.KindTip, Tip: tip}, nil
}

func orderRequest(order Order, cl clauses, now time.Time) (Request, error) {
	req := Request{Kind: wire.KindOneOff, Order: order}
	m := order.Merchant
	switch {
	case cl.target != nil && cl.every != "":
		return Request{}, notUnderstood("Sorry, I can wait for a price or repeat an order, not both at once.")
	case cl.tip != nil && cl.target != nil:
		return Request{}, notUnderstood("Sorry, I can't add a tip to a price watch: ask for the tip once it's bought.")
	case cl.tip != nil && cl.every != "":
		return Request{}, notUnderstood("Sorry, I can't add a tip to a repeat order.")
	case cl.dur != nil && cl.target == nil && cl.every == "":
		return Request{}, notUnderstood("Sorry, %q or %q goes with a price to wait for or a repeat order.", "for", "until")
	}
	if cl.tip != nil {
		tip, reason := cl.tip.in(m.Currency, m.Name)
		switch {
		case reason != "":
			return Request{}, notUnderstood("%s", reason)
		case tip <= 0:
			return Request{}, notUnderstood("Sorry, a tip has to be more than nothing.")
		}
		req.Tip = tip
	}
	if cl.target != nil {
		limit, reason := cl.target.limit.in(m.Currency, m.Name)
		if reason != "" {
			return Request{}, notUnderstood("%s", reason)
		}
		if cl.target.strict {
			limit--
		}
		if limit <= 0 {
			return Request{}, notUnderstood("Sorry, that price is too low to wait for.")
		}
		req.Kind, req.Limit = wire.KindPriceTarget, limit
		if cl.dur != nil {
			if cl.dur.unit == "time" {
				return Request{}, notUnderstood("Sorry, I can wait for a price for some days, weeks or months.")
			}
			until, err := lapse(now, cl.dur)
			if err != nil {
				return Request{}, err
			}
			req.Until = until
		}
	}
	if cl.every != "" {
		req.Kind, req.Every = wire.KindRecurring, cl.every
		if cl.dur != nil {
			if err := schedule(&req, now, cl.dur); err != nil {
				return Request{}, err
			}
		}
	}
	return req, nil
}

// lapse is when a price target said "for ten days" or "until March 5" ends.
func lapse(now time.Time, d *duration) (time.Time, error) {
	until := d.until
	if until.IsZero() {
		until = after(now, d.unit, d.n)
	}
	switch {
	case !until.After(now):
		return time.Time{}, notUnderstood("Sorry, that date has passed.")
	case until.Sub(now) > MaxValidity:
		return time.Time{}, notUnderstood("Sorry, I can keep that going for at most %d days.", int(MaxValidity/(24*time.Hour)))
	}
	return until, nil
}

// schedule sets a subscription's Times and Until from "for four weeks", "four times",
// "for ten days" or "until March 5". N payments of the subscription's own period end
// N periods from now, or at MaxValidity when the last of them still starts a day
// before it ("every month for 3 months" fits in 90 days).
func schedule(req *Request, now time.Time, d *duration) error {
	if !d.until.IsZero() || d.unit != "time" && d.unit != string(req.Every) {
		until, err := lapse(now, d)
		req.Until = until
		return err
	}
	if d.n > wire.MaxTimes {
		return notUnderstood("Sorry, I can repeat an order at most %d times.", wire.MaxTimes)
	}
	limit := now.Add(MaxValidity)
	if after(now, string(req.Every), d.n-1).Add(24 * time.Hour).After(limit) {
		return notUnderstood("Sorry, I can keep a repeat order going for at most %d days.", int(MaxValidity/(24*time.Hour)))
	}
	req.Times = int(d.n)
	req.Until = after(now, string(req.Every), d.n)
	if req.Until.After(limit) {
		req.Until = limit
	}
	return nil
}

// after is n days, weeks or calendar months after t.
func after(t time.Time, unit string, n int64) time.Time {
	switch unit {
	case "week":
		return t.Add(time.Duration(n) * 7 * 24 * time.Hour)
	case "month":
		return t.AddDate(0, int(n), 0)
	case "year":
		return t.AddDate(int(n), 0, 0)
	}
	return t.Add(time.Duration(n) * 24 * time.Hour)
}

// onlyFillers reports whether toks are all filler words ("please", "can you").
func (c *Catalog) onlyFillers(toks []token) bool {
	for i := 0; i < len(toks); {
		p := c.dict.match(toks, i)
		if p == nil || p.kind != kindFiller {
			return false
		}
		i += len(p.words)
	}
	return true
}
