package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/earshot/earshot/authz/audit"
	"github.com/earshot/earshot/authz/risk"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
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
	// Conditions are required by the kinds price_target, recurring and tip (see
	// wire.Kind); on a tip, Parent is the transaction tipped.
	Conditions *wire.Conditions `json:"conditions,omitempty"`
	Summary    string           `json:"summary,omitempty"`
	// User and Device, for a purchase the agent starts itself (Tx empty): the user
	// asked, and optionally which of the user's devices shows the prompt (default:
	// the glasses or kiosk the user connected last). The gateway then picks the tx id.
	User   string `json:"user,omitempty"`
	Device string `json:"device,omitempty"`
	// Supersedes is, for a modified order, the transaction whose unredeemed order this
	// one replaces: once the user approves, the old mandate is superseded by the new
	// one atomically, and the old transaction ends cancelled.
	Supersedes string `json:"supersedes,omitempty"`
}

// RequestPurchase turns an agent's proposal into a consent challenge and sends the
// prompt to the device. Repeating the same proposal returns the open transaction.
//
// The risk rules decide first, in the same store transaction: a refusal ends the
// transaction (rejected, code refused, the rules' reasons), a step-up asks for the
// stronger methods (the phone, a PIN). A tip inside the tip cap the user agreed to on
// the order's prompt is mandated at once, without a prompt.
func (c *Core) RequestPurchase(ctx context.Context, agentID string, pr PurchaseRequest) (*Tx, error) {
	if pr.Kind == "" {
		pr.Kind = wire.KindOneOff
	}
	var start *registry.Device // a purchase the agent starts itself
	if pr.Tx == "" {
		d, err := c.agentDevice(ctx, pr.User, pr.Device)
		if err != nil {
			return nil, err
		}
		start, pr.Tx = &d, c.randomID("tx_")
	} else if pr.User != "" || pr.Device != "" {
		return nil, fmt.Errorf("%w: user and device are only for a purchase without a tx", ErrInvalid)
	}
	if len(pr.Summary) > wire.MaxTextBytes/2 {
		return nil, fmt.Errorf("%w: summary of %d bytes, limit %d", ErrInvalid, len(pr.Summary), wire.MaxTextBytes/2)
	}
	var (
		out     *Tx
		outcome string         // "prompted", "granted", "refused", "open"
		decided *risk.Decision // counted once the transaction commits
	)
	err := c.update(ctx, func(txn kv.Txn, touch func(string)) error {
		out, outcome, decided = nil, "", nil
		t, err := loadTx(txn, pr.Tx)
		if start != nil && errors.Is(err, ErrUnknownTx) {
			t, err = c.openAgentTx(txn, agentID, pr.Tx, *start)
		}
		if err != nil {
			return err
		}
		if t.Agent != agentID {
			return ErrForbidden
		}
		if t.State == wire.TxPrompted && sameProposal(t.Challenge.Terms, pr) {
			out, outcome = t, "open"
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
			Total: pr.Total, Currency: pr.Currency, Kind: pr.Kind, Conditions: pr.Conditions,
			ExpiresAt: now.Add(c.cfg.ConsentTTL).UnixMilli(), Nonce: nonce,
		}
		if err := terms.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if pr.Supersedes != "" {
			if err := checkSuperseded(txn, t, pr.Supersedes); err != nil {
				return err
			}
			t.Supersedes = pr.Supersedes
		}
		var parent *Tx
		if terms.Kind == wire.KindTip {
			if parent, err = tipParent(txn, t, &terms); err != nil {
				return err
			}
		}
		d, err := c.decide(ctx, txn, t, &terms, now)
		if err != nil {
			return err
		}
		decided = &d
		t.Summary = pr.Summary
		if d.Outcome == risk.OutcomeRefuse {
			out, outcome = t, "refused"
			return c.refuse(txn, t, wire.NewError(wire.CodeRefused, reasonText(d)), reasonCodes(d), now, touch)
		}
		if parent != nil && d.Outcome == risk.OutcomeAllow {
			granted, err := c.grantTip(txn, t, parent, terms, now)
			if err != nil {
				return err
			}
			if granted {
				touch(t.Device)
				out, outcome = t, "granted"
				return nil
			}
		}
		methods, missing, err := stepUp(txn, t, d.Methods)
		if err != nil {
			return err
		}
		if missing != nil {
			out, outcome = t, "refused"
			return c.refuse(txn, t, missing, missing.Code.String(), now, touch)
		}
		ch, err := authz.NewChallenge(terms, methods, now)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if err := t.move(wire.TxRequested, now); err != nil {
			return err
		}
		if err := t.move(wire.TxPrompted, now); err != nil {
			return err
		}
		t.Challenge, t.Session, t.Prompt = &ch, s.Session, promptText(terms, methods, ch.Hash)
		if t.Supersedes != "" {
			t.Prompt = "Change your order: " + t.Prompt
		}
		if err := publish(txn, t, t.promptBody(), now); err != nil {
			return err
		}
		touch(t.Device)
		for _, phone := range t.Approvers {
			if _, err := enqueue(txn, phone, t.approvalBody(), now); err != nil {
				return err
			}
			touch(phone)
		}
		out, outcome = t, "prompted"
		return nil
	})
	if err != nil {
		return nil, err
	}
	if decided != nil {
		c.m.risk(*decided)
		switch {
		case decided.Outcome == risk.OutcomeStepUp && outcome == "prompted":
			c.log.Info("step-up", "tx", out.ID, "methods", out.Challenge.Methods, "reasons", reasonCodes(*decided),
				"detail", reasonText(*decided))
		case decided.Outcome == risk.OutcomeAllow:
			// Refusals are logged below, with the transaction's end.
			c.log.Debug("risk allowed", "tx", out.ID, "reasons", reasonCodes(*decided), "detail", reasonText(*decided))
		}
	}
	switch outcome {
	case "prompted":
		c.m.prompt()
		c.armExpiry(out.ID, time.UnixMilli(out.Challenge.Terms.ExpiresAt))
	case "granted":
		c.m.tip("cap")
	case "refused":
		c.log.Info("purchase refused", "tx", out.ID, "code", out.Code, "reason", out.Reason)
		c.finished(out.ID, out.State)
	}
	return out, nil
}

