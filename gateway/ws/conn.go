package ws

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/voice"
	"github.com/gorilla/websocket"
)

// conn is one device connection. It implements voice.Transport.
type conn struct {
	srv  *Server
	ws   *websocket.Conn
	dev  registry.Device
	sc   *voice.Conn
	log  *slog.Logger
	ctx  context.Context // the connection's lifetime, for the core's work on its frames
	send chan outFrame   // bounded; see the package doc for the overflow policy
	// audio holds a token for every binary frame in send: audio may fill at most half
	// the queue, so events always find room while the device reads at all.
	audio chan struct{}
	done  chan struct{}

	once   sync.Once
	code   wire.Code // why the gateway closed it; set once before done is closed
	reason string
}

// outFrame is one queued frame: an event (text) or audio (binary).
type outFrame struct {
	b      []byte
	binary bool
}

var _ voice.Transport = (*conn)(nil)

func (c *conn) Kind() string { return "ws" }

// Send queues a frame without blocking.
func (c *conn) Send(frame []byte) error {
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	select {
	case c.send <- outFrame{b: frame}:
		return nil
	case <-c.done:
		return ErrClosed
	default:
		c.srv.m.Overflow.Inc()
		c.Close(wire.CodeSlowConsumer, "send queue overflowed")
		return ErrQueueFull
	}
}

// SendBinary queues an audio frame, waiting for room: audio is bulk, and a device that
// reads it slowly only delays its own prompt speech. Audio takes at most half the
// queue, so an event sent meanwhile (Send never waits) still finds room; only a device
// that stops reading altogether ends in a slow consumer close.
func (c *conn) SendBinary(ctx context.Context, frame []byte) error {
	select {
	case c.audio <- struct{}{}:
	case <-c.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case c.send <- outFrame{b: frame, binary: true}:
		return nil
	case <-c.done:
		return ErrClosed
	case <-ctx.Done():
		<-c.audio
		return ctx.Err()
	}
}

// sent gives back an audio frame's token once the writer took it from the queue.
func (c *conn) sent(f outFrame) {
	if f.binary {
		<-c.audio
	}
}

// Close asks the writer to send a close frame with the code and end the connection.
func (c *conn) Close(code wire.Code, reason string) {
	c.once.Do(func() {
		c.code, c.reason = code, reason
		close(c.done)
	})
}

// closeNow closes a connection whose goroutines never started.
func (c *conn) closeNow(code wire.Code, reason string) {
	c.Close(code, reason)
	c.writeClose()
	// The close frame is best effort; the socket is going away either way.
	_ = c.ws.Close()
}

func (c *conn) writeClose() {
	if c.code == wire.CodeUnknown {
		return
	}
	msg := websocket.FormatCloseMessage(int(c.code), truncate(c.reason, 120))
	// A peer that is gone cannot receive the close frame; nothing else to do.
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	c.srv.m.Closed.WithLabelValues(c.code.String()).Inc()
}

func (c *conn) readLoop() {
	defer c.srv.wg.Done()
	defer c.srv.untrack(c)
	defer c.sc.Detach()
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()

	c.ws.SetReadLimit(2 * wire.MaxFrameBytes)
	// Until hello, the deadline is the hello timeout; then every frame and pong
	// extends it by PongWait.
	_ = c.ws.SetReadDeadline(time.Now().Add(c.srv.cfg.HelloTimeout))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(c.srv.cfg.PongWait))
	})
	hello := false
	for {
		typ, frame, err := c.ws.ReadMessage()
		if err != nil {
			var ne interface{ Timeout() bool }
			switch {
			case errors.As(err, &ne) && ne.Timeout() && !hello:
				c.Close(wire.CodeHelloTimeout, "no hello in time")
			case errors.As(err, &ne) && ne.Timeout():
				c.Close(wire.CodeHeartbeatLost, "no traffic or pong in time")
			case errors.Is(err, websocket.ErrReadLimit):
				c.Close(wire.CodeFrameTooLarge, "frame too large")
			default:
				c.Close(wire.CodeUnknown, "the peer went away") // nothing to send it
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(c.srv.cfg.PongWait))
		hello = true // any valid first frame must be hello; the core enforces it
		if typ == websocket.BinaryMessage {
			err = c.sc.HandleAudio(ctx, frame)
		} else {
			err = c.sc.Handle(ctx, frame)
		}
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				c.log.Info("closing connection", "code", we.Code.String(), "reason", we.Message)
				c.Close(we.Code, we.Message)
			} else {
				c.Close(wire.CodeServerError, "internal error")
			}
			return
		}
	}
}

func (c *conn) writeLoop() {
	defer c.srv.wg.Done()
	ping := time.NewTicker(c.srv.cfg.PingInterval)
	defer ping.Stop()
	defer func() {
		// Closing the socket ends the reader's ReadMessage.
		_ = c.ws.Close()
	}()
	for {
		select {
		case f := <-c.send:
			c.sent(f)
			_ = c.ws.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
			if err := c.ws.WriteMessage(f.kind(), f.b); err != nil {
				c.Close(wire.CodeServerError, "write failed")
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
				c.Close(wire.CodeHeartbeatLost, "ping failed")
				return
			}
		case <-c.done:
			c.drain()
			c.writeClose()
			return
		}
	}
}

// drain writes what is already queued (a final error, say) before the close frame,
// within a short deadline.
func (c *conn) drain() {
	if c.code == wire.CodeSlowConsumer {
		return
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	for {
		select {
		case f := <-c.send:
			c.sent(f)
			_ = c.ws.SetWriteDeadline(deadline)
			if c.ws.WriteMessage(f.kind(), f.b) != nil {
				return
			}
		default:
			return
		}
	}
}

func (f outFrame) kind() int {
	if f.binary {
		return websocket.BinaryMessage
	}
	return websocket.TextMessage
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
