package client

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/earshot/earshot/device/wire"
)

// maxSeenTx bounds the memory of transactions whose prompt was delivered.
const maxSeenTx = 1024

// maxRecent bounds the uplink frames kept for a retry after a no_session error.
const maxRecent = 16

// Client is a connected device. Its methods may be called from several goroutines.
type Client struct {
	cfg    Config
	log    *slog.Logger
	device string
	events chan Event
	dialer dialer
	stats  counters

	ctx       context.Context // the client's lifetime; cancelled by Close
	cancel    context.CancelFunc
	done      chan struct{} // closed when the run goroutine has returned
	closeOnce sync.Once

	mu      sync.Mutex
	live    link          // the current transport link, nil between links
	up      link          // live while a session is up (hello.ok arrived), else nil
	gen     uint64        // counts the sessions sessionUp opened: utterances remember theirs
	ready   chan struct{} // closed while up != nil or down != nil
	down    error         // why the client stopped for good
	session string
	resume  string
	resumed bool

	recentMu sync.Mutex
	recent   map[string][]byte // the last uplink frames by message id
	order    []string          // their ids, oldest first

	// Owned by the goroutine that reads (Dial, then run).
	lastAck  uint64
	prompts  assembler // prompt speech being received
	seenTx   map[string]struct{}
	txOrder  []string
	retryIDs []string // uplinks refused with no_session, to send again after hello.ok
	// unanswered are the utterances no tx.result or error has named yet, oldest first
	// (at most maxRecent): a session can end with one in flight (a broker that dies
	// takes what it had not delivered), so each new session sends them again, and the
	// gateway deduplicates them by id. Guarded by recentMu.
	unanswered []pendingSay

	streamID  atomic.Uint32 // the last uplink audio stream id
	resultsMu sync.Mutex
	results   map[uint32]chan struct{} // open streams whose speech.result Speak waits for
}

// counters are the client's statistics (Stats).
type counters struct {
	links, hellos, duplicates, early, retried, audioDropped atomic.Int64
}

// Stats counts what the client did since Dial.
type Stats struct {
	// Connections is the number of transport connections made (WebSocket upgrades,
	// accepted MQTT CONNECTs).
	Connections int64
	// Hellos is the number of hello messages sent. Over MQTT a session is resumed
	// with a new hello on the same connection, and hello is re-sent when no hello.ok
	// arrives in time.
	Hellos int64
	// Duplicates is the number of downlink messages dropped because their seq had
	// been handled (re-acknowledged, not delivered).
	Duplicates int64
	// Early is the number of downlink messages dropped because they arrived before
	// hello.ok (over MQTT the broker delivers what it kept for the device at once);
	// the gateway re-sends what was not acknowledged after hello.ok.
	Early int64
	// Retried is the number of uplink messages sent again after the gateway
	// answered them with no_session.
	Retried int64
	// AudioDropped counts prompt audio frames dropped: malformed, of a stream not
	// announced by prompt.audio (or no longer assembled), or beyond MaxPromptAudio;
	// and prompt streams abandoned because more than two were assembling.
	AudioDropped int64
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Connections: c.stats.links.Load(), Hellos: c.stats.hellos.Load(),
		Duplicates: c.stats.duplicates.Load(), Early: c.stats.early.Load(), Retried: c.stats.retried.Load(),
		AudioDropped: c.stats.audioDropped.Load(),
	}
}

// Dial connects to the gateway, sends hello and waits for hello.ok. The first Event is
// that hello.ok. ctx bounds the connection attempt only; the client lives until Close
// (or, without Reconnect, until the session ends).
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg: cfg, device: cfg.Key.DeviceID(),
		events:  make(chan Event, cfg.EventBuffer),
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
		seenTx:  make(map[string]struct{}),
		results: make(map[uint32]chan struct{}),
		recent:  make(map[string][]byte),
	}
	c.log = cfg.Logger.With("component", "device-client", "device", c.device)
	if c.dialer, err = newDialer(&c.cfg, c.device, c.log, &c.stats); err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l, ok, err := c.connect(ctx, true)
	if err != nil {
		c.cancel()
		return nil, err
	}
	if !c.sessionUp(l) {
		c.drop(l)
		c.cancel()
		return nil, ErrClosed
	}
	go c.run(l, ok)
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
//
// Until the gateway answers it, the utterance is sent again in every new session, so
// one the link lost while going down still arrives (the gateway deduplicates by id);
// a write that fails while the client reconnects is left to that.
func (c *Client) Say(ctx context.Context, text string) (msgID string, err error) {
	id := c.cfg.NewID()
	frame, err := wire.Encode(wire.Envelope{ID: id, TS: c.cfg.Now().UnixMilli()}, &wire.Utterance{Text: text, PTT: true})
	if err != nil {
		return "", fmt.Errorf("client: say: %w", err)
	}
	l, gen, err := c.upSession(ctx)
	if err != nil {
		return "", fmt.Errorf("client: say: %w", err)
	}
	c.remember(id, frame)
	c.await(id, gen)
	if err := l.write(ctx, frame); err != nil && !(c.cfg.Reconnect && ctx.Err() == nil && c.ctx.Err() == nil) {
		return "", fmt.Errorf("client: say: %w", err)
	}
	return id, nil
}