// agentDevice picks the device that shows the prompt of a purchase an agent starts:
// the user's device named, or the glasses or kiosk the user connected last.
func (c *Core) agentDevice(ctx context.Context, user, device string) (registry.Device, error) {
	uid, err := registry.UserID(user)
	if err != nil {
		return registry.Device{}, fmt.Errorf("%w: a purchase without a tx needs the user: %v", ErrInvalid, err)
	}
	if device == "" {
		err := c.cfg.Store.View(ctx, func(txn kv.Txn) error {
			v, err := txn.Get(lastDevKey(uid))
			device = string(v)
			return err
		})
		if errors.Is(err, kv.ErrNotFound) {
			return registry.Device{}, fmt.Errorf("%w: %s has no glasses or kiosk that has connected", ErrNoDevice, uid)
		} else if err != nil {
			return registry.Device{}, err
		}
	}
	d, err := c.cfg.Registry.Device(ctx, device)
	switch {
	case errors.Is(err, registry.ErrUnknownDevice) || (err == nil && d.User != uid):
		return registry.Device{}, fmt.Errorf("%w: %s has no device %s", ErrInvalid, uid, device)
	case err != nil:
		return registry.Device{}, err
	case d.Revoked:
		return registry.Device{}, fmt.Errorf("%w: device %s is revoked", ErrNoDevice, device)
	case d.Kind == registry.KindPhone:
		return registry.Device{}, fmt.Errorf("%w: a phone approves; the prompt goes to the user's glasses or kiosk", ErrInvalid)
	}
	return d, nil
}

