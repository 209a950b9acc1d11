package authz

import (
	"fmt"
	"strings"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// This file holds what the kinds of mandate (wire.Kind) add to a one-off: the
// constraints their claims carry and a subscription's payment rules. Tips are in
// tip.go.

// applyConditions copies the consent's conditions into c and, for the kinds that live
// until the consent's Until, sets exp from it.
func (c *Claims) applyConditions(cond *wire.Conditions, now time.Time) error {
	if c.Kind == wire.KindTip {
		c.Constraints = &Constraints{} // Parent is the caller's to set
	}
	if cond == nil {
		return nil
	}
	switch c.Kind {
	case wire.KindPriceTarget, wire.KindRecurring:
		if cond.Until > now.Add(MaxOpenValidity).UnixMilli() {
			return fmt.Errorf("%w: until %d is more than %s after now", ErrInvalidClaims, cond.Until, MaxOpenValidity)
		}
		c.Expiry = cond.Until / 1000 // Until >= 0: rounds down
	}
	k := Constraints{Every: cond.Every, Times: cond.Times, PeriodCap: cond.PeriodCap, TipCap: cond.TipCap}
	if k != (Constraints{}) {
		c.Constraints = &k
	}
	return nil
}

// validateKind checks the constraints against the kind: a kind takes only its own
// fields. needParent false lets a tip's Parent be empty (ClaimsFor's output).
func (c *Claims) validateKind(needParent bool) error {
	var k Constraints
	if c.Constraints != nil {
		k = *c.Constraints
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidClaims}, args...)...)
	}
	switch {
	case k.PeriodCap < 0 || k.PeriodCap > wire.MaxAmount || k.TipCap < 0 || k.TipCap > wire.MaxAmount:
		return invalid("constraints: period_cap %d, tip_cap %d out of range", k.PeriodCap, k.TipCap)
	case k.Times < 0 || k.Times > wire.MaxTimes:
		return invalid("constraints.times: %d, want 0 to %d", k.Times, wire.MaxTimes)
	}
	recurring := k.Every != "" || k.Times != 0 || k.PeriodCap != 0
	switch c.Kind {
	case "", wire.KindOneOff:
		if recurring || k.Parent != "" {
			return invalid("kind one_off takes only constraints.tip_cap")
		}
	case wire.KindPriceTarget:
		if k != (Constraints{}) {
			return invalid("kind price_target takes no constraints")
		}
	case wire.KindRecurring:
		if k.TipCap != 0 || k.Parent != "" {
			return invalid("kind recurring takes only constraints.every, times and period_cap")
		}
		switch k.Every {
		case wire.PeriodDay, wire.PeriodWeek, wire.PeriodMonth:
		default:
			return invalid("constraints.every: %q, want day, week or month", k.Every)
		}
		if k.PeriodCap < c.AmountCap {
			return invalid("constraints.period_cap: %d is less than one payment of %d", k.PeriodCap, c.AmountCap)
		}
	case wire.KindTip:
		if recurring || k.TipCap != 0 {
			return invalid("kind tip takes only constraints.parent")
		}
		switch {
		case k.Parent == "" && needParent:
			return invalid("constraints.parent: required for a tip")
		case k.Parent == "":
		case !strings.HasPrefix(k.Parent, mandatePrefix) || len(k.Parent) > wire.MaxIDBytes || k.Parent == c.ID:
			return invalid("constraints.parent: %q is not another mandate's jti", k.Parent)
		}
	default:
		return invalid("unknown kind %q", c.Kind)
	}
	return nil
}

// maxPayments is how many payments a recurring mandate allows: Times, or
// wire.MaxTimes when the consent set no count (it bounds the ledger entry).
func maxPayments(k *Constraints) int {
	if k.Times > 0 {
		return k.Times
	}
	return wire.MaxTimes
}

// exhausted reports whether a recurring mandate has made all its payments.
func exhausted(e *Entry) bool {
	return e.Claims.Kind == wire.KindRecurring && e.Claims.Constraints != nil &&
		len(e.Payments) >= maxPayments(e.Claims.Constraints)
}

// checkPeriodCap refuses a recurring mandate's payment of amount at now that would take
// the payments of the current period over PeriodCap.
func checkPeriodCap(e *Entry, amount wire.Amount, now time.Time) *Error {
	k := e.Claims.Constraints
	start := periodStart(time.Unix(e.Claims.NotBefore, 0), k.Every, now).UnixMilli()
	var paid wire.Amount
	for _, p := range e.Payments {
		if p.RedeemedAt >= start { // a payment "after" now (a clock step back) counts too
			paid += p.Amount
		}
	}
	if paid+amount > k.PeriodCap {
		return refuse(CodeOverPeriodCap, fmt.Sprintf("%d already paid this %s; the mandate's period cap is %d",
			paid, k.Every, k.PeriodCap), nil)
	}
	return nil
}

// periodStart returns the start of the period that holds now, periods being anchored
// at nbf: a day is 24 hours, a week 7 days, a month a calendar month in UTC
// (nbf.AddDate(0, n, 0), so from 31 January the next period starts on 3 March in a
// common year, the one after on 31 March).
func periodStart(nbf time.Time, every wire.Period, now time.Time) time.Time {
	if now.Before(nbf) {
		return nbf
	}
	switch every {
	case wire.PeriodDay, wire.PeriodWeek:
		d := 24 * time.Hour
		if every == wire.PeriodWeek {
			d *= 7
		}
		return nbf.Add(now.Sub(nbf) / d * d)
	}
	a, now := nbf.UTC(), now.UTC()
	n := (now.Year()-a.Year())*12 + int(now.Month()) - int(a.Month())
	for n > 0 && a.AddDate(0, n, 0).After(now) {
		n--
	}
	for !a.AddDate(0, n+1, 0).After(now) {
		n++
	}
	return a.AddDate(0, n, 0)
}
