package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

// Key prefixes of the ledger's records in the kv store (see the package doc).
const (
	LedgerPrefix = "ledger/" // ledger/<jti> -> JSON Entry
	IdemPrefix   = "idem/"   // idem/<agent>/<hex sha256 of the Idempotency-Key> -> JSON IdemRecord
)

// LedgerKey returns the key of a mandate's Entry.
func LedgerKey(jti string) []byte { return []byte(LedgerPrefix + jti) }

// IdemKey returns the key of an agent's IdemRecord for an Idempotency-Key.
func IdemKey(agent, idempotencyKey string) []byte {
	sum := sha256.Sum256([]byte(idempotencyKey))
	return []byte(IdemPrefix + agent + "/" + hex.EncodeToString(sum[:]))
}

// Limits on a RedeemRequest.
const (
	MaxIdempotencyKey = 255 // bytes of printable ASCII
	maxAgentBytes     = 255
)

// State is a mandate's state in the ledger.
type State int

// States; docs/mandates.md has the table of transitions. Issued is the only state a
// mandate can be redeemed, revoked or superseded in; revoked, expired, settled,
// cancelled and superseded are final.
const (
	StateUnknown State = iota
	StateIssued
	StateRedeemed // paid, pending settlement: the user may cancel until Entry.SettleAfter
	StateSettled
	StateRevoked
	StateExpired
	StateCancelling // the user cancelled inside the window; the merchant must answer
	StateCancelled
	StateSuperseded // a newer consent replaced it before redemption (a modification)
)

var stateNames = [...]string{"unknown", "issued", "redeemed", "settled", "revoked", "expired",
	"cancelling", "cancelled", "superseded"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state_%d", int(s))
}

// MarshalText encodes the state as its name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a name written by MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("authz: unknown state %q", b)
}

// Entry is a mandate's ledger record.
type Entry struct {
	Claims        Claims      `json:"claims"`
	State         State       `json:"state"`
	Redemption    *Redemption `json:"redemption,omitempty"`
	RevokedReason string      `json:"revoked_reason,omitempty"`
	UpdatedAt     int64       `json:"updated_at"` // Unix milliseconds
	// SettleAfter ends the cancel window of a redeemed mandate, Unix milliseconds.
	SettleAfter int64 `json:"settle_after,omitempty"`
	// CancelReason is why the user cancelled; CancelDeclined is the merchant's refusal.
	CancelReason   string `json:"cancel_reason,omitempty"`
	CancelDeclined string `json:"cancel_declined,omitempty"`
	// Supersedes and SupersededBy link the mandates of a modification.
	Supersedes   string `json:"supersedes,omitempty"`
	SupersededBy string `json:"superseded_by,omitempty"`
	// Receipts are the signed receipts of every transition, oldest first (see Receipt),
	// and of every payment of a recurring mandate.
	Receipts []string `json:"receipts,omitempty"`
	// Payments are a recurring mandate's payments, oldest first; Redemption is the
	// latest of them.
	Payments []Redemption `json:"payments,omitempty"`
	// Tipped is how much of the mandate's TipCap tips recorded under it have used.
	Tipped wire.Amount `json:"tipped,omitempty"`
}

// Redemption is the receipt of a successful redemption.
type Redemption struct {
	ID         string      `json:"redemption"` // "rdm_" and 128 random bits
	Mandate    string      `json:"mandate"`    // jti
	Tx         string      `json:"tx"`
	Agent      string      `json:"agent"`
	Payee      string      `json:"payee"`
	Amount     wire.Amount `json:"amount"`
	Currency   string      `json:"currency"`
	RedeemedAt int64       `json:"redeemed_at"` // Unix milliseconds
}

