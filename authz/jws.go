package authz

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Limits of SignPayload and VerifyPayload. A payload of MaxPayloadBytes always makes a
// token under MaxJWSBytes, so whatever SignPayload signs, VerifyPayload accepts.
const (
	// MaxPayloadBytes bounds the JSON payload SignPayload signs.
	MaxPayloadBytes = 4 << 10
	// MaxJWSBytes bounds a compact JWS before it is parsed (the same bound as a
	// mandate's).
	MaxJWSBytes = MaxMandateBytes
	// maxTypBytes bounds a typ header value.
	maxTypBytes = 64
)

// ErrInvalidJWS reports a payload SignPayload refuses or a token VerifyPayload
// refuses; the wrapped cause says what was wrong.
var ErrInvalidJWS = errors.New("authz: invalid JWS")

// SignPayload signs payload (a JSON object of at most MaxPayloadBytes) as a compact
// JWS, ES256, with the active key and the protected header
// {"alg":"ES256","kid":<key id>,"typ":typ}.
//
// It signs the gateway's statements other than mandates (audit checkpoints, say). typ
// names the kind of statement, so that one kind never verifies as another (explicit
// typing, RFC 8725 section 3.11); the mandate typ is refused, so that a payload that
// did not pass Claims validation can never pass for a mandate.
func (ks *KeySet) SignPayload(payload []byte, typ string) (string, error) {
	if err := checkPayloadType(typ); err != nil {
		return "", err
	}
	if len(payload) > MaxPayloadBytes {
		return "", fmt.Errorf("%w: payload of %d bytes, at most %d", ErrInvalidJWS, len(payload), MaxPayloadBytes)
	}
	if !isJSONObject(payload) {
		return "", fmt.Errorf("%w: payload is not a JSON object", ErrInvalidJWS)
	}
	ks.mu.RLock()
	k := ks.active
	ks.mu.RUnlock()
	// A signer per call: its typ is fixed at construction, and building one does no
	// cryptography.
	s, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.ES256,
		Key:       jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(jose.ES256)},
	}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", fmt.Errorf("authz: sign payload: %w", err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("authz: sign payload: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("authz: sign payload: %w", err)
	}
	return tok, nil
}

// VerifyPayload verifies a token SignPayload made and returns its payload. The header
// rules are a mandate's: alg pinned to ES256, only the alg, kid and typ parameters,
// typ equal to typ, and a kid this set holds. The error wraps ErrInvalidJWS.
func (ks *KeySet) VerifyPayload(token, typ string) ([]byte, error) {
	if err := checkPayloadType(typ); err != nil {
		return nil, err
	}
	payload, err := ks.verifyJWS(token, typ)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJWS, err)
	}
	if !isJSONObject(payload) {
		return nil, fmt.Errorf("%w: %w: payload is not a JSON object", ErrInvalidJWS, errMalformed)
	}
	return payload, nil
}

// checkPayloadType refuses a typ SignPayload and VerifyPayload cannot use: empty, too
// long, not printable ASCII, or the mandate's.
func checkPayloadType(typ string) error {
	switch {
	case typ == "" || len(typ) > maxTypBytes:
		return fmt.Errorf("%w: typ of %d bytes, want 1 to %d", ErrInvalidJWS, len(typ), maxTypBytes)
	case strings.EqualFold(typ, mandateType):
		return fmt.Errorf("%w: typ %q is reserved for mandates", ErrInvalidJWS, typ)
	}
	for i := range len(typ) {
		if typ[i] <= ' ' || typ[i] > '~' {
			return fmt.Errorf("%w: typ has byte %#x at %d, want printable ASCII", ErrInvalidJWS, typ[i], i)
		}
	}
	return nil
}

// isJSONObject reports whether b is valid JSON whose top level is an object.
func isJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}

