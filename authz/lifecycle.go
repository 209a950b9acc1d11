package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

// ReceiptType is the typ header of a transition receipt.
const ReceiptType = "earshot-receipt+jwt"

// Receipt is the payload of the signed receipt the ledger writes for every transition
// of a mandate: a compact JWS (KeySet.SignPayload) anyone can verify with the JWKS, so
// the user, the merchant and an auditor can each prove what happened and when. Each
// payment of a recurring mandate that leaves it issued gets one too: state issued, from
// issued, with the payment's amount and redemption id.
type Receipt struct {
	Mandate    string      `json:"mandate"` // jti
	Tx         string      `json:"tx"`
	User       string      `json:"sub"`
	Agent      string      `json:"aud"`
	Payee      string      `json:"payee"`
	State      State       `json:"state"`
	From       State       `json:"from,omitempty"` // unknown for the first receipt
	At         int64       `json:"at"`             // Unix milliseconds
	Amount     wire.Amount `json:"amount"`         // the cap while issued, the amount paid after or by a recurring payment
	Currency   string      `json:"currency"`
	Redemption string      `json:"redemption,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Related    string      `json:"related,omitempty"` // the superseding or superseded mandate
	Seq        int         `json:"seq"`               // 1 for the first receipt of the mandate
}

// transition moves e to state at now, appends its signed receipt, writes it and runs
// the hooks, all in txn.
func (l *Ledger) transition(txn kv.Txn, e *Entry, to State, now time.Time, reason string) error {
	from := e.State
	e.State, e.UpdatedAt = to, now.UnixMilli()
	var paid *Redemption // while issued, a recurring mandate's Redemption is an earlier payment
	switch to {
	case StateRedeemed, StateCancelling, StateCancelled, StateSettled:
		paid = e.Redemption
	}
	if err := l.appendReceipt(e, from, paid, now, reason); err != nil {
		return err
	}
	if err := putEntry(txn, e); err != nil {
		return err
	}
	if to == StateRedeemed && l.cfg.OnRedeem != nil {
		if err := l.cfg.OnRedeem(txn, e); err != nil {
			return fmt.Errorf("on redeem: %w", err)
		}
	}
	if l.cfg.OnTransition != nil {
		if err := l.cfg.OnTransition(txn, e, from); err != nil {
			return fmt.Errorf("on transition: %w", err)
		}
	}
	return nil
}

// pay writes a recurring mandate's payment that leaves it issued (e.Redemption, already
// appended to e.Payments): a receipt from issued to issued with the payment, and
// OnRedeem, but no OnTransition, as the state does not change.
func (l *Ledger) pay(txn kv.Txn, e *Entry, now time.Time) error {
	e.UpdatedAt = now.UnixMilli()
	if err := l.appendReceipt(e, e.State, e.Redemption, now, ""); err != nil {
		return err
	}
	if err := putEntry(txn, e); err != nil {
		return err
	}
	if l.cfg.OnRedeem != nil {
		if err := l.cfg.OnRedeem(txn, e); err != nil {
			return fmt.Errorf("on redeem: %w", err)
		}
	}
	return nil
}

// appendReceipt signs the receipt of e's move from from to its state at now, with
// paid's amount and id when set, and appends it to e.Receipts.
func (l *Ledger) appendReceipt(e *Entry, from State, paid *Redemption, now time.Time, reason string) error {
	r := Receipt{Mandate: e.Claims.ID, Tx: e.Claims.Tx, User: e.Claims.User, Agent: e.Claims.Agent,
		Payee: e.Claims.Payee, State: e.State, From: from, At: now.UnixMilli(), Amount: e.Claims.AmountCap,
		Currency: e.Claims.Currency, Reason: reason, Seq: len(e.Receipts) + 1}
	if paid != nil {
		r.Amount, r.Redemption = paid.Amount, paid.ID
	}
	r.Related = e.SupersededBy
	if e.State == StateIssued {
		r.Related = e.Supersedes
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("authz: receipt: %w", err)
	}
	tok, err := l.cfg.Keys.SignPayload(payload, ReceiptType)
	if err != nil {
		return fmt.Errorf("authz: receipt: %w", err)
	}
	e.Receipts = append(e.Receipts, tok)
	return nil
}

// update runs fn on the entry of jti in one transaction. fn returns a refusal (the
// transaction still commits what fn wrote) or an error (it aborts).
func (l *Ledger) update(ctx context.Context, jti string, fn func(txn kv.Txn, e *Entry, now time.Time) (*Error, error)) (*Entry, error) {
	var (
		refusal *Error
		out     *Entry
	)
	err := l.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		refusal, out = nil, nil
		e, err := getEntry(txn, jti)
		if errors.Is(err, kv.ErrNotFound) {
			refusal = refuse(CodeNotFound, "no such mandate", err)
			return nil
		} else if err != nil {
			return err
		}
		if refusal, err = fn(txn, e, l.cfg.Now()); err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("authz: %s: %w", jti, err)
	}
	if refusal != nil {
		return out, refusal
	}
	return out, nil
}

// notIssued is the refusal for acting on a mandate in state s as if it were issued, or
// nil when it is.
func notIssued(s State) *Error {
	switch s {
	case StateIssued:
		return nil
	case StateRedeemed, StateCancelling:
		return refuse(CodeAlreadyRedeemed, "the mandate was already redeemed", nil)
	case StateSettled:
		return refuse(CodeAlreadySettled, "the payment was settled", nil)
	case StateRevoked:
		return refuse(CodeRevoked, "the mandate was revoked", nil)
	case StateExpired:
		return refuse(CodeMandateExpired, "the mandate expired", nil)
	case StateCancelled:
		return refuse(CodeCancelled, "the payment was cancelled", nil)
	case StateSuperseded:
		return refuse(CodeSuperseded, "a newer consent replaced the mandate", nil)
	}
	return refuse(CodeMandateInvalid, "the mandate is in an unknown state", nil)
}

// Cancel is the user's "cancel my order": an issued mandate is revoked; a redeemed one
// inside its cancel window becomes cancelling, and its agent must answer with
// ResolveCancel; a cancellation already asked for is answered again (idempotent). After
// the window it is refused with CodeCancelWindowClosed; other states as notIssued.
func (l *Ledger) Cancel(ctx context.Context, jti, reason string) (*Entry, error) {
	return l.update(ctx, jti, func(txn kv.Txn, e *Entry, now time.Time) (*Error, error) {
		switch e.State {
		case StateIssued:
			if !now.Before(time.Unix(e.Claims.Expiry, 0)) {
				return refuse(CodeMandateExpired, "the mandate expired", nil), l.transition(txn, e, StateExpired, now, "")
			}
			e.RevokedReason = reason
			return nil, l.transition(txn, e, StateRevoked, now, reason)
		case StateRedeemed:
			if now.UnixMilli() >= e.SettleAfter {
				return refuse(CodeCancelWindowClosed, "the cancel window is over: the payment stands", nil), nil
			}
			e.CancelReason = reason
			return nil, l.transition(txn, e, StateCancelling, now, reason)
		case StateCancelling:
			return nil, nil
		}
		return notIssued(e.State), nil
	})
}

// ResolveCancel is the agent's answer to a cancellation: accept cancels the payment
// (the merchant refunds or never captures), a refusal (with a reason, "already
// shipped") puts it back to redeemed, to settle when its window has closed. Only the
// mandate's agent may answer (CodeWrongAgent); a mandate not cancelling is
// CodeNotCancelling, or CodeCancelled when already cancelled (so a retried accept is
// recognisable).
func (l *Ledger) ResolveCancel(ctx context.Context, jti, agent string, accept bool, reason string) (*Entry, error) {
	return l.update(ctx, jti, func(txn kv.Txn, e *Entry, now time.Time) (*Error, error) {
		if agent != e.Claims.Agent {
			return refuse(CodeWrongAgent, "the mandate is bound to another agent", nil), nil
		}
		switch {
		case e.State == StateCancelled:
			return refuse(CodeCancelled, "the payment was already cancelled", nil), nil
		case e.State != StateCancelling:
			return refuse(CodeNotCancelling, "the user did not ask to cancel this payment", nil), nil
		case accept:
			return nil, l.transition(txn, e, StateCancelled, now, e.CancelReason)
		}
		e.CancelDeclined = reason
		return nil, l.transition(txn, e, StateRedeemed, now, reason)
	})
}

// Settle settles a redeemed payment once its cancel window has closed. Only the
// mandate's agent may (CodeWrongAgent); inside the window it is CodeCancelWindowOpen,
// while a cancellation waits CodeCancelPending; settling a settled payment again
// returns it without error.
func (l *Ledger) Settle(ctx context.Context, jti, agent string) (*Entry, error) {
	return l.update(ctx, jti, func(txn kv.Txn, e *Entry, now time.Time) (*Error, error) {
		if agent != e.Claims.Agent {
			return refuse(CodeWrongAgent, "the mandate is bound to another agent", nil), nil
		}
		return l.settle(txn, e, now)
	})
}

func (l *Ledger) settle(txn kv.Txn, e *Entry, now time.Time) (*Error, error) {
	switch e.State {
	case StateSettled:
		return nil, nil
	case StateCancelling:
		return refuse(CodeCancelPending, "the user asked to cancel; answer the cancellation first", nil), nil
	case StateRedeemed:
		if now.UnixMilli() < e.SettleAfter {
			return refuse(CodeCancelWindowOpen, fmt.Sprintf("the user may cancel until %s",
				time.UnixMilli(e.SettleAfter).UTC().Format(time.RFC3339)), nil), nil
		}
		return nil, l.transition(txn, e, StateSettled, now, "")
	case StateIssued:
		return refuse(CodeBadRequest, "the mandate was not redeemed", nil), nil
	}
	return notIssued(e.State), nil
}

// SettleDue settles every redeemed payment whose window has closed, at most max of
// them (0: no bound), and returns their jtis. The gateway runs it periodically, so a
// payment settles without the merchant asking.
func (l *Ledger) SettleDue(ctx context.Context, max int) ([]string, error) {
	var due []string
	err := l.cfg.Store.View(ctx, func(txn kv.Txn) error {
		now := l.cfg.Now().UnixMilli()
		return txn.Scan([]byte(LedgerPrefix), func(_, v []byte) (bool, error) {
			var e struct {
				Claims struct {
					ID string `json:"jti"`
				} `json:"claims"`
				State       State `json:"state"`
				SettleAfter int64 `json:"settle_after"`
			}
			if err := json.Unmarshal(v, &e); err != nil {
				return false, fmt.Errorf("authz: ledger entry: %w", err)
			}
			if e.State == StateRedeemed && e.SettleAfter <= now {
				due = append(due, e.Claims.ID)
			}
			return max <= 0 || len(due) < max, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("authz: settle due: %w", err)
	}
	var settled []string
	for _, jti := range due {
		_, err := l.update(ctx, jti, func(txn kv.Txn, e *Entry, now time.Time) (*Error, error) {
			if e.State != StateRedeemed {
				return nil, nil // cancelled or settled meanwhile
			}
			return l.settle(txn, e, now)
		})
		if CodeOf(err) != CodeUnknown {
			continue
		}
		if err != nil {
			return settled, err
		}
		settled = append(settled, jti)
	}
	return settled, nil
}

// Supersede records c, a mandate from a new consent that modifies the order of old,
// and marks old superseded, in the caller's transaction: both happen or neither. old
// must be issued (a redeemed order is changed by cancelling it); c must be for the same
// user and agent, and not a tip (a tip modifies no order: see RecordTip).
func (l *Ledger) Supersede(txn kv.Txn, old string, c Claims) error {
	e, err := getEntry(txn, old)
	if errors.Is(err, kv.ErrNotFound) {
		return refuse(CodeNotFound, "no such mandate", err)
	} else if err != nil {
		return err
	}
	if refusal := notIssued(e.State); refusal != nil {
		return refusal
	}
	if c.User != e.Claims.User || c.Agent != e.Claims.Agent {
		return fmt.Errorf("%w: a modification must keep the user and the agent", ErrInvalidClaims)
	}
	if c.Kind == wire.KindTip || e.Claims.Kind == wire.KindTip {
		return fmt.Errorf("%w: a tip neither modifies nor is modified", ErrInvalidClaims)
	}
	if err := l.checkNew(txn, &c); err != nil {
		return err
	}
	now := l.cfg.Now()
	e.SupersededBy = c.ID
	if err := l.transition(txn, e, StateSuperseded, now, "modified"); err != nil {
		return err
	}
	return l.transition(txn, &Entry{Claims: c, Supersedes: old}, StateIssued, now, "")
}
