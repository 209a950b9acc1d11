package authz

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

const testPayloadType = "earshot-test+jwt"

func TestSignPayloadRoundTrip(t *testing.T) {
	old, next := genKey(t), genKey(t)
	ks := newKeySet(t, old)
	payload := []byte(`{"seq":7,"hash":"ab"}`)
	tok, err := ks.SignPayload(payload, testPayloadType)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[string]string
	if err := json.Unmarshal(hb, &hdr); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"alg": "ES256", "kid": old.KID(), "typ": testPayloadType}
	if len(hdr) != len(want) {
		t.Fatalf("header %v, want %v", hdr, want)
	}
	for k, v := range want {
		if hdr[k] != v {
			t.Fatalf("header %v, want %v", hdr, want)
		}
	}
	// After a rotation the old key's statements still verify, and new ones carry the
	// new kid.
	if err := ks.Rotate(next); err != nil {
		t.Fatal(err)
	}
	for _, k := range []*SigningKey{old, next} {
		tok := tok
		if k == next {
			if tok, err = ks.SignPayload(payload, testPayloadType); err != nil {
				t.Fatal(err)
			}
		}
		got, err := ks.VerifyPayload(tok, testPayloadType)
		if err != nil {
			t.Fatalf("kid %s: %v", k.KID(), err)
		}
		if string(got) != string(payload) {
			t.Fatalf("payload %s, want %s", got, payload)
		}
	}
}

