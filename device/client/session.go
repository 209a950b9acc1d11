package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// maxTokenRefusals is how many refused MQTT CONNECTs in a row end the reconnect loop.
// MQTT 3.1.1's CONNACK (return code 4 or 5) cannot say why a token was refused: an
// expired or replayed token is fixed by the fresh token every attempt mints, while an
// invalid token, an unknown or a revoked device is not. A few attempts tell the two
// apart without hammering the broker forever.
const maxTokenRefusals = 3

// connect dials a new link and says hello on it.
func (c *Client) connect(ctx context.Context, initial bool) (link, *wire.HelloOK, error) {
	token, err := c.cfg.Key.Token(c.cfg.Audience, c.cfg.Now(), 0)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	l, err := c.dialer.dial(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	c.stats.links.Add(1)
	if !c.setLive(l) {
		l.close()
		return nil, nil, ErrClosed
	}
	ok, err := c.handshake(ctx, l, initial)
	if err != nil {
		c.drop(l)
		return nil, nil, err
	}
	return l, ok, nil
}

// handshake sends hello (with the resume token and last ack when the client has them)
// and waits for hello.ok. Over MQTT, where the link outlives sessions, hello is sent
// again when no hello.ok comes within HelloTimeout or the gateway's epoch changes,
// and nothing is sent while the gateway is offline (Dial fails then with
// ErrGatewayOffline). Messages that arrive before hello.ok are dropped: the gateway
// re-sends after hello.ok whatever was not acknowledged.
func (c *Client) handshake(ctx context.Context, l link, initial bool) (*wire.HelloOK, error) {
	stop := context.AfterFunc(ctx, l.abort) // read does not watch ctx
	defer stop()
	hellos := make(map[string]bool)
	send, waiting := true, false
	for {
		if send {
			send = false
			if err := l.helloReady(); err != nil {
				if initial {
					return nil, fmt.Errorf("client: %w", ErrGatewayOffline)
				}
				waiting = true
			} else {
				id, err := c.sendHello(ctx, l)
				if err != nil {
					return nil, fmt.Errorf("client: hello: %w", err)
				}
				hellos[id], waiting = true, false
			}
		}
		var deadline time.Time
		if !waiting {
			deadline = time.Now().Add(c.cfg.HelloTimeout)
		}
		if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
			deadline = d
		}
		env, err := l.read(deadline)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: hello: %w", ctx.Err())
		}
		var se *sessionEnd
		var ud *undecodable
		switch {
		case err == nil:
		case errors.Is(err, errTimeout):
			if !l.persistent() || waiting {
				return nil, fmt.Errorf("client: hello: no hello.ok: %w", err)
			}
			c.log.Debug("no hello.ok in time; sending hello again")
			send = true
			continue
		case errors.Is(err, errGatewayRestarted):
			send = true
			continue
		case errors.Is(err, errGatewayOffline):
			if initial {
				return nil, fmt.Errorf("client: %w", ErrGatewayOffline)
			}
			waiting = true
			continue
		case errors.As(err, &ud):
			c.log.Warn("undecodable frame dropped", "bytes", ud.bytes, "err", ud.err)
			continue
		case errors.As(err, &se):
			if hellos[se.ref] || (se.ref == "" && !se.code.Reconnect()) {
				return nil, &DialError{Code: se.code.String(), Detail: se.reason}
			}
			// About an earlier message or session (the broker kept it): this hello
			// stands.
			c.noteRetry(se)
			c.log.Debug("session end before hello.ok ignored", "code", se.code, "ref", se.ref)
		default:
			return nil, fmt.Errorf("client: hello: %w", err)
		}
		switch env.Type {
		case wire.TypeHelloOK:
			ok := new(wire.HelloOK)
			if err := wire.DecodeBody(env, ok); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			c.applyHello(ok)
			l.started(ok)
			return ok, nil
		case wire.TypeError:
			e := new(wire.Error)
			if err := wire.DecodeBody(env, e); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if hellos[e.Ref] || (e.Ref == "" && !l.persistent()) {
				return nil, fmt.Errorf("client: hello refused: %w", e)
			}
			c.early(env)
		case wire.TypePing, wire.TypePong:
		default:
			c.early(env)
		}
	}
}

