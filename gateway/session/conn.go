package session

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
)

// Conn is one device connection attached to the core. Its methods are called from the
// transport's reader goroutine, and Handle also from the speech layer's recognition
// goroutine (gateway/voice hands a recognised command over as an utterance): every
// state change is a store transaction and the session fields are guarded by mu, so
// concurrent calls are safe. flush may also run from other goroutines.
type Conn struct {
	core *Core
	dev  registry.Device
	t    Transport
	log  *slog.Logger

	mu      sync.Mutex // guards session and sent, and orders flushes
	session string     // set by hello
	sent    uint64     // newest seq written to this connection
	gone    bool
}

// Device returns the connection's device.
func (cn *Conn) Device() registry.Device { return cn.dev }

// Detach unregisters the connection; call it once when the transport ends.
func (cn *Conn) Detach() {
	cn.mu.Lock()
	cn.gone = true
	cn.mu.Unlock()
	cn.core.detach(cn)
}

// Handle processes one uplink frame. Request errors are answered on the connection
// with an error message; the returned error, if any, is a *wire.Error whose code is a
// disconnect code: the transport must close the connection with it.
func (cn *Conn) Handle(ctx context.Context, frame []byte) error {
	env, err := wire.Decode(frame)
	if err != nil {
		code := wire.CodeBadRequest
		switch {
		case errors.Is(err, wire.ErrFrameTooLarge):
			return wire.NewError(wire.CodeFrameTooLarge, err.Error())
		case errors.Is(err, wire.ErrVersion):
			code = wire.CodeUnsupportedVersion
		case errors.Is(err, wire.ErrTooLarge):
			code = wire.CodeTooLarge
		}
		cn.core.m.refused(code)
		cn.reply(env.ID, wire.NewError(code, err.Error()))
		return nil
	}
	if !env.Known() {
		return nil // unknown types are ignored (protocol rule)
	}
	body := wire.NewBody(env.Type)
	if err := wire.DecodeBody(env, body); err != nil {
		code := wire.CodeBadRequest
		switch {
		case errors.Is(err, wire.ErrBadAmount):
			code = wire.CodeBadAmount
		case errors.Is(err, wire.ErrTooLarge):
			code = wire.CodeTooLarge
		}
		cn.core.m.refused(code)
		cn.reply(env.ID, &wire.Error{Code: code, Message: err.Error(), Ref: env.ID})
		return nil
	}
	if _, ok := body.(*wire.Hello); !ok && !cn.helloDone() {
		return wire.NewError(wire.CodeProtocolViolation, "the first message must be hello")
	}
	switch b := body.(type) {
	case *wire.Hello:
		return cn.hello(ctx, b)
	case *wire.Utterance:
		err = cn.utterance(ctx, env.ID, b)
	case *wire.Confirm:
		err = cn.confirm(ctx, b)
	case *wire.TxStatus:
		err = cn.status(ctx, b)
	case *wire.TxCancel:
		err = cn.cancel(ctx, b)
	case *wire.PINSet:
		err = cn.setPIN(ctx, env.ID, b)
	case *wire.Ack:
		err = cn.core.update(ctx, func(txn kv.Txn, _ func(string)) error {
			return ack(txn, cn.dev.ID, b.Seq, cn.core.cfg.Now())
		})
	case *wire.Ping:
		cn.send(&wire.Pong{}, "")
	case *wire.Pong:
	default:
		err = wire.NewError(wire.CodeBadRequest, "a device does not send "+string(env.Type))
	}
	var we *wire.Error
	switch {
	case err == nil:
	case errors.As(err, &we):
		if we.Code.Disconnect() {
			return we
		}
		cn.core.m.refused(we.Code)
		e := *we
		e.Ref = env.ID
		cn.reply(env.ID, &e)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		// The connection or the gateway is going away: the device retries after it
		// reconnects (an ack, an utterance and a confirm are all idempotent).
		cn.log.Debug("message not handled: shutting down", "type", env.Type, "err", err)
	default:
		cn.log.Error("handling message", "type", env.Type, "err", err)
		cn.reply(env.ID, wire.NewError(wire.CodeInternal, "the gateway could not handle the message; retry"))
	}
	return nil
}

// Ready reports whether the device's hello was accepted: the session is open.
func (cn *Conn) Ready() bool { return cn.helloDone() }

func (cn *Conn) helloDone() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.session != ""
}

