// Package identity is a device's cryptographic identity: its Ed25519 key, the device
// id derived from the public key, the short-lived tokens it connects with, the proof it
// gives when it enrols with a pairing code, and its signed confirmations.
//
// A device token is a compact JWS (RFC 7515) signed with EdDSA (RFC 8037):
//
//	base64url({"alg":"EdDSA","typ":"earshot-device+jwt","kid":<device id>})
//	"." base64url({"sub":<device id>,"aud":<gateway audience>,"iat":..,"exp":..,"jti":<nonce>})
//	"." base64url(signature)
//
// The gateway looks the device up by kid, checks the signature with the enrolled key,
// the audience, the expiry (at most MaxTokenTTL after iat) and that the nonce was not
// used before. PIN keys (pin.go) use scrypt from golang.org/x/crypto; the rest is the
// standard library.
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/earshot/earshot/device/wire"
)

// Key is a device's private key.
type Key struct {
	priv ed25519.PrivateKey
}

// GenerateKey makes a new device key from crypto/rand.
func GenerateKey() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	return &Key{priv: priv}, nil
}

// KeyFromSeed rebuilds a key from its 32-byte seed.
func KeyFromSeed(seed []byte) (*Key, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: seed of %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return &Key{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// Public returns the public key.
func (k *Key) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// DeviceID returns the device id bound to this key.
func (k *Key) DeviceID() string { return DeviceID(k.Public()) }

// Sign signs msg.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// MarshalPEM encodes the key as a PKCS #8 PEM block, for a device's key file.
func (k *Key) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("identity: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePEM decodes a key written by MarshalPEM.
func ParsePEM(b []byte) (*Key, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("identity: no PRIVATE KEY PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: parse key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: key is %T, want Ed25519", k)
	}
	return &Key{priv: priv}, nil
}

// LoadOrCreateKey reads the key at path, or creates one there (mode 0600).
func LoadOrCreateKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return ParsePEM(b)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("identity: %w", err)
	}
	k, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	p, err := k.MarshalPEM()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, p, 0o600); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return k, nil
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// DeviceID derives a device id from a public key: "dev_" and the first 20 characters
// of the lower-case base32 SHA-256 of the key (100 bits).
func DeviceID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "dev_" + strings.ToLower(idEncoding.EncodeToString(sum[:])[:20])
}

// EncodePublic returns the base64url form of a public key used in enrolment.
func EncodePublic(pub ed25519.PublicKey) string { return base64.RawURLEncoding.EncodeToString(pub) }

// DecodePublic parses EncodePublic's output.
func DecodePublic(s string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("identity: public key must be 32 bytes, base64url")
	}
	return ed25519.PublicKey(b), nil
}

// EnrollContext prefixes the enrolment proof.
const EnrollContext = "earshot/enroll/v1"

// EnrollProof signs the pairing code with the device key, proving the enrolling party
// holds the key it enrols.
func (k *Key) EnrollProof(code string) string {
	return base64.RawURLEncoding.EncodeToString(k.Sign(enrollInput(code, k.Public())))
}

// VerifyEnrollProof checks an EnrollProof.
func VerifyEnrollProof(pub ed25519.PublicKey, code, proof string) error {
	sig, err := base64.RawURLEncoding.DecodeString(proof)
	if err != nil || !ed25519.Verify(pub, enrollInput(code, pub), sig) {
		return errors.New("identity: enrolment proof does not verify")
	}
	return nil
}

func enrollInput(code string, pub ed25519.PublicKey) []byte {
	return fmt.Appendf(nil, "%s\n%s\n%s", EnrollContext, code, EncodePublic(pub))
}

// SignConfirm fills c.Sig with the key's signature over c.SigningInput(deviceID).
func (k *Key) SignConfirm(c *wire.Confirm) {
	c.Sig = base64.RawURLEncoding.EncodeToString(k.Sign(c.SigningInput(k.DeviceID())))
}

// ErrBadSignature reports a signature that does not verify.
var ErrBadSignature = errors.New("identity: signature does not verify")

// VerifyConfirm checks a confirm's signature against the device's public key.
func VerifyConfirm(pub ed25519.PublicKey, device string, c *wire.Confirm) error {
	sig, err := base64.RawURLEncoding.DecodeString(c.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: malformed signature", ErrBadSignature)
	}
	if !ed25519.Verify(pub, c.SigningInput(device), sig) {
		return ErrBadSignature
	}
	return nil
}
