package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot/earshot/device/wire"
)

// connect dials, sends hello (with the resume token and last ack when the client has
// them) and waits for hello.ok.
func (c *Client) connect(ctx context.Context) (*websocket.Conn, *wire.HelloOK, error) {
	token, err := c.cfg.Key.Token(c.cfg.Audience, c.cfg.Now(), 0)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	conn, resp, err := c.cfg.Dialer.DialContext(ctx, c.cfg.URL, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		if resp != nil {
			return nil, nil, dialError(resp)
		}
		return nil, nil, fmt.Errorf("client: dial: %w", err)
	}
	ok, err := c.hello(ctx, conn)
	if err != nil {
		c.closeConn(conn, websocket.CloseNormalClosure, "")
		return nil, nil, err
	}
	return conn, ok, nil
}

func (c *Client) hello(ctx context.Context, conn *websocket.Conn) (*wire.HelloOK, error) {
	if p := conn.Subprotocol(); p != wire.Subprotocol {
		return nil, fmt.Errorf("%w: gateway selected subprotocol %q, want %q", ErrProtocol, p, wire.Subprotocol)
	}
	conn.SetReadLimit(wire.MaxFrameBytes)
	// ReadMessage does not watch ctx: closing the connection unblocks it.
	stop := context.AfterFunc(ctx, func() { _ = conn.NetConn().Close() }) // the error surfaces in ReadMessage
	defer stop()

	c.mu.Lock()
	h := &wire.Hello{Client: c.cfg.Client, Resume: c.resume, LastAck: c.lastAck}
	c.mu.Unlock()
	frame, err := wire.Encode(wire.Envelope{ID: c.cfg.NewID(), TS: c.cfg.Now().UnixMilli()}, h)
	if err != nil {
		return nil, fmt.Errorf("client: hello: %w", err)
	}
	if err := c.write(ctx, conn, frame); err != nil {
		return nil, fmt.Errorf("client: hello: %w", err)
	}
	deadline := time.Now().Add(c.cfg.HelloTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("client: hello: %w", err)
	}
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("client: hello: %w", ctx.Err())
			}
			return nil, fmt.Errorf("client: hello: %w", err)
		}
		if mt != websocket.TextMessage {
			continue
		}
		env, err := wire.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%w: hello: %w", ErrProtocol, err)
		}
		switch env.Type {
		case wire.TypeHelloOK:
			ok := new(wire.HelloOK)
			if err := wire.DecodeBody(env, ok); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			c.applyHello(conn, ok)
			return ok, nil
		case wire.TypeError:
			e := new(wire.Error)
			if err := wire.DecodeBody(env, e); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			return nil, fmt.Errorf("client: hello refused: %w", e)
		case wire.TypePing, wire.TypePong:
		default:
			if env.Known() {
				return nil, fmt.Errorf("%w: %s before hello.ok", ErrProtocol, env.Type)
			}
		}
	}
}

