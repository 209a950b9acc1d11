package session

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/registry"
)

// Each agent has a durable event log. An event is staged in the same store
// transaction as the change it reports, so an agent never hears of a state that was
// not written and never misses one that was; the sequencer then moves staged events
// into the agents' logs, numbering them:
//
//	evin/<stamp, 16 hex digits>/<agent>  a staged agent.Event (Seq not yet set)
//	ev/<agent>/<seq, 16 hex digits>      an agent.Event in the agent's log
//	evseq/<agent>                        the last seq given (written by the sequencer only)
//	evack/<agent>                        the seq through which the agent's push channel (the
//	                                     embedded agent, or its webhook) took the events
//
// Stamps come from a clock that never repeats or goes back within the process, taken
// inside the transaction; two transactions that touch the same records conflict, and
// the later one runs again with a later stamp. The sequencer reads a snapshot, which
// holds every event committed before any it holds, and numbers them in stamp order: a
// consumer that reads in seq order sees each device's events in the order they
// happened. Staging takes no shared key, so transactions of different devices do not
// conflict over an agent's counter. Consumers: the embedded agent's pump (below),
// webhooks (gateway/webhook), the server-sent events stream and the MCP server (both
// read without acknowledging).
//
// Events are pruned once taken and an hour old, or after EventRetention in any case.

func evPrefix(agentID string) []byte { return []byte("ev/" + agentID + "/") }
func evKey(agentID string, seq uint64) []byte {
	return fmt.Appendf(nil, "ev/%s/%016x", agentID, seq)
}
func evSeqKey(agentID string) []byte { return []byte("evseq/" + agentID) }
func evAckKey(agentID string) []byte { return []byte("evack/" + agentID) }

const stagedPrefix = "evin/"

func getUint(txn kv.Txn, key []byte) (uint64, error) {
	v, err := txn.Get(key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("session: %s holds %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func putUint(txn kv.Txn, key []byte, n uint64) error {
	return txn.Set(key, binary.BigEndian.AppendUint64(nil, n))
}

// lastStamp is the last stamp given: stamps are Unix nanoseconds made unique and
// increasing within the process.
var lastStamp atomic.Uint64

func stamp() uint64 {
	for {
		last, now := lastStamp.Load(), uint64(time.Now().UnixNano())
		next := max(now, last+1)
		if lastStamp.CompareAndSwap(last, next) {
			return next
		}
	}
}

// appendEvent stages an event for the agent's log in txn.
func appendEvent(txn kv.Txn, agentID, typ, device, user string, at time.Time, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("session: event %s: %w", typ, err)
	}
	st := stamp()
	var nonce [4]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand does not fail; the nonce keeps ids unique across stores
	ev := agent.Event{
		ID: fmt.Sprintf("evt_%016x%s", st, hex.EncodeToString(nonce[:])), Type: typ,
		At: at.UTC(), Device: device, User: user, Data: raw,
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return txn.Set(fmt.Appendf(nil, "%s%016x/%s", stagedPrefix, st, agentID), b)
}

// sequencer numbers staged events into the agents' logs whenever transactions commit
// (and every second, as a safety net), then wakes the logs' readers.
func (c *Core) sequencer() {
	defer c.wg.Done()
	for {
		staged := c.staged.wait()
		n, err := c.sequence(c.ctx, 512)
		switch {
		case err != nil && c.ctx.Err() == nil:
			c.log.Error("agent events: sequencing", "err", err)
		case n > 0:
			c.wake.fire()
			continue // there may be more
		}
		select {
		case <-c.ctx.Done():
			return
		case <-staged:
		case <-time.After(time.Second):
		}
	}
}

// sequence moves up to limit staged events, oldest stamp first, into their agents'
// logs in one transaction, and reports how many it moved.
func (c *Core) sequence(ctx context.Context, limit int) (int, error) {
	n := 0
	err := c.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		n = 0
		type staged struct {
			key   []byte
			agent string
			ev    agent.Event
		}
		var batch []staged
		err := txn.Scan([]byte(stagedPrefix), func(k, v []byte) (bool, error) {
			rest := strings.TrimPrefix(string(k), stagedPrefix)
			_, agentID, ok := strings.Cut(rest, "/")
			if !ok || agentID == "" {
				return false, fmt.Errorf("session: staged event key %q", k)
			}
			var ev agent.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return false, fmt.Errorf("session: staged event %q: %w", k, err)
			}
			batch = append(batch, staged{append([]byte(nil), k...), agentID, ev})
			return len(batch) < limit, nil
		})
		if err != nil {
			return err
		}
		seqs := map[string]uint64{}
		for _, s := range batch {
			seq, ok := seqs[s.agent]
			if !ok {
				if seq, err = getUint(txn, evSeqKey(s.agent)); err != nil {
					return err
				}
			}
			seq++
			seqs[s.agent] = seq
			s.ev.Seq = seq
			b, err := json.Marshal(s.ev)
			if err != nil {
				return err
			}
			if err := txn.Set(evKey(s.agent, seq), b); err != nil {
				return err
			}
			if err := txn.Delete(s.key); err != nil {
				return err
			}
		}
		for agentID, seq := range seqs {
			if err := putUint(txn, evSeqKey(agentID), seq); err != nil {
				return err
			}
		}
		n = len(batch)
		return nil
	})
	return n, err
}