func (c *Client) early(env wire.Envelope) {
	c.stats.early.Add(1)
	c.log.Debug("message before hello.ok dropped", "type", env.Type, "seq", env.Seq)
}

func (c *Client) sendHello(ctx context.Context, l link) (string, error) {
	c.mu.Lock()
	h := &wire.Hello{Client: c.cfg.Client, Resume: c.resume, LastAck: c.lastAck, PromptAudio: c.cfg.PromptAudio}
	c.mu.Unlock()
	id := c.cfg.NewID()
	frame, err := wire.Encode(wire.Envelope{ID: id, TS: c.cfg.Now().UnixMilli()}, h)
	if err != nil {
		return "", err
	}
	l.helloSent()
	if err := l.write(ctx, frame); err != nil {
		return "", err
	}
	c.stats.hellos.Add(1)
	return id, nil
}

// applyHello records the session.
func (c *Client) applyHello(ok *wire.HelloOK) {
	c.mu.Lock()
	c.session, c.resume, c.resumed = ok.Session, ok.Resume, ok.Resumed
	c.mu.Unlock()
	if !ok.Resumed && ok.LastSeq < c.lastAck {
		// The gateway's counter went back (its data was reset): forget what we saw, or
		// every new message would look like a duplicate.
		c.log.Info("gateway seq went back; resetting", "last_ack", c.lastAck, "last_seq", ok.LastSeq)
		c.lastAck = ok.LastSeq
	}
	c.log.Info("connected", "session", ok.Session, "resumed", ok.Resumed)
}

// run owns the session: it reads, delivers and acknowledges, and resumes or
// reconnects after the session ends.
func (c *Client) run(l link, ok *wire.HelloOK) {
	defer close(c.done)
	defer close(c.events)
	for l != nil {
		if !c.emit(Event{Type: wire.TypeHelloOK, HelloOK: ok}) {
			c.finish(l, ErrClosed)
			return
		}
		c.retry(l)
		err := c.readLoop(l)
		c.sessionDown()
		if c.ctx.Err() != nil {
			c.finish(l, ErrClosed)
			return
		}
		info := disconnectInfo(err)
		info.Reconnecting = c.cfg.Reconnect && info.Code.Reconnect()
		c.log.Info("disconnected", "code", info.Code, "reason", info.Reason, "reconnecting", info.Reconnecting, "err", err)
		if !info.Reconnecting {
			c.finish(l, fmt.Errorf("%w: %w", ErrDisconnected, err))
			c.emit(Event{Type: EventDisconnected, Disconnected: &info})
			return
		}
		if !l.persistent() || !l.alive() {
			c.drop(l)
			l = nil
		}
		if !c.emit(Event{Type: EventDisconnected, Disconnected: &info}) {
			c.finish(l, ErrClosed)
			return
		}
		l, ok = c.recover(l)
	}
}

// recover starts a new session after one ended: on l when the link outlives sessions
// and is still up (MQTT), else on a new link, with backoff before every attempt,
// until it succeeds, the client closes, or the gateway refuses for a reason a new
// attempt cannot fix. It returns nil in the last two cases, having stopped the client.
func (c *Client) recover(l link) (link, *wire.HelloOK) {
	refusals := 0
	for n := 0; ; n++ {
		if !c.pause(l, c.cfg.backoff(n)) {
			c.finish(l, ErrClosed)
			return nil, nil
		}
		if l != nil && !l.alive() {
			c.drop(l)
			l = nil
		}
		var ok *wire.HelloOK
		var err error
		if l != nil {
			ok, err = c.handshake(c.ctx, l, false)
		} else {
			l, ok, err = c.connect(c.ctx, false)
		}
		if err == nil {
			if c.sessionUp(l) {
				return l, ok
			}
			c.finish(l, ErrClosed)
			return nil, nil
		}
		if c.ctx.Err() != nil {
			c.finish(l, ErrClosed)
			return nil, nil
		}
		if info, final := refusal(err, &refusals); final {
			c.log.Warn("reconnect refused; stopping", "code", info.Code, "err", err)
			c.finish(l, fmt.Errorf("%w: %w", ErrDisconnected, err))
			c.emit(Event{Type: EventDisconnected, Disconnected: &info})
			return nil, nil
		}
		c.log.Debug("reconnect failed", "attempt", n+1, "err", err)
	}
}

