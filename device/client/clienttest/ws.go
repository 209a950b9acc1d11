package clienttest

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// serveDevice authenticates the upgrade, then runs the device's session on the
// handler's goroutine until the connection ends.
func (g *Gateway) serveDevice(w http.ResponseWriter, r *http.Request) {
	d, status, code, detail := g.authenticate(r)
	if code != "" {
		writeProblem(w, status, code, detail)
		return
	}
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}, ReadBufferSize: 1024, WriteBufferSize: 1024}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader already answered
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		_ = conn.Close() // shutting down
		return
	}
	g.handlers.Add(1)
	g.mu.Unlock()
	defer g.handlers.Done()
	defer conn.Close()
	conn.SetReadLimit(wire.MaxFrameBytes)
	if !g.hello(d, conn) {
		return
	}
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			break
		}
		if mt != websocket.TextMessage {
			continue
		}
		env, err := wire.Decode(data)
		if err != nil {
			g.mu.Lock()
			g.sendLocked(d, "", wire.NewError(wire.CodeBadRequest, err.Error()))
			g.mu.Unlock()
			continue
		}
		g.mu.Lock()
		d.uplinks[env.Type]++
		g.uplinkLocked(d, env)
		g.mu.Unlock()
	}
	g.mu.Lock()
	if d.conn == conn {
		d.conn = nil
	}
	g.mu.Unlock()
}

func (g *Gateway) authenticate(r *http.Request) (d *device, status int, code, detail string) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, http.StatusUnauthorized, wire.CodeInvalidToken.String(), "bearer device token required"
	}
	claims, err := identity.ParseToken(token)
	if err != nil {
		return nil, http.StatusUnauthorized, wire.CodeInvalidToken.String(), err.Error()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	d = g.devices[claims.Subject]
	switch {
	case d == nil:
		return nil, http.StatusUnauthorized, wire.CodeUnknownDevice.String(), "device not enrolled"
	case d.revoked:
		return nil, http.StatusForbidden, wire.CodeDeviceRevoked.String(), "device revoked"
	}
	if _, err := identity.VerifyToken(token, d.pub, g.cfg.Audience, time.Now()); err != nil {
		if errors.Is(err, identity.ErrTokenExpired) {
			return nil, http.StatusUnauthorized, wire.CodeTokenExpired.String(), err.Error()
		}
		return nil, http.StatusUnauthorized, wire.CodeInvalidToken.String(), err.Error()
	}
	if g.nonces[claims.Nonce] {
		return nil, http.StatusUnauthorized, wire.CodeTokenReplayed.String(), "token nonce already used"
	}
	g.nonces[claims.Nonce] = true
	return d, 0, "", ""
}

// hello reads the device's hello, answers hello.ok, makes conn the device's
// connection and re-sends what the device has not acknowledged.
func (g *Gateway) hello(d *device, conn *websocket.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // a failure surfaces in ReadMessage
	_, data, err := conn.ReadMessage()
	if err != nil {
		return false
	}
	_ = conn.SetReadDeadline(time.Time{}) // as above
	env, err := wire.Decode(data)
	h := new(wire.Hello)
	if err == nil {
		err = wire.DecodeBody(env, h)
	}
	if err != nil {
		msg := websocket.FormatCloseMessage(int(wire.CodeProtocolViolation), "hello expected")
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)) // best effort
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	d.hellos = append(d.hellos, *h)
	if old := d.conn; old != nil {
		msg := websocket.FormatCloseMessage(int(wire.CodeReplaced), "replaced")
		_ = old.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)) // best effort
		_ = old.Close()                                                                // its reader returns
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
		r := &wire.TxResult{Tx: t.id, State: t.state, Mandate: t.mandate, Ref: t.ref}
		if t.state == wire.TxRedeemed {
			r.Amount, r.Currency = t.terms.Total, t.terms.Currency
		}
		_, _ = g.pushLocked(d, r) // valid by construction
	case wire.TypePing:
		g.sendLocked(d, "", &wire.Pong{})
	case wire.TypeHello:
		g.refuseLocked(d, env.ID, "", wire.CodeBadRequest, "hello twice")
	}
}

