package clienttest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// helloLocked opens a session for the device on conn after its hello: it answers
// hello.ok (resuming when the hello presents the device's resume token), replaces
// the device's previous session, and re-sends what the device has not acknowledged.
// It reports whether conn is still the device's session afterwards.
func (g *Gateway) helloLocked(d *device, h *wire.Hello, conn deviceConn) bool {
	d.hellos = append(d.hellos, *h)
	d.promptAudio = h.PromptAudio
	if old := d.conn; old != nil && old != conn {
		old.end(wire.CodeReplaced)
	}
	resumed := h.Resume != "" && h.Resume == d.resume
	if !resumed {
		d.session, d.resume = newID("ses"), newID("res")
	}
	from := d.acked
	if resumed && !g.ignoreAcks && h.LastAck > from {
		from = min(h.LastAck, d.nextSeq)
	}
	if g.ignoreAcks {
		from = 0
	}
	d.conn = conn
	ok := &wire.HelloOK{Session: d.session, Resume: d.resume, Resumed: resumed, Heartbeat: g.cfg.Heartbeat,
		MaxFrame: wire.MaxFrameBytes, LastSeq: d.nextSeq}
	g.sendLocked(d, "", ok)
	for seq := from + 1; seq <= d.nextSeq; seq++ {
		if f := d.history[seq]; f != nil && d.conn != nil {
			_ = g.writeLocked(d, f) // a failed write closes the connection
		}
	}
	return d.conn == conn
}

// Offer makes the fake agent propose the purchase that text names (a key of
// Config.Offers) to a device, as an agent does when a watched price is met: the
// device is prompted whether or not it is connected, and gets the prompt when it
// comes back. It returns the transaction id.
func (g *Gateway) Offer(deviceID, text string) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.devices[deviceID]
	if d == nil {
		return "", fmt.Errorf("clienttest: unknown device %s", deviceID)
	}
	offer, ok := g.cfg.Offers[strings.ToLower(strings.TrimSpace(text))]
	if !ok {
		return "", fmt.Errorf("clienttest: no offer for %q", text)
	}
	return g.proposeLocked(d, "", offer).id, nil
}

func (g *Gateway) uplinkLocked(d *device, env wire.Envelope) {
	switch env.Type {
	case wire.TypeAck:
		a := new(wire.Ack)
		if wire.DecodeBody(env, a) == nil && !g.ignoreAcks && a.Seq > d.acked {
			d.acked = min(a.Seq, d.nextSeq)
		}
	case wire.TypeUtterance:
		u := new(wire.Utterance)
		if err := wire.DecodeBody(env, u); err != nil {
			g.refuseLocked(d, env.ID, "", wire.CodeBadRequest, err.Error())
			return
		}
		if t := g.byRef(d, env.ID); t != nil {
			// A repeat (the client sends unanswered utterances again in a new session):
			// say where its transaction stands, as the gateway does.
			_, _ = g.pushLocked(d, &wire.TxResult{Tx: t.id, State: t.state, Mandate: t.mandate, Ref: t.ref})
			return
		}
		g.utteranceLocked(d, env.ID, u)
	case wire.TypeConfirm:
		c := new(wire.Confirm)
		if err := wire.DecodeBody(env, c); err != nil {
			g.refuseLocked(d, env.ID, "", wire.CodeBadRequest, err.Error())
			return
		}
		g.confirmLocked(d, env.ID, c)
	case wire.TypeTxStatus:
		s := new(wire.TxStatus)
		if err := wire.DecodeBody(env, s); err != nil {
			g.refuseLocked(d, env.ID, "", wire.CodeBadRequest, err.Error())
			return
		}
		t := g.txs[s.Tx]
		if t == nil || t.device != d.id {
			g.refuseLocked(d, env.ID, s.Tx, wire.CodeUnknownTx, "no such transaction")
			return
		}
		_, _ = g.pushLocked(d, g.resultLocked(t)) // valid by construction
	case wire.TypeTxCancel:
		c := new(wire.TxCancel)
		if err := wire.DecodeBody(env, c); err != nil {
			g.refuseLocked(d, env.ID, "", wire.CodeBadRequest, err.Error())
			return
		}
		g.cancelLocked(d, env.ID, c)
	case wire.TypePINSet:
		p := new(wire.PINSet)
		if err := wire.DecodeBody(env, p); err != nil {
			g.refuseLocked(d, env.ID, "", wire.CodeBadRequest, err.Error())
			return
		}
		g.setPINLocked(d, env.ID, p)
	case wire.TypeAudioStart, wire.TypeAudioEnd:
		g.audioEventLocked(d, env)
	case wire.TypePing:
		g.sendLocked(d, "", &wire.Pong{})
	case wire.TypeHello:
		g.refuseLocked(d, env.ID, "", wire.CodeBadRequest, "hello twice")
	}
}

