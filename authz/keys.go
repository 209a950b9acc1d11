package authz

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// SigningKey is a mandate signing key: an ECDSA P-256 private key and its key id.
type SigningKey struct {
	priv    *ecdsa.PrivateKey
	kid     string
	created time.Time
}

// pemCreated is the PEM header that keeps a key's creation time.
const pemCreated = "Created"

// GenerateSigningKey makes a new P-256 key created at now. r is handed to
// ecdsa.GenerateKey (which, since Go 1.26, uses a secure source whatever r is); nil
// means crypto/rand.
func GenerateSigningKey(r io.Reader, now time.Time) (*SigningKey, error) {
	if r == nil {
		r = rand.Reader
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return nil, fmt.Errorf("authz: generate signing key: %w", err)
	}
	return newSigningKey(priv, now)
}

func newSigningKey(priv *ecdsa.PrivateKey, created time.Time) (*SigningKey, error) {
	if priv == nil || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: want an ECDSA P-256 key", ErrInvalidKey)
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &SigningKey{priv: priv, kid: kid, created: created.UTC().Truncate(time.Second)}, nil
}

// thumbprint is the key id: the base64url RFC 7638 SHA-256 thumbprint of the public
// key, which any verifier can recompute from the JWK.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: thumbprint: %w", ErrInvalidKey, err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// KID returns the key id carried in the kid header of the mandates the key signs.
func (k *SigningKey) KID() string { return k.kid }

// Created returns when the key was generated (to the second; zero if unknown).
func (k *SigningKey) Created() time.Time { return k.created }

// Public returns the public key.
func (k *SigningKey) Public() *ecdsa.PublicKey { return &k.priv.PublicKey }

// MarshalPEM encodes the key as a PKCS #8 "PRIVATE KEY" PEM block, with its creation
// time in a "Created" header. The result is a secret: store it with mode 0600.
func (k *SigningKey) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("authz: marshal signing key: %w", err)
	}
	blk := &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	if !k.created.IsZero() {
		blk.Headers = map[string]string{pemCreated: k.created.Format(time.RFC3339)}
	}
	return pem.EncodeToMemory(blk), nil
}

// ParseSigningKey decodes a key written by MarshalPEM. It also accepts a SEC 1
// "EC PRIVATE KEY" block, as openssl writes. The key must be P-256.
func ParseSigningKey(pemBytes []byte) (*SigningKey, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidKey)
	}
	var priv *ecdsa.PrivateKey
	switch blk.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: key is %T, want ECDSA P-256", ErrInvalidKey, k)
		}
		priv = ec
	case "EC PRIVATE KEY":
		ec, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		priv = ec
	default:
		return nil, fmt.Errorf("%w: PEM block %q", ErrInvalidKey, blk.Type)
	}
	var created time.Time
	if s := blk.Headers[pemCreated]; s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("%w: Created header: %w", ErrInvalidKey, err)
		}
		created = t
	}
	return newSigningKey(priv, created)
}

// KeySet holds the key that signs mandates and every key that verifies them, so keys
// can be rotated with overlap: Rotate to a new key, keep the old one until the last
// mandate it signed has expired, then Retire it. It is safe for concurrent use.
type KeySet struct {
	mu     sync.RWMutex
	active *SigningKey
	signer jose.Signer
	keys   []*SigningKey // every verification key, the active one first
}

// NewKeySet returns a set in which active signs and active and others verify.
// Duplicate keys are refused.
func NewKeySet(active *SigningKey, others ...*SigningKey) (*KeySet, error) {
	ks := &KeySet{}
	for _, k := range append([]*SigningKey{active}, others...) {
		if err := ks.add(k); err != nil {
			return nil, err
		}
	}
	if err := ks.activate(active); err != nil {
		return nil, err
	}
	return ks, nil
}

func (ks *KeySet) add(k *SigningKey) error {
	if k == nil || k.priv == nil {
		return fmt.Errorf("%w: nil key", ErrInvalidKey)
	}
	if ks.find(k.kid) != nil {
		return fmt.Errorf("%w: duplicate kid %s", ErrInvalidKey, k.kid)
	}
	ks.keys = append(ks.keys, k)
	return nil
}

func (ks *KeySet) activate(k *SigningKey) error {
	opts := (&jose.SignerOptions{}).WithType(mandateType)
	s, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.ES256,
		Key:       jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(jose.ES256)},
	}, opts)
	if err != nil {
		return fmt.Errorf("%w: signer: %w", ErrInvalidKey, err)
	}
	ks.active, ks.signer = k, s
	i := slices.Index(ks.keys, k)
	ks.keys = slices.Insert(slices.Delete(ks.keys, i, i+1), 0, k)
	return nil
}

func (ks *KeySet) find(kid string) *SigningKey {
	for _, k := range ks.keys {
		if k.kid == kid {
			return k
		}
	}
	return nil
}

// ActiveKID returns the kid of the key that signs.
func (ks *KeySet) ActiveKID() string {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.active.kid
}

// Rotate makes next the signing key. The previous one keeps verifying until Retire.
// Rotating to a key the set already holds just makes it active again.
func (ks *KeySet) Rotate(next *SigningKey) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if next == nil {
		return fmt.Errorf("%w: nil key", ErrInvalidKey)
	}
	if held := ks.find(next.kid); held != nil {
		return ks.activate(held)
	}
	if err := ks.add(next); err != nil {
		return err
	}
	return ks.activate(next)
}

// Retire removes a verification key: mandates it signed stop verifying. The active
// key cannot be retired.
func (ks *KeySet) Retire(kid string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if kid == ks.active.kid {
		return fmt.Errorf("%w: %s is the active key", ErrInvalidKey, kid)
	}
	k := ks.find(kid)
	if k == nil {
		return fmt.Errorf("%w: no key %s", ErrInvalidKey, kid)
	}
	ks.keys = slices.DeleteFunc(ks.keys, func(x *SigningKey) bool { return x == k })
	return nil
}

// publicKey returns the verification key for kid, or nil.
func (ks *KeySet) publicKey(kid string) *ecdsa.PublicKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if k := ks.find(kid); k != nil {
		return &k.priv.PublicKey
	}
	return nil
}

// PublicJWK returns the key's public half as a JWK (the form of a JWKS entry).
func (k *SigningKey) PublicJWK() ([]byte, error) {
	b, err := json.Marshal(jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
	if err != nil {
		return nil, fmt.Errorf("authz: jwk: %w", err)
	}
	return b, nil
}

// JWKS returns the public keys as a JWK Set (RFC 7517 section 5), the body of
// /.well-known/jwks.json: {"keys":[{"kty":"EC","crv":"P-256","x":..,"y":..,"kid":..,
// "alg":"ES256","use":"sig"},...]}, the active key first.
func (ks *KeySet) JWKS() ([]byte, error) {
	ks.mu.RLock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(ks.keys))}
	for _, k := range ks.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig",
		})
	}
	ks.mu.RUnlock()
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("authz: jwks: %w", err)
	}
	return b, nil
}