func TestSignPayloadRefuses(t *testing.T) {
	ks := newKeySet(t, genKey(t))
	tests := []struct {
		name    string
		payload string
		typ     string
	}{
		{"mandate typ", `{}`, mandateType},
		{"mandate typ, other case", `{}`, strings.ToUpper(mandateType)},
		{"empty typ", `{}`, ""},
		{"typ with a space", `{}`, "a b"},
		{"typ too long", `{}`, strings.Repeat("t", maxTypBytes+1)},
		{"array payload", `[1]`, testPayloadType},
		{"string payload", `"x"`, testPayloadType},
		{"invalid JSON", `{"a":`, testPayloadType},
		{"empty payload", ``, testPayloadType},
		{"payload too large", `{"a":"` + strings.Repeat("x", MaxPayloadBytes) + `"}`, testPayloadType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ks.SignPayload([]byte(tt.payload), tt.typ); !errors.Is(err, ErrInvalidJWS) {
				t.Fatalf("error %v, want ErrInvalidJWS", err)
			}
		})
	}
	// The largest payload allowed makes a token VerifyPayload accepts.
	big := `{"a":"` + strings.Repeat("x", MaxPayloadBytes-8) + `"}`
	tok, err := ks.SignPayload([]byte(big), testPayloadType)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.VerifyPayload(tok, testPayloadType); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyPayloadRefuses(t *testing.T) {
	key := genKey(t)
	ks := newKeySet(t, key)
	payload := []byte(`{"seq":1}`)
	good, err := ks.SignPayload(payload, testPayloadType)
	if err != nil {
		t.Fatal(err)
	}
	mandate, err := ks.Sign(testClaims(t))
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ours := jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.KID()}}

	tests := []struct {
		name  string
		token func(t *testing.T) string
		typ   string
		cause error
	}{
		{"other typ", func(*testing.T) string { return good }, "earshot-other+jwt", errMalformed},
		{"a mandate", func(*testing.T) string { return mandate }, testPayloadType, errMalformed},
		{"alg none", func(*testing.T) string {
			return forge(map[string]any{"alg": "none", "kid": key.KID(), "typ": testPayloadType}, payload, nil)
		}, testPayloadType, errAlgorithm},
		{"embedded jwk", func(t *testing.T) string {
			opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(testPayloadType).WithHeader("kid", key.KID())
			return joseSign(t, jose.SigningKey{Algorithm: jose.ES256, Key: attacker}, opts, payload)
		}, testPayloadType, errForbiddenHeader},
		{"cty header, signed by our key", func(t *testing.T) string {
			return joseSign(t, ours, (&jose.SignerOptions{}).WithType(testPayloadType).WithHeader("cty", "x"), payload)
		}, testPayloadType, errForbiddenHeader},
		{"unknown kid", func(t *testing.T) string {
			tok, err := newKeySet(t, genKey(t)).SignPayload(payload, testPayloadType)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, testPayloadType, errUnknownKID},
		{"our kid, attacker's signature", func(t *testing.T) string {
			return joseSign(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: attacker, KeyID: key.KID()}},
				(&jose.SignerOptions{}).WithType(testPayloadType), payload)
		}, testPayloadType, errSignature},
		{"payload changed", func(*testing.T) string {
			parts := strings.Split(good, ".")
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"seq":2}`)) + "." + parts[2]
		}, testPayloadType, errSignature},
		{"signed array", func(t *testing.T) string {
			return joseSign(t, ours, (&jose.SignerOptions{}).WithType(testPayloadType), []byte(`[1]`))
		}, testPayloadType, errMalformed},
		{"two segments", func(*testing.T) string { return good[:strings.LastIndex(good, ".")] }, testPayloadType, errMalformed},
		{"too large", func(*testing.T) string { return strings.Repeat("a", MaxJWSBytes+1) }, testPayloadType, errMalformed},
		{"empty", func(*testing.T) string { return "" }, testPayloadType, errMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ks.VerifyPayload(tt.token(t), tt.typ)
			if !errors.Is(err, ErrInvalidJWS) || !errors.Is(err, tt.cause) {
				t.Fatalf("error %v, want ErrInvalidJWS and %v", err, tt.cause)
			}
		})
	}
	// A payload statement is not a mandate, even when its claims would be valid ones.
	claims, err := json.Marshal(testClaims(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SignPayload(claims, mandateType); !errors.Is(err, ErrInvalidJWS) {
		t.Fatalf("signing claims as a mandate: %v", err)
	}
	tok, err := ks.SignPayload(claims, testPayloadType)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify(tok, testIssuer, t0); CodeOf(err) != CodeMandateInvalid {
		t.Fatalf("payload token verified as a mandate: %v", err)
	}
	if _, err := ks.VerifyPayload(good, mandateType); !errors.Is(err, ErrInvalidJWS) {
		t.Fatalf("verify with the mandate typ: %v", err)
	}
}

// An auditor with only the JWKS verifies what the key set signed, and nothing else.
func TestParseJWKS(t *testing.T) {
	ks := newKeySet(t, genKey(t))
	tok, err := ks.SignPayload([]byte(`{"n":1}`), "earshot-test+jwt")
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ParseJWKS(jwks)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := pk.VerifyPayload(tok, "earshot-test+jwt"); err != nil || string(b) != `{"n":1}` {
		t.Fatalf("verify: %s %v", b, err)
	}
	if _, err := pk.VerifyPayload(tok, "earshot-other+jwt"); !errors.Is(err, ErrInvalidJWS) {
		t.Fatalf("another typ: %v", err)
	}
	other, _ := newKeySet(t, genKey(t)).SignPayload([]byte(`{"n":1}`), "earshot-test+jwt")
	if _, err := pk.VerifyPayload(other, "earshot-test+jwt"); !errors.Is(err, ErrInvalidJWS) {
		t.Fatalf("a token of another key: %v", err)
	}
	for name, bad := range map[string]string{
		"not json":   `{`,
		"no keys":    `{"keys":[]}`,
		"symmetric":  `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"a"}]}`,
		"no kid":     strings.Replace(string(jwks), `"kid"`, `"x-kid"`, 1),
		"too big":    `{"keys":[` + strings.Repeat(" ", MaxJWKSBytes) + `]}`,
		"repeat kid": `{"keys":[` + strings.Trim(strings.TrimPrefix(string(jwks), `{"keys":`), "[]}") + `,` + strings.Trim(strings.TrimPrefix(string(jwks), `{"keys":`), "[]}") + `]}`,
	} {
		if _, err := ParseJWKS([]byte(bad)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
