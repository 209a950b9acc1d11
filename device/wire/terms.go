package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Amount is money in integer minor units of a currency (cents for USD, yen for JPY).
// Its JSON form is an integer; a fraction, an exponent or a string is refused.
type Amount int64

// MaxAmount bounds every amount: 2^53-1, the largest integer every JSON peer represents
// exactly (RFC 8785 section 3.2.2.3 and I-JSON).
const MaxAmount Amount = 1<<53 - 1

// ErrBadAmount reports an amount that is not a non-negative integer in minor units.
var ErrBadAmount = errors.New("wire: amount must be a non-negative integer in minor units")

// UnmarshalJSON accepts only a JSON integer.
func (a *Amount) UnmarshalJSON(b []byte) error {
	if bytes.ContainsAny(b, ".eE\"") {
		return fmt.Errorf("%w, got %.32s", ErrBadAmount, b)
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("%w: %v", ErrBadAmount, err)
	}
	v, err := n.Int64()
	if err != nil {
		return fmt.Errorf("%w, got %.32s", ErrBadAmount, b)
	}
	*a = Amount(v)
	return Amount(v).validate("amount")
}

func (a Amount) validate(field string) error {
	if a < 0 || a > MaxAmount {
		return fmt.Errorf("%w: %s %d out of range", ErrBadAmount, field, int64(a))
	}
	return nil
}

// ValidCurrency checks the shape of an ISO 4217 alphabetic code: three upper-case
// ASCII letters.
func ValidCurrency(c string) error {
	if len(c) != 3 {
		return fmt.Errorf("currency: %q is not an ISO 4217 code", c)
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return fmt.Errorf("currency: %q is not an ISO 4217 code", c)
		}
	}
	return nil
}

// Kind is the kind of consent.
type Kind string

// Consent kinds. What each means for Terms.Total and Terms.Conditions:
//
//	one_off       pay Total once, now; Conditions.TipCap may allow a tip afterwards
//	price_target  pay at most Total once, when the price is met, until Conditions.Until
//	recurring     pay at most Total each time, at most PeriodCap per Every period and
//	              Times times in all (0: no count), until Conditions.Until
//	tip           pay Total once as a tip on the transaction Conditions.Parent
const (
	KindOneOff      Kind = "one_off"
	KindPriceTarget Kind = "price_target"
	KindRecurring   Kind = "recurring"
	KindTip         Kind = "tip"
)

// Period is a recurring consent's period.
type Period string

// Periods. A month is a calendar month in UTC counted from the consent; a week is 7
// days; a day is 24 hours.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

// MaxTimes is the most payments a recurring consent may allow.
const MaxTimes = 1000

// Conditions are the parts of a consent beyond one payment now (see Kind). They are
// part of the signed terms.
type Conditions struct {
	// Until is when a price target or recurring consent lapses, Unix milliseconds.
	Until int64 `json:"until,omitempty"`
	// Every, Times and PeriodCap bound a recurring consent.
	Every     Period `json:"every,omitempty"`
	Times     int    `json:"times,omitempty"`
	PeriodCap Amount `json:"period_cap,omitempty"`
	// TipCap is, on a one-off consent, the most the user lets the merchant add as a
	// tip afterwards without asking again.
	TipCap Amount `json:"tip_cap,omitempty"`
	// Parent is, on a tip, the transaction it tips.
	Parent string `json:"parent,omitempty"`
}

// validate checks the conditions against the kind and the terms' total and expiry.
func (c *Conditions) validate(k Kind, total Amount, expiresAt int64) error {
	if c == nil {
		switch k {
		case KindPriceTarget, KindRecurring, KindTip:
			return fmt.Errorf("terms.conditions: required for kind %s", k)
		}
		return nil
	}
	if err := firstErr(c.PeriodCap.validate("terms.conditions.period_cap"), c.TipCap.validate("terms.conditions.tip_cap"),
		maxLen("terms.conditions.parent", c.Parent, MaxIDBytes)); err != nil {
		return err
	}
	if c.Until < 0 || c.Times < 0 || c.Times > MaxTimes {
		return fmt.Errorf("terms.conditions: until %d, times %d: want until >= 0, times 0 to %d", c.Until, c.Times, MaxTimes)
	}
	recurring := c.Every != "" || c.Times != 0 || c.PeriodCap != 0
	only := func(allowed string, extra bool) error {
		if extra {
			return fmt.Errorf("terms.conditions: kind %s takes only %s", k, allowed)
		}
		return nil
	}
	switch k {
	case KindOneOff:
		return only("tip_cap", c.Until != 0 || recurring || c.Parent != "")
	case KindTip:
		if c.Parent == "" {
			return errors.New("terms.conditions.parent: required for a tip")
		}
		return firstErr(id("terms.conditions.parent", c.Parent), only("parent", c.Until != 0 || recurring || c.TipCap != 0))
	case KindPriceTarget:
		if err := only("until", recurring || c.TipCap != 0 || c.Parent != ""); err != nil {
			return err
		}
	case KindRecurring:
		if err := only("until, every, times and period_cap", c.TipCap != 0 || c.Parent != ""); err != nil {
			return err
		}
		switch c.Every {
		case PeriodDay, PeriodWeek, PeriodMonth:
		default:
			return fmt.Errorf("terms.conditions.every: %q, want day, week or month", c.Every)
		}
		if c.PeriodCap < total {
			return fmt.Errorf("terms.conditions.period_cap: %d is less than one payment of %d", c.PeriodCap, total)
		}
	}
	if c.Until <= expiresAt {
		return fmt.Errorf("terms.conditions.until: %d, want after the prompt expires (%d)", c.Until, expiresAt)
	}
	return nil
}