// pendingSay is an utterance the gateway has not answered, with the session it was
// written in.
type pendingSay struct {
	id  string
	gen uint64
}

// await notes an utterance, written in session gen, that the gateway has not answered
// yet.
func (c *Client) await(id string, gen uint64) {
	c.recentMu.Lock()
	defer c.recentMu.Unlock()
	c.unanswered = append(c.unanswered, pendingSay{id, gen})
	if len(c.unanswered) > maxRecent {
		c.unanswered = c.unanswered[1:]
	}
}

// answered forgets an utterance the gateway named in a reply.
func (c *Client) answered(ref string) {
	if ref == "" {
		return
	}
	c.recentMu.Lock()
	defer c.recentMu.Unlock()
	c.unanswered = slices.DeleteFunc(c.unanswered, func(p pendingSay) bool { return p.id == ref })
}

// pending returns the unanswered utterances written before session gen: those written
// in it are on their way already, and sending them again would only earn a second
// answer.
func (c *Client) pending(gen uint64) []string {
	c.recentMu.Lock()
	defer c.recentMu.Unlock()
	var ids []string
	for _, p := range c.unanswered {
		if p.gen < gen {
			ids = append(ids, p.id)
		}
	}
	return ids
}

// Confirm answers a prompt with the user's decision, verified with method m. It
// recomputes the hash of the prompt's terms and refuses (ErrHashMismatch), without
// signing anything, when it differs from the prompt's hash; it also refuses terms bound
// to another transaction or device (ErrBadPrompt) and an approval with a method the
// prompt does not offer (ErrMethodNotOffered; a decline may use any method, so glasses
// can decline a prompt that needs the phone). Otherwise it signs the decision with the
// device key and sends it. A PIN is signed with ConfirmPIN, and a phone approval on the
// phone with Approve (ErrStepUpMethod).
func (c *Client) Confirm(ctx context.Context, req *wire.ConfirmRequest, d wire.Decision, m wire.Method) error {
	if m == wire.MethodPIN || m == wire.MethodPhone {
		return fmt.Errorf("%w: method %s", ErrStepUpMethod, m)
	}
	hash, err := c.checkPrompt(req, true)
	if err != nil {
		return err
	}
	if d == wire.DecisionApprove && !slices.Contains(req.Methods, m) {
		return fmt.Errorf("%w: %q, offered %v", ErrMethodNotOffered, m, req.Methods)
	}
	conf := &wire.Confirm{Tx: req.Tx, Hash: hash, Decision: d, Method: m}
	c.cfg.Key.SignConfirm(conf)
	if err := c.send(ctx, c.cfg.NewID(), conf); err != nil {
		return fmt.Errorf("client: confirm: %w", err)
	}
	return nil
}

// checkPrompt validates a prompt and returns its recomputed hash: the terms hash to
// the prompt's hash (ErrHashMismatch) and are bound to its transaction, and, when own
// is set, to this device (ErrBadPrompt).
func (c *Client) checkPrompt(req *wire.ConfirmRequest, own bool) (string, error) {
	if req == nil {
		return "", fmt.Errorf("%w: no prompt", ErrBadPrompt)
	}
	if err := req.Validate(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadPrompt, err)
	}
	hash, err := req.Terms.Hash()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadPrompt, err)
	}
	switch {
	case hash != req.Hash:
		return "", fmt.Errorf("%w: tx %s", ErrHashMismatch, req.Tx)
	case req.Terms.Tx != req.Tx:
		return "", fmt.Errorf("%w: terms for tx %s in a prompt for tx %s", ErrBadPrompt, req.Terms.Tx, req.Tx)
	case own && req.Terms.Device != c.device:
		return "", fmt.Errorf("%w: terms for device %s", ErrBadPrompt, req.Terms.Device)
	}
	return hash, nil
}