// openAgentTx opens the transaction of a purchase the agent starts. The agent asked, so
// there is no intent to tell it of.
func (c *Core) openAgentTx(txn kv.Txn, agentID, id string, d registry.Device) (*Tx, error) {
	s, err := loadState(txn, d.ID)
	if err != nil {
		return nil, err
	}
	if s.LastSeq-s.LastAck >= uint64(c.cfg.MaxUnacked) {
		return nil, fmt.Errorf("%w: the device has %d messages it has not taken", ErrNoDevice, s.LastSeq-s.LastAck)
	}
	now := c.cfg.Now()
	t := &Tx{
		ID: id, Device: d.ID, User: d.User, Session: s.Session, Agent: agentID, Origin: OriginAgent,
		State: wire.TxReceived, Told: wire.TxReceived, Created: now, Updated: now,
		History:    []Transition{{State: wire.TxReceived, At: now}},
		DeviceKind: string(d.Kind), Enrolled: d.EnrolledAt,
	}
	if err := txn.Set(txDevKey(d.ID, t.ID), nil); err != nil {
		return nil, err
	}
	return t, nil
}

// refuse ends a transaction before its prompt with the refusal e, tells the device,
// and appends a refusal to the audit trail.
func (c *Core) refuse(txn kv.Txn, t *Tx, e *wire.Error, codes string, now time.Time, touch func(string)) error {
	t.Code, t.Reason = e.Code, e.Message
	if err := t.move(wire.TxRejected, now); err != nil {
		return err
	}
	if err := publish(txn, t, t.result(), now); err != nil {
		return err
	}
	touch(t.Device)
	return c.appendAudit(txn, audit.Record{Kind: audit.KindRefusal, Tx: t.ID, Device: t.Device, User: t.User,
		Agent: t.Agent, State: e.Code.String(), Detail: map[string]string{"rules": codes}})
}

// checkSuperseded checks the order a modification replaces: the same user, device and
// agent, and a mandate not redeemed yet (a paid order is changed by cancelling it).
func checkSuperseded(txn kv.Txn, t *Tx, old string) error {
	o, err := loadTx(txn, old)
	if errors.Is(err, ErrUnknownTx) {
		return fmt.Errorf("%w: the superseded transaction %s does not exist", ErrInvalid, old)
	} else if err != nil {
		return err
	}
	switch {
	case o.User != t.User || o.Device != t.Device || o.Agent != t.Agent:
		return fmt.Errorf("%w: the superseded transaction is another device's or agent's", ErrInvalid)
	case o.State != wire.TxMandated || o.terms().Kind == wire.KindTip:
		return fmt.Errorf("%w: only an approved order not paid yet can be modified; it is %s", ErrTxState, o.State)
	}
	return nil
}

// tipParent loads and checks the order a tip is for: the same user and agent, a
// mandate that was redeemed, the same merchant and currency.
func tipParent(txn kv.Txn, t *Tx, terms *wire.Terms) (*Tx, error) {
	p, err := loadTx(txn, terms.Conditions.Parent)
	if errors.Is(err, ErrUnknownTx) {
		return nil, fmt.Errorf("%w: the tipped transaction %s does not exist", ErrInvalid, terms.Conditions.Parent)
	} else if err != nil {
		return nil, err
	}
	pt := p.terms()
	switch {
	case p.User != t.User || p.Agent != t.Agent:
		return nil, fmt.Errorf("%w: the tipped transaction is another user's or agent's", ErrInvalid)
	case p.Mandate == "" || pt.Kind != wire.KindOneOff:
		return nil, fmt.Errorf("%w: only a paid one-off order can be tipped", ErrInvalid)
	case p.State != wire.TxRedeemed && p.State != wire.TxSettled:
		return nil, fmt.Errorf("%w: a tip follows the order's payment; the order is %s", ErrTxState, p.State)
	case pt.Merchant.ID != terms.Merchant.ID || pt.Currency != terms.Currency:
		return nil, fmt.Errorf("%w: a tip goes to the order's merchant, in its currency", ErrInvalid)
	}
	return p, nil
}