// IdemRecord is the answer given to one agent's Idempotency-Key: a Redemption, or a
// refusal that stays final for that key.
type IdemRecord struct {
	BodyHash   string      `json:"body_hash"` // hex sha256, see RedeemRequest
	Mandate    string      `json:"mandate,omitempty"`
	Redemption *Redemption `json:"redemption,omitempty"`
	Code       ErrorCode   `json:"code,omitempty"` // the refusal, when Redemption is nil
	Detail     string      `json:"detail,omitempty"`
	CreatedAt  int64       `json:"created_at"` // Unix milliseconds
}

// RedeemRequest is an agent's request to be paid under a mandate.
type RedeemRequest struct {
	// Agent is the authenticated caller, not a claim of the request body.
	Agent string
	// Token is the mandate JWS.
	Token    string
	Amount   wire.Amount
	Currency string
	Payee    string
	// IdempotencyKey is required: 1 to 255 bytes of printable ASCII. The same key with
	// the same body (token, amount, currency, payee) gets the same answer.
	IdempotencyKey string
}

// bodyHash is the hex SHA-256 of the canonical JSON array [token, amount, currency,
// payee].
func (r *RedeemRequest) bodyHash() string {
	b, _ := json.Marshal([]any{r.Token, int64(r.Amount), r.Currency, r.Payee}) // strings and an int cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (r *RedeemRequest) validate() error {
	bad := func(detail string) error { return refuse(CodeBadRequest, detail, nil) }
	switch {
	case r.Agent == "" || len(r.Agent) > maxAgentBytes:
		return bad("agent: required, at most 255 bytes")
	case r.Token == "":
		return bad("mandate: required")
	case r.Amount <= 0 || r.Amount > wire.MaxAmount:
		return bad("amount: must be a positive integer in minor units")
	case wire.ValidCurrency(r.Currency) != nil:
		return bad("currency: not an ISO 4217 code")
	case r.Payee == "" || len(r.Payee) > wire.MaxIDBytes:
		return bad("payee: required, at most 64 bytes")
	case !validIdempotencyKey(r.IdempotencyKey):
		return bad("idempotency key: required, 1 to 255 printable ASCII characters")
	}
	return nil
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > MaxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// LedgerConfig configures a Ledger.
type LedgerConfig struct {
	// Store holds the ledger. Required.
	Store kv.Store
	// Keys verifies the mandates presented for redemption. Required.
	Keys *KeySet
	// Issuer is the iss every mandate must carry. Required.
	Issuer string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Rand makes redemption ids; it must be safe for concurrent use. Default
	// crypto/rand.
	Rand io.Reader
	// OnRedeem, if set, runs inside the redemption transaction (the same kv.Txn) after
	// the ledger's checks passed and the entry was written as redeemed; an error aborts
	// the whole redemption. It runs for every payment of a recurring mandate too: for
	// all but the last the entry stays issued, with e.Redemption the payment. The
	// gateway uses it to move its own transaction record and enqueue the device's
	// tx.result atomically with the ledger write. Like any transaction body it may run
	// more than once and must have no other effects.
	OnRedeem func(txn kv.Txn, e *Entry) error
	// OnTransition, if set, runs inside the transaction of every state change (after
	// OnRedeem for a redemption; not for a recurring payment that leaves the mandate
	// issued), with the entry in its new state and the state it left; an error aborts
	// the change. The gateway writes the audit record and tells
	// the device and the agent from it. Like OnRedeem it may run more than once.
	OnTransition func(txn kv.Txn, e *Entry, from State) error
	// CancelWindow is how long after a redemption the user may still cancel: the
	// payment settles when it ends. Default 2 minutes; negative: no window (a
	// redemption may be settled at once).
	CancelWindow time.Duration
}

// DefaultCancelWindow is LedgerConfig.CancelWindow's default.
const DefaultCancelWindow = 2 * time.Minute

// Ledger redeems mandates exactly once. It is safe for concurrent use.
type Ledger struct {
	cfg LedgerConfig

	mu       sync.Mutex
	inFlight map[string]struct{} // string(IdemKey) of running redemptions
}

// NewLedger validates cfg and returns a Ledger.
func NewLedger(cfg LedgerConfig) (*Ledger, error) {
	switch {
	case cfg.Store == nil:
		return nil, fmt.Errorf("%w: Store is required", ErrInvalidConfig)
	case cfg.Keys == nil:
		return nil, fmt.Errorf("%w: Keys is required", ErrInvalidConfig)
	case cfg.Issuer == "":
		return nil, fmt.Errorf("%w: Issuer is required", ErrInvalidConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	switch {
	case cfg.CancelWindow == 0:
		cfg.CancelWindow = DefaultCancelWindow
	case cfg.CancelWindow < 0:
		cfg.CancelWindow = 0
	}
	return &Ledger{cfg: cfg, inFlight: make(map[string]struct{})}, nil
}

// Record writes a freshly issued mandate, in state issued, inside the caller's
// transaction: the gateway records it in the same transaction that moves its own
// transaction to "mandated". A jti the ledger already holds is refused with
// ErrMandateExists. A tip is recorded as by RecordTip(txn, c, false).
func (l *Ledger) Record(txn kv.Txn, c Claims) error {
	if c.Kind == wire.KindTip {
		return l.RecordTip(txn, c, false)
	}
	if err := l.checkNew(txn, &c); err != nil {
		return err
	}
	return l.transition(txn, &Entry{Claims: c}, StateIssued, l.cfg.Now(), "")
}

// checkNew checks claims about to be recorded: valid, ours, and a jti not yet held.
func (l *Ledger) checkNew(txn kv.Txn, c *Claims) error {
	if err := c.validate(); err != nil {
		return err
	}
	if c.Issuer != l.cfg.Issuer {
		return fmt.Errorf("%w: issuer %q, ledger issues %q", ErrInvalidClaims, c.Issuer, l.cfg.Issuer)
	}
	switch _, err := txn.Get(LedgerKey(c.ID)); {
	case err == nil:
		return fmt.Errorf("%w: %s", ErrMandateExists, c.ID)
	case !errors.Is(err, kv.ErrNotFound):
		return fmt.Errorf("authz: record %s: %w", c.ID, err)
	}
	return nil
}

// Redeem pays an agent under a mandate, at most once per mandate. It verifies the
// token's signature and issuer outside any transaction, then, in one kv.Update:
//
//   - an IdemRecord for the same agent and Idempotency-Key answers a replay: the same
//     body gets the stored answer with replayed true (a Redemption, or the same
//     refusal), another body gets CodeIdempotencyConflict;
//   - the entry must exist (CodeNotFound) and hold the token's claims, the caller must
//     be the mandate's agent (CodeWrongAgent), the entry must be issued
//     (CodeAlreadyRedeemed, CodeRevoked, CodeMandateExpired) and not past exp (it is
//     then marked expired), and the payee, currency and amount must match the mandate
//     (CodePayeeMismatch, CodeCurrencyMismatch, CodeOverCap);
//   - on success the entry becomes redeemed, the IdemRecord is written, and OnRedeem
//     runs, all in the same transaction.
//
// By kind (see the package doc): a price_target mandate is redeemed like a one_off,
// its cap checked against the amount charged, never the agent's word that the price
// was met. A redemption of a recurring mandate is one payment: refused with
// CodeExhausted once all its payments are made and with CodeOverPeriodCap when the
// current period's payments and this one would exceed PeriodCap; otherwise it is
// appended to Entry.Payments and the entry stays issued, with a receipt (state issued,
// from issued, the payment's amount and redemption id) and OnRedeem but no
// OnTransition, until the last payment makes it redeemed like a one_off. A tip is
// refused with CodeParentNotPaid unless its parent mandate is redeemed or settled (and
// for the same agent, payee and currency).
//
// Refusals that are final for the key (all those above but CodeNotFound and
// CodeParentNotPaid, which may change) are recorded in the IdemRecord too. A malformed
// request is CodeBadRequest; a second request with the same agent and key while the
// first runs is CodeInFlight. Agent-facing refusals
// are *Error; any other error (the store's, OnRedeem's) is returned wrapped.
func (l *Ledger) Redeem(ctx context.Context, r RedeemRequest) (red *Redemption, replayed bool, err error) {
	if err := r.validate(); err != nil {
		return nil, false, err
	}
	idemKey := IdemKey(r.Agent, r.IdempotencyKey)
	if !l.acquire(string(idemKey)) {
		return nil, false, refuse(CodeInFlight, "a request with this idempotency key is in progress", nil)
	}
	defer l.release(string(idemKey))

	claims, err := l.cfg.Keys.verifySignature(r.Token, l.cfg.Issuer)
	if err != nil {
		return nil, false, err
	}
	body := r.bodyHash()
	var refusal *Error
	err = l.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		red, replayed, refusal = nil, false, nil // the store may run this more than once
		if rec, err := getIdem(txn, idemKey); err == nil {
			if rec.BodyHash != body {
				refusal = refuse(CodeIdempotencyConflict, "the idempotency key was used with a different request", nil)
				return nil
			}
			replayed = true
			if rec.Redemption != nil {
				red = rec.Redemption
			} else {
				refusal = refuse(rec.Code, rec.Detail, nil)
			}
			return nil
		} else if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		e, err := getEntry(txn, claims.ID)
		if errors.Is(err, kv.ErrNotFound) {
			refusal = refuse(CodeNotFound, "no such mandate", err)
			return nil
		} else if err != nil {
			return err
		}
		now := l.cfg.Now()
		if refusal = l.check(e, claims, &r, now); refusal == nil && e.Claims.Kind == wire.KindTip {
			var unpaid *Error
			if _, unpaid, err = tipParent(txn, &e.Claims); err != nil || unpaid != nil {
				if unpaid != nil { // not final: a declined cancellation pays the parent again
					refusal = refuse(CodeParentNotPaid, unpaid.Detail, nil)
				}
				return err
			}
		}
		if refusal != nil {
			if refusal.Code == CodeMandateInvalid {
				return nil // not final: do not record
			}
			if e.State == StateIssued && refusal.Code == CodeMandateExpired {
				if err := l.transition(txn, e, StateExpired, now, ""); err != nil {
					return err
				}
			}
			return putIdem(txn, idemKey, &IdemRecord{BodyHash: body, Mandate: claims.ID,
				Code: refusal.Code, Detail: refusal.Detail, CreatedAt: now.UnixMilli()})
		}
		id, err := randomID("rdm_", l.cfg.Rand)
		if err != nil {
			return err
		}
		red = &Redemption{ID: id, Mandate: claims.ID, Tx: e.Claims.Tx, Agent: r.Agent, Payee: r.Payee,
			Amount: r.Amount, Currency: r.Currency, RedeemedAt: now.UnixMilli()}
		e.Redemption = red
		if err := putIdem(txn, idemKey, &IdemRecord{BodyHash: body, Mandate: claims.ID, Redemption: red,
			CreatedAt: now.UnixMilli()}); err != nil {
			return err
		}
		if e.Claims.Kind == wire.KindRecurring {
			if e.Payments = append(e.Payments, *red); !exhausted(e) {
				return l.pay(txn, e, now)
			}
		}
		e.SettleAfter = now.Add(l.cfg.CancelWindow).UnixMilli()
		return l.transition(txn, e, StateRedeemed, now, "")
	})
	if err != nil {
		return nil, false, fmt.Errorf("authz: redeem: %w", err)
	}
	if refusal != nil {
		return nil, replayed, refusal
	}
	return red, replayed, nil
}

// check applies the ledger's rules to a redemption of e.
func (l *Ledger) check(e *Entry, c *Claims, r *RedeemRequest, now time.Time) *Error {
	stored, _ := json.Marshal(&e.Claims) // Claims always marshal
	presented, _ := json.Marshal(c)
	if string(stored) != string(presented) {
		return refuse(CodeMandateInvalid, "the mandate does not match the ledger", nil)
	}
	if r.Agent != e.Claims.Agent {
		return refuse(CodeWrongAgent, "the mandate is bound to another agent", nil)
	}
	if exhausted(e) {
		return refuse(CodeExhausted, fmt.Sprintf("all %d payments of the mandate were made", len(e.Payments)), nil)
	}
	if refusal := notIssued(e.State); refusal != nil {
		return refusal
	}
	if refusal := checkWindow(&e.Claims, now, 0); refusal != nil {
		return refusal
	}
	switch {
	case r.Payee != e.Claims.Payee:
		return refuse(CodePayeeMismatch, "the payee is not the mandate's payee", nil)
	case r.Currency != e.Claims.Currency:
		return refuse(CodeCurrencyMismatch, "the currency is not the mandate's currency", nil)
	case r.Amount > e.Claims.AmountCap:
		return refuse(CodeOverCap, fmt.Sprintf("the amount is over the mandate's cap of %d", e.Claims.AmountCap), nil)
	case e.Claims.Kind == wire.KindRecurring:
		return checkPeriodCap(e, r.Amount, now)
	}
	return nil
}

func (l *Ledger) acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.inFlight[key]; busy {
		return false
	}
	l.inFlight[key] = struct{}{}
	return true
}