// pause waits d before the next attempt, or returns false when the client closes.
// A link that stays up is read meanwhile, so that the broker is never held up;
// what arrives is dropped, as anything before hello.ok is.
func (c *Client) pause(l link, d time.Duration) bool {
	if l == nil || !l.alive() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-c.ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	deadline := time.Now().Add(d)
	for {
		env, err := l.read(deadline)
		var se *sessionEnd
		switch {
		case c.ctx.Err() != nil:
			return false
		case errors.Is(err, errTimeout):
			return true
		case err == nil:
			c.early(env)
		case errors.As(err, &se):
			c.noteRetry(se)
		case !signal(err):
			return true // the link failed; the caller dials a new one
		}
	}
}

// refusal reports whether a failed attempt should not be repeated.
func refusal(err error, tokenRefusals *int) (DisconnectInfo, bool) {
	var de *DialError
	if errors.As(err, &de) {
		info := DisconnectInfo{Code: de.WireCode(), Reason: de.Detail, Err: err}
		if de.tokenRefused() {
			*tokenRefusals++
			return info, *tokenRefusals >= maxTokenRefusals
		}
		return info, !de.retryable()
	}
	info := disconnectInfo(err)
	if code, _, ok := wsDisconnect(err); ok && !code.Reconnect() {
		return info, true
	}
	return info, errors.Is(err, ErrProtocol) || errors.Is(err, ErrRefused)
}

// readLoop reads the session's downlinks until it ends.
func (c *Client) readLoop(l link) error {
	for {
		env, err := l.read(time.Time{})
		var ud *undecodable
		if errors.As(err, &ud) {
			c.log.Warn("undecodable frame dropped", "bytes", ud.bytes, "err", ud.err)
			continue
		}
		if err != nil {
			var se *sessionEnd
			if errors.As(err, &se) {
				c.noteRetry(se)
			}
			return err
		}
		if err := c.handle(l, env); err != nil {
			return err
		}
	}
}

// noteRetry remembers an uplink the gateway refused with no_session.
func (c *Client) noteRetry(se *sessionEnd) {
	if se.code == wire.CodeNoSession && se.ref != "" && len(c.retryIDs) < maxRecent {
		c.retryIDs = append(c.retryIDs, se.ref)
	}
}

// retry sends again, in the new session, what the gateway refused with no_session
// (protocol §2, MQTT: "send hello (resume), then retry the message"). The gateway
// deduplicates utterances by id; confirms and acks are idempotent.
func (c *Client) retry(l link) {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	ids := c.retryIDs
	for _, id := range c.pending(gen) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	for _, frame := range c.recall(ids) {
		if err := l.write(c.ctx, frame); err != nil {
			c.log.Debug("retry not sent", "err", err)
			break
		}
		c.stats.retried.Add(1)
	}
	c.retryIDs = c.retryIDs[:0]
}

// handle delivers one downlink message once and acknowledges it.
func (c *Client) handle(l link, env wire.Envelope) error {
	if env.Seq > 0 && env.Seq <= c.lastAck {
		c.stats.duplicates.Add(1)
		c.log.Debug("duplicate dropped", "seq", env.Seq, "type", env.Type)
		return c.ack(l, c.lastAck)
	}
	if env.Type == wire.TypeHelloOK {
		// The answer to a hello sent again (MQTT): the session continues.
		if ok := new(wire.HelloOK); wire.DecodeBody(env, ok) == nil {
			c.applyHello(ok)
		}
		return nil
	}
	ev, deliver := c.event(l, env)
	switch {
	case ev.TxResult != nil:
		c.answered(ev.TxResult.Ref)
	case ev.ConfirmRequest != nil:
		c.answered(ev.ConfirmRequest.Ref)
	case ev.Error != nil:
		c.answered(ev.Error.Ref)
	}
	if deliver && !c.emit(ev) {
		return ErrClosed
	}
	if env.Seq == 0 {
		return nil
	}
	c.lastAck = env.Seq
	return c.ack(l, env.Seq)
}