// applyHello records the session and arms the read deadline for the heartbeat.
func (c *Client) applyHello(conn *websocket.Conn, ok *wire.HelloOK) {
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
	idle := time.Duration(0)
	if ok.Heartbeat > 0 {
		// Two missed heartbeats and some slack: the link is dead.
		idle = 2*time.Duration(ok.Heartbeat)*time.Second + 5*time.Second
	}
	extend := func() {
		var t time.Time // zero: no deadline
		if idle > 0 {
			t = time.Now().Add(idle)
		}
		_ = conn.SetReadDeadline(t) // a failure here shows up as a read error
	}
	extend()
	conn.SetPingHandler(func(data string) error {
		extend()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	conn.SetPongHandler(func(string) error { extend(); return nil })
	c.extend = extend
}

// run owns the connection: it reads, delivers and acknowledges, and reconnects.
func (c *Client) run(conn *websocket.Conn, ok *wire.HelloOK) {
	defer close(c.done)
	defer close(c.events)
	for conn != nil {
		if !c.emit(Event{Type: wire.TypeHelloOK, HelloOK: ok}) {
			c.closeConn(conn, websocket.CloseNormalClosure, "bye")
			c.stop(ErrClosed)
			return
		}
		err := c.readLoop(conn)
		c.dropConn()
		_ = conn.Close() // already failed or closed; nothing to report
		if c.ctx.Err() != nil {
			c.stop(ErrClosed)
			return
		}
		info := disconnectInfo(err)
		info.Reconnecting = c.cfg.Reconnect && info.Code.Reconnect()
		c.log.Info("disconnected", "code", info.Code, "reason", info.Reason, "reconnecting", info.Reconnecting, "err", err)
		if !info.Reconnecting {
			c.stop(fmt.Errorf("%w: %w", ErrDisconnected, err))
			c.emit(Event{Type: EventDisconnected, Disconnected: &info})
			return
		}
		if !c.emit(Event{Type: EventDisconnected, Disconnected: &info}) {
			c.stop(ErrClosed)
			return
		}
		conn, ok = c.reconnect()
	}
}

// reconnect dials with backoff until it connects, the client closes, or the gateway
// refuses for a reason a new attempt cannot fix. It returns nil in the last two cases,
// having stopped the client.
func (c *Client) reconnect() (*websocket.Conn, *wire.HelloOK) {
	for n := 0; ; n++ {
		t := time.NewTimer(c.cfg.backoff(n))
		select {
		case <-c.ctx.Done():
			t.Stop()
			c.stop(ErrClosed)
			return nil, nil
		case <-t.C:
		}
		conn, ok, err := c.connect(c.ctx)
		if err == nil {
			if c.setConn(conn) {
				return conn, ok
			}
			c.closeConn(conn, websocket.CloseNormalClosure, "bye")
			c.stop(ErrClosed)
			return nil, nil
		}
		if c.ctx.Err() != nil {
			c.stop(ErrClosed)
			return nil, nil
		}
		if info, final := refusal(err); final {
			c.log.Warn("reconnect refused; stopping", "code", info.Code, "err", err)
			c.stop(fmt.Errorf("%w: %w", ErrDisconnected, err))
			c.emit(Event{Type: EventDisconnected, Disconnected: &info})
			return nil, nil
		}
		c.log.Debug("reconnect failed", "attempt", n+1, "err", err)
	}
}

// refusal reports whether a failed connection attempt should not be retried.
func refusal(err error) (DisconnectInfo, bool) {
	var de *DialError
	if errors.As(err, &de) {
		return DisconnectInfo{Code: de.WireCode(), Reason: de.Detail, Err: err}, !de.retryable()
	}
	info := disconnectInfo(err)
	var ce *websocket.CloseError
	if errors.As(err, &ce) && !info.Code.Reconnect() {
		return info, true
	}
	if errors.Is(err, ErrProtocol) {
		return info, true
	}
	return info, false
}

func (c *Client) readLoop(conn *websocket.Conn) error {
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		if c.extend != nil {
			c.extend()
		}
		if mt != websocket.TextMessage {
			continue // binary frames carry audio, which this client does not take
		}
		env, err := wire.Decode(data)
		if err != nil {
			c.log.Warn("undecodable frame dropped", "bytes", len(data), "err", err)
			continue
		}
		if err := c.handle(conn, env); err != nil {
			return err
		}
	}
}

// handle delivers one downlink message once and acknowledges it.
func (c *Client) handle(conn *websocket.Conn, env wire.Envelope) error {
	if env.Seq > 0 && env.Seq <= c.lastAck {
		c.log.Debug("duplicate dropped", "seq", env.Seq, "type", env.Type)
		return c.ack(conn, c.lastAck)
	}
	ev, deliver := c.event(conn, env)
	if deliver && !c.emit(ev) {
		return ErrClosed
	}
	if env.Seq == 0 {
		return nil
	}
	c.lastAck = env.Seq
	return c.ack(conn, env.Seq)
}

func (c *Client) ack(conn *websocket.Conn, seq uint64) error {
	frame, err := wire.Encode(wire.Envelope{TS: c.cfg.Now().UnixMilli()}, &wire.Ack{Seq: seq})
	if err != nil {
		return err
	}
	return c.write(c.ctx, conn, frame)
}

// event turns a downlink message into an Event, or reports that there is none to
// deliver.
func (c *Client) event(conn *websocket.Conn, env wire.Envelope) (Event, bool) {
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
	case wire.TypeHelloOK:
		ev.HelloOK = new(wire.HelloOK)
		body = ev.HelloOK
	case wire.TypePing:
		frame, err := wire.Encode(wire.Envelope{ID: c.cfg.NewID(), TS: c.cfg.Now().UnixMilli()}, &wire.Pong{})
		if err == nil {
			err = c.write(c.ctx, conn, frame)
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

func disconnectInfo(err error) DisconnectInfo {
	info := DisconnectInfo{Err: err}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		info.Code, info.Reason = wire.Code(ce.Code), ce.Text
		if ce.Code == websocket.CloseAbnormalClosure || ce.Code == websocket.CloseNoStatusReceived {
			info.Code = wire.CodeUnknown // no close frame was received
		}
	}
	return info
}

// dialError turns a refused upgrade into a *DialError from its problem body.
func dialError(resp *http.Response) error {
	defer resp.Body.Close()
	p := readProblem(resp)
	return &DialError{Status: resp.StatusCode, Code: p.Code, Detail: p.Detail}
}

// problem is an RFC 9457 problem document.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

func readProblem(resp *http.Response) problem {
	var p problem
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err == nil {
		err = json.Unmarshal(body, &p)
	}
	if err != nil || p.Code == "" && p.Detail == "" {
		p.Detail = http.StatusText(resp.StatusCode)
		if len(body) > 0 && len(body) < 200 && err != nil {
			p.Detail = string(body)
		}
	}
	if p.Detail == "" {
		p.Detail = p.Title
	}
	return p
}