// grantTip mandates a tip without a prompt when the tip cap the user agreed to on the
// parent order's prompt covers it; it reports false (and changes nothing) when it does
// not, and the tip gets a prompt of its own.
func (c *Core) grantTip(txn kv.Txn, t, parent *Tx, terms wire.Terms, now time.Time) (bool, error) {
	left, err := c.ledger.TipAllowance(txn, parent.Mandate)
	if err != nil {
		if authz.CodeOf(err) != authz.CodeUnknown {
			return false, nil // the parent cannot take a tip on its cap; ask the user
		}
		return false, err
	}
	if left < terms.Total {
		return false, nil
	}
	pe, err := authz.GetEntry(txn, parent.Mandate)
	if err != nil {
		return false, err
	}
	claims, err := authz.TipClaims(pe.Claims, t.ID, terms.Total, c.cfg.Issuer, now, c.cfg.MandateTTL, c.cfg.Rand)
	if err != nil {
		return false, err
	}
	token, err := c.cfg.Keys.Sign(claims)
	if err != nil {
		return false, err
	}
	if err := c.ledger.RecordTip(txn, claims, true); err != nil {
		if authz.CodeOf(err) != authz.CodeUnknown {
			return false, nil
		}
		return false, err
	}
	if err := t.move(wire.TxRequested, now); err != nil {
		return false, err
	}
	if err := t.move(wire.TxMandated, now); err != nil {
		return false, err
	}
	terms.Items = []wire.Item{{SKU: "tip", Name: "Tip", Qty: 1, UnitAmount: terms.Total}}
	t.Granted, t.Mandate, t.MandateToken, t.MandateExp = &terms, claims.ID, token, claims.Expiry
	t.Reason = fmt.Sprintf("Tip of %s added, within the %s you allowed.", wire.Money(terms.Total, terms.Currency),
		wire.Money(parent.terms().Conditions.TipCap, terms.Currency))
	if err := c.noteSpend(txn, t, terms.Total, terms.Currency, now); err != nil {
		return false, err
	}
	if err := c.appendAudit(txn, audit.Record{Kind: audit.KindConsent, Tx: t.ID, Device: t.Device, User: t.User,
		Agent: t.Agent, Payee: terms.Merchant.ID, Amount: int64(terms.Total), Currency: terms.Currency,
		TermsHash: pe.Claims.ConsentHash, State: string(wire.DecisionApprove),
		Detail: map[string]string{"method": "tip_cap", "parent": parent.ID}}); err != nil {
		return false, err
	}
	return true, publish(txn, t, t.result(), now)
}

