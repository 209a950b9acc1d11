package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/scrypt"

	"github.com/earshot/earshot/device/wire"
)

// The PIN scheme. A PIN is a low-entropy secret, so it must neither travel nor be
// stored in a form that reveals it, and each wrong guess must cost an attacker a
// round trip to the gateway, which counts them:
//
//   - Setting a PIN (on the user's phone): the device draws a random salt, stretches
//     the PIN with scrypt (N=2^15, r=8, p=1; 32 MiB, about 125 ms on one core of the build machine) into a 32-byte Ed25519 seed,
//     and sends the gateway only the salt and the seed's public key (wire.PINSet).
//   - Using it (a kiosk prompt that allows MethodPIN carries the salt in PINSalt): the
//     device derives the same key from the PIN the user typed and signs the confirm's
//     signing input with it, next to the device's own signature (wire.Confirm.PINSig).
//     The gateway verifies PINSig with the stored public key. The signature is bound
//     to the transaction, the terms hash, the decision and the method, so it cannot be
//     replayed on another purchase.
//   - The gateway counts wrong PINs per transaction and closes the transaction after
//     three (wire.CodePINLocked).
//
// What the gateway stores is a public key: it does not let anyone sign, but someone
// who steals the store can still test guesses offline, one scrypt per guess and per
// user (the salt is per user). That is the price of any scheme without a server-side
// secret; with 10^6 six-digit PINs it costs hours of CPU per user, which is why the
// salt is random and the KDF slow.

// PIN sizes: 4 to 12 decimal digits.
const (
	MinPINDigits = 4
	MaxPINDigits = 12
	pinSaltBytes = 16
)

// scrypt parameters; changing them changes every PIN key, so they are part of the
// protocol.
const (
	pinScryptN = 1 << 15
	pinScryptR = 8
	pinScryptP = 1
)

// ErrBadPIN reports a PIN that is not 4 to 12 decimal digits.
var ErrBadPIN = fmt.Errorf("identity: a PIN is %d to %d decimal digits", MinPINDigits, MaxPINDigits)

// PINKey derives the Ed25519 key of a PIN with the user's salt (base64url, as in
// wire.ConfirmRequest.PINSalt and wire.PINSet.Salt).
func PINKey(pin, salt string) (ed25519.PrivateKey, error) {
	if len(pin) < MinPINDigits || len(pin) > MaxPINDigits {
		return nil, ErrBadPIN
	}
	for i := 0; i < len(pin); i++ {
		if pin[i] < '0' || pin[i] > '9' {
			return nil, ErrBadPIN
		}
	}
	s, err := base64.RawURLEncoding.DecodeString(salt)
	if err != nil || len(s) < wire.MinPINSaltBytes || len(s) > wire.MaxPINSaltBytes {
		return nil, fmt.Errorf("identity: PIN salt: want %d to %d bytes of base64url", wire.MinPINSaltBytes, wire.MaxPINSaltBytes)
	}
	seed, err := scrypt.Key([]byte(pin), append([]byte("earshot/pin/v1\n"), s...), pinScryptN, pinScryptR, pinScryptP, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("identity: PIN key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// NewPIN makes the wire.PINSet for a new PIN: a fresh random salt (from r, default
// crypto/rand) and the public half of the PIN key.
func NewPIN(pin string, r io.Reader) (*wire.PINSet, error) {
	if r == nil {
		r = rand.Reader
	}
	salt := make([]byte, pinSaltBytes)
	if _, err := io.ReadFull(r, salt); err != nil {
		return nil, fmt.Errorf("identity: PIN salt: %w", err)
	}
	enc := base64.RawURLEncoding.EncodeToString(salt)
	k, err := PINKey(pin, enc)
	if err != nil {
		return nil, err
	}
	return &wire.PINSet{Salt: enc, Pub: EncodePublic(k.Public().(ed25519.PublicKey))}, nil
}

// SignPIN fills c.PINSig with the PIN key's signature over c.SigningInput(device).
// Call it before the device signs (SignConfirm), with the same fields.
func SignPIN(c *wire.Confirm, device string, pinKey ed25519.PrivateKey) {
	c.PINSig = base64.RawURLEncoding.EncodeToString(ed25519.Sign(pinKey, c.SigningInput(device)))
}

// ErrBadPINSig reports a PIN signature that does not verify: the PIN was wrong.
var ErrBadPINSig = errors.New("identity: the PIN signature does not verify")

// VerifyPIN checks c.PINSig against the user's PIN public key.
func VerifyPIN(pub ed25519.PublicKey, device string, c *wire.Confirm) error {
	sig, err := base64.RawURLEncoding.DecodeString(c.PINSig)
	if err != nil || len(sig) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: malformed", ErrBadPINSig)
	}
	if !ed25519.Verify(pub, c.SigningInput(device), sig) {
		return ErrBadPINSig
	}
	return nil
}
