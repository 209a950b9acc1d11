package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind is what a record records. The zero value, KindUnknown, is never appended.
type Kind string

// Kinds.
const (
	KindUnknown      Kind = ""
	KindConsent      Kind = "consent"      // a device's signed decision on a prompt
	KindMandate      Kind = "mandate"      // a mandate issued
	KindRedemption   Kind = "redemption"   // a mandate redeemed
	KindRefusal      Kind = "refusal"      // a request refused (risk, policy, bad mandate)
	KindRevocation   Kind = "revocation"   // an unredeemed mandate revoked
	KindCancellation Kind = "cancellation" // a redeemed purchase cancelled
	KindSettlement   Kind = "settlement"   // a redemption settled
	KindCheckpoint   Kind = "checkpoint"   // a signed checkpoint; only Append writes these
	KindKey          Kind = "key"          // a signing key created, rotated or retired
)

var kinds = map[Kind]bool{
	KindConsent: true, KindMandate: true, KindRedemption: true, KindRefusal: true,
	KindRevocation: true, KindCancellation: true, KindSettlement: true, KindCheckpoint: true,
	KindKey: true,
}

// String returns the kind's name, "unknown" for the zero value.
func (k Kind) String() string {
	if k == KindUnknown {
		return "unknown"
	}
	return string(k)
}

// Valid reports whether k is one of the kinds above other than KindUnknown.
func (k Kind) Valid() bool { return kinds[k] }

// Record is one entry of the log, stored as its JSON encoding. The struct fixes the
// field order, and encoding/json sorts Detail's keys, so a record has one encoding.
type Record struct {
	Seq       uint64            `json:"seq"`                  // 1, 2, 3 ... no gaps
	Time      time.Time         `json:"time"`                 // UTC, set by Append from Config.Now
	Kind      Kind              `json:"kind"`                 // what is recorded
	Tx        string            `json:"tx,omitempty"`         // transaction id
	JTI       string            `json:"jti,omitempty"`        // mandate id
	Device    string            `json:"device,omitempty"`     // device id
	User      string            `json:"user,omitempty"`       // user id
	Agent     string            `json:"agent,omitempty"`      // agent id
	Payee     string            `json:"payee,omitempty"`      // merchant id
	Amount    int64             `json:"amount,omitempty"`     // minor units of Currency
	Currency  string            `json:"currency,omitempty"`   // ISO 4217
	TermsHash string            `json:"terms_hash,omitempty"` // hash of the terms consented to
	State     string            `json:"state,omitempty"`      // the new state of a transition
	Reasons   []string          `json:"reasons,omitempty"`    // reason codes, not prose with data
	Detail    map[string]string `json:"detail,omitempty"`     // small extra facts, bounded; no secret names (see Append)
	Prev      string            `json:"prev"`                 // Hash of record Seq-1; ZeroHash for record 1
	Hash      string            `json:"hash"`                 // hex SHA-256 of the encoding with Hash ""
	Sig       string            `json:"sig,omitempty"`        // checkpoints only: see the package doc
}

// Limits on a record. Append refuses a record over them; readers refuse what could
// not have been appended.
const (
	MaxIDBytes        = 128 // Tx, JTI, Device, User, Agent, Payee, TermsHash
	MaxStateBytes     = 64
	MaxReasons        = 16
	MaxReasonBytes    = 64
	MaxDetailKeys     = 16
	MaxDetailKeyBytes = 64
	MaxDetailValue    = 256 // bytes
	MaxSigBytes       = 1 << 10
	// MaxRecordBytes bounds a record's encoding, comfortably above the largest record
	// the limits above allow.
	MaxRecordBytes = 16 << 10
)

// ZeroHash is record 1's Prev: 64 zeros.
var ZeroHash = strings.Repeat("0", sha256.Size*2)

// Errors.
var (
	// ErrInvalidRecord reports a record Append refuses or a reader cannot accept;
	// the message names the field.
	ErrInvalidRecord = errors.New("audit: invalid record")
	// ErrSecret reports a Detail key or value that looks like a secret.
	ErrSecret = errors.New("audit: refused a field that looks like a secret")
)

// checkContent checks the caller's part of a record: its kind, sizes and charsets,
// and that Detail holds nothing that looks like a secret.
func (r *Record) checkContent() error {
	if !r.Kind.Valid() {
		return fmt.Errorf("%w: field kind: %q is not a kind", ErrInvalidRecord, string(r.Kind))
	}
	for _, f := range []struct{ name, v string }{
		{"tx", r.Tx}, {"jti", r.JTI}, {"device", r.Device}, {"user", r.User}, {"agent", r.Agent},
		{"payee", r.Payee}, {"terms_hash", r.TermsHash},
	} {
		if err := checkText(f.name, f.v, MaxIDBytes); err != nil {
			return err
		}
	}
	if err := checkText("state", r.State, MaxStateBytes); err != nil {
		return err
	}
	if r.Currency != "" || r.Amount != 0 {
		if !isCurrency(r.Currency) {
			return fmt.Errorf("%w: field currency: %q is not an ISO 4217 code", ErrInvalidRecord, r.Currency)
		}
	}
	if len(r.Reasons) > MaxReasons {
		return fmt.Errorf("%w: field reasons: %d, at most %d", ErrInvalidRecord, len(r.Reasons), MaxReasons)
	}
	for i, c := range r.Reasons {
		if !isCode(c, MaxReasonBytes) {
			return fmt.Errorf("%w: field reasons[%d]: %q is not a code (1 to %d of a-z 0-9 _ . : -)",
				ErrInvalidRecord, i, c, MaxReasonBytes)
		}
	}
	if len(r.Detail) > MaxDetailKeys {
		return fmt.Errorf("%w: field detail: %d keys, at most %d", ErrInvalidRecord, len(r.Detail), MaxDetailKeys)
	}
	for k, v := range r.Detail {
		if secretName(k) {
			return fmt.Errorf("%w: detail key %q", ErrSecret, k)
		}
		if !isCode(k, MaxDetailKeyBytes) {
			return fmt.Errorf("%w: field detail: key %q is not a code (1 to %d of a-z 0-9 _ . : -)",
				ErrInvalidRecord, k, MaxDetailKeyBytes)
		}
		if err := checkText("detail."+k, v, MaxDetailValue); err != nil {
			return err
		}
		if looksLikeJWS(v) {
			return fmt.Errorf("%w: detail.%s holds what looks like a compact JWS", ErrSecret, k)
		}
	}
	return nil
}

