package authz

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/earshot/earshot/device/wire"
)

func testClaims(t testing.TB) Claims {
	t.Helper()
	ch := newChallenge(t, testTerms("dev_a", "tx_1"))
	c, err := ClaimsFor(ch, testUser, testAgent, testIssuer, t0, 10*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClaimsFor(t *testing.T) {
	terms := testTerms("dev_a", "tx_1")
	ch := newChallenge(t, terms)
	c, err := ClaimsFor(ch, testUser, testAgent, testIssuer, t0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := ItemsDigest(terms.Items)
	want := Claims{ID: c.ID, Issuer: testIssuer, User: testUser, Agent: testAgent,
		IssuedAt: t0.Unix(), NotBefore: t0.Unix(), Expiry: t0.Add(DefaultMandateTTL).Unix(),
		Device: "dev_a", Tx: "tx_1", Payee: testPayee, AmountCap: 950, Currency: "USD",
		ItemsDigest: digest, Kind: wire.KindOneOff, ConsentHash: ch.Hash}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("claims\n%+v\nwant\n%+v", c, want)
	}
	if !strings.HasPrefix(c.ID, "mnd_") || len(c.ID) != 26 {
		t.Fatalf("jti %q", c.ID)
	}
	if _, err := ClaimsFor(ch, testUser, "", testIssuer, t0, 0, nil); !errors.Is(err, ErrInvalidClaims) {
		t.Fatalf("no agent: %v, want ErrInvalidClaims", err)
	}
}

func TestItemsDigest(t *testing.T) {
	items := testTerms("dev_a", "tx_1").Items
	a, err := ItemsDigest(items)
	if err != nil {
		t.Fatal(err)
	}
	// The canonical form is independent of how the JSON was produced.
	raw := `[{"unit_amount":400,"sku":"latte-oat","qty":2,"options":["large"],"name":"Oat latte"},` +
		`{"name":"Cookie","qty":1,"sku":"cookie","unit_amount":150}]`
	canon, err := wire.Canonicalize([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); a != want {
		t.Fatalf("digest %s, want %s", a, want)
	}
	items[0].Qty = 3
	if b, _ := ItemsDigest(items); b == a {
		t.Fatal("digest did not change with the items")
	}
}

func TestSignVerify(t *testing.T) {
	ks := newKeySet(t, genKey(t))
	c := testClaims(t)
	tok, err := ks.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ks.Verify(tok, testIssuer, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, c) {
		t.Fatalf("claims %+v, want %+v", *got, c)
	}
	hdr := decodeSegment(t, tok, 0)
	if hdr["alg"] != "ES256" || hdr["kid"] != ks.ActiveKID() || hdr["typ"] != mandateType || len(hdr) != 3 {
		t.Fatalf("header %v", hdr)
	}
	if _, err := ks.Sign(Claims{}); !errors.Is(err, ErrInvalidClaims) {
		t.Fatalf("empty claims: %v, want ErrInvalidClaims", err)
	}
}

// TestJWKSExternalVerifier verifies a mandate as an outside party would: with go-jose
// and nothing but the published JWK Set.
func TestJWKSExternalVerifier(t *testing.T) {
	ks := newKeySet(t, genKey(t), genKey(t))
	tok, err := ks.Sign(testClaims(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys, want 2", len(set.Keys))
	}
	keys := set.Key(ks.ActiveKID())
	if len(keys) != 1 || keys[0].Algorithm != "ES256" || keys[0].Use != "sig" || !keys[0].IsPublic() {
		t.Fatalf("active key in JWKS: %+v", keys)
	}
	if strings.Contains(string(raw), `"d"`) {
		t.Fatal("JWKS holds a private component")
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(set)
	if err != nil {
		t.Fatalf("verify with JWKS: %v", err)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil || c.Agent != testAgent {
		t.Fatalf("claims %+v, %v", c, err)
	}
	tp, err := keys[0].Thumbprint(crypto.SHA256)
	if err != nil || base64.RawURLEncoding.EncodeToString(tp) != ks.ActiveKID() {
		t.Fatal("kid is not the RFC 7638 thumbprint")
	}
}

func TestVerifyRefuses(t *testing.T) {
	key := genKey(t)
	ks := newKeySet(t, key)
	c := testClaims(t)
	good, err := ks.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(c)
	pubDER, _ := x509.MarshalPKIXPublicKey(key.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)

	tests := []struct {
		name  string
		token func(t *testing.T) string
		now   time.Time
		code  ErrorCode
		cause error
	}{
		{"alg none", func(t *testing.T) string {
			return forge(map[string]any{"alg": "none", "kid": key.KID(), "typ": mandateType}, payload, nil)
		}, t0, CodeMandateInvalid, errAlgorithm},
		{"alg none, no signature segment", func(t *testing.T) string {
			return strings.TrimSuffix(forge(map[string]any{"alg": "none", "typ": mandateType}, payload, nil), ".")
		}, t0, CodeMandateInvalid, errMalformed},
		{"HS256 keyed with the public key", func(t *testing.T) string {
			return forge(map[string]any{"alg": "HS256", "kid": key.KID(), "typ": mandateType}, payload,
				func(in []byte) []byte { m := hmac.New(sha256.New, pubPEM); m.Write(in); return m.Sum(nil) })
		}, t0, CodeMandateInvalid, errAlgorithm},
		{"HS256 keyed with the DER public key", func(t *testing.T) string {
			return forge(map[string]any{"alg": "HS256", "kid": key.KID(), "typ": mandateType}, payload,
				func(in []byte) []byte { m := hmac.New(sha256.New, pubDER); m.Write(in); return m.Sum(nil) })
		}, t0, CodeMandateInvalid, errAlgorithm},
		{"RS256", func(t *testing.T) string {
			return joseSign(t, jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: rsaKey, KeyID: key.KID()}},
				(&jose.SignerOptions{}).WithType(mandateType), payload)
		}, t0, CodeMandateInvalid, errAlgorithm},
		{"embedded jwk", func(t *testing.T) string {
			opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(mandateType).WithHeader("kid", key.KID())
			return joseSign(t, jose.SigningKey{Algorithm: jose.ES256, Key: attacker}, opts, payload)
		}, t0, CodeMandateInvalid, errForbiddenHeader},
		{"embedded jwk, no kid", func(t *testing.T) string {
			opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(mandateType)
			return joseSign(t, jose.SigningKey{Algorithm: jose.ES256, Key: attacker}, opts, payload)
		}, t0, CodeMandateInvalid, errForbiddenHeader},
		{"jku header, even signed by our key", func(t *testing.T) string {
			opts := (&jose.SignerOptions{}).WithType(mandateType).WithHeader("jku", "https://evil.test/jwks.json")
			return joseSign(t, jose.SigningKey{Algorithm: jose.ES256,
				Key: jose.JSONWebKey{Key: key.priv, KeyID: key.KID()}}, opts, payload)
		}, t0, CodeMandateInvalid, errForbiddenHeader},
		{"x5c header", func(t *testing.T) string {
			return forge(map[string]any{"alg": "ES256", "kid": key.KID(), "typ": mandateType, "x5c": []string{"MIIB"}}, payload, nil)
		}, t0, CodeMandateInvalid, errForbiddenHeader},
		{"unknown kid", func(t *testing.T) string {
			tok, err := newKeySet(t, genKey(t)).Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, t0, CodeMandateInvalid, errUnknownKID},
		{"our kid, attacker's signature", func(t *testing.T) string {
			return joseSign(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: attacker, KeyID: key.KID()}},
				(&jose.SignerOptions{}).WithType(mandateType), payload)
		}, t0, CodeMandateInvalid, errSignature},
		{"payload changed", func(t *testing.T) string {
			c2 := c
			c2.AmountCap = 1_000_000
			p2, _ := json.Marshal(c2)
			parts := strings.Split(good, ".")
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p2) + "." + parts[2]
		}, t0, CodeMandateInvalid, errSignature},
		{"missing typ", func(t *testing.T) string {
			return joseSign(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.KID()}},
				nil, payload)
		}, t0, CodeMandateInvalid, errMalformed},
		{"JSON serialisation", func(t *testing.T) string { return `{"payload":"e30","signatures":[]}` },
			t0, CodeMandateInvalid, errMalformed},
		{"too large", func(t *testing.T) string { return strings.Repeat("a", MaxMandateBytes+1) },
			t0, CodeMandateInvalid, errMalformed},
		{"wrong issuer", func(t *testing.T) string {
			c2 := c
			c2.Issuer = "https://other.test"
			tok, err := ks.Sign(c2)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, t0, CodeMandateInvalid, errIssuer},
		{"expired", func(t *testing.T) string { return good },
			time.Unix(c.Expiry, 0).Add(Leeway), CodeMandateExpired, nil},
		{"not yet valid", func(t *testing.T) string { return good },
			time.Unix(c.NotBefore, 0).Add(-Leeway - time.Second), CodeMandateInvalid, errNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ks.Verify(tt.token(t), testIssuer, tt.now)
			wantCode(t, err, tt.code)
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Fatalf("error %v, want cause %v", err, tt.cause)
			}
		})
	}
	// Within the leeway the token still verifies.
	if _, err := ks.Verify(good, testIssuer, time.Unix(c.Expiry, 0).Add(Leeway-time.Second)); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	k1, k2 := genKey(t), genKey(t)
	c := testClaims(t)
	tok1, _ := newKeySet(t, k1).Sign(c)
	tok2, _ := newKeySet(t, k2).Sign(c)

	both := newKeySet(t, k2, k1)
	for i, tok := range []string{tok1, tok2} {
		if _, err := both.Verify(tok, testIssuer, t0); err != nil {
			t.Fatalf("token %d: %v", i+1, err)
		}
	}
	if _, err := NewKeySet(k1, k1); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("duplicate key: %v", err)
	}

	ks := newKeySet(t, k1)
	k3 := genKey(t)
	if err := ks.Rotate(k3); err != nil {
		t.Fatal(err)
	}
	tok3, _ := ks.Sign(c)
	if hdr := decodeSegment(t, tok3, 0); hdr["kid"] != k3.KID() || ks.ActiveKID() != k3.KID() {
		t.Fatalf("after rotation signed with %v, want %s", hdr["kid"], k3.KID())
	}
	for _, tok := range []string{tok1, tok3} {
		if _, err := ks.Verify(tok, testIssuer, t0); err != nil {
			t.Fatalf("during overlap: %v", err)
		}
	}
	if err := ks.Retire(k3.KID()); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("retire active: %v", err)
	}
	if err := ks.Retire(k1.KID()); err != nil {
		t.Fatal(err)
	}
	_, err := ks.Verify(tok1, testIssuer, t0)
	wantCode(t, err, CodeMandateInvalid)
	raw, _ := ks.JWKS()
	if strings.Contains(string(raw), k1.KID()) || !strings.Contains(string(raw), k3.KID()) {
		t.Fatalf("JWKS after retiring: %s", raw)
	}
}

