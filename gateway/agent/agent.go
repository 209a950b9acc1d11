// Package agent defines what the gateway needs from a shopping agent. An agent hears
// the user's intents and, once the user has approved a purchase, receives the mandate
// it may redeem once. It answers through the gateway's REST API (gateway/api): purchase
// requests, rejections, redemption — the same endpoints an external agent or merchant
// uses, so the embedded reference agent (refagent) proves them on every run.
package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// Intent is what a user said, handed to the agent. The agent answers with a purchase
// request for Tx (POST /v1/purchase-requests) or a rejection
// (POST /v1/transactions/{tx}/reject).
type Intent struct {
	Tx     string    `json:"tx"`
	Device string    `json:"device"`
	User   string    `json:"user"`
	Text   string    `json:"text"`
	Lang   string    `json:"lang,omitempty"`
	At     time.Time `json:"at"`
}

// Mandate tells the agent that the user approved Tx. Token is the compact JWS the agent
// presents to POST /v1/redemptions, with an Idempotency-Key, to be paid once.
type Mandate struct {
	Tx        string      `json:"tx"`
	ID        string      `json:"mandate"`
	Token     string      `json:"token"`
	User      string      `json:"user"`
	Payee     string      `json:"payee"`
	AmountCap wire.Amount `json:"amount_cap"`
	Currency  string      `json:"currency"`
	ExpiresAt time.Time   `json:"expires_at"`
	// Kind and Conditions say how the mandate may be redeemed (wire.Kind): once now
	// (one_off, tip), once when the price is at most AmountCap (price_target), or once
	// per payment of a subscription (recurring), until ExpiresAt.
	Kind       wire.Kind        `json:"kind"`
	Conditions *wire.Conditions `json:"conditions,omitempty"`
	// Items are the consented lines.
	Items []wire.Item `json:"items"`
}

// Outcome tells the agent how a transaction ended when it ended without a redemption
// (declined, expired), so it can forget it.
type Outcome struct {
	Tx    string       `json:"tx"`
	State wire.TxState `json:"state"`
}

// Agent is a shopping agent as the gateway's session core drives it. Calls may come
// from several goroutines and must return quickly: an agent does its work in its own
// goroutines, owned by Run. Delivery is at least once (after a gateway restart an
// intent or mandate may be handed over again), so agents key their work by Tx and
// redeem with an Idempotency-Key derived from the mandate id.
type Agent interface {
	// ID is the agent id mandates are bound to (the JWS audience).
	ID() string
	OnIntent(ctx context.Context, in Intent) error
	OnMandate(ctx context.Context, m Mandate) error
	OnOutcome(ctx context.Context, o Outcome) error
}

// Event is one entry of an agent's durable event log, as webhooks, the server-sent
// events stream and the MCP server deliver it. Seq orders an agent's events in the
// order they were committed (so, for one device, in the order they happened); ID is
// unique and stable across redeliveries (the webhook-id).
//
// Types: "intent.received" (Data is an Intent) and "transaction.<state>" for every
// state a transaction reaches after it was received (Data is a TxEvent), for example
// "transaction.prompted", "transaction.mandated" (with the Mandate), "transaction.declined".
type Event struct {
	ID     string          `json:"id"`
	Seq    uint64          `json:"seq"`
	Type   string          `json:"type"`
	At     time.Time       `json:"timestamp"`
	Device string          `json:"device,omitempty"`
	User   string          `json:"user,omitempty"`
	Data   json.RawMessage `json:"data"`
}

// Event types.
const (
	EventIntent = "intent.received"
	// EventTxPrefix prefixes a transaction's state: "transaction.prompted".
	EventTxPrefix = "transaction."
)

// TxEvent is the data of a "transaction.<state>" event.
type TxEvent struct {
	Tx     string       `json:"tx"`
	Device string       `json:"device"`
	User   string       `json:"user"`
	State  wire.TxState `json:"state"`
	Code   string       `json:"code,omitempty"`
	Reason string       `json:"reason,omitempty"`
	// ConsentHash and ExpiresAt describe the open prompt (state prompted).
	ConsentHash string     `json:"consent_hash,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	// Mandate is set on state mandated: what the agent may redeem, once.
	Mandate *Mandate `json:"mandate,omitempty"`
	// Redemption and Amount are set once the mandate was redeemed.
	Redemption string      `json:"redemption,omitempty"`
	Amount     wire.Amount `json:"amount,omitempty"`
	Currency   string      `json:"currency,omitempty"`
}