// verifyJWS checks a compact JWS's size and shape, its protected header (alg pinned to
// ES256, typ equal to typ, a kid this set holds, no other parameter) and its signature,
// and returns the payload. Its errors are the bare causes (errMalformed, ...); callers
// wrap them. Mandates and SignPayload's statements share it.
func (ks *KeySet) verifyJWS(token, typ string) ([]byte, error) {
	return verifyJWS(token, typ, ks.publicKey)
}

func verifyJWS(token, typ string, publicKey func(kid string) *ecdsa.PublicKey) ([]byte, error) {
	if len(token) == 0 || len(token) > MaxJWSBytes {
		return nil, fmt.Errorf("%w: %d bytes", errMalformed, len(token))
	}
	head, _, ok := strings.Cut(token, ".")
	if !ok || strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: want three segments", errMalformed)
	}
	hb, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return nil, fmt.Errorf("%w: header encoding", errMalformed)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %w", errMalformed, err)
	}
	for k := range hdr {
		if !allowedHeader[k] {
			return nil, fmt.Errorf("%w: %q", errForbiddenHeader, k)
		}
	}
	var h struct{ Alg, Kid, Typ string }
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", errMalformed, err)
	}
	if h.Alg != string(jose.ES256) {
		return nil, fmt.Errorf("%w: %q", errAlgorithm, h.Alg)
	}
	if h.Typ != typ {
		return nil, fmt.Errorf("%w: typ %q", errMalformed, h.Typ)
	}
	pub := publicKey(h.Kid)
	if pub == nil {
		return nil, errUnknownKID
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSignature, err)
	}
	return payload, nil
}

// MaxJWKSBytes bounds a JWK Set ParseJWKS reads.
const MaxJWKSBytes = 64 << 10

// PublicKeys verifies what a KeySet signed with only its public JWKS: how an auditor
// checks receipts and audit checkpoints away from the gateway.
type PublicKeys struct {
	keys map[string]*ecdsa.PublicKey
}

// ParseJWKS reads a JWK Set as KeySet.JWKS writes it: ES256 keys on P-256, each with
// its kid. Anything else is refused, naming the key.
func ParseJWKS(b []byte) (*PublicKeys, error) {
	if len(b) > MaxJWKSBytes {
		return nil, fmt.Errorf("%w: JWKS of %d bytes, max %d", ErrInvalidKey, len(b), MaxJWKSBytes)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%w: JWKS: %w", ErrInvalidKey, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: JWKS has no keys", ErrInvalidKey)
	}
	pk := &PublicKeys{keys: make(map[string]*ecdsa.PublicKey, len(set.Keys))}
	for i, k := range set.Keys {
		pub, ok := k.Key.(*ecdsa.PublicKey)
		switch {
		case !ok || pub.Curve != elliptic.P256():
			return nil, fmt.Errorf("%w: JWKS key %d (%q) is not an EC P-256 public key", ErrInvalidKey, i, k.KeyID)
		case k.Algorithm != "" && k.Algorithm != string(jose.ES256):
			return nil, fmt.Errorf("%w: JWKS key %d (%q) is for %s", ErrInvalidKey, i, k.KeyID, k.Algorithm)
		case k.KeyID == "" || pk.keys[k.KeyID] != nil:
			return nil, fmt.Errorf("%w: JWKS key %d has an empty or repeated kid %q", ErrInvalidKey, i, k.KeyID)
		}
		pk.keys[k.KeyID] = pub
	}
	return pk, nil
}

// VerifyPayload is KeySet.VerifyPayload with the public keys.
func (pk *PublicKeys) VerifyPayload(token, typ string) ([]byte, error) {
	if err := checkPayloadType(typ); err != nil {
		return nil, err
	}
	payload, err := verifyJWS(token, typ, func(kid string) *ecdsa.PublicKey { return pk.keys[kid] })
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJWS, err)
	}
	if !isJSONObject(payload) {
		return nil, fmt.Errorf("%w: %w: payload is not a JSON object", ErrInvalidJWS, errMalformed)
	}
	return payload, nil
}