func (c *Client) ack(l link, seq uint64) error {
	frame, err := wire.Encode(wire.Envelope{TS: c.cfg.Now().UnixMilli()}, &wire.Ack{Seq: seq})
	if err != nil {
		return err
	}
	return l.write(c.ctx, frame)
}

// event turns a downlink message into an Event, or reports that there is none to
// deliver.
func (c *Client) event(l link, env wire.Envelope) (Event, bool) {
	ev := Event{Type: env.Type, Seq: env.Seq}
	var body wire.Body
	switch env.Type {
	case wire.TypeConfirmRequest:
		ev.ConfirmRequest = new(wire.ConfirmRequest)
		body = ev.ConfirmRequest
	case wire.TypeTxResult:
		ev.TxResult = new(wire.TxResult)
		body = ev.TxResult
	case wire.TypeError:
		ev.Error = new(wire.Error)
		body = ev.Error
	case wire.TypeSpeechResult:
		ev.SpeechResult = new(wire.SpeechResult)
		body = ev.SpeechResult
	case wire.TypeTurnMetrics:
		ev.TurnMetrics = new(wire.TurnMetrics)
		body = ev.TurnMetrics
	case wire.TypePINSetOK:
		ev.PINSetOK = new(wire.PINSetOK)
		body = ev.PINSetOK
	case wire.TypeNotice:
		ev.Notice = new(wire.Notice)
		body = ev.Notice
	case wire.TypePromptAudio:
		pa := new(wire.PromptAudio)
		if err := wire.DecodeBody(env, pa); err != nil {
			c.log.Warn("invalid prompt.audio", "err", err)
			return ev, false
		}
		c.prompts.begin(pa, &c.stats)
		return ev, false
	case typeAudioFrame:
		ps := c.prompts.frame(env.Body, &c.stats, c.log)
		if ps == nil {
			return ev, false
		}
		return Event{Type: wire.TypePromptAudio, PromptAudio: ps}, true
	case wire.TypePing:
		frame, err := wire.Encode(wire.Envelope{ID: c.cfg.NewID(), TS: c.cfg.Now().UnixMilli()}, &wire.Pong{})
		if err == nil {
			err = l.write(c.ctx, frame)
		}
		if err != nil {
			c.log.Debug("pong not sent", "err", err)
		}
		return ev, false
	default:
		return ev, false // pong, uplink types and types newer than this client
	}
	if err := wire.DecodeBody(env, body); err != nil {
		c.log.Warn("invalid downlink body", "seq", env.Seq, "type", env.Type, "err", err)
		return Event{Type: env.Type, Seq: env.Seq, Err: err}, true
	}
	if r := ev.SpeechResult; r != nil {
		c.heard(r.Stream)
	}
	if r := ev.ConfirmRequest; r != nil {
		if _, seen := c.seenTx[r.Tx]; seen {
			c.log.Debug("prompt already delivered", "tx", r.Tx, "seq", env.Seq)
			return ev, false
		}
		c.seenTx[r.Tx] = struct{}{}
		c.txOrder = append(c.txOrder, r.Tx)
		if len(c.txOrder) > maxSeenTx {
			delete(c.seenTx, c.txOrder[0])
			c.txOrder = c.txOrder[1:]
		}
	}
	return ev, true
}

// disconnectInfo describes why a session ended.
func disconnectInfo(err error) DisconnectInfo {
	info := DisconnectInfo{Err: err}
	var se *sessionEnd
	switch code, reason, ok := wsDisconnect(err); {
	case ok:
		info.Code, info.Reason = code, reason
	case errors.As(err, &se):
		info.Code, info.Reason = se.code, se.reason
	case errors.Is(err, errGatewayRestarted):
		info.Reason = "the gateway restarted"
	case errors.Is(err, errGatewayOffline):
		info.Reason = "the gateway went offline"
	}
	return info
}
