package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/audit"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

// What happens to a payment after its redemption, and the audit trail of every step.
// The ledger (authz) owns the mandate's state; onTransition, which the ledger runs in
// the transaction of every change, moves the transaction along, queues the device's
// tx.result with the signed receipt, and appends the audit record, so the three
// never disagree.

// txAfter maps a ledger transition to the transaction state it moves to ("" none).
func txAfter(e *authz.Entry, from authz.State) wire.TxState {
	switch e.State {
	case authz.StateRedeemed:
		return wire.TxRedeemed // from issued (onRedeem did it) or back from cancelling
	case authz.StateRevoked, authz.StateSuperseded:
		return wire.TxCancelled
	case authz.StateCancelling:
		return wire.TxCancelling
	case authz.StateCancelled:
		return wire.TxCancelled
	case authz.StateSettled:
		return wire.TxSettled
	}
	return ""
}

// auditKind is the kind of the audit record of a ledger transition.
func auditKind(s authz.State) audit.Kind {
	switch s {
	case authz.StateRedeemed:
		return audit.KindRedemption
	case authz.StateRevoked:
		return audit.KindRevocation
	case authz.StateCancelling, authz.StateCancelled:
		return audit.KindCancellation
	case authz.StateSettled:
		return audit.KindSettlement
	}
	return audit.KindMandate // issued, expired, superseded
}

// onTransition runs inside the ledger's transaction of every mandate state change.
func (c *Core) onTransition(txn kv.Txn, e *authz.Entry, from authz.State) error {
	if err := c.appendAudit(txn, entryRecord(e)); err != nil {
		return err
	}
	to := txAfter(e, from)
	if to == "" || (to == wire.TxRedeemed && from == authz.StateIssued) {
		return nil // issuance is the consent's transaction; a redemption is onRedeem's
	}
	t, err := loadTx(txn, e.Claims.Tx)
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	if err := t.move(to, now); err != nil {
		return err
	}
	t.Code, t.Reason = 0, ""
	switch e.State {
	case authz.StateRevoked:
		t.Reason = "Cancelled before payment."
	case authz.StateSuperseded:
		t.Reason = "Replaced by your changed order."
	case authz.StateRedeemed:
		t.Reason = "The merchant could not cancel: " + e.CancelDeclined
	}
	if unspent := e.State == authz.StateRevoked || e.State == authz.StateCancelled || e.State == authz.StateSuperseded; unspent && t.SpendKey != "" {
		// Money that will not move leaves the daily cap.
		if err := txn.Delete([]byte(t.SpendKey)); err != nil {
			return err
		}
	}
	return publish(txn, t, c.resultOf(t, e), now)
}

// resultOf is t's tx.result with the ledger entry's receipt and cancel window.
func (c *Core) resultOf(t *Tx, e *authz.Entry) *wire.TxResult {
	r := t.result()
	if len(e.Receipts) > 0 {
		r.Receipt = e.Receipts[len(e.Receipts)-1]
	}
	if e.State == authz.StateRedeemed {
		r.SettleAfter = e.SettleAfter
	}
	return r
}

// entryRecord is the audit record of a ledger entry's current state.
func entryRecord(e *authz.Entry) audit.Record {
	r := audit.Record{Kind: auditKind(e.State), Tx: e.Claims.Tx, JTI: e.Claims.ID, Device: e.Claims.Device,
		User: e.Claims.User, Agent: e.Claims.Agent, Payee: e.Claims.Payee, Amount: int64(e.Claims.AmountCap),
		Currency: e.Claims.Currency, TermsHash: e.Claims.ConsentHash, State: e.State.String()}
	if e.Redemption != nil {
		r.Amount = int64(e.Redemption.Amount)
	}
	detail := map[string]string{}
	if e.Redemption != nil {
		detail["redemption"] = e.Redemption.ID
	}
	if e.SupersededBy != "" {
		detail["superseded_by"] = e.SupersededBy
	}
	if e.Supersedes != "" {
		detail["supersedes"] = e.Supersedes
	}
	if len(detail) > 0 {
		r.Detail = detail
	}
	return r
}