// tellAgent appends the event that reports t's new state to its agent's log: the
// intent when it was received from the device, "transaction.<state>" after that.
func tellAgent(txn kv.Txn, t *Tx) error {
	if t.Agent == "" || t.State == t.Told {
		return nil
	}
	t.Told = t.State
	if t.State == wire.TxReceived {
		in := agent.Intent{Tx: t.ID, Device: t.Device, User: t.User, Text: t.Text, At: t.Created}
		return appendEvent(txn, t.Agent, agent.EventIntent, t.Device, t.User, t.Updated, in)
	}
	return appendEvent(txn, t.Agent, agent.EventTxPrefix+string(t.State), t.Device, t.User, t.Updated, t.event())
}

// event is what the agent is told of the transaction's state.
func (t *Tx) event() agent.TxEvent {
	ev := agent.TxEvent{Tx: t.ID, Device: t.Device, User: t.User, State: t.State, Reason: t.Reason,
		Redemption: t.Redemption, Amount: t.Amount, Currency: t.Currency}
	if t.Code != wire.CodeUnknown {
		ev.Code = t.Code.String()
	}
	if t.State == wire.TxPrompted && t.Challenge != nil {
		ev.ConsentHash = t.Challenge.Hash
		exp := time.UnixMilli(t.Challenge.Terms.ExpiresAt).UTC()
		ev.ExpiresAt = &exp
	}
	if t.State == wire.TxMandated {
		m := t.mandate()
		ev.Mandate = &m
	}
	return ev
}

// mandate is the mandate the agent may redeem, once the transaction is mandated.
func (t *Tx) mandate() agent.Mandate {
	terms := t.terms()
	return agent.Mandate{
		Tx: t.ID, ID: t.Mandate, Token: t.MandateToken, User: t.User, Payee: terms.Merchant.ID,
		AmountCap: terms.Total, Currency: terms.Currency, ExpiresAt: time.Unix(t.MandateExp, 0).UTC(),
		Kind: terms.Kind, Conditions: terms.Conditions, Items: terms.Items,
	}
}

// Events returns up to limit of the agent's events with Seq after after, in order.
func (c *Core) Events(ctx context.Context, agentID string, after uint64, limit int) ([]agent.Event, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var out []agent.Event
	err := c.cfg.Store.View(ctx, func(txn kv.Txn) error {
		out = out[:0]
		prefix := evPrefix(agentID)
		return txn.Scan(prefix, func(k, v []byte) (bool, error) {
			seq, err := strconv.ParseUint(strings.TrimPrefix(string(k), string(prefix)), 16, 64)
			if err != nil {
				return false, fmt.Errorf("session: event key %q: %w", k, err)
			}
			if seq <= after {
				return true, nil
			}
			var ev agent.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return false, fmt.Errorf("session: event %q: %w", k, err)
			}
			out = append(out, ev)
			return len(out) < limit, nil
		})
	})
	return out, err
}

