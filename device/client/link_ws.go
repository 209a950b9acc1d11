package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot/earshot/device/wire"
)

// wsDialer dials the gateway's WebSocket device endpoint (protocol §2, WebSocket):
// the device token goes in the upgrade's Authorization header, and a refused upgrade
// is an RFC 9457 problem.
type wsDialer struct {
	url          string
	dialer       *websocket.Dialer
	writeTimeout time.Duration
}

var _ dialer = (*wsDialer)(nil)

func (d *wsDialer) dial(ctx context.Context, token string) (link, error) {
	conn, resp, err := d.dialer.DialContext(ctx, d.url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		if resp != nil {
			return nil, dialError(resp)
		}
		return nil, fmt.Errorf("client: dial: %w", err)
	}
	if p := conn.Subprotocol(); p != wire.Subprotocol {
		_ = conn.Close() // refused below; nothing more to say to this peer
		return nil, fmt.Errorf("%w: gateway selected subprotocol %q, want %q", ErrProtocol, p, wire.Subprotocol)
	}
	conn.SetReadLimit(wire.MaxFrameBytes)
	return &wsLink{conn: conn, writeTimeout: d.writeTimeout}, nil
}

// wsLink is one WebSocket connection: text frames, one envelope each.
type wsLink struct {
	conn         *websocket.Conn
	writeTimeout time.Duration
	writeMu      sync.Mutex // gorilla allows one writer at a time
	closeOnce    sync.Once

	idle time.Duration // read deadline after traffic; set by started, then read-only
}

var _ link = (*wsLink)(nil)

func (l *wsLink) write(ctx context.Context, frame []byte) error {
	return l.writeMessage(ctx, websocket.TextMessage, frame)
}

func (l *wsLink) writeAudio(ctx context.Context, frame []byte) error {
	return l.writeMessage(ctx, websocket.BinaryMessage, frame)
}

func (l *wsLink) writeMessage(ctx context.Context, mt int, frame []byte) error {
	deadline := time.Now().Add(l.writeTimeout) // network deadlines use the wall clock
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.conn.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := l.conn.WriteMessage(mt, frame); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (l *wsLink) read(deadline time.Time) (wire.Envelope, error) {
	if deadline.IsZero() && l.idle > 0 {
		deadline = time.Now().Add(l.idle)
	}
	if err := l.conn.SetReadDeadline(deadline); err != nil {
		return wire.Envelope{}, err
	}
	for {
		mt, data, err := l.conn.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return wire.Envelope{}, fmt.Errorf("%w: %w", errTimeout, err)
			}
			return wire.Envelope{}, err
		}
		if mt == websocket.BinaryMessage {
			return wire.Envelope{Type: typeAudioFrame, Body: data}, nil // prompt speech
		}
		if mt != websocket.TextMessage {
			continue
		}
		env, err := wire.Decode(data)
		if err != nil {
			return env, &undecodable{bytes: len(data), err: err}
		}
		return env, nil
	}
}

func (l *wsLink) helloReady() error { return nil }
func (l *wsLink) helloSent()        {}
func (l *wsLink) persistent() bool  { return false }
func (l *wsLink) alive() bool       { return true } // a failed read says otherwise

// started arms the heartbeat: the gateway pings every heartbeat_s, so a link silent
// for two of them (and some slack) is dead.
func (l *wsLink) started(ok *wire.HelloOK) {
	if ok.Heartbeat > 0 {
		l.idle = 2*time.Duration(ok.Heartbeat)*time.Second + 5*time.Second
	}
	extend := func() {
		var t time.Time // zero: no deadline
		if l.idle > 0 {
			t = time.Now().Add(l.idle)
		}
		_ = l.conn.SetReadDeadline(t) // a failure here shows up as a read error
	}
	l.conn.SetPingHandler(func(data string) error {
		extend()
		err := l.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	l.conn.SetPongHandler(func(string) error { extend(); return nil })
}

// close sends a normal close frame (best effort) and closes the connection.
func (l *wsLink) close() {
	l.closeOnce.Do(func() {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
		// Best effort: the peer may be gone already, and then there is nobody to tell.
		_ = l.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = l.conn.Close() // as above
	})
}

func (l *wsLink) abort() {
	_ = l.conn.NetConn().Close() // the reader sees the error; nothing else to do
}

// wsDisconnect reads the close code of a WebSocket error.
func wsDisconnect(err error) (wire.Code, string, bool) {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return wire.CodeUnknown, "", false
	}
	if ce.Code == websocket.CloseAbnormalClosure || ce.Code == websocket.CloseNoStatusReceived {
		return wire.CodeUnknown, ce.Text, true // no close frame was received
	}
	return wire.Code(ce.Code), ce.Text, true
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
