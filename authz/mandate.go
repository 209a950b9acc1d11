package authz

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// Mandate limits and defaults.
const (
	// DefaultMandateTTL is the mandate lifetime ClaimsFor uses when ttl is zero.
	DefaultMandateTTL = 15 * time.Minute
	// MaxOpenValidity bounds how long after its issue a price_target or recurring
	// mandate, which lives until its consent's Until, may stay valid.
	MaxOpenValidity = 90 * 24 * time.Hour
	// Leeway is the clock skew Verify tolerates on exp and nbf. The Ledger, which
	// issued the mandate on its own clock, applies exp without leeway.
	Leeway = 30 * time.Second
	// MaxMandateBytes bounds a compact mandate before it is parsed.
	MaxMandateBytes = 8 << 10
	// mandateType is the typ header (explicit typing, RFC 8725 section 3.11).
	mandateType = "earshot-mandate+jwt"
	// mandatePrefix starts every jti.
	mandatePrefix = "mnd_"
)

// Constraints carry the consent's conditions beyond one payment now (wire.Conditions),
// as far as the ledger enforces them; which fields a kind takes is checked by
// Claims.validate (see kinds.go). A price target's only condition, its Until, is the
// mandate's exp.
type Constraints struct {
	// Every, Times and PeriodCap bound a recurring mandate: each payment is at most
	// AmountCap, the payments of one Every period add up to at most PeriodCap, and
	// there are at most Times payments in all (0: no count of the consent's own; the
	// ledger still stops at wire.MaxTimes).
	Every     wire.Period `json:"every,omitempty"`
	Times     int         `json:"times,omitempty"`
	PeriodCap wire.Amount `json:"period_cap,omitempty"`
	// TipCap is, on a one_off mandate, the most the merchant may add as tips afterwards
	// without a new consent (see Ledger.RecordTip).
	TipCap wire.Amount `json:"tip_cap,omitempty"`
	// Parent is, on a tip, the jti of the mandate it tips (not the transaction id the
	// terms carry: the gateway resolves that).
	Parent string `json:"parent,omitempty"`
}

// Claims are a mandate's JWT claims.
type Claims struct {
	ID     string `json:"jti"`
	Issuer string `json:"iss"`
	User   string `json:"sub"`
	// Agent is the one agent allowed to redeem the mandate.
	Agent     string `json:"aud"`
	IssuedAt  int64  `json:"iat"` // Unix seconds
	NotBefore int64  `json:"nbf"` // Unix seconds
	Expiry    int64  `json:"exp"` // Unix seconds
	Device    string `json:"device"`
	Tx        string `json:"tx"`
	// Payee is the merchant id the user approved.
	Payee     string      `json:"payee"`
	AmountCap wire.Amount `json:"amount_cap"`
	Currency  string      `json:"currency"`
	// ItemsDigest is ItemsDigest of the approved terms' items.
	ItemsDigest string       `json:"items_digest"`
	Kind        wire.Kind    `json:"kind"`
	Constraints *Constraints `json:"constraints,omitempty"`
	// ConsentHash is the hash of the terms the device signed (Challenge.Hash).
	ConsentHash string `json:"consent_hash"`
}

// validate checks the claims as signed and recorded.
func (c *Claims) validate() error {
	if err := c.validateBase(); err != nil {
		return err
	}
	return c.validateKind(true)
}

// validateBase checks what every kind of mandate needs.
func (c *Claims) validateBase() error {
	switch {
	case !strings.HasPrefix(c.ID, mandatePrefix) || len(c.ID) > wire.MaxIDBytes:
		return fmt.Errorf("%w: jti %q", ErrInvalidClaims, c.ID)
	case c.Issuer == "" || c.Agent == "" || c.User == "" || c.Payee == "":
		return fmt.Errorf("%w: iss, sub, aud and payee are required", ErrInvalidClaims)
	case c.Expiry <= c.NotBefore:
		return fmt.Errorf("%w: exp %d not after nbf %d", ErrInvalidClaims, c.Expiry, c.NotBefore)
	case c.AmountCap <= 0 || c.AmountCap > wire.MaxAmount:
		return fmt.Errorf("%w: amount_cap %d", ErrInvalidClaims, c.AmountCap)
	}
	if err := wire.ValidCurrency(c.Currency); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidClaims, err)
	}
	return nil
}