// checkShape checks what a reader needs of a stored record on top of checkContent:
// seq, time, prev, hash and sig in their forms.
func (r *Record) checkShape() error {
	if err := r.checkContent(); err != nil {
		return err
	}
	switch {
	case r.Seq == 0:
		return fmt.Errorf("%w: field seq: 0", ErrInvalidRecord)
	case r.Time.IsZero() || !isUTC(r.Time):
		return fmt.Errorf("%w: field time: %s is not a UTC time", ErrInvalidRecord, r.Time)
	case !isHash(r.Prev):
		return fmt.Errorf("%w: field prev: want 64 lowercase hex digits", ErrInvalidRecord)
	case !isHash(r.Hash):
		return fmt.Errorf("%w: field hash: want 64 lowercase hex digits", ErrInvalidRecord)
	case r.Kind == KindCheckpoint && (r.Sig == "" || len(r.Sig) > MaxSigBytes):
		return fmt.Errorf("%w: field sig: a checkpoint's sig of %d bytes, want 1 to %d",
			ErrInvalidRecord, len(r.Sig), MaxSigBytes)
	case r.Kind != KindCheckpoint && r.Sig != "":
		return fmt.Errorf("%w: field sig: set on a %s record", ErrInvalidRecord, r.Kind)
	}
	return nil
}

// checkText refuses a string over max bytes, not UTF-8 (json.Marshal would replace
// the bad bytes, so the record read back would not be the record appended), or with
// control characters.
func checkText(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: field %s: %d bytes, at most %d", ErrInvalidRecord, field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: field %s: not UTF-8", ErrInvalidRecord, field)
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		return fmt.Errorf("%w: field %s: control character", ErrInvalidRecord, field)
	}
	return nil
}

func isUTC(t time.Time) bool {
	_, off := t.Zone()
	return off == 0
}

func isCurrency(c string) bool {
	return len(c) == 3 && strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
}

// isCode reports whether s is a short machine code: 1 to max bytes of lowercase
// letters, digits and _ . : -.
func isCode(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func isHash(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// secretWords name what must never be written to the audit log. The log is append-only
// and its checkpoints are exported to operators: a secret written once can never be
// taken out again without breaking the chain, and it would reach everyone who reads
// an export. So a Detail key that names one is refused at the door. This is a net for
// mistakes, not a proof: it cannot see a secret under an innocent name.
var secretWords = map[string]bool{
	"pin": true, "pins": true, "token": true, "tokens": true, "secret": true, "secrets": true,
	"key": true, "keys": true, "password": true, "passwords": true, "passwd": true, "pwd": true,
	"passcode": true, "passphrase": true, "credential": true, "credentials": true, "jwt": true,
	"jws": true, "otp": true, "cvv": true, "cvc": true, "audio": true, "pcm": true, "apikey": true,
	"privkey": true,
}

// secretName reports whether a Detail key names a secret, case-insensitively: one of
// its words ("user_pin" and "userPin" have "user" and "pin") is a secret word, or a
// word starts or ends with one of the longer secret words ("mandatetoken",
// "audiodump"). Short words (pin, key, otp) must match whole, so that "shipping" and
// "monkey" pass. It runs before the key's charset is checked, so that "User_PIN" is
// refused as a secret, not only as a bad code.
func secretName(k string) bool {
	for _, w := range words(k) {
		if secretWords[w] {
			return true
		}
		for s := range secretWords {
			if len(s) >= 5 && (strings.HasPrefix(w, s) || strings.HasSuffix(w, s)) {
				return true
			}
		}
	}
	return false
}

// words splits k into lowercase words at every character that is not a letter or a
// digit and where a lowercase letter or digit is followed by an uppercase one.
func words(k string) []string {
	var out []string
	var w []rune
	prevLower := false
	flush := func() {
		if len(w) > 0 {
			out = append(out, strings.ToLower(string(w)))
			w = w[:0]
		}
	}
	for _, r := range k {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			flush()
		}
		w = append(w, r)
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
	}
	flush()
	return out
}

// looksLikeJWS reports whether v holds a compact JWS or JWT ("eyJ" starts a base64url
// JSON header): tokens are logged by their id, never in full.
func looksLikeJWS(v string) bool {
	i := strings.Index(v, "eyJ")
	return i >= 0 && strings.Count(v[i:], ".") >= 2
}

// encode returns the record's encoding, with Hash as it is.
func (r *Record) encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	return b, nil
}

// computeHash returns the hex SHA-256 of the record's encoding with Hash "".
func (r *Record) computeHash() (string, error) {
	c := *r
	c.Hash = ""
	b, err := c.encode()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// decodeRecord decodes one stored or exported record strictly: one JSON object, no
// unknown field (it would not be covered by the hash as the reader sees it), nothing
// after it, at most MaxRecordBytes. It does not check the shape; see checkShape.
func decodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) > MaxRecordBytes {
		return r, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidRecord, len(b), MaxRecordBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{}, fmt.Errorf("%w: data after the record", ErrInvalidRecord)
	}
	return r, nil
}
