package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/audit"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/authz/risk"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/registry"
)

// Transport is one live connection to a device, as the core sees it.
type Transport interface {
	// Send queues one encoded frame for the device. It must not block: when the
	// connection's queue is full the transport applies its overflow policy (close with
	// wire.CodeSlowConsumer) and returns an error.
	Send(frame []byte) error
	// Close ends the connection with a disconnect code. Idempotent.
	Close(code wire.Code, reason string)
	// Kind names the transport ("ws", "mqtt", "webrtc") for logs and metrics.
	Kind() string
}

// Errors returned to the agent API.
var (
	ErrUnknownTx = errors.New("session: unknown transaction")
	ErrTxState   = errors.New("session: transaction is not in a state that allows this")
	ErrForbidden = errors.New("session: transaction belongs to another agent")
	ErrInvalid   = errors.New("session: invalid request")
	ErrClosed    = errors.New("session: core is closed")
	// ErrNoDevice: the user has no device that can show a prompt now.
	ErrNoDevice = errors.New("session: no device to ask")
)

// Config configures a Core.
type Config struct {
	Store    kv.Store           // required
	Registry *registry.Registry // required
	Keys     *authz.KeySet      // required: signs mandates
	Agent    agent.Agent        // required
	// Issuer is the mandates' iss claim; default "earshot".
	Issuer string
	// ConsentTTL is how long a prompt stays open; default 60s.
	ConsentTTL time.Duration
	// MandateTTL is how long an issued mandate may be redeemed; default 10m.
	MandateTTL time.Duration
	// Heartbeat is the keepalive interval told to devices; default 25s.
	Heartbeat time.Duration
	// MaxUnacked bounds each device's outbox: an utterance is refused (rate_limited,
	// retryable) while the device has this many unacknowledged messages; default 256.
	MaxUnacked int
	// MaxAgentBacklog bounds the events an agent has not taken (its push channel has
	// not acknowledged): past it, new utterances for the agent are refused with
	// rate_limited (retryable); default 10000.
	MaxAgentBacklog int
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand is the randomness source; default crypto/rand.
	Rand io.Reader
	// Metrics; default a fresh, unregistered set.
	Metrics *Metrics
	// Audit, if set, receives a record of every consent decision and mandate
	// transition, in the same transaction.
	Audit *audit.Log
	// CancelWindow is how long after a redemption the user may cancel; default
	// authz.DefaultCancelWindow, negative none.
	CancelWindow time.Duration
	// SettleEvery is how often payments whose cancel window closed are settled;
	// default 1s.
	SettleEvery time.Duration
	// Risk decides every purchase request before the prompt: refuse, or which consent
	// methods to ask for. Nil: no limits, and tap, voice or a button on every kind of
	// device.
	Risk *risk.Policy
	// Said, if set, reads what the user asked for from an utterance's text (an
	// amount limit, items), for the risk rule that compares it with the proposal; nil
	// when it cannot tell.
	Said func(text string) *risk.Said
	// IsCancel, if set, reports whether an utterance is "cancel my order": the core
	// then cancels the device's latest order instead of asking the agent.
	IsCancel func(text string) bool
}

// Core is the session core. Create it with New, call Start, then Close.
type Core struct {
	cfg    Config
	log    *slog.Logger
	ledger *authz.Ledger
	m      *Metrics

	mu     sync.Mutex
	live   map[string]*Conn       // device -> current connection
	timers map[string]*time.Timer // tx -> expiry timer
	ctx    context.Context        // core lifetime, for work not tied to a request
	cancel context.CancelFunc
	closed bool
	wg     sync.WaitGroup
	// staged tells the sequencer that events may have been staged; wake tells event
	// readers (the pump, webhooks, streams) that logs may have grown.
	staged, wake broadcast
}