// noteSpend adds an issued mandate to the spend index the daily cap reads.
// It also makes t the device's latest order, the one "cancel my order" cancels.
func (c *Core) noteSpend(txn kv.Txn, t *Tx, amount wire.Amount, currency string, now time.Time) error {
	t.SpendKey = string(spendKey(t.User, currency, now, t.ID))
	if err := txn.Set(latestKey(t.Device), []byte(t.ID)); err != nil {
		return err
	}
	return txn.Set([]byte(t.SpendKey), []byte(strconv.FormatInt(int64(amount), 10)))
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

// promptText is what the device shows or speaks: the same merchant, items, amounts
// and conditions as the signed terms, in words, and how to approve.
func promptText(t wire.Terms, methods []wire.Method, hash string) string {
	var b strings.Builder
	money := func(a wire.Amount) string { return wire.Money(a, t.Currency) }
	day := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2 January 2006") }
	c := t.Conditions
	switch t.Kind {
	case wire.KindPriceTarget:
		fmt.Fprintf(&b, "Buy from %s, when the price is at most %s (until %s): ", t.Merchant.Name, money(t.Total), day(c.Until))
	case wire.KindRecurring:
		fmt.Fprintf(&b, "Pay %s up to %s every %s, at most %s a %s", t.Merchant.Name, money(t.Total), c.Every, money(c.PeriodCap), c.Every)
		if c.Times > 0 {
			fmt.Fprintf(&b, ", %d %s", c.Times, plural(c.Times, "time", "times"))
		}
		fmt.Fprintf(&b, ", until %s, for ", day(c.Until))
	case wire.KindTip:
		fmt.Fprintf(&b, "Tip %s %s", t.Merchant.Name, money(t.Total))
	default:
		fmt.Fprintf(&b, "Pay %s %s for ", t.Merchant.Name, money(t.Total))
	}
	if t.Kind != wire.KindTip {
		for i, it := range t.Items {
			if i > 0 {
				b.WriteString(", ")
			}
			line := fmt.Sprintf("%d x %s", it.Qty, it.Name)
			if len(it.Options) > 0 {
				line += " (" + strings.Join(it.Options, ", ") + ")"
			}
			if b.Len()+len(line) > wire.MaxTextBytes-160 {
				fmt.Fprintf(&b, "and %d more", len(t.Items)-i)
				break
			}
			b.WriteString(line)
		}
	}
	b.WriteString("?")
	if c != nil && c.TipCap > 0 {
		fmt.Fprintf(&b, " A tip of up to %s may be added afterwards.", money(c.TipCap))
	}
	b.WriteString(" " + howToApprove(methods, hash))
	return b.String()
}

// howToApprove is the prompt's last sentence, from its methods.
func howToApprove(methods []wire.Method, hash string) string {
	has := func(m wire.Method) bool { return slices.Contains(methods, m) }
	switch {
	case has(wire.MethodPhone):
		return "Approve on your phone: code " + wire.BindingCode(hash) + "."
	case has(wire.MethodPIN):
		return "Enter your PIN to approve."
	case has(wire.MethodVoice) && has(wire.MethodTap):
		return "Say confirm or tap to approve."
	case has(wire.MethodVoice):
		return "Say confirm to approve."
	}
	return "Tap to approve."
}

// promptBody is the device's confirm.request.
func (t *Tx) promptBody() *wire.ConfirmRequest {
	r := &wire.ConfirmRequest{Tx: t.ID, Terms: t.Challenge.Terms, Hash: t.Challenge.Hash, Text: t.Prompt,
		Methods: t.Challenge.Methods, Ref: t.Ref}
	if slices.Contains(r.Methods, wire.MethodPhone) {
		r.Binding = wire.BindingCode(r.Hash)
	}
	if slices.Contains(r.Methods, wire.MethodPIN) {
		r.PINSalt = t.PINSalt
	}
	return r
}

// approvalBody is the confirm.request the user's phone gets for t (decoupled
// approval): the same terms and hash, the binding code, and only MethodPhone.
func (t *Tx) approvalBody() *wire.ConfirmRequest {
	terms := t.Challenge.Terms
	text := strings.TrimSuffix(t.Prompt, " "+howToApprove(t.Challenge.Methods, t.Challenge.Hash))
	return &wire.ConfirmRequest{Tx: t.ID, Terms: terms, Hash: t.Challenge.Hash, Methods: []wire.Method{wire.MethodPhone},
		Binding: wire.BindingCode(t.Challenge.Hash), Text: text + " Code " + wire.BindingCode(t.Challenge.Hash) + ": approve?"}
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
		c.staged.fire()
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
	t.Amount, t.Currency, t.Redemption = e.Redemption.Amount, e.Redemption.Currency, e.Redemption.ID
	t.Code, t.Reason = 0, ""
	switch e.Claims.Kind {
	case wire.KindRecurring:
		t.Payments = len(e.Payments)
		t.Reason = paymentText(e)
		if e.State == authz.StateIssued {
			// A subscription's payment: the mandate stays open for the next one. The
			// device hears of each payment with the mandate's state unchanged.
			if err := saveTx(txn, t); err != nil {
				return err
			}
			r := c.resultOf(t, e)
			r.Amount, r.Currency = e.Redemption.Amount, e.Redemption.Currency
			_, err := enqueue(txn, t.Device, r, now)
			return err
		}
	case wire.KindPriceTarget:
		t.Reason = fmt.Sprintf("Your price target was met: bought for %s (at most %s).",
			wire.Money(e.Redemption.Amount, e.Redemption.Currency), wire.Money(e.Claims.AmountCap, e.Claims.Currency))
	}
	if err := t.move(wire.TxRedeemed, now); err != nil {
		return err
	}
	return publish(txn, t, c.resultOf(t, e), now)
}

// paymentText says which payment of a subscription was just made.
func paymentText(e *authz.Entry) string {
	n := len(e.Payments)
	s := fmt.Sprintf("Payment %d", n)
	if times := e.Claims.Constraints.Times; times > 0 {
		s += fmt.Sprintf(" of %d", times)
	}
	return s + ": " + wire.Money(e.Redemption.Amount, e.Redemption.Currency) + "."
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

// finished counts a transaction that reached a final state (or cancelling). Its
// agent hears of it from its event log.
func (c *Core) finished(_ string, s wire.TxState) { c.m.final(s) }
