package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxTokenTTL is the longest lifetime a gateway accepts for a device token.
const MaxTokenTTL = 10 * time.Minute

// DefaultTokenTTL is what Key.Token uses when ttl is zero.
const DefaultTokenTTL = 5 * time.Minute

// ClockSkew is how far in the future a token's iat may be.
const ClockSkew = 30 * time.Second

const tokenType = "earshot-device+jwt"

// Token errors. The gateway maps them onto wire disconnect codes.
var (
	ErrMalformedToken = errors.New("identity: malformed device token")
	ErrTokenExpired   = errors.New("identity: device token expired")
	ErrTokenAudience  = errors.New("identity: device token for another audience")
)

// Claims are a device token's claims.
type Claims struct {
	Subject  string `json:"sub"` // device id
	Audience string `json:"aud"` // the gateway's audience, e.g. "earshot:gw-1"
	IssuedAt int64  `json:"iat"` // Unix seconds
	Expiry   int64  `json:"exp"` // Unix seconds
	Nonce    string `json:"jti"` // unique per token; a gateway refuses a nonce it has seen
}

type tokenHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// Token mints a device token for the audience, valid for ttl (DefaultTokenTTL if zero).
func (k *Key) Token(audience string, now time.Time, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", fmt.Errorf("identity: nonce: %w", err)
	}
	id := k.DeviceID()
	h, _ := json.Marshal(tokenHeader{Alg: "EdDSA", Typ: tokenType, Kid: id})
	c, _ := json.Marshal(Claims{
		Subject: id, Audience: audience, IssuedAt: now.Unix(), Expiry: now.Add(ttl).Unix(),
		Nonce: base64.RawURLEncoding.EncodeToString(nonce[:]),
	})
	signing := b64(h) + "." + b64(c)
	return signing + "." + b64(k.Sign([]byte(signing))), nil
}

// ParseToken splits a token and returns its claims without verifying anything but the
// shape: use it to find the device id (Subject), then Verify.
func ParseToken(token string) (*Claims, error) {
	_, c, _, err := split(token)
	return c, err
}

// VerifyToken checks a token's signature with the device's key, its audience and its
// validity window. Nonce reuse is the caller's to check (it needs memory).
func VerifyToken(token string, pub ed25519.PublicKey, audience string, now time.Time) (*Claims, error) {
	signing, c, sig, err := split(token)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(pub, []byte(signing), sig) {
		return nil, fmt.Errorf("%w: bad signature", ErrMalformedToken)
	}
	if c.Audience != audience {
		return nil, fmt.Errorf("%w: %q", ErrTokenAudience, c.Audience)
	}
	iat, exp := time.Unix(c.IssuedAt, 0), time.Unix(c.Expiry, 0)
	switch {
	case exp.Sub(iat) > MaxTokenTTL || !exp.After(iat):
		return nil, fmt.Errorf("%w: lifetime %s, limit %s", ErrMalformedToken, exp.Sub(iat), MaxTokenTTL)
	case iat.After(now.Add(ClockSkew)):
		return nil, fmt.Errorf("%w: issued in the future", ErrMalformedToken)
	case !now.Before(exp):
		return nil, ErrTokenExpired
	}
	return c, nil
}

func split(token string) (signing string, c *Claims, sig []byte, err error) {
	if len(token) > 2048 {
		return "", nil, nil, fmt.Errorf("%w: %d bytes", ErrMalformedToken, len(token))
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", nil, nil, fmt.Errorf("%w: %d parts, want 3", ErrMalformedToken, len(parts))
	}
	var h tokenHeader
	if err := unb64JSON(parts[0], &h); err != nil {
		return "", nil, nil, fmt.Errorf("%w: header: %v", ErrMalformedToken, err)
	}
	// The algorithm is pinned: no "none", no HMAC, no embedded keys.
	if h.Alg != "EdDSA" || h.Typ != tokenType {
		return "", nil, nil, fmt.Errorf("%w: alg %q typ %q", ErrMalformedToken, h.Alg, h.Typ)
	}
	c = new(Claims)
	if err := unb64JSON(parts[1], c); err != nil {
		return "", nil, nil, fmt.Errorf("%w: claims: %v", ErrMalformedToken, err)
	}
	if c.Subject == "" || c.Subject != h.Kid || c.Nonce == "" || len(c.Nonce) > 64 {
		return "", nil, nil, fmt.Errorf("%w: sub, kid and jti required and consistent", ErrMalformedToken)
	}
	sig, err = base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return "", nil, nil, fmt.Errorf("%w: signature encoding", ErrMalformedToken)
	}
	return parts[0] + "." + parts[1], c, sig, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64JSON(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
