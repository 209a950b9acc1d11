package authz

import (
	"crypto/ed25519"
	"crypto/subtle"
	"fmt"
	"slices"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// VerifyApproval checks a decision the user's phone signed on another device's prompt
// (decoupled approval, MethodPhone): the phone signs the same terms hash with its own
// key and device id, so the checks are VerifyConfirmation's but for the device and the
// session, which are the phone's own. An approval must use MethodPhone, and the prompt
// must offer it; a decline may use any method. approver is the phone's device id; the
// caller checks that it belongs to the prompt's user.
func VerifyApproval(ch *Challenge, c *wire.Confirm, approver string, pub ed25519.PublicKey, now time.Time) error {
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
	if len(pub) != ed25519.PublicKeySize || identity.DeviceID(pub) != approver || approver == ch.Terms.Device {
		return txError(wire.CodeWrongDevice, "the approver is not a paired phone", c.Tx)
	}
	if subtle.ConstantTimeCompare([]byte(c.Hash), []byte(ch.Hash)) != 1 {
		return txError(wire.CodeChallengeMismatch, "the signed hash is not the prompt's hash", c.Tx)
	}
	if now.UnixMilli() >= ch.Terms.ExpiresAt {
		return txError(wire.CodeChallengeExpired, "the prompt expired", c.Tx)
	}
	if c.Decision == wire.DecisionApprove && (c.Method != wire.MethodPhone || !slices.Contains(ch.Methods, wire.MethodPhone)) {
		return txError(wire.CodeMethodNotAllowed, fmt.Sprintf("a phone approves with method %q, on a prompt that asks for it", wire.MethodPhone), c.Tx)
	}
	if identity.VerifyConfirm(pub, approver, c) != nil {
		return txError(wire.CodeBadSignature, "the signature does not verify", c.Tx)
	}
	return nil
}

// GetEntry reads a mandate's ledger entry inside the caller's transaction (the
// gateway reads a tip's parent with it); kv.ErrNotFound when there is none.
func GetEntry(txn kv.Txn, jti string) (*Entry, error) { return getEntry(txn, jti) }
