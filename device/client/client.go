package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot/earshot/device/wire"
)

// maxSeenTx bounds the memory of transactions whose prompt was delivered.
const maxSeenTx = 1024

// Client is a connected device. Its methods may be called from several goroutines.
type Client struct {
	cfg    Config
	log    *slog.Logger
	device string
	events chan Event

	ctx       context.Context // the client's lifetime; cancelled by Close
	cancel    context.CancelFunc
	done      chan struct{} // closed when the run goroutine has returned
	closeOnce sync.Once

	mu      sync.Mutex
	conn    *websocket.Conn // nil while disconnected
	ready   chan struct{}   // closed while conn != nil or down != nil
	down    error           // why the client stopped for good
	session string
	resume  string
	resumed bool

	writeMu sync.Mutex // gorilla allows one writer at a time

	// Owned by the goroutine that reads (Dial, then run).
	lastAck uint64
	extend  func() // pushes the read deadline out after traffic
	seenTx  map[string]struct{}
	txOrder []string
}

// Dial connects to the gateway, sends hello and waits for hello.ok. The first Event is
// that hello.ok. ctx bounds the connection attempt only; the client lives until Close
// (or, without Reconnect, until the connection ends).
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg: cfg, device: cfg.Key.DeviceID(),
		events: make(chan Event, cfg.EventBuffer),
		done:   make(chan struct{}),
		ready:  make(chan struct{}),
		seenTx: make(map[string]struct{}),
	}
	c.log = cfg.Logger.With("component", "device-client", "device", c.device)
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	conn, ok, err := c.connect(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	if !c.setConn(conn) {
		c.cancel()
		return nil, ErrClosed
	}
	go c.run(conn, ok)
	return c, nil
}

// Events returns the channel of events, closed when the client stops. Read it
// continuously: while it is full the client stops reading from the gateway.
func (c *Client) Events() <-chan Event { return c.events }

// Session returns the current session id and whether it resumed an earlier one.
func (c *Client) Session() (id string, resumed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session, c.resumed
}

// DeviceID returns the id of the connected device.
func (c *Client) DeviceID() string { return c.device }

// Say sends what the user said as a push-to-talk utterance and returns its message id,
// which the gateway puts in Ref of the tx.result or error that answers it. While the
// client is reconnecting Say waits for the connection, bounded by ctx.
func (c *Client) Say(ctx context.Context, text string) (msgID string, err error) {
	id := c.cfg.NewID()
	if err := c.send(ctx, id, &wire.Utterance{Text: text, PTT: true}); err != nil {
		return "", fmt.Errorf("client: say: %w", err)
	}
	return id, nil
}

// Confirm answers a prompt with the user's decision, verified with method m. It
// recomputes the hash of the prompt's terms and refuses (ErrHashMismatch), without
// signing anything, when it differs from the prompt's hash; it also refuses terms bound
// to another transaction or device (ErrBadPrompt) and a method the prompt does not
// offer (ErrMethodNotOffered). Otherwise it signs the decision with the device key and
// sends it.
func (c *Client) Confirm(ctx context.Context, req *wire.ConfirmRequest, d wire.Decision, m wire.Method) error {
	if req == nil {
		return fmt.Errorf("%w: no prompt", ErrBadPrompt)
	}
	if err := req.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPrompt, err)
	}
	hash, err := req.Terms.Hash()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadPrompt, err)
	}
	switch {
	case hash != req.Hash:
		return fmt.Errorf("%w: tx %s", ErrHashMismatch, req.Tx)
	case req.Terms.Tx != req.Tx:
		return fmt.Errorf("%w: terms for tx %s in a prompt for tx %s", ErrBadPrompt, req.Terms.Tx, req.Tx)
	case req.Terms.Device != c.device:
		return fmt.Errorf("%w: terms for device %s", ErrBadPrompt, req.Terms.Device)
	case !slices.Contains(req.Methods, m):
		return fmt.Errorf("%w: %q, offered %v", ErrMethodNotOffered, m, req.Methods)
	}
	conf := &wire.Confirm{Tx: req.Tx, Hash: hash, Decision: d, Method: m}
	c.cfg.Key.SignConfirm(conf)
	if err := c.send(ctx, c.cfg.NewID(), conf); err != nil {
		return fmt.Errorf("client: confirm: %w", err)
	}
	return nil
}

// Status asks for a transaction's state; the answer arrives as a tx.result event.
func (c *Client) Status(ctx context.Context, tx string) error {
	if err := c.send(ctx, c.cfg.NewID(), &wire.TxStatus{Tx: tx}); err != nil {
		return fmt.Errorf("client: status: %w", err)
	}
	return nil
}

// Close closes the connection, stops reconnecting, waits for the client's goroutine
// and closes Events. It is idempotent and always returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		if conn != nil {
			c.closeConn(conn, websocket.CloseNormalClosure, "bye")
		}
	})
	<-c.done
	return nil
}

// send encodes b and writes it on the current connection, waiting for one while the
// client reconnects.
func (c *Client) send(ctx context.Context, id string, b wire.Body) error {
	frame, err := wire.Encode(wire.Envelope{ID: id, TS: c.cfg.Now().UnixMilli()}, b)
	if err != nil {
		return err
	}
	for {
		c.mu.Lock()
		conn, ready, down := c.conn, c.ready, c.down
		c.mu.Unlock()
		if down != nil {
			return down
		}
		if conn != nil {
			return c.write(ctx, conn, frame)
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a connection: %w", ctx.Err())
		}
	}
}

func (c *Client) write(ctx context.Context, conn *websocket.Conn, frame []byte) error {
	deadline := time.Now().Add(c.cfg.WriteTimeout) // network deadlines use the wall clock
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// setConn makes conn the current connection, unless the client is closing.
func (c *Client) setConn(conn *websocket.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil || c.down != nil {
		return false
	}
	c.conn = conn
	close(c.ready)
	return true
}

// dropConn forgets the current connection; senders wait for the next one.
func (c *Client) dropConn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn = nil
		c.ready = make(chan struct{})
	}
}

// stop marks the client as stopped for good and wakes every waiting sender.
func (c *Client) stop(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down != nil {
		return
	}
	c.down = err
	if c.conn == nil {
		close(c.ready)
	}
	c.conn = nil
}

// emit delivers ev, waiting while Events is full, until the client closes.
func (c *Client) emit(ev Event) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// closeConn sends a close frame (best effort) and closes the connection.
func (c *Client) closeConn(conn *websocket.Conn, code int, text string) {
	deadline := time.Now().Add(time.Second)
	if err := conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline); err != nil &&
		!errors.Is(err, websocket.ErrCloseSent) {
		c.log.Debug("close frame not sent", "err", err)
	}
	if err := conn.Close(); err != nil {
		c.log.Debug("close", "err", err)
	}
}
