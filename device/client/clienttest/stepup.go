package clienttest

import (
	"fmt"
	"slices"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// maxPINTries is how many wrong PINs close a transaction, as at the gateway.
const maxPINTries = 3

// stepUpLocked makes req, the prompt of t for device d, need the phone or the PIN when
// its total is above Config.StepUpAbove: on glasses methods [phone], the binding code
// and every phone of the user as approvers; on a kiosk methods [pin] and the user's
// PIN salt. It returns no_phone or no_pin when the user has none, else CodeUnknown.
func (g *Gateway) stepUpLocked(d *device, t *tx, req *wire.ConfirmRequest) wire.Code {
	if !g.steppedUp(d, t.terms.Total) {
		return wire.CodeUnknown
	}
	switch d.kind {
	case "glasses":
		t.approvers = g.phonesLocked(d.user)
		if len(t.approvers) == 0 {
			return wire.CodeNoPhone
		}
		t.methods = []wire.Method{wire.MethodPhone}
		req.Binding = wire.BindingCode(t.hash)
		req.Text += " Approve on your phone: code " + req.Binding + "."
	case "kiosk":
		p, ok := g.pins[d.user]
		if !ok {
			return wire.CodeNoPIN
		}
		t.methods = []wire.Method{wire.MethodPIN}
		req.PINSalt = p.Salt
		req.Text += " Enter your PIN to approve."
	}
	req.Methods = t.methods
	return wire.CodeUnknown
}

// steppedUp reports whether a purchase of total on d needs the phone or the PIN.
func (g *Gateway) steppedUp(d *device, total wire.Amount) bool {
	return g.cfg.StepUpAbove > 0 && total > g.cfg.StepUpAbove && (d.kind == "glasses" || d.kind == "kiosk")
}

// phonesLocked lists the ids of user's enrolled phones that are not revoked.
func (g *Gateway) phonesLocked(user string) []string {
	var out []string
	for _, d := range g.devices {
		if d.kind == "phone" && d.user == user && !d.revoked {
			out = append(out, d.id)
		}
	}
	slices.Sort(out)
	return out
}

// checkPINLocked verifies the PIN signature of an approval by PIN and reports whether
// it holds. A wrong PIN is answered with bad_pin; the third closes the transaction
// (tx.result rejected with pin_locked, then the error pin_locked).
func (g *Gateway) checkPINLocked(d *device, ref string, t *tx, c *wire.Confirm) bool {
	p, ok := g.pins[d.user]
	if !ok {
		g.refuseLocked(d, ref, t.id, wire.CodeNoPIN, "no PIN is set: set one on your phone")
		return false
	}
	pub, err := identity.DecodePublic(p.Pub)
	if err == nil && identity.VerifyPIN(pub, d.id, c) == nil {
		return true
	}
	t.pinFailures++
	if left := maxPINTries - t.pinFailures; left > 0 {
		tries := "tries"
		if left == 1 {
			tries = "try"
		}
		g.refuseLocked(d, ref, t.id, wire.CodeBadPIN, fmt.Sprintf("wrong PIN: %d %s left", left, tries))
		return false
	}
	t.state = wire.TxRejected
	const reason = "wrong PIN three times: the purchase is closed"
	_, _ = g.pushLocked(d, &wire.TxResult{Tx: t.id, State: t.state, Code: wire.CodePINLocked, Reason: reason, Ref: t.ref}) // valid by construction
	g.refuseLocked(d, ref, t.id, wire.CodePINLocked, reason)
	return false
}

// setPINLocked stores the user's PIN key from a phone and answers pin.set.ok.
func (g *Gateway) setPINLocked(d *device, ref string, p *wire.PINSet) {
	if d.kind != "phone" {
		g.refuseLocked(d, ref, "", wire.CodeBadRequest, "only the user's phone sets the PIN")
		return
	}
	if ref == "" {
		g.refuseLocked(d, ref, "", wire.CodeBadRequest, "pin.set needs an envelope id")
		return
	}
	g.pins[d.user] = *p
	_, _ = g.pushLocked(d, &wire.PINSetOK{Ref: ref}) // valid by construction
}

// cancelLocked answers tx.cancel: a redeemed purchase goes to cancelling, and the
// merchant confirms at once (cancelled); cancelling again is harmless; anything else
// is not_cancellable.
func (g *Gateway) cancelLocked(d *device, ref string, c *wire.TxCancel) {
	t := g.txs[c.Tx]
	switch {
	case t == nil || t.device != d.id:
		g.refuseLocked(d, ref, c.Tx, wire.CodeUnknownTx, "no such transaction")
	case t.state == wire.TxCancelling:
	case t.state == wire.TxPrompted:
		g.refuseLocked(d, ref, t.id, wire.CodeNotCancellable, "the prompt is still open: decline it instead")
	case t.state == wire.TxRedeemed:
		t.state = wire.TxCancelling
		_, _ = g.pushLocked(d, g.resultLocked(t)) // valid by construction
		t.state = wire.TxCancelled
		_, _ = g.pushLocked(d, g.resultLocked(t)) // valid by construction
	default:
		g.refuseLocked(d, ref, t.id, wire.CodeNotCancellable, "this purchase cannot be cancelled: "+string(t.state))
	}
}
