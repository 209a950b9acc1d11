package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/earshot/earshot/gateway/agent"
)

// The data of the events the bakery acts on, as the webhooks carry them
// (docs/agents.md, "Events").
type (
	// intent is the data of intent.received: what the user said.
	intent struct {
		Tx     string `json:"tx"`
		Device string `json:"device"`
		User   string `json:"user"`
		Text   string `json:"text"`
	}
	// txEvent is the data of transaction.<state>.
	txEvent struct {
		Tx      string   `json:"tx"`
		Device  string   `json:"device"`
		User    string   `json:"user"`
		State   string   `json:"state"`
		Mandate *mandate `json:"mandate"` // on transaction.mandated
	}
	// mandate is what the user approved; Token is the signed mandate to redeem, once.
	// It is a bearer credential: never logged.
	mandate struct {
		ID        string     `json:"mandate"`
		Token     string     `json:"token"`
		Payee     string     `json:"payee"`
		AmountCap int64      `json:"amount_cap"`
		Currency  string     `json:"currency"`
		Kind      string     `json:"kind"`
		Items     []lineItem `json:"items"`
	}
)

// bakery is the agent: it answers each event with (at most) one REST call.
type bakery struct {
	api *restClient
	log *slog.Logger
	// seen holds the webhook-ids of the events handled: delivery is at least once.
	seen *recent[struct{}]
	// orders holds what the bakery proposed, by tx, to check the mandate against it
	// and to name the order in the notice.
	orders *recent[order]
	// Counters, logged at shutdown.
	handled, duplicates, failed atomic.Int64
}

// How many webhook-ids and proposals the bakery remembers; the oldest are forgotten
// first (and counted).
const (
	seenCap   = 4096
	ordersCap = 1024
)

func newBakery(api *restClient, log *slog.Logger) *bakery {
	return &bakery{api: api, log: log, seen: newRecent[struct{}](seenCap), orders: newRecent[order](ordersCap)}
}

// handle takes one verified event. It returns nil (the webhook answers 204) once the
// REST call it makes succeeded or was refused for good, and an error (the webhook
// answers 500, so the gateway sends the event again, with the same webhook-id) when
// a retry may succeed. The gateway sends an agent's events one at a time, in order,
// so checking seen before and marking it after is enough; and every REST call is
// idempotent, should another sender repeat an event concurrently.
func (b *bakery) handle(ctx context.Context, ev agent.Event) error {
	if _, dup := b.seen.get(ev.ID); dup {
		b.duplicates.Add(1)
		b.log.Debug("duplicate event", "event", ev.ID, "type", ev.Type)
		return nil
	}
	log := b.log.With("event", ev.ID, "type", ev.Type)
	var err error
	switch ev.Type {
	case agent.EventIntent:
		err = b.onIntent(ctx, log, ev.Data)
	case "transaction.mandated":
		err = b.onMandated(ctx, log, ev.Data)
	case "transaction.redeemed":
		err = b.onRedeemed(ctx, log, ev.Data)
	case "transaction.cancelling":
		err = b.onCancelling(ctx, log, ev.Data)
	default: // prompted, declined, expired, settled...: nothing to do
		log.Debug("event ignored")
	}
	if err != nil {
		b.failed.Add(1)
		log.Warn("event not taken; the gateway will send it again", "err", err)
		return err
	}
	b.handled.Add(1)
	b.seen.put(ev.ID, struct{}{})
	return nil
}

// onIntent proposes an order for what the user said, or turns it down.
func (b *bakery) onIntent(ctx context.Context, log *slog.Logger, data json.RawMessage) error {
	var in intent
	if err := json.Unmarshal(data, &in); err != nil || in.Tx == "" {
		log.Warn("malformed intent skipped", "err", err)
		return nil // it will not get better
	}
	log = log.With("tx", in.Tx)
	o, ok := parse(in.Text)
	if !ok {
		err := b.api.post(ctx, "/v1/transactions/"+url.PathEscape(in.Tx)+"/reject", "",
			map[string]string{"code": "not_understood", "reason": notUnderstood}, nil)
		if err == nil {
			log.Info("intent not understood; rejected")
		}
		return definite(log, err)
	}
	b.orders.put(in.Tx, o)
	req := map[string]any{
		"tx":       in.Tx,
		"merchant": map[string]string{"id": merchantID, "name": merchantName},
		"items":    o.items(),
		"total":    o.total(),
		"currency": currency,
		"summary":  o.String() + " from " + merchantName,
	}
	var out struct {
		State string `json:"state"` // prompted, or rejected by the gateway's risk rules
	}
	err := b.api.post(ctx, "/v1/purchase-requests", "", req, &out)
	if err == nil {
		log.Info("purchase proposed", "total", o.total(), "currency", currency, "state", out.State)
	}
	return definite(log, err)
}

// onMandated redeems the mandate the user granted, once, after checking it is for
// the order the bakery proposed; a mandate for anything else is revoked.
func (b *bakery) onMandated(ctx context.Context, log *slog.Logger, data json.RawMessage) error {
	var te txEvent
	if err := json.Unmarshal(data, &te); err != nil || te.Mandate == nil || te.Tx == "" {
		log.Warn("malformed mandate event skipped", "err", err)
		return nil
	}
	m := te.Mandate
	log = log.With("tx", te.Tx, "mandate", m.ID)
	o, known := b.orders.get(te.Tx)
	if !known { // proposed before a restart: the menu says what it must be
		o, known = fromItems(m.Items)
	}
	if why := mismatch(m, o, known); why != "" {
		log.Warn("mandate does not match the proposal; revoking it", "why", why)
		err := b.api.post(ctx, "/v1/transactions/"+url.PathEscape(te.Tx)+"/revoke", "revoke-"+m.ID,
			map[string]string{"reason": "the order does not match what " + merchantName + " proposed"}, nil)
		return definite(log, err)
	}
	var out struct {
		Redemption string `json:"redemption"`
	}
	// The key derives from the mandate: a retry (this event again, or our own
	// crash) replays the first redemption instead of paying twice.
	err := b.api.post(ctx, "/v1/redemptions", "redeem-"+m.ID, map[string]any{
		"mandate": m.Token, "amount": o.total(), "currency": currency, "payee": merchantID,
	}, &out)
	if err == nil {
		log.Info("mandate redeemed", "redemption", out.Redemption, "amount", o.total(), "currency", currency)
	}
	return definite(log, err)
}