func (k Kind) valid() bool {
	switch k {
	case KindOneOff, KindPriceTarget, KindRecurring, KindTip:
		return true
	}
	return false
}

// Merchant is the payee as shown to the user.
type Merchant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Item is one line of a purchase.
type Item struct {
	SKU        string   `json:"sku"`
	Name       string   `json:"name"`
	Qty        int      `json:"qty"`
	UnitAmount Amount   `json:"unit_amount"`
	Options    []string `json:"options,omitempty"` // "large", "oat milk"
}

// Terms are exactly what the user is asked to approve. Their canonical JSON (RFC 8785)
// is hashed and the device signs the hash: what was displayed is what was signed.
type Terms struct {
	Tx       string   `json:"tx"`
	Device   string   `json:"device"`
	Session  string   `json:"session"`
	Merchant Merchant `json:"merchant"`
	Items    []Item   `json:"items"`
	Total    Amount   `json:"total"`
	Currency string   `json:"currency"`
	Kind     Kind     `json:"kind"`
	// Conditions are required by the kinds price_target, recurring and tip.
	Conditions *Conditions `json:"conditions,omitempty"`
	// ExpiresAt is when the prompt lapses, Unix milliseconds.
	ExpiresAt int64  `json:"expires_at"`
	Nonce     string `json:"nonce"`
}

// Validate checks the terms' shapes, and that the items add up to the total.
func (t *Terms) Validate() error {
	if err := firstErr(id("terms.tx", t.Tx), id("terms.device", t.Device), id("terms.session", t.Session),
		id("terms.merchant.id", t.Merchant.ID), required("terms.merchant.name", t.Merchant.Name),
		maxLen("terms.merchant.name", t.Merchant.Name, MaxNameBytes), id("terms.nonce", t.Nonce),
		t.Total.validate("terms.total"), ValidCurrency(t.Currency)); err != nil {
		return err
	}
	if !t.Kind.valid() {
		return fmt.Errorf("terms.kind: unknown kind %q", t.Kind)
	}
	if t.ExpiresAt <= 0 {
		return errors.New("terms.expires_at: required")
	}
	if err := t.Conditions.validate(t.Kind, t.Total, t.ExpiresAt); err != nil {
		return err
	}
	if len(t.Items) == 0 || len(t.Items) > MaxItems {
		return fmt.Errorf("terms.items: %d given, want 1 to %d", len(t.Items), MaxItems)
	}
	var sum Amount
	for i, it := range t.Items {
		field := fmt.Sprintf("terms.items[%d]", i)
		if err := firstErr(required(field+".sku", it.SKU), maxLen(field+".sku", it.SKU, MaxNameBytes),
			required(field+".name", it.Name), maxLen(field+".name", it.Name, MaxNameBytes),
			it.UnitAmount.validate(field+".unit_amount")); err != nil {
			return err
		}
		if it.Qty < 1 || it.Qty > 999 {
			return fmt.Errorf("%s.qty: %d, want 1 to 999", field, it.Qty)
		}
		if len(it.Options) > 8 {
			return fmt.Errorf("%s.options: %d given, limit 8", field, len(it.Options))
		}
		for _, o := range it.Options {
			if err := maxLen(field+".options", o, MaxNameBytes); err != nil {
				return err
			}
		}
		line := it.UnitAmount * Amount(it.Qty)
		if it.UnitAmount != 0 && line/it.UnitAmount != Amount(it.Qty) || line > MaxAmount {
			return fmt.Errorf("%w: %s overflows", ErrBadAmount, field)
		}
		sum += line
		if sum > MaxAmount {
			return fmt.Errorf("%w: terms.items overflow", ErrBadAmount)
		}
	}
	if sum != t.Total {
		return fmt.Errorf("terms.total: %d, but the items add up to %d", t.Total, sum)
	}
	return nil
}

// Canonical returns the terms' RFC 8785 canonical JSON.
func (t *Terms) Canonical() ([]byte, error) {
	raw, err := marshal(t)
	if err != nil {
		return nil, fmt.Errorf("wire: terms: %w", err)
	}
	return Canonicalize(raw)
}

// Hash returns the base64url (unpadded) SHA-256 of the terms' canonical JSON: the value
// a device signs in Confirm.
func (t *Terms) Hash() (string, error) {
	c, err := t.Canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// Money formats an amount for display with the currency's usual number of decimals,
// for example "USD 9.50" or "JPY 950". It is for prompts, never for arithmetic.
func Money(a Amount, currency string) string {
	d := currencyDecimals(currency)
	if d == 0 {
		return fmt.Sprintf("%s %d", currency, a)
	}
	p := Amount(math.Pow10(d))
	return fmt.Sprintf("%s %d.%0*d", currency, a/p, d, a%p)
}

func currencyDecimals(c string) int {
	switch c {
	case "JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "PYG":
		return 0
	case "BHD", "KWD", "OMR", "JOD", "TND", "IQD", "LYD":
		return 3
	}
	return 2
}