func TestSigningKeyPEM(t *testing.T) {
	k := genKey(t)
	p, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSigningKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if back.KID() != k.KID() || !back.Created().Equal(t0) {
		t.Fatalf("parsed kid %s created %s, want %s %s", back.KID(), back.Created(), k.KID(), t0)
	}
	tok, _ := newKeySet(t, back).Sign(testClaims(t))
	if _, err := newKeySet(t, k).Verify(tok, testIssuer, t0); err != nil {
		t.Fatalf("token of the parsed key: %v", err)
	}

	sec1, _ := x509.MarshalECPrivateKey(k.priv)
	if back, err := ParseSigningKey(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})); err != nil || back.KID() != k.KID() {
		t.Fatalf("SEC 1 key: %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p384)
	for name, in := range map[string][]byte{
		"garbage": []byte("not pem"),
		"P-384":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"public":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	} {
		if _, err := ParseSigningKey(in); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v, want ErrInvalidKey", name, err)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		code   ErrorCode
		name   string
		status int
	}{
		{CodeUnknown, "unknown", http.StatusInternalServerError},
		{CodeBadRequest, "bad_request", 400},
		{CodeMandateInvalid, "mandate_invalid", 401},
		{CodeWrongAgent, "wrong_agent", 403},
		{CodeNotFound, "not_found", 404},
		{CodeAlreadyRedeemed, "already_redeemed", 409},
		{CodeInFlight, "in_flight", 409},
		{CodeMandateExpired, "mandate_expired", 410},
		{CodeRevoked, "revoked", 410},
		{CodeOverCap, "over_cap", 422},
		{CodePayeeMismatch, "payee_mismatch", 422},
		{CodeCurrencyMismatch, "currency_mismatch", 422},
		{CodeIdempotencyConflict, "idempotency_conflict", 422},
		{CodeOverPeriodCap, "over_period_cap", 422},
		{CodeOverTipCap, "over_tip_cap", 422},
		{CodeExhausted, "exhausted", 410},
		{CodeParentNotPaid, "parent_not_paid", 409},
		{ErrorCode(99), "code_99", http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.code.String() != tt.name || tt.code.HTTPStatus() != tt.status {
				t.Fatalf("%d: %s %d, want %s %d", int(tt.code), tt.code, tt.code.HTTPStatus(), tt.name, tt.status)
			}
			if tt.code > CodeUnknown && int(tt.code) < len(codeNames) {
				var back ErrorCode
				if err := back.UnmarshalText([]byte(tt.name)); err != nil || back != tt.code {
					t.Fatalf("round trip: %v %v", back, err)
				}
			}
		})
	}
	err := error(&Error{Code: CodeOverCap, Detail: "over", Err: errSignature})
	if CodeOf(errors.Join(errors.New("x"), err)) != CodeOverCap || !errors.Is(err, errSignature) {
		t.Fatal("CodeOf or Unwrap")
	}
}

// forge builds a compact JWS by hand; sign nil leaves the signature empty.
func forge(header map[string]any, payload []byte, sign func([]byte) []byte) string {
	h, _ := json.Marshal(header)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(payload)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(in))
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func joseSign(t *testing.T, key jose.SigningKey, opts *jose.SignerOptions, payload []byte) string {
	t.Helper()
	s, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