// appendAudit appends r to the audit trail in txn, if the core keeps one.
func (c *Core) appendAudit(txn kv.Txn, r audit.Record) error {
	if c.cfg.Audit == nil {
		return nil
	}
	if _, err := c.cfg.Audit.Append(txn, r); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// afterLedger notifies the device of a transaction the ledger just moved, and tells
// the agent when it has something to do.
func (c *Core) afterLedger(e *authz.Entry) {
	if e == nil {
		return
	}
	c.staged.fire()
	c.notify(e.Claims.Device)
	switch e.State {
	case authz.StateCancelling:
		c.finished(e.Claims.Tx, wire.TxCancelling)
	case authz.StateCancelled, authz.StateRevoked:
		c.finished(e.Claims.Tx, wire.TxCancelled)
	case authz.StateSettled:
		c.finished(e.Claims.Tx, wire.TxSettled)
	}
}

// cancel handles the device's tx.cancel.
func (cn *Conn) cancel(ctx context.Context, q *wire.TxCancel) error {
	var t *Tx
	err := cn.core.cfg.Store.View(ctx, func(txn kv.Txn) (err error) {
		t, err = loadTx(txn, q.Tx)
		return err
	})
	if errors.Is(err, ErrUnknownTx) || err == nil && t.Device != cn.dev.ID {
		return wire.NewError(wire.CodeUnknownTx, "no such transaction")
	} else if err != nil {
		return err
	}
	return cn.cancelTx(ctx, t, q.Reason)
}

// cancelTx revokes t's mandate, or asks the merchant to cancel its payment.
func (cn *Conn) cancelTx(ctx context.Context, t *Tx, reason string) error {
	c := cn.core
	switch {
	case t.State == wire.TxPrompted:
		return txErr(wire.CodeNotCancellable, "the prompt is still open: decline it", t.ID)
	case t.Mandate == "":
		return txErr(wire.CodeNotCancellable, "nothing was approved: the transaction is "+string(t.State), t.ID)
	}
	e, err := c.ledger.Cancel(ctx, t.Mandate, reason)
	if ae := (*authz.Error)(nil); errors.As(err, &ae) {
		return txErr(wire.CodeNotCancellable, ae.Detail, t.ID)
	} else if err != nil {
		return err
	}
	c.m.cancel(e.State.String())
	c.afterLedger(e)
	return nil
}

func latestKey(device string) []byte { return []byte("latest/" + device) }

// cancelLatest is "cancel my order", said: it cancels the device's latest order (the
// last transaction a mandate was issued for) and answers the utterance with that
// transaction's state. A repeated utterance is answered the same way, once.
func (cn *Conn) cancelLatest(ctx context.Context, msgID, text string) error {
	c := cn.core
	var (
		t      *Tx
		repeat bool
	)
	err := c.cfg.Store.View(ctx, func(txn kv.Txn) error {
		id, err := txn.Get(uttKey(cn.dev.ID, msgID))
		if err == nil {
			repeat = true
		} else if errors.Is(err, kv.ErrNotFound) {
			if id, err = txn.Get(latestKey(cn.dev.ID)); errors.Is(err, kv.ErrNotFound) {
				return nil
			}
		}
		if err != nil {
			return err
		}
		t, err = loadTx(txn, string(id))
		return err
	})
	if err != nil {
		return err
	}
	if t == nil {
		return wire.NewError(wire.CodeNotCancellable, "there is no order to cancel")
	}
	if !repeat {
		if err := cn.cancelTx(ctx, t, text); err != nil {
			return err
		}
		err := c.update(ctx, func(txn kv.Txn, _ func(string)) error {
			return txn.Set(uttKey(cn.dev.ID, msgID), []byte(t.ID))
		})
		if err != nil {
			return err
		}
		if t, err = c.Tx(ctx, t.ID); err != nil {
			return err
		}
	}
	r := t.result()
	r.Ref = msgID
	cn.send(r, msgID)
	return nil
}

// agentTx loads an agent's transaction and its mandate id.
func (c *Core) agentTx(ctx context.Context, agentID, txID string) (*Tx, error) {
	t, err := c.Tx(ctx, txID)
	if err != nil {
		return nil, err
	}
	if t.Agent != agentID {
		return nil, ErrForbidden
	}
	if t.Mandate == "" {
		return nil, fmt.Errorf("%w: no mandate was issued for the transaction", ErrTxState)
	}
	return t, nil
}

// ResolveCancel is the agent's answer to the user's cancellation of a redeemed
// payment: accept cancels it, a refusal (with a reason) lets it settle.
func (c *Core) ResolveCancel(ctx context.Context, agentID, txID string, accept bool, reason string) (*authz.Entry, error) {
	t, err := c.agentTx(ctx, agentID, txID)
	if err != nil {
		return nil, err
	}
	e, err := c.ledger.ResolveCancel(ctx, t.Mandate, agentID, accept, reason)
	if err != nil {
		return e, err
	}
	c.afterLedger(e)
	return e, nil
}

// Settle settles a redeemed payment whose cancel window has closed.
func (c *Core) Settle(ctx context.Context, agentID, txID string) (*authz.Entry, error) {
	t, err := c.agentTx(ctx, agentID, txID)
	if err != nil {
		return nil, err
	}
	e, err := c.ledger.Settle(ctx, t.Mandate, agentID)
	if err != nil {
		return e, err
	}
	c.afterLedger(e)
	return e, nil
}

// Revoke is the agent's revocation of a mandate it will not use (or the user asked it
// to cancel): the transaction ends cancelled.
func (c *Core) Revoke(ctx context.Context, agentID, txID, reason string) (*authz.Entry, error) {
	t, err := c.agentTx(ctx, agentID, txID)
	if err != nil {
		return nil, err
	}
	if err := c.ledger.Revoke(ctx, t.Mandate, reason); err != nil {
		return nil, err
	}
	e, err := c.ledger.Get(ctx, t.Mandate)
	if err != nil {
		return nil, err
	}
	c.afterLedger(e)
	return e, nil
}

// Mandate returns the ledger entry of a mandate bound to agentID.
func (c *Core) Mandate(ctx context.Context, agentID, jti string) (*authz.Entry, error) {
	e, err := c.ledger.Get(ctx, jti)
	if err != nil {
		return nil, err
	}
	if e.Claims.Agent != agentID {
		return nil, ErrForbidden
	}
	return e, nil
}

// settleLoop settles payments whose cancel window has closed, every SettleEvery.
func (c *Core) settleLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.SettleEvery)
	defer tick.Stop()
	lastPrune := c.cfg.Now()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		if now := c.cfg.Now(); now.Sub(lastPrune) >= time.Minute {
			lastPrune = now
			if _, err := c.pruneEvents(c.ctx, 4096); err != nil && c.ctx.Err() == nil {
				c.log.Warn("pruning agent events", "err", err)
			}
		}
		jtis, err := c.ledger.SettleDue(c.ctx, 256)
		if err != nil && c.ctx.Err() == nil {
			c.log.Warn("settling payments", "err", err)
		}
		for _, jti := range jtis {
			if e, err := c.ledger.Get(c.ctx, jti); err == nil {
				c.afterLedger(e)
			}
		}
	}
}