// ItemsDigest returns the base64url (unpadded) SHA-256 of the RFC 8785 canonical JSON
// of the items array, as the terms carry it.
func ItemsDigest(items []wire.Item) (string, error) {
	if items == nil {
		items = []wire.Item{}
	}
	raw, err := json.Marshal(items)
	if err != nil {
		return "", fmt.Errorf("authz: items: %w", err)
	}
	c, err := wire.Canonicalize(raw)
	if err != nil {
		return "", fmt.Errorf("authz: items: %w", err)
	}
	sum := sha256.Sum256(c)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// ClaimsFor builds the claims of the mandate an approved challenge earns: bound to
// agent, for the terms' merchant, total (as the cap), currency, items and kind, valid
// from now for ttl (DefaultMandateTTL if zero), with a fresh jti ("mnd_" and 128 random
// bits from r; nil r means crypto/rand). Checking that the user approved is the
// caller's: call it only after VerifyConfirmation accepted an approval.
//
// The terms' conditions become Constraints. A price_target or recurring mandate is
// valid until the conditions' Until instead (rounded down to the second), which may be
// at most MaxOpenValidity after now (else ErrInvalidClaims). A tip's claims come back
// with Constraints set but its Parent empty: the terms name the parent transaction,
// and the caller must set Constraints.Parent to that transaction's mandate jti before
// Ledger.Record or KeySet.Sign, which refuse a tip without it.
func ClaimsFor(ch *Challenge, user, agent, issuer string, now time.Time, ttl time.Duration, r io.Reader) (Claims, error) {
	if ch == nil {
		return Claims{}, fmt.Errorf("%w: no challenge", ErrInvalidClaims)
	}
	if ttl <= 0 {
		ttl = DefaultMandateTTL
	}
	digest, err := ItemsDigest(ch.Terms.Items)
	if err != nil {
		return Claims{}, err
	}
	jti, err := randomID(mandatePrefix, r)
	if err != nil {
		return Claims{}, err
	}
	t := &ch.Terms
	c := Claims{
		ID: jti, Issuer: issuer, User: user, Agent: agent,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(ttl).Unix(),
		Device: t.Device, Tx: t.Tx, Payee: t.Merchant.ID, AmountCap: t.Total, Currency: t.Currency,
		ItemsDigest: digest, Kind: t.Kind, ConsentHash: ch.Hash,
	}
	if err := c.applyConditions(t.Conditions, now); err != nil {
		return Claims{}, err
	}
	if err := c.validateBase(); err != nil {
		return Claims{}, err
	}
	if err := c.validateKind(false); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// Sign signs the claims with the active key as a compact JWS.
func (ks *KeySet) Sign(c Claims) (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("authz: sign: %w", err)
	}
	ks.mu.RLock()
	signer := ks.signer
	ks.mu.RUnlock()
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("authz: sign: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("authz: sign: %w", err)
	}
	return tok, nil
}

// Causes wrapped in the *Error values Verify returns, for tests and logs.
var (
	errMalformed       = errors.New("malformed token")
	errForbiddenHeader = errors.New("forbidden header parameter")
	errAlgorithm       = errors.New("algorithm not ES256")
	errUnknownKID      = errors.New("unknown kid")
	errSignature       = errors.New("signature does not verify")
	errIssuer          = errors.New("wrong issuer")
	errNotYetValid     = errors.New("not yet valid")
)

// allowedHeader lists the only protected header parameters a mandate may carry.
// Everything else is refused, above all keys that would choose the verification key:
// jwk, jku, x5c, x5u (RFC 8725 section 3.1 and 3.10), and crit and b64.
var allowedHeader = map[string]bool{"alg": true, "kid": true, "typ": true}

// Verify checks a mandate: its size and shape, its header (alg pinned to ES256, typ,
// a kid this set holds, no other parameter), its signature, its issuer, and its
// validity window with Leeway. It returns *Error values: CodeMandateExpired once exp
// has passed, CodeMandateInvalid for everything else.
func (ks *KeySet) Verify(token, issuer string, now time.Time) (*Claims, error) {
	c, err := ks.verifySignature(token, issuer)
	if err != nil {
		return nil, err
	}
	if e := checkWindow(c, now, Leeway); e != nil {
		return nil, e
	}
	return c, nil
}

// verifySignature is Verify without the validity window.
func (ks *KeySet) verifySignature(token, issuer string) (*Claims, error) {
	invalid := func(cause error) (*Claims, error) {
		return nil, refuse(CodeMandateInvalid, "the mandate is not valid", cause)
	}
	if len(token) == 0 || len(token) > MaxMandateBytes {
		return invalid(fmt.Errorf("%w: %d bytes", errMalformed, len(token)))
	}
	payload, err := ks.verifyJWS(token, mandateType)
	if err != nil {
		return invalid(err)
	}
	c := new(Claims)
	if err := json.Unmarshal(payload, c); err != nil {
		return invalid(fmt.Errorf("%w: claims: %w", errMalformed, err))
	}
	if c.Issuer != issuer {
		return invalid(errIssuer)
	}
	if err := c.validate(); err != nil {
		return invalid(err)
	}
	return c, nil
}

// checkWindow refuses a mandate outside [nbf-leeway, exp+leeway).
func checkWindow(c *Claims, now time.Time, leeway time.Duration) *Error {
	if !now.Before(time.Unix(c.Expiry, 0).Add(leeway)) {
		return refuse(CodeMandateExpired, "the mandate expired", nil)
	}
	if now.Add(leeway).Before(time.Unix(c.NotBefore, 0)) {
		return refuse(CodeMandateInvalid, "the mandate is not valid yet", errNotYetValid)
	}
	return nil
}
