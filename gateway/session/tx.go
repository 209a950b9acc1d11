package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/authz/risk"
	"github.com/earshot/earshot/device/wire"
)

// Tx is one transaction's durable record.
type Tx struct {
	ID      string `json:"tx"`
	Device  string `json:"device"`
	User    string `json:"user"`
	Session string `json:"session"`
	Agent   string `json:"agent"`
	Ref     string `json:"ref"` // the utterance's message id
	// Origin is OriginAgent for a purchase the agent started itself; empty for one
	// the user asked for by voice or text.
	Origin string       `json:"origin,omitempty"`
	Text   string       `json:"text"`
	State  wire.TxState `json:"state"`
	Code   wire.Code    `json:"code,omitempty"`
	Reason string       `json:"reason,omitempty"`

	Summary   string           `json:"summary,omitempty"`
	Challenge *authz.Challenge `json:"challenge,omitempty"`
	Prompt    string           `json:"prompt,omitempty"`
	// Granted are the terms of a mandate issued without a prompt of its own (a tip
	// inside the tip cap the user agreed to on Parent's prompt); nil otherwise.
	Granted *wire.Terms `json:"granted,omitempty"`

	// What the risk rules know of the request (set when the utterance arrives).
	DeviceKind string     `json:"device_kind,omitempty"`
	Enrolled   time.Time  `json:"enrolled,omitzero"`
	Said       *risk.Said `json:"said,omitempty"`
	// Step-up: the phones asked to approve, the PIN salt sent with the prompt, and the
	// wrong PINs so far.
	Approvers   []string `json:"approvers,omitempty"`
	PINSalt     string   `json:"pin_salt,omitempty"`
	PINFailures int      `json:"pin_failures,omitempty"`
	// SpendKey is the mandate's entry in the spend index (risk.go).
	SpendKey string `json:"spend_key,omitempty"`
	// Supersedes is the transaction whose order this one modifies.
	Supersedes string `json:"supersedes,omitempty"`
	// Payments counts a subscription's payments so far.
	Payments int `json:"payments,omitempty"`

	Mandate      string      `json:"mandate,omitempty"`
	MandateToken string      `json:"mandate_token,omitempty"`
	MandateExp   int64       `json:"mandate_exp,omitempty"`
	Amount       wire.Amount `json:"amount,omitempty"`
	Currency     string      `json:"currency,omitempty"`
	Redemption   string      `json:"redemption,omitempty"`

	// Told is the last state the agent's event log was told of (events.go).
	Told wire.TxState `json:"told,omitempty"`

	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
	History []Transition `json:"history"`
}

// terms returns what the transaction's mandate was issued for: the prompt's terms,
// or those granted without a prompt; the zero Terms before either.
func (t *Tx) terms() wire.Terms {
	switch {
	case t.Challenge != nil:
		return t.Challenge.Terms
	case t.Granted != nil:
		return *t.Granted
	}
	return wire.Terms{}
}

// OriginAgent marks a transaction an agent started itself (Tx.Origin).
const OriginAgent = "agent"

func lastDevKey(user string) []byte { return []byte("lastdev/" + user) }

// Transition is one step in a transaction's history.
type Transition struct {
	State wire.TxState `json:"state"`
	At    time.Time    `json:"at"`
}

// transitions is the state machine: which state may follow which.
var transitions = map[wire.TxState][]wire.TxState{
	wire.TxReceived: {wire.TxRequested, wire.TxRejected, wire.TxFailed},
	// A tip inside the tip cap the user agreed to is mandated without a prompt.
	wire.TxRequested: {wire.TxPrompted, wire.TxMandated, wire.TxFailed},
	// Rejected after the prompt: the third wrong PIN.
	wire.TxPrompted:  {wire.TxConfirmed, wire.TxDeclined, wire.TxExpired, wire.TxRejected, wire.TxFailed},
	wire.TxConfirmed: {wire.TxMandated, wire.TxFailed},
	wire.TxMandated:  {wire.TxRedeemed, wire.TxFailed, wire.TxCancelled},
	// After the redemption: the cancel window (see lifecycle.go).
	wire.TxRedeemed:   {wire.TxCancelling, wire.TxSettled},
	wire.TxCancelling: {wire.TxCancelled, wire.TxRedeemed},
}

// ErrTransition reports a transition the state machine does not allow.
var ErrTransition = errors.New("session: transition not allowed")

func (t *Tx) move(to wire.TxState, now time.Time) error {
	for _, s := range transitions[t.State] {
		if s == to {
			t.State, t.Updated = to, now
			t.History = append(t.History, Transition{State: to, At: now})
			return nil
		}
	}
	return fmt.Errorf("%w: %s -> %s", ErrTransition, t.State, to)
}

// result is the tx.result body that reports the transaction's current state.
func (t *Tx) result() *wire.TxResult {
	r := &wire.TxResult{Tx: t.ID, State: t.State, Code: t.Code, Reason: t.Reason, Mandate: t.Mandate, Ref: t.Ref}
	if t.State == wire.TxRedeemed {
		r.Amount, r.Currency = t.Amount, t.Currency
	}
	return r
}

func txKey(id string) []byte             { return []byte("tx/" + id) }
func txDevKey(device, id string) []byte  { return []byte("txdev/" + device + "/" + id) }
func uttKey(device, msgID string) []byte { return []byte("utt/" + device + "/" + msgID) }
func txDevPrefix(device string) []byte   { return []byte("txdev/" + device + "/") }
func loadTx(txn kv.Txn, id string) (*Tx, error) {
	raw, err := txn.Get(txKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, ErrUnknownTx
	} else if err != nil {
		return nil, err
	}
	t := new(Tx)
	if err := json.Unmarshal(raw, t); err != nil {
		return nil, fmt.Errorf("session: tx %s: %w", id, err)
	}
	return t, nil
}

func saveTx(txn kv.Txn, t *Tx) error {
	if err := tellAgent(txn, t); err != nil {
		return err
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("session: tx %s: %w", t.ID, err)
	}
	return txn.Set(txKey(t.ID), raw)
}

// publish saves the transaction and queues the downlink message that reports it, in
// the same store transaction: a device never hears of a state that was not written.
func publish(txn kv.Txn, t *Tx, report wire.Body, now time.Time) error {
	if err := saveTx(txn, t); err != nil {
		return err
	}
	_, err := enqueue(txn, t.Device, report, now)
	return err
}