func (l *Ledger) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.inFlight, key)
}

// Revoke cancels an issued mandate, keeping reason. A mandate in any other state is
// refused (see notIssued); an issued mandate past its exp is marked expired and refused
// with CodeMandateExpired; an unknown one is CodeNotFound.
func (l *Ledger) Revoke(ctx context.Context, jti, reason string) error {
	_, err := l.update(ctx, jti, func(txn kv.Txn, e *Entry, now time.Time) (*Error, error) {
		if refusal := notIssued(e.State); refusal != nil {
			return refusal, nil
		}
		if !now.Before(time.Unix(e.Claims.Expiry, 0)) {
			return refuse(CodeMandateExpired, "the mandate expired", nil), l.transition(txn, e, StateExpired, now, "")
		}
		e.RevokedReason = reason
		return nil, l.transition(txn, e, StateRevoked, now, reason)
	})
	return err
}

// Get returns a mandate's entry, or an *Error with CodeNotFound.
func (l *Ledger) Get(ctx context.Context, jti string) (*Entry, error) {
	var e *Entry
	err := l.cfg.Store.View(ctx, func(txn kv.Txn) error {
		var err error
		e, err = getEntry(txn, jti)
		return err
	})
	if errors.Is(err, kv.ErrNotFound) {
		return nil, refuse(CodeNotFound, "no such mandate", err)
	}
	if err != nil {
		return nil, fmt.Errorf("authz: get %s: %w", jti, err)
	}
	return e, nil
}

func getEntry(txn kv.Txn, jti string) (*Entry, error) {
	b, err := txn.Get(LedgerKey(jti))
	if err != nil {
		return nil, err
	}
	e := new(Entry)
	if err := json.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("authz: entry %s: %w", jti, err)
	}
	return e, nil
}

func putEntry(txn kv.Txn, e *Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("authz: entry %s: %w", e.Claims.ID, err)
	}
	return txn.Set(LedgerKey(e.Claims.ID), b)
}

func getIdem(txn kv.Txn, key []byte) (*IdemRecord, error) {
	b, err := txn.Get(key)
	if err != nil {
		return nil, err
	}
	rec := new(IdemRecord)
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("authz: idempotency record: %w", err)
	}
	return rec, nil
}

func putIdem(txn kv.Txn, key []byte, rec *IdemRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("authz: idempotency record: %w", err)
	}
	return txn.Set(key, b)
}