// LastEvent returns the seq of the agent's newest event (0: none yet).
func (c *Core) LastEvent(ctx context.Context, agentID string) (uint64, error) {
	var n uint64
	err := c.cfg.Store.View(ctx, func(txn kv.Txn) (err error) {
		n, err = getUint(txn, evSeqKey(agentID))
		return err
	})
	return n, err
}

// Acked returns the seq through which the agent's push channel took its events.
func (c *Core) Acked(ctx context.Context, agentID string) (uint64, error) {
	var n uint64
	err := c.cfg.Store.View(ctx, func(txn kv.Txn) (err error) {
		n, err = getUint(txn, evAckKey(agentID))
		return err
	})
	return n, err
}

// Ack records that the agent's push channel took every event through seq. It never
// moves backwards.
func (c *Core) Ack(ctx context.Context, agentID string, through uint64) error {
	return c.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		n, err := getUint(txn, evAckKey(agentID))
		if err != nil || through <= n {
			return err
		}
		return putUint(txn, evAckKey(agentID), through)
	})
}

// Wake returns a channel that is closed once new events may have been written for
// the agent; take a new one after each wake-up, before reading.
func (c *Core) Wake(agentID string) <-chan struct{} { return c.wake.wait() }

// broadcast wakes every waiter: the wake-up is shared by all agents, and each reader
// checks its own log, which costs one short scan.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// pump hands the embedded agent its events in order, from the durable log: it
// retries an event the agent refuses (its queue is full) with backoff, for as long as
// the core runs, and acknowledges what was taken. After a restart it first hands over
// the unfinished work of redo (the agent took it, but keeps it only in memory), then
// resumes after the last acknowledged event: delivery is at least once.
func (c *Core) pump(redo []*Tx) {
	defer c.wg.Done()
	id := c.cfg.Agent.ID()
	for _, t := range redo {
		ev, err := t.redoEvent()
		if err != nil {
			c.log.Error("agent events: recovering", "tx", t.ID, "err", err)
			continue
		}
		if !c.handOver(ev) {
			return
		}
	}
	after, err := c.Acked(c.ctx, id)
	if err != nil {
		c.log.Error("agent events: reading the cursor", "err", err)
		return
	}
	for {
		wake := c.Wake(id)
		evs, err := c.Events(c.ctx, id, after, 64)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.log.Error("agent events: reading", "err", err)
		}
		for _, ev := range evs {
			if !c.handOver(ev) {
				return
			}
			after = ev.Seq
		}
		if len(evs) > 0 {
			if err := c.Ack(c.ctx, id, after); err != nil && c.ctx.Err() == nil {
				c.log.Error("agent events: acknowledging", "err", err)
			}
			continue
		}
		select {
		case <-c.ctx.Done():
			return
		case <-wake:
		case <-time.After(2 * time.Second): // a safety net; wake-ups are the rule
		}
	}
}

// redoEvent is the event that hands the transaction's unfinished work to its agent
// again after a restart.
func (t *Tx) redoEvent() (agent.Event, error) {
	ev := agent.Event{ID: "redo_" + t.ID, Type: agent.EventTxPrefix + string(t.State), At: t.Updated, Device: t.Device, User: t.User}
	var data any = t.event()
	if t.State == wire.TxReceived {
		ev.Type = agent.EventIntent
		data = agent.Intent{Tx: t.ID, Device: t.Device, User: t.User, Text: t.Text, At: t.Created}
	}
	var err error
	ev.Data, err = json.Marshal(data)
	return ev, err
}

