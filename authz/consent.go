package authz

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// Challenge is a pending consent prompt: the terms shown, their hash, and the
// verification methods that may approve it.
type Challenge struct {
	Terms    wire.Terms    `json:"terms"`
	Hash     string        `json:"hash"` // Terms.Hash()
	Methods  []wire.Method `json:"methods"`
	IssuedAt int64         `json:"issued_at"` // Unix milliseconds
}

// maxMethods matches the limit wire.ConfirmRequest puts on its methods.
const maxMethods = 5

// NewNonce returns 128 random bits, base64url without padding, for wire.Terms.Nonce.
// A nil r means crypto/rand.
func NewNonce(r io.Reader) (string, error) { return randomID("", r) }

func randomID(prefix string, r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("authz: random: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// NewChallenge validates the terms (wire.Terms.Validate), checks that they have not
// already expired and that methods holds 1 to 5 known methods, and hashes the terms.
// Errors wrap ErrInvalidChallenge.
func NewChallenge(t wire.Terms, methods []wire.Method, now time.Time) (Challenge, error) {
	if err := t.Validate(); err != nil {
		return Challenge{}, fmt.Errorf("%w: %w", ErrInvalidChallenge, err)
	}
	if t.ExpiresAt <= now.UnixMilli() {
		return Challenge{}, fmt.Errorf("%w: terms expired at %d", ErrInvalidChallenge, t.ExpiresAt)
	}
	if len(methods) == 0 || len(methods) > maxMethods {
		return Challenge{}, fmt.Errorf("%w: %d methods, want 1 to %d", ErrInvalidChallenge, len(methods), maxMethods)
	}
	for _, m := range methods {
		if !knownMethod(m) {
			return Challenge{}, fmt.Errorf("%w: unknown method %q", ErrInvalidChallenge, m)
		}
	}
	h, err := t.Hash()
	if err != nil {
		return Challenge{}, fmt.Errorf("%w: %w", ErrInvalidChallenge, err)
	}
	t.Items = slices.Clone(t.Items)
	return Challenge{Terms: t, Hash: h, Methods: slices.Clone(methods), IssuedAt: now.UnixMilli()}, nil
}

func knownMethod(m wire.Method) bool {
	switch m {
	case wire.MethodTap, wire.MethodVoice, wire.MethodButton, wire.MethodPIN, wire.MethodPhone:
		return true
	}
	return false
}

// VerifyConfirmation checks a device's signed decision on a challenge. device and
// session are who the connection authenticated; pub is that device's enrolled key. The
// checks, in order, each refused with a *wire.Error the gateway sends to the device
// unchanged:
//
//   - the confirm is well formed (wire.CodeBadRequest);
//   - it is for the challenge's transaction and the challenge's terms still hash to
//     its hash (wire.CodeChallengeMismatch);
//   - device and session are the terms' device and session, and pub is device's key
//     (wire.CodeWrongDevice);
//   - its hash is the challenge's hash (wire.CodeChallengeMismatch);
//   - now is before the terms' expiry (wire.CodeChallengeExpired);
//   - an approval used one of the challenge's methods (wire.CodeMethodNotAllowed); a
//     decline may use any method, so a user can always say no;
//   - the signature verifies with pub (wire.CodeBadSignature). A decline must be
//     signed too, so nobody else can decline on the user's behalf.
//
// A nil return means c.Decision is the user's authentic answer.
func VerifyConfirmation(ch *Challenge, c *wire.Confirm, device, session string, pub ed25519.PublicKey, now time.Time) error {
	if ch == nil || c == nil {
		return wire.NewError(wire.CodeBadRequest, "no challenge or confirmation")
	}
	if err := c.Validate(); err != nil {
		return wire.NewError(wire.CodeBadRequest, "confirm: "+err.Error())
	}
	if c.Tx != ch.Terms.Tx {
		return txError(wire.CodeChallengeMismatch, "the confirmation is for another transaction", c.Tx)
	}
	if h, err := ch.Terms.Hash(); err != nil || h != ch.Hash {
		return txError(wire.CodeChallengeMismatch, "the pending prompt no longer matches its terms", c.Tx)
	}
	if device != ch.Terms.Device || session != ch.Terms.Session ||
		len(pub) != ed25519.PublicKeySize || identity.DeviceID(pub) != device {
		return txError(wire.CodeWrongDevice, "the prompt belongs to another device or session", c.Tx)
	}
	if subtle.ConstantTimeCompare([]byte(c.Hash), []byte(ch.Hash)) != 1 {
		return txError(wire.CodeChallengeMismatch, "the signed hash is not the prompt's hash", c.Tx)
	}
	if now.UnixMilli() >= ch.Terms.ExpiresAt {
		return txError(wire.CodeChallengeExpired, "the prompt expired", c.Tx)
	}
	if c.Decision == wire.DecisionApprove && !slices.Contains(ch.Methods, c.Method) {
		return txError(wire.CodeMethodNotAllowed, fmt.Sprintf("method %q is not allowed for this prompt", c.Method), c.Tx)
	}
	if identity.VerifyConfirm(pub, device, c) != nil {
		return txError(wire.CodeBadSignature, "the signature does not verify", c.Tx)
	}
	return nil
}

func txError(code wire.Code, msg, tx string) *wire.Error {
	e := wire.NewError(code, msg)
	e.Tx = tx
	return e
}