func (g *Gateway) utteranceLocked(d *device, ref string, u *wire.Utterance) {
	offer, ok := g.cfg.Offers[strings.ToLower(strings.TrimSpace(u.Text))]
	if !ok || !u.PTT {
		t := &tx{id: newID("tx"), device: d.id, ref: ref, state: wire.TxRejected}
		g.txs[t.id] = t
		code := wire.CodeNotUnderstood
		if ok {
			code = wire.CodeRefused
		}
		_, _ = g.pushLocked(d, &wire.TxResult{Tx: t.id, State: t.state, Code: code, Reason: "Sorry, I did not get that.", Ref: ref}) // valid by construction
		return
	}
	g.proposeLocked(d, ref, offer)
}

// proposeLocked creates a transaction for offer and prompts the device.
func (g *Gateway) proposeLocked(d *device, ref string, offer Offer) *tx {
	t := &tx{id: newID("tx"), device: d.id, ref: ref, state: wire.TxReceived}
	g.txs[t.id] = t
	t.terms = wire.Terms{
		Tx: t.id, Device: d.id, Session: d.session, Merchant: offer.Merchant,
		Items: slices.Clone(offer.Items), Currency: offer.Currency, Kind: wire.KindOneOff, Nonce: newID("n"),
	}
	for _, it := range offer.Items {
		t.terms.Total += it.UnitAmount * wire.Amount(it.Qty)
	}
	ttl := g.cfg.PromptTTL
	if g.steppedUp(d, t.terms.Total) {
		ttl = g.cfg.StepUpTTL
	}
	t.terms.ExpiresAt = time.Now().Add(ttl).UnixMilli()
	t.hash, _ = t.terms.Hash() // the fake's terms always canonicalise
	t.methods = []wire.Method{wire.MethodTap}
	if d.kind == "glasses" {
		t.methods = append(t.methods, wire.MethodVoice)
	}
	req := &wire.ConfirmRequest{Tx: t.id, Terms: t.terms, Hash: t.hash, Methods: t.methods, Ref: ref,
		Text: fmt.Sprintf("Pay %s %s?", offer.Merchant.Name, wire.Money(t.terms.Total, t.terms.Currency))}
	if code := g.stepUpLocked(d, t, req); code != wire.CodeUnknown {
		t.state = wire.TxRejected
		_, _ = g.pushLocked(d, &wire.TxResult{Tx: t.id, State: t.state, Code: code, Ref: ref, // valid by construction
			Reason: "This purchase needs a stronger check that is not set up."})
		return t
	}
	if g.tamper != nil {
		g.tamper(req)
	}
	t.state = wire.TxPrompted
	if _, err := g.pushLocked(d, req); err != nil {
		t.state = wire.TxFailed
		return t
	}
	for _, id := range t.approvers {
		_, _ = g.pushLocked(g.devices[id], req) // the user's phones (listed just now); valid: encoded for d
	}
	g.speakLocked(d, req)
	var timer *time.Timer
	timer = time.AfterFunc(ttl, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.timers, timer)
		if g.closed || t.state != wire.TxPrompted {
			return
		}
		t.state = wire.TxExpired
		_, _ = g.pushLocked(d, &wire.TxResult{Tx: t.id, State: t.state, Code: wire.CodeChallengeExpired, Ref: t.ref}) // valid by construction
	})
	g.timers[timer] = true
	return t
}