// handOver gives one event to the embedded agent, retrying until it takes it; false
// when the core is closing.
func (c *Core) handOver(ev agent.Event) bool {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := c.callAgent(ev)
		if err == nil {
			return true
		}
		c.m.agentRetry(ev.Type)
		if attempt == 1 || attempt%20 == 0 {
			c.log.Warn("the agent refused an event; retrying", "event", ev.ID, "type", ev.Type, "attempt", attempt, "err", err)
		}
		select {
		case <-c.ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// callAgent maps an event onto the agent.Agent interface: intents, mandates, and the
// ends of transactions that were not paid (and cancellations asked for).
func (c *Core) callAgent(ev agent.Event) error {
	if ev.Type == agent.EventIntent {
		var in agent.Intent
		if err := json.Unmarshal(ev.Data, &in); err != nil {
			c.log.Error("agent events: a bad intent is skipped", "event", ev.ID, "err", err)
			return nil
		}
		return c.cfg.Agent.OnIntent(c.ctx, in)
	}
	var te agent.TxEvent
	if err := json.Unmarshal(ev.Data, &te); err != nil {
		c.log.Error("agent events: a bad event is skipped", "event", ev.ID, "err", err)
		return nil
	}
	switch {
	case te.State == wire.TxMandated && te.Mandate != nil:
		return c.cfg.Agent.OnMandate(c.ctx, *te.Mandate)
	case te.State == wire.TxCancelling || (te.State.Final() && te.State != wire.TxRedeemed):
		return c.cfg.Agent.OnOutcome(c.ctx, agent.Outcome{Tx: te.Tx, State: te.State})
	}
	return nil
}

// route returns the agent the user's speech goes to: the agent the user linked with
// the intents scope, or else the embedded agent.
func (c *Core) route(ctx context.Context, user string) (string, error) {
	id, err := c.cfg.Registry.IntentAgent(ctx, user)
	if err != nil || id != "" {
		return id, err
	}
	return c.cfg.Agent.ID(), nil
}

// checkBacklog refuses a new intent while the agent has MaxAgentBacklog events it has
// not taken: the agent is down or slow, and the device is told to retry later rather
// than piling up purchases nobody will answer. It reads outside the utterance's
// transaction (the counters change all the time; an estimate is enough).
func (c *Core) checkBacklog(ctx context.Context, agentID string) error {
	var seq, ack uint64
	err := c.cfg.Store.View(ctx, func(txn kv.Txn) (err error) {
		if seq, err = getUint(txn, evSeqKey(agentID)); err != nil {
			return err
		}
		ack, err = getUint(txn, evAckKey(agentID))
		return err
	})
	if err != nil {
		return err
	}
	if seq-ack >= uint64(c.cfg.MaxAgentBacklog) {
		c.m.backlogRefusal()
		return wire.NewError(wire.CodeRateLimited, "the shopping agent is not answering; try again later")
	}
	return nil
}

// uttered reports whether the device's utterance msgID already opened a transaction.
func (c *Core) uttered(ctx context.Context, device, msgID string) bool {
	err := c.cfg.Store.View(ctx, func(txn kv.Txn) error {
		_, err := txn.Get(uttKey(device, msgID))
		return err
	})
	return err == nil
}

// EventRetention is how long events stay in an agent's log when nothing takes them.
const EventRetention = 7 * 24 * time.Hour

// pruneEvents deletes, for every agent, events taken by its push channel more than an
// hour ago and events older than EventRetention, at most limit of them.
func (c *Core) pruneEvents(ctx context.Context, limit int) (int, error) {
	now := c.cfg.Now()
	var doomed [][]byte
	err := c.cfg.Store.View(ctx, func(txn kv.Txn) error {
		acks := map[string]uint64{}
		return txn.Scan([]byte("ev/"), func(k, v []byte) (bool, error) {
			rest := strings.TrimPrefix(string(k), "ev/")
			i := strings.LastIndexByte(rest, '/')
			if i < 0 {
				return true, nil
			}
			agentID := rest[:i]
			seq, err := strconv.ParseUint(rest[i+1:], 16, 64)
			if err != nil {
				return true, nil
			}
			ack, ok := acks[agentID]
			if !ok {
				if ack, err = getUint(txn, evAckKey(agentID)); err != nil {
					return false, err
				}
				acks[agentID] = ack
			}
			var ev struct {
				At time.Time `json:"timestamp"`
			}
			if err := json.Unmarshal(v, &ev); err != nil {
				return false, err
			}
			age := now.Sub(ev.At)
			if (seq <= ack && age > time.Hour) || age > EventRetention {
				doomed = append(doomed, append([]byte(nil), k...))
			}
			return len(doomed) < limit, nil
		})
	})
	if err != nil || len(doomed) == 0 {
		return 0, err
	}
	err = c.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		for _, k := range doomed {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return len(doomed), err
}

// Notify queues a notice from an agent for one of the user's devices (by default the
// glasses or kiosk the user connected last), durably, like every downlink message. A
// tx, when given, must be the agent's.
func (c *Core) Notify(ctx context.Context, agentID, agentName, user, device, tx, text string) (string, error) {
	uid, err := registry.UserID(user)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	n := &wire.Notice{Text: text, Agent: agentName, Tx: tx}
	if err := n.Validate(); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if device != "" {
		d, err := c.cfg.Registry.Device(ctx, device)
		switch {
		case errors.Is(err, registry.ErrUnknownDevice) || (err == nil && d.User != uid):
			return "", fmt.Errorf("%w: %s has no device %s", ErrInvalid, uid, device)
		case err != nil:
			return "", err
		case d.Revoked:
			return "", fmt.Errorf("%w: device %s is revoked", ErrNoDevice, device)
		}
	} else {
		d, err := c.agentDevice(ctx, uid, "")
		if err != nil {
			return "", err
		}
		device = d.ID
	}
	err = c.update(ctx, func(txn kv.Txn, touch func(string)) error {
		if tx != "" {
			t, err := loadTx(txn, tx)
			if err != nil {
				return err
			}
			if t.Agent != agentID || t.User != uid {
				return ErrUnknownTx // an agent sees only its own transactions
			}
		}
		s, err := loadState(txn, device)
		if err != nil {
			return err
		}
		if s.LastSeq-s.LastAck >= uint64(c.cfg.MaxUnacked) {
			return fmt.Errorf("%w: the device has %d messages it has not taken", ErrNoDevice, s.LastSeq-s.LastAck)
		}
		if _, err := enqueue(txn, device, n, c.cfg.Now()); err != nil {
			return err
		}
		touch(device)
		return nil
	})
	return device, err
}

// WaitTx returns the agent's transaction once its state is no longer seen (or at
// once if it differs already), or when ctx ends, with its state then.
func (c *Core) WaitTx(ctx context.Context, agentID, txID string, seen wire.TxState) (*Tx, error) {
	for {
		wake := c.Wake(agentID)
		t, err := c.Tx(ctx, txID)
		if err == nil && t.Agent != agentID {
			err = ErrUnknownTx
		}
		if err != nil || t.State != seen {
			return t, err
		}
		select {
		case <-ctx.Done():
			return t, nil
		case <-c.ctx.Done():
			return t, nil
		case <-wake:
		}
	}
}

// MandateToken returns the mandate token of the agent's mandated transaction, for
// connectors that redeem on the agent's behalf without handing the token to a model
// (the MCP server).
func (c *Core) MandateToken(ctx context.Context, agentID, txID string) (agent.Mandate, error) {
	t, err := c.Tx(ctx, txID)
	if err == nil && t.Agent != agentID {
		err = ErrUnknownTx
	}
	if err != nil {
		return agent.Mandate{}, err
	}
	if t.MandateToken == "" {
		return agent.Mandate{}, fmt.Errorf("%w: it is %s, with no mandate", ErrTxState, t.State)
	}
	return t.mandate(), nil
}
