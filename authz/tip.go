package authz

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

// TipAllowance returns how much of the parent mandate's TipCap is left: the cap less
// what tips recorded under it took. It does not look at the parent's state (RecordTip
// does). An unknown parent is an *Error with CodeNotFound.
func (l *Ledger) TipAllowance(txn kv.Txn, parentJTI string) (wire.Amount, error) {
	e, err := getEntry(txn, parentJTI)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, refuse(CodeNotFound, "no such mandate", err)
	} else if err != nil {
		return 0, fmt.Errorf("authz: tip allowance %s: %w", parentJTI, err)
	}
	return tipAllowance(e), nil
}

func tipAllowance(e *Entry) wire.Amount {
	if e.Claims.Constraints == nil {
		return 0
	}
	return max(e.Claims.Constraints.TipCap-e.Tipped, 0)
}

// tipItems are the items of a tip under the parent's cap, as its ItemsDigest hashes.
func tipItems(amount wire.Amount) []wire.Item {
	return []wire.Item{{SKU: "tip", Name: "Tip", Qty: 1, UnitAmount: amount}}
}

// TipClaims builds the claims of a tip covered by the parent's tip cap: kind tip,
// the parent's user/agent/device/payee/currency/ConsentHash (the consent that agreed
// the cap), Tx = the tip's own transaction id, one item digest for
// []wire.Item{{SKU: "tip", Name: "Tip", Qty: 1, UnitAmount: amount}}, Parent = parent jti,
// validity now..now+ttl (ttl <= 0: DefaultMandateTTL). The jti is fresh, from r (nil:
// crypto/rand). Claims the ledger would refuse are ErrInvalidClaims.
func TipClaims(parent Claims, tx string, amount wire.Amount, issuer string, now time.Time, ttl time.Duration, r io.Reader) (Claims, error) {
	if ttl <= 0 {
		ttl = DefaultMandateTTL
	}
	digest, err := ItemsDigest(tipItems(amount))
	if err != nil {
		return Claims{}, err
	}
	jti, err := randomID(mandatePrefix, r)
	if err != nil {
		return Claims{}, err
	}
	c := Claims{
		ID: jti, Issuer: issuer, User: parent.User, Agent: parent.Agent,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(ttl).Unix(),
		Device: parent.Device, Tx: tx, Payee: parent.Payee, AmountCap: amount, Currency: parent.Currency,
		ItemsDigest: digest, Kind: wire.KindTip, Constraints: &Constraints{Parent: parent.ID},
		ConsentHash: parent.ConsentHash,
	}
	if err := c.validate(); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// RecordTip records a tip mandate inside the caller's transaction. With underCap, the
// parent's remaining TipCap must cover c.AmountCap (else CodeOverTipCap, "over_tip_cap",
// 422) and is reduced by it (a new Entry.Tipped wire.Amount on the parent). Either way the
// parent must exist, be redeemed or settled (CodeParentNotPaid), and match agent, payee
// and currency.
//
// A tip under the cap must carry the parent's ConsentHash (TipClaims does), as that
// consent is its authority; claims that are not a valid tip are ErrInvalidClaims, and a
// jti already held ErrMandateExists, as for Record. The parent's state is read in txn,
// so a tip and the parent's cancellation do not both succeed. Cancelling, revoking or
// not redeeming a tip does not give its amount back to the allowance: a cap is what the
// user agreed may be asked for, not what was paid.
//
// The refusals about the parent are *Error values: CodeNotFound, CodeParentNotPaid,
// CodeWrongAgent, CodePayeeMismatch, CodeCurrencyMismatch.
func (l *Ledger) RecordTip(txn kv.Txn, c Claims, underCap bool) error {
	if c.Kind != wire.KindTip {
		return fmt.Errorf("%w: kind %q is not a tip", ErrInvalidClaims, c.Kind)
	}
	if err := l.checkNew(txn, &c); err != nil {
		return err
	}
	parent, refusal, err := tipParent(txn, &c)
	if err != nil {
		return fmt.Errorf("authz: record tip %s: %w", c.ID, err)
	}
	if refusal != nil {
		return refusal
	}
	now := l.cfg.Now()
	if underCap {
		if c.ConsentHash != parent.Claims.ConsentHash {
			return fmt.Errorf("%w: a tip under the parent's cap carries the parent's consent hash", ErrInvalidClaims)
		}
		if left := tipAllowance(parent); c.AmountCap > left {
			return refuse(CodeOverTipCap, fmt.Sprintf("the tip is over what is left of the tip cap (%d)", left), nil)
		}
		parent.Tipped += c.AmountCap
		parent.UpdatedAt = now.UnixMilli()
		if err := putEntry(txn, parent); err != nil {
			return err
		}
	}
	return l.transition(txn, &Entry{Claims: c}, StateIssued, now, "")
}

// tipParent reads the parent of the tip c and checks that it may be tipped: paid
// (redeemed or settled), for the same agent, payee and currency. A refusal is returned
// as an *Error, a store failure as an error.
func tipParent(txn kv.Txn, c *Claims) (*Entry, *Error, error) {
	var jti string
	if c.Constraints != nil {
		jti = c.Constraints.Parent
	}
	parent, err := getEntry(txn, jti)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, refuse(CodeNotFound, "no such parent mandate", err), nil
	} else if err != nil {
		return nil, nil, err
	}
	switch p := &parent.Claims; {
	case parent.State != StateRedeemed && parent.State != StateSettled:
		return parent, refuse(CodeParentNotPaid, fmt.Sprintf("the parent mandate is %s, not paid", parent.State), nil), nil
	case p.Agent != c.Agent:
		return parent, refuse(CodeWrongAgent, "the parent mandate is bound to another agent", nil), nil
	case p.Payee != c.Payee:
		return parent, refuse(CodePayeeMismatch, "the payee is not the parent mandate's payee", nil), nil
	case p.Currency != c.Currency:
		return parent, refuse(CodeCurrencyMismatch, "the currency is not the parent mandate's currency", nil), nil
	}
	return parent, nil, nil
}