// mismatch says why m is not the mandate for order o ("" when it is).
func mismatch(m *mandate, o order, known bool) string {
	switch {
	case !known:
		return "not an order from the menu"
	case m.Payee != merchantID:
		return "payee " + m.Payee
	case m.Currency != currency:
		return "currency " + m.Currency
	case m.AmountCap != o.total():
		return fmt.Sprintf("cap %d, proposed %d", m.AmountCap, o.total())
	case m.Kind != "" && m.Kind != "one_off":
		return "kind " + m.Kind
	case len(m.Items) != len(o):
		return "other items"
	}
	for i, it := range o.items() {
		if m.Items[i] != it {
			return "other items"
		}
	}
	return ""
}

// onRedeemed tells the user their order is ready, on the device they ordered from.
func (b *bakery) onRedeemed(ctx context.Context, log *slog.Logger, data json.RawMessage) error {
	var te txEvent
	if err := json.Unmarshal(data, &te); err != nil || te.Tx == "" {
		log.Warn("malformed redemption event skipped", "err", err)
		return nil
	}
	log = log.With("tx", te.Tx)
	text := "Your order is ready at the counter."
	if o, ok := b.orders.get(te.Tx); ok {
		text = o.readyText()
	}
	err := b.api.post(ctx, "/v1/notifications", "notify-"+te.Tx,
		map[string]string{"user": te.User, "device": te.Device, "tx": te.Tx, "text": text}, nil)
	if err == nil {
		log.Info("user notified", "device", te.Device)
	}
	return definite(log, err)
}

// onCancelling accepts the user's "cancel my order": nothing is baked yet.
func (b *bakery) onCancelling(ctx context.Context, log *slog.Logger, data json.RawMessage) error {
	var te txEvent
	if err := json.Unmarshal(data, &te); err != nil || te.Tx == "" {
		log.Warn("malformed cancellation event skipped", "err", err)
		return nil
	}
	log = log.With("tx", te.Tx)
	err := b.api.post(ctx, "/v1/transactions/"+url.PathEscape(te.Tx)+"/cancellation", "cancel-"+te.Tx,
		map[string]bool{"accept": true}, nil)
	if err == nil {
		log.Info("cancellation accepted")
	}
	return definite(log, err)
}

// definite turns a REST call's error into the event's outcome: a refusal a retry
// cannot change is logged and the event taken (nil); anything else is returned, so
// the gateway sends the event again.
func definite(log *slog.Logger, err error) error {
	var pe *problemError
	if errors.As(err, &pe) && !pe.retryable() {
		log.Warn("the gateway refused", "status", pe.Status, "code", pe.Code, "detail", pe.Detail)
		return nil
	}
	return err
}

// restClient calls the gateway's REST API with the agent's key.
type restClient struct {
	base string // http://127.0.0.1:8080
	key  string // esk_...; never logged
	http *http.Client
}

// restTimeout bounds each REST call, well inside the 10 seconds the gateway waits for
// a webhook's answer.
const restTimeout = 5 * time.Second

// problemError is a refusal from the gateway: an RFC 9457 problem with a stable code.
type problemError struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func (e *problemError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail)
}

// retryable reports whether the same request may succeed later: the gateway failed
// or was busy, or the key was refused (the operator may fix it; dropping the event
// would lose it). Every other refusal is definite (docs/agents.md, "Errors").
func (e *problemError) retryable() bool {
	switch {
	case e.Status >= 500, e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests:
		return true
	case e.Code == "in_flight", e.Code == "unauthorized":
		return true
	}
	return false
}

// post sends in as JSON to path, with an Idempotency-Key when idemKey is set, and
// decodes a 2xx answer into out (when not nil). A non-2xx answer is a *problemError.
func (c *restClient) post(ctx context.Context, path, idemKey string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("POST %s: reading the answer: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		pe := &problemError{}
		if json.Unmarshal(raw, pe) != nil || pe.Code == "" { // not a problem: a proxy's page
			pe.Detail = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
		}
		pe.Status = resp.StatusCode
		return fmt.Errorf("POST %s: %w", path, pe)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("POST %s: decoding the answer: %w", path, err)
		}
	}
	return nil
}

// recent remembers up to a fixed number of keys with a value; once full, putting a
// new key forgets the oldest (counted in forgotten).
type recent[V any] struct {
	mu        sync.Mutex
	vals      map[string]V
	ring      []string // keys in the order they were put; ring[next] is the oldest once full
	next      int
	forgotten int64
}

func newRecent[V any](n int) *recent[V] {
	return &recent[V]{vals: make(map[string]V, n), ring: make([]string, n)}
}

func (r *recent[V]) get(k string) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.vals[k]
	return v, ok
}

func (r *recent[V]) put(k string, v V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.vals[k]; !ok {
		if old := r.ring[r.next]; old != "" {
			delete(r.vals, old)
			r.forgotten++
		}
		r.ring[r.next] = k
		r.next = (r.next + 1) % len(r.ring)
	}
	r.vals[k] = v
}

// dropped is how many keys were forgotten to make room.
func (r *recent[V]) dropped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.forgotten
}