// reply sends a direct (unsequenced) error.
func (cn *Conn) reply(ref string, e *wire.Error) {
	e.Ref = ref
	e.Retry = e.Code.Retryable()
	cn.send(e, ref)
}

// send writes a direct, unsequenced message: replies that need no resume.
func (cn *Conn) send(b wire.Body, ref string) {
	frame, err := wire.Encode(wire.Envelope{ID: ref, Device: cn.dev.ID, TS: cn.core.cfg.Now().UnixMilli()}, b)
	if err != nil {
		cn.log.Error("encoding reply", "type", b.Type(), "err", err)
		return
	}
	if err := cn.t.Send(frame); err != nil {
		cn.log.Debug("reply not sent", "type", b.Type(), "err", err)
	}
}

func hashResume(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (cn *Conn) hello(ctx context.Context, h *wire.Hello) error {
	c := cn.core
	if cn.helloDone() {
		return wire.NewError(wire.CodeProtocolViolation, "hello sent twice")
	}
	var (
		ok      wire.HelloOK
		lastAck uint64
	)
	resumeTok := c.randomID("rt_")
	newSession := c.randomID("ses_")
	err := c.update(ctx, func(txn kv.Txn, touch func(string)) error {
		s, err := loadState(txn, cn.dev.ID)
		if err != nil {
			return err
		}
		now := c.cfg.Now()
		resumed := h.Resume != "" && s.Session != "" &&
			subtle.ConstantTimeCompare([]byte(hashResume(h.Resume)), []byte(s.ResumeHash)) == 1
		ok = wire.HelloOK{Resumed: resumed, Heartbeat: int(c.cfg.Heartbeat.Seconds()), MaxFrame: wire.MaxFrameBytes}
		if resumed {
			ok.Session, ok.Resume = s.Session, h.Resume
			ackTo := min(h.LastAck, s.LastSeq)
			if err := ack(txn, cn.dev.ID, max(ackTo, s.LastAck), now); err != nil {
				return err
			}
			if s, err = loadState(txn, cn.dev.ID); err != nil {
				return err
			}
		} else {
			s.Session, s.ResumeHash = newSession, hashResume(resumeTok)
			ok.Session, ok.Resume = newSession, resumeTok
			if err := rebindPrompts(txn, c, cn.dev.ID, newSession, now, touch); err != nil {
				return err
			}
			if s, err = loadState(txn, cn.dev.ID); err != nil { // rebinding may enqueue
				return err
			}
			s.Session, s.ResumeHash = newSession, hashResume(resumeTok)
		}
		s.Updated = now
		lastAck, ok.LastSeq = s.LastAck, s.LastSeq
		if cn.dev.Kind == registry.KindPhone {
			// From now on the phone approves the user's stepped-up purchases.
			if err := txn.Set(phoneKey(cn.dev.User, cn.dev.ID), nil); err != nil {
				return err
			}
		} else if err := txn.Set(lastDevKey(cn.dev.User), []byte(cn.dev.ID)); err != nil {
			return err // where an agent's own purchase requests are asked (agentside.go)
		}
		return saveState(txn, s)
	})
	if err != nil {
		cn.log.Error("hello", "err", err)
		return wire.NewError(wire.CodeServerError, "could not open the session")
	}
	cn.log.Info("session open", "session", ok.Session, "resumed", ok.Resumed, "last_ack", lastAck, "last_seq", ok.LastSeq)
	// hello.ok goes out under the lock that orders flushes, so no re-sent frame can
	// overtake it.
	cn.mu.Lock()
	cn.session, cn.sent = ok.Session, lastAck
	cn.send(&ok, "")
	cn.mu.Unlock()
	cn.flush(ctx)
	return nil
}

// flush writes every outbox frame newer than what this connection has sent, in order.
func (cn *Conn) flush(ctx context.Context) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.session == "" || cn.gone {
		return
	}
	var (
		seqs   []uint64
		frames [][]byte
	)
	err := cn.core.cfg.Store.View(ctx, func(txn kv.Txn) (err error) {
		seqs, frames, err = pending(txn, cn.dev.ID, cn.sent)
		return err
	})
	if err != nil {
		cn.log.Error("reading outbox", "err", err)
		return
	}
	for i, f := range frames {
		if err := cn.t.Send(f); err != nil {
			cn.log.Warn("downlink not sent", "seq", seqs[i], "err", err)
			return // the transport applied its overflow policy; resume will re-send
		}
		cn.sent = seqs[i]
		cn.core.m.downlink()
	}
}

func (cn *Conn) currentSession() string {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.session
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
