package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

// Tx is one transaction's durable record.
type Tx struct {
	ID      string       `json:"tx"`
	Device  string       `json:"device"`
	User    string       `json:"user"`
	Session string       `json:"session"`
	Agent   string       `json:"agent"`
	Ref     string       `json:"ref"` // the utterance's message id
	Text    string       `json:"text"`
	State   wire.TxState `json:"state"`
	Code    wire.Code    `json:"code,omitempty"`
	Reason  string       `json:"reason,omitempty"`

	Summary   string           `json:"summary,omitempty"`
	Challenge *authz.Challenge `json:"challenge,omitempty"`
	Prompt    string           `json:"prompt,omitempty"`

	Mandate      string      `json:"mandate,omitempty"`
	MandateToken string      `json:"mandate_token,omitempty"`
	MandateExp   int64       `json:"mandate_exp,omitempty"`
	Amount       wire.Amount `json:"amount,omitempty"`
	Currency     string      `json:"currency,omitempty"`
	Redemption   string      `json:"redemption,omitempty"`

	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
	History []Transition `json:"history"`
}

// Transition is one step in a transaction's history.
type Transition struct {
	State wire.TxState `json:"state"`
	At    time.Time    `json:"at"`
}

// transitions is the state machine: which state may follow which.
var transitions = map[wire.TxState][]wire.TxState{
	wire.TxReceived:  {wire.TxRequested, wire.TxRejected, wire.TxFailed},
	wire.TxRequested: {wire.TxPrompted, wire.TxFailed},
	wire.TxPrompted:  {wire.TxConfirmed, wire.TxDeclined, wire.TxExpired, wire.TxFailed},
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
