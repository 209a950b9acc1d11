package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
)

// PurchaseRequest is an agent's proposal for a transaction: what the user will be asked
// to approve.
type PurchaseRequest struct {
	Tx       string        `json:"tx"`
	Merchant wire.Merchant `json:"merchant"`
	Items    []wire.Item   `json:"items"`
	Total    wire.Amount   `json:"total"`
	Currency string        `json:"currency"`
	Kind     wire.Kind     `json:"kind"`
	Summary  string        `json:"summary,omitempty"`
}

// promptMethods are the verification methods a one-off prompt accepts.
var promptMethods = []wire.Method{wire.MethodTap, wire.MethodVoice, wire.MethodButton}

// RequestPurchase turns an agent's proposal into a consent challenge and sends the
// prompt to the device. Repeating the same proposal returns the open transaction.
func (c *Core) RequestPurchase(ctx context.Context, agentID string, pr PurchaseRequest) (*Tx, error) {
	if pr.Kind == "" {
		pr.Kind = wire.KindOneOff
	}
	if pr.Kind != wire.KindOneOff {
		return nil, fmt.Errorf("%w: kind %q is not supported yet; use %q", ErrInvalid, pr.Kind, wire.KindOneOff)
	}
	if len(pr.Summary) > wire.MaxTextBytes/2 {
		return nil, fmt.Errorf("%w: summary of %d bytes, limit %d", ErrInvalid, len(pr.Summary), wire.MaxTextBytes/2)
	}
	var out *Tx
	err := c.update(ctx, func(txn kv.Txn, touch func(string)) error {
		t, err := loadTx(txn, pr.Tx)
		if err != nil {
			return err
		}
		if t.Agent != agentID {
			return ErrForbidden
		}
		if t.State == wire.TxPrompted && sameProposal(t.Challenge.Terms, pr) {
			out = t
			return nil
		}
		if t.State != wire.TxReceived {
			return fmt.Errorf("%w: it is %s", ErrTxState, t.State)
		}
		s, err := loadState(txn, t.Device)
		if err != nil {
			return err
		}
		now := c.cfg.Now()
		nonce, err := authz.NewNonce(c.cfg.Rand)
		if err != nil {
			return err
		}
		terms := wire.Terms{
			Tx: t.ID, Device: t.Device, Session: s.Session, Merchant: pr.Merchant, Items: pr.Items,
			Total: pr.Total, Currency: pr.Currency, Kind: pr.Kind,
			ExpiresAt: now.Add(c.cfg.ConsentTTL).UnixMilli(), Nonce: nonce,
		}
		ch, err := authz.NewChallenge(terms, promptMethods, now)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if err := t.move(wire.TxRequested, now); err != nil {
			return err
		}
		if err := t.move(wire.TxPrompted, now); err != nil {
			return err
		}
		t.Challenge, t.Session, t.Summary, t.Prompt = &ch, s.Session, pr.Summary, promptText(terms)
		if err := publish(txn, t, t.promptBody(), now); err != nil {
			return err
		}
		touch(t.Device)
		out = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.m.prompt()
	c.armExpiry(out.ID, time.UnixMilli(out.Challenge.Terms.ExpiresAt))
	return out, nil
}

func sameProposal(t wire.Terms, pr PurchaseRequest) bool {
	if t.Merchant != pr.Merchant || t.Total != pr.Total || t.Currency != pr.Currency || t.Kind != pr.Kind || len(t.Items) != len(pr.Items) {
		return false
	}
	for i := range t.Items {
		a, b := t.Items[i], pr.Items[i]
		if a.SKU != b.SKU || a.Name != b.Name || a.Qty != b.Qty || a.UnitAmount != b.UnitAmount || strings.Join(a.Options, "\x00") != strings.Join(b.Options, "\x00") {
			return false
		}
	}
	return true
}

// promptText is what the device shows or speaks: the same merchant, items and total
// as the signed terms, in words.
func promptText(t wire.Terms) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Pay %s %s for ", t.Merchant.Name, wire.Money(t.Total, t.Currency))
	for i, it := range t.Items {
		if i > 0 {
			b.WriteString(", ")
		}
		line := fmt.Sprintf("%d x %s", it.Qty, it.Name)
		if len(it.Options) > 0 {
			line += " (" + strings.Join(it.Options, ", ") + ")"
		}
		if b.Len()+len(line) > wire.MaxTextBytes-64 {
			fmt.Fprintf(&b, "and %d more", len(t.Items)-i)
			break
		}
		b.WriteString(line)
	}
	b.WriteString("? Say confirm or tap to approve.")
	return b.String()
}

func (t *Tx) promptBody() *wire.ConfirmRequest {
	return &wire.ConfirmRequest{Tx: t.ID, Terms: t.Challenge.Terms, Hash: t.Challenge.Hash, Text: t.Prompt, Methods: t.Challenge.Methods, Ref: t.Ref}
}

// Reject ends a transaction the agent will not propose a purchase for.
func (c *Core) Reject(ctx context.Context, agentID, txID string, code wire.Code, reason string) (*Tx, error) {
	if len(reason) > wire.MaxTextBytes {
		return nil, fmt.Errorf("%w: reason of %d bytes, limit %d", ErrInvalid, len(reason), wire.MaxTextBytes)
	}
	var out *Tx
	err := c.update(ctx, func(txn kv.Txn, touch func(string)) error {
		t, err := loadTx(txn, txID)
		if err != nil {
			return err
		}
		if t.Agent != agentID {
			return ErrForbidden
		}
		if t.State == wire.TxRejected {
			out = t
			return nil
		}
		now := c.cfg.Now()
		if err := t.move(wire.TxRejected, now); err != nil {
			return fmt.Errorf("%w: it is %s", ErrTxState, t.State)
		}
		t.Code, t.Reason = code, reason
		if err := publish(txn, t, t.result(), now); err != nil {
			return err
		}
		touch(t.Device)
		out = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.finished(txID, wire.TxRejected)
	return out, nil
}

// Tx returns a transaction's record.
func (c *Core) Tx(ctx context.Context, id string) (*Tx, error) {
	var t *Tx
	err := c.cfg.Store.View(ctx, func(txn kv.Txn) (err error) {
		t, err = loadTx(txn, id)
		return err
	})
	return t, err
}

// Redeem redeems a mandate through the ledger. The transaction moves to redeemed and
// the device's tx.result is queued in the same durable transaction (onRedeem).
func (c *Core) Redeem(ctx context.Context, r authz.RedeemRequest) (*authz.Redemption, bool, error) {
	red, replayed, err := c.ledger.Redeem(ctx, r)
	var ae *authz.Error
	switch {
	case err == nil:
		c.m.redemption("ok")
		if t, err := c.Tx(ctx, red.Tx); err == nil {
			c.notify(t.Device)
		}
	case errors.As(err, &ae):
		c.m.redemption(ae.Code.String())
	default:
		c.m.redemption("error")
	}
	return red, replayed, err
}

// onRedeem runs inside the ledger's redemption transaction.
func (c *Core) onRedeem(txn kv.Txn, e *authz.Entry) error {
	t, err := loadTx(txn, e.Claims.Tx)
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	if err := t.move(wire.TxRedeemed, now); err != nil {
		return err
	}
	t.Amount, t.Currency, t.Redemption = e.Redemption.Amount, e.Redemption.Currency, e.Redemption.ID
	return publish(txn, t, c.resultOf(t, e), now)
}

// armExpiry schedules the prompt's expiry.
func (c *Core) armExpiry(txID string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if old := c.timers[txID]; old != nil {
		old.Stop()
	}
	c.timers[txID] = time.AfterFunc(at.Sub(c.cfg.Now()), func() { c.expire(txID) })
}

func (c *Core) stopExpiry(txID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.timers[txID]; t != nil {
		t.Stop()
		delete(c.timers, txID)
	}
}

func (c *Core) expire(txID string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	delete(c.timers, txID)
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()

	var rearm time.Time
	expired := false
	err := c.update(c.ctx, func(txn kv.Txn, touch func(string)) error {
		expired, rearm = false, time.Time{}
		t, err := loadTx(txn, txID)
		if err != nil || t.State != wire.TxPrompted {
			return err
		}
		now := c.cfg.Now()
		if at := time.UnixMilli(t.Challenge.Terms.ExpiresAt); now.Before(at) {
			rearm = at // the timer fired early against the injected clock
			return nil
		}
		if err := t.move(wire.TxExpired, now); err != nil {
			return err
		}
		t.Code, t.Reason = wire.CodeChallengeExpired, "the prompt expired before it was answered"
		if err := publish(txn, t, t.result(), now); err != nil {
			return err
		}
		touch(t.Device)
		expired = true
		return nil
	})
	switch {
	case err != nil:
		c.log.Error("expiring prompt", "tx", txID, "err", err)
		c.armExpiry(txID, c.cfg.Now().Add(time.Second))
	case !rearm.IsZero():
		c.armExpiry(txID, rearm)
	case expired:
		c.finished(txID, wire.TxExpired)
	}
}

// dispatchIntent hands an intent to the agent, retrying in the background if the
// agent is busy.
func (c *Core) dispatchIntent(t *Tx) {
	in := agent.Intent{Tx: t.ID, Device: t.Device, User: t.User, Text: t.Text, At: t.Created}
	c.deliver("intent", t.ID, func(ctx context.Context) error { return c.cfg.Agent.OnIntent(ctx, in) })
}

func (c *Core) dispatchMandate(t *Tx) {
	m := agent.Mandate{
		Tx: t.ID, ID: t.Mandate, Token: t.MandateToken, User: t.User, Payee: t.Challenge.Terms.Merchant.ID,
		AmountCap: t.Challenge.Terms.Total, Currency: t.Challenge.Terms.Currency, ExpiresAt: time.Unix(t.MandateExp, 0),
	}
	c.deliver("mandate", t.ID, func(ctx context.Context) error { return c.cfg.Agent.OnMandate(ctx, m) })
}

// finished tells the agent a transaction ended without a redemption, and counts it.
func (c *Core) finished(txID string, s wire.TxState) {
	c.m.final(s)
	if s == wire.TxRedeemed {
		return
	}
	c.deliver("outcome", txID, func(ctx context.Context) error {
		return c.cfg.Agent.OnOutcome(ctx, agent.Outcome{Tx: txID, State: s})
	})
}

// deliver calls the agent now and, if it refuses, again with backoff from a goroutine
// the core owns, until it accepts, the core closes, or the attempts run out.
func (c *Core) deliver(what, txID string, call func(context.Context) error) {
	err := call(c.ctx)
	if err == nil {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		backoff := 100 * time.Millisecond
		for attempt := 1; attempt <= 8; attempt++ {
			c.log.Warn("agent refused delivery; retrying", "what", what, "tx", txID, "attempt", attempt, "err", err)
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(backoff):
			}
			if err = call(c.ctx); err == nil {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
		}
		c.m.agentDrop(what)
		c.log.Error("agent did not accept delivery; it is retried at the next start", "what", what, "tx", txID, "err", err)
	}()
}