// New validates cfg and returns a Core.
func New(cfg Config) (*Core, error) {
	if cfg.Store == nil || cfg.Registry == nil || cfg.Keys == nil || cfg.Agent == nil {
		return nil, errors.New("session: Store, Registry, Keys and Agent are required")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "earshot"
	}
	if cfg.ConsentTTL <= 0 {
		cfg.ConsentTTL = 60 * time.Second
	}
	if cfg.MandateTTL <= 0 {
		cfg.MandateTTL = 10 * time.Minute
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 25 * time.Second
	}
	if cfg.MaxUnacked <= 0 {
		cfg.MaxUnacked = 256
	}
	if cfg.MaxAgentBacklog <= 0 {
		cfg.MaxAgentBacklog = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.SettleEvery <= 0 {
		cfg.SettleEvery = time.Second
	}
	if cfg.Risk == nil {
		cfg.Risk = noRisk()
	}
	c := &Core{
		cfg: cfg, log: cfg.Logger.With("component", "session"), m: cfg.Metrics,
		live: make(map[string]*Conn), timers: make(map[string]*time.Timer),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	l, err := authz.NewLedger(authz.LedgerConfig{
		Store: cfg.Store, Keys: cfg.Keys, Issuer: cfg.Issuer, Now: cfg.Now, Rand: cfg.Rand, OnRedeem: c.onRedeem,
		OnTransition: c.onTransition, CancelWindow: cfg.CancelWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	c.ledger = l
	return c, nil
}

// Ledger returns the mandate ledger the core records into.
func (c *Core) Ledger() *authz.Ledger { return c.ledger }

// Start recovers after a restart (it re-arms expiry for open prompts) and starts the
// core's goroutines: settlement, and the pump that hands the embedded agent its events
// from its durable log — a core that was not started never calls its agent.
func (c *Core) Start(ctx context.Context) error {
	var open []*Tx
	err := c.cfg.Store.View(ctx, func(txn kv.Txn) error {
		return txn.Scan([]byte("tx/"), func(_, v []byte) (bool, error) {
			t := new(Tx)
			if err := jsonUnmarshal(v, t); err != nil {
				return false, err
			}
			if !t.State.Final() {
				open = append(open, t)
			}
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("session: recover: %w", err)
	}
	// Events not yet taken by an agent are still in its log; the pump and the webhooks
	// resume from it. The embedded agent keeps what it took in memory, so it is handed
	// its unfinished work again (redo): the intents it has not answered, the mandates
	// it has not redeemed, the cancellations it has not decided.
	var redo []*Tx
	for _, t := range open {
		switch {
		case t.State == wire.TxPrompted:
			c.armExpiry(t.ID, time.UnixMilli(t.Challenge.Terms.ExpiresAt))
		case t.Agent == c.cfg.Agent.ID() && (t.State == wire.TxReceived || t.State == wire.TxMandated || t.State == wire.TxCancelling):
			redo = append(redo, t)
		}
	}
	if len(open) > 0 {
		c.log.Info("recovered open transactions", "count", len(open))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.wg.Add(3)
	go c.sequencer()
	go c.settleLoop()
	go c.pump(redo)
	return nil
}

// Close stops expiry timers and disconnects every device with wire.CodeShutdown.
// Idempotent.
func (c *Core) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for id, t := range c.timers {
		t.Stop()
		delete(c.timers, id)
	}
	conns := make([]*Conn, 0, len(c.live))
	for _, cn := range c.live {
		conns = append(conns, cn)
	}
	c.mu.Unlock()
	c.cancel()
	for _, cn := range conns {
		cn.t.Close(wire.CodeShutdown, "gateway shutting down")
	}
	c.wg.Wait()
}

// Attach registers an authenticated device's new connection. A previous connection
// of the same device is closed with wire.CodeReplaced.
func (c *Core) Attach(d registry.Device, t Transport) (*Conn, error) {
	cn := &Conn{core: c, dev: d, t: t, log: c.log.With("device", d.ID, "transport", t.Kind())}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	old := c.live[d.ID]
	c.live[d.ID] = cn
	c.mu.Unlock()
	if old != nil {
		old.t.Close(wire.CodeReplaced, "a newer connection took over")
	}
	c.m.connected(t.Kind(), 1)
	return cn, nil
}

func (c *Core) detach(cn *Conn) {
	c.mu.Lock()
	if c.live[cn.dev.ID] == cn {
		delete(c.live, cn.dev.ID)
	}
	c.mu.Unlock()
	c.m.connected(cn.t.Kind(), -1)
}

// notify flushes a device's outbox to its live connection, if it has one.
func (c *Core) notify(device string) {
	c.mu.Lock()
	cn := c.live[device]
	c.mu.Unlock()
	if cn != nil {
		cn.flush(c.ctx)
	}
}

// update runs fn in a durable transaction and then flushes the outboxes of the
// devices fn reported through touch.
func (c *Core) update(ctx context.Context, fn func(txn kv.Txn, touch func(device string)) error) error {
	var touched []string
	err := c.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		touched = touched[:0]
		return fn(txn, func(d string) { touched = append(touched, d) })
	})
	if err != nil {
		return err
	}
	c.staged.fire()
	for _, d := range touched {
		c.notify(d)
	}
	return nil
}

func (c *Core) randomID(prefix string) string {
	var b [12]byte
	if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; an injected reader that
		// does is a test bug, and a timestamp keeps ids unique enough to proceed.
		return fmt.Sprintf("%s%x", prefix, c.cfg.Now().UnixNano())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Disconnect closes a device's live connection, if any, with the code (used when a
// device is revoked).
func (c *Core) Disconnect(device string, code wire.Code, reason string) {
	c.mu.Lock()
	cn := c.live[device]
	c.mu.Unlock()
	if cn != nil {
		cn.t.Close(code, reason)
	}
}