func (g *Gateway) confirmLocked(d *device, ref string, c *wire.Confirm) {
	t := g.txs[c.Tx]
	// A phone answers the prompts of the user's other devices it was sent.
	phone := t != nil && t.device != d.id && slices.Contains(t.approvers, d.id)
	var code wire.Code
	switch {
	case t == nil || (t.device != d.id && !phone):
		code = wire.CodeUnknownTx
	case t.state == wire.TxExpired:
		code = wire.CodeChallengeExpired
	case t.state != wire.TxPrompted:
		code = wire.CodeAlreadyDecided
	case c.Hash != t.hash:
		code = wire.CodeChallengeMismatch
	case identity.VerifyConfirm(d.pub, d.id, c) != nil:
		code = wire.CodeBadSignature
	case c.Decision == wire.DecisionApprove && !slices.Contains(t.methods, c.Method),
		phone != (c.Method == wire.MethodPhone):
		code = wire.CodeMethodNotAllowed
	}
	if code != wire.CodeUnknown {
		g.refuseLocked(d, ref, c.Tx, code, "confirmation refused")
		return
	}
	if c.Decision == wire.DecisionApprove && c.Method == wire.MethodPIN && !g.checkPINLocked(d, ref, t, c) {
		return
	}
	d.confirms = append(d.confirms, *c)
	owner := g.devices[t.device]
	if owner == nil { // forgotten
		return
	}
	if c.Decision == wire.DecisionDecline {
		t.state = wire.TxDeclined
		_, _ = g.pushLocked(owner, &wire.TxResult{Tx: t.id, State: t.state, Ref: t.ref}) // valid by construction
	} else {
		t.state, t.mandate = wire.TxMandated, newID("mnd")
		_, _ = g.pushLocked(owner, &wire.TxResult{Tx: t.id, State: t.state, Mandate: t.mandate, Ref: t.ref}) // valid by construction
		t.state = wire.TxRedeemed
		_, _ = g.pushLocked(owner, g.resultLocked(t))
	}
	if phone {
		// As the gateway does: the phone hears how its answer ended, unsequenced.
		g.sendLocked(d, "", g.resultLocked(t))
	}
}

// resultLocked is the tx.result of t's current state.
func (g *Gateway) resultLocked(t *tx) *wire.TxResult {
	r := &wire.TxResult{Tx: t.id, State: t.state, Mandate: t.mandate, Ref: t.ref}
	if t.state == wire.TxRedeemed || t.state == wire.TxCancelling || t.state == wire.TxCancelled {
		r.Amount, r.Currency = t.terms.Total, t.terms.Currency
	}
	return r
}

// refuseLocked answers an uplink message with an error (no seq).
func (g *Gateway) refuseLocked(d *device, ref, txID string, code wire.Code, msg string) {
	e := wire.NewError(code, msg)
	e.Ref, e.Tx = ref, txID
	g.sendLocked(d, "", e)
}

// pushLocked assigns the next seq, records the frame and sends it if connected.
func (g *Gateway) pushLocked(d *device, b wire.Body) (uint64, error) {
	frame, err := wire.Encode(wire.Envelope{ID: newID("d"), Device: d.id, Session: d.session, Seq: d.nextSeq + 1,
		TS: time.Now().UnixMilli()}, b)
	if err != nil {
		return 0, err
	}
	d.nextSeq++
	d.history[d.nextSeq] = frame
	switch {
	case d.conn != nil:
		_ = g.writeLocked(d, frame) // a failed write closes the connection; the frame waits for a resume
	case d.persistent && g.mqtt != nil:
		// The device is away, but the broker keeps its session: it queues the
		// message, and the device gets it again on resume too.
		g.mqtt.publish(wire.DownlinkTopic(d.id), frame, false)
	}
	return d.nextSeq, nil
}

// sendLocked sends a message without a seq (hello.ok, errors, pongs).
func (g *Gateway) sendLocked(d *device, id string, b wire.Body) {
	frame, err := wire.Encode(wire.Envelope{ID: id, Device: d.id, Session: d.session, TS: time.Now().UnixMilli()}, b)
	if err != nil || d.conn == nil {
		return
	}
	_ = g.writeLocked(d, frame) // as in pushLocked
}

func (g *Gateway) writeLocked(d *device, frame []byte) error {
	if err := d.conn.write(frame); err != nil {
		d.conn.end(wire.CodeUnknown) // a WebSocket reader returns
		d.conn = nil
		return err
	}
	return nil
}

// byRef returns the device's transaction made from the utterance with id ref, or nil.
func (g *Gateway) byRef(d *device, ref string) *tx {
	for _, t := range g.txs {
		if t.device == d.id && t.ref == ref && ref != "" {
			return t
		}
	}
	return nil
}