func (g *Gateway) utteranceLocked(d *device, ref string, u *wire.Utterance) {
	t := &tx{id: newID("tx"), device: d.id, ref: ref, state: wire.TxReceived}
	g.txs[t.id] = t
	offer, ok := g.cfg.Offers[strings.ToLower(strings.TrimSpace(u.Text))]
	if !ok || !u.PTT {
		t.state = wire.TxRejected
		code := wire.CodeNotUnderstood
		if ok {
			code = wire.CodeRefused
		}
		_, _ = g.pushLocked(d, &wire.TxResult{Tx: t.id, State: t.state, Code: code, Reason: "Sorry, I did not get that.", Ref: ref}) // valid by construction
		return
	}
	t.terms = wire.Terms{
		Tx: t.id, Device: d.id, Session: d.session, Merchant: offer.Merchant,
		Items: slices.Clone(offer.Items), Currency: offer.Currency, Kind: wire.KindOneOff,
		ExpiresAt: time.Now().Add(g.cfg.PromptTTL).UnixMilli(), Nonce: newID("n"),
	}
	for _, it := range offer.Items {
		t.terms.Total += it.UnitAmount * wire.Amount(it.Qty)
	}
	t.hash, _ = t.terms.Hash() // the fake's terms always canonicalise
	t.methods = []wire.Method{wire.MethodTap}
	if d.kind == "glasses" {
		t.methods = append(t.methods, wire.MethodVoice)
	}
	req := &wire.ConfirmRequest{Tx: t.id, Terms: t.terms, Hash: t.hash, Methods: t.methods,
		Text: fmt.Sprintf("Pay %s %s?", offer.Merchant.Name, wire.Money(t.terms.Total, t.terms.Currency))}
	if g.tamper != nil {
		g.tamper(req)
	}
	t.state = wire.TxPrompted
	if _, err := g.pushLocked(d, req); err != nil {
		t.state = wire.TxFailed
		return
	}
	var timer *time.Timer
	timer = time.AfterFunc(g.cfg.PromptTTL, func() {
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
}

func (g *Gateway) confirmLocked(d *device, ref string, c *wire.Confirm) {
	t := g.txs[c.Tx]
	var code wire.Code
	switch {
	case t == nil || t.device != d.id:
		code = wire.CodeUnknownTx
	case t.state == wire.TxExpired:
		code = wire.CodeChallengeExpired
	case t.state != wire.TxPrompted:
		code = wire.CodeAlreadyDecided
	case c.Hash != t.hash:
		code = wire.CodeChallengeMismatch
	case identity.VerifyConfirm(d.pub, d.id, c) != nil:
		code = wire.CodeBadSignature
	case !slices.Contains(t.methods, c.Method):
		code = wire.CodeMethodNotAllowed
	}
	if code != wire.CodeUnknown {
		g.refuseLocked(d, ref, c.Tx, code, "confirmation refused")
		return
	}
	d.confirms = append(d.confirms, *c)
	if c.Decision == wire.DecisionDecline {
		t.state = wire.TxDeclined
		_, _ = g.pushLocked(d, &wire.TxResult{Tx: t.id, State: t.state, Ref: t.ref}) // valid by construction
		return
	}
	t.state, t.mandate = wire.TxMandated, newID("mnd")
	_, _ = g.pushLocked(d, &wire.TxResult{Tx: t.id, State: t.state, Mandate: t.mandate, Ref: t.ref}) // valid by construction
	t.state = wire.TxRedeemed
	_, _ = g.pushLocked(d, &wire.TxResult{Tx: t.id, State: t.state, Mandate: t.mandate, // valid by construction
		Amount: t.terms.Total, Currency: t.terms.Currency, Ref: t.ref})
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
	if d.conn != nil {
		_ = g.writeLocked(d, frame) // a failed write closes the connection; the frame waits for a resume
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
	_ = d.conn.SetWriteDeadline(time.Now().Add(2 * time.Second)) // surfaces in WriteMessage
	if err := d.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		_ = d.conn.Close() // its reader returns
		d.conn = nil
		return err
	}
	return nil
}