// Status asks for a transaction's state; the answer arrives as a tx.result event.
func (c *Client) Status(ctx context.Context, tx string) error {
	if err := c.send(ctx, c.cfg.NewID(), &wire.TxStatus{Tx: tx}); err != nil {
		return fmt.Errorf("client: status: %w", err)
	}
	return nil
}

// Cancel sends the user's "cancel my order" for tx: before payment the mandate is
// revoked, after it the merchant is asked (see wire.TxCancel). The outcome arrives as
// tx.result events (cancelling, cancelled), or an error event (not_cancellable).
func (c *Client) Cancel(ctx context.Context, tx, reason string) error {
	if err := c.send(ctx, c.cfg.NewID(), &wire.TxCancel{Tx: tx, Reason: reason}); err != nil {
		return fmt.Errorf("client: cancel: %w", err)
	}
	return nil
}

// Close ends the connection cleanly (a WebSocket close frame; over MQTT the
// retained offline status, then DISCONNECT), stops reconnecting, waits for the
// client's goroutine and closes Events. It is idempotent and always returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		c.mu.Lock()
		l := c.live
		c.mu.Unlock()
		if l != nil {
			l.close()
		}
	})
	<-c.done
	return nil
}

// send encodes b and writes it in the current session, waiting for one while the
// client reconnects.
func (c *Client) send(ctx context.Context, id string, b wire.Body) error {
	frame, err := wire.Encode(wire.Envelope{ID: id, TS: c.cfg.Now().UnixMilli()}, b)
	if err != nil {
		return err
	}
	l, err := c.upLink(ctx)
	if err != nil {
		return err
	}
	c.remember(id, frame)
	return l.write(ctx, frame)
}

// upLink returns the link of the current session, waiting for one while the client
// reconnects.
func (c *Client) upLink(ctx context.Context) (link, error) {
	l, _, err := c.upSession(ctx)
	return l, err
}

// upSession is upLink that also returns the session's generation (see sessionUp).
func (c *Client) upSession(ctx context.Context) (link, uint64, error) {
	for {
		c.mu.Lock()
		l, gen, ready, down := c.up, c.gen, c.ready, c.down
		c.mu.Unlock()
		if down != nil {
			return nil, 0, down
		}
		if l != nil {
			return l, gen, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("waiting for a connection: %w", ctx.Err())
		}
	}
}

// current reports whether l still carries the session.
func (c *Client) current(l link) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up == l
}

// remember keeps an uplink frame for a retry after no_session.
func (c *Client) remember(id string, frame []byte) {
	c.recentMu.Lock()
	defer c.recentMu.Unlock()
	c.recent[id] = frame
	c.order = append(c.order, id)
	if len(c.order) > maxRecent {
		delete(c.recent, c.order[0])
		c.order = c.order[1:]
	}
}

// recall returns the remembered frames among ids, in the order they were sent.
func (c *Client) recall(ids []string) [][]byte {
	c.recentMu.Lock()
	defer c.recentMu.Unlock()
	var out [][]byte
	for _, id := range c.order {
		if slices.Contains(ids, id) {
			out = append(out, c.recent[id])
		}
	}
	return out
}

// setLive records the current transport link, unless the client is closing.
func (c *Client) setLive(l link) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return false
	}
	c.live = l
	return true
}

// drop closes a link and forgets it.
func (c *Client) drop(l link) {
	if l == nil {
		return
	}
	l.close()
	c.mu.Lock()
	if c.live == l {
		c.live = nil
	}
	c.mu.Unlock()
}

// sessionUp opens the session on l to senders, unless the client is closing.
func (c *Client) sessionUp(l link) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil || c.down != nil {
		return false
	}
	c.up = l
	c.gen++
	close(c.ready)
	return true
}

// sessionDown makes senders wait for the next session.
func (c *Client) sessionDown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up != nil {
		c.up = nil
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
	if c.up == nil {
		close(c.ready)
	}
	c.up = nil
}

// finish closes l (if any) and stops the client.
func (c *Client) finish(l link, err error) {
	c.drop(l)
	c.stop(err)
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
