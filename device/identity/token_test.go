package identity_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire/wiretest"
)

const aud = "earshot:gw-1"

// tNow is the tests' clock.
var tNow = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

func mint(t testing.TB, k *identity.Key, now time.Time, ttl time.Duration) string {
	t.Helper()
	tok, err := k.Token(aud, now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// craft signs an arbitrary header and claims with k, the way Key.Token does, so tests
// can build tokens Key.Token would never make.
func craft(t testing.TB, k *identity.Key, header, claims any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := b64(h) + "." + b64(c)
	return signing + "." + b64(k.Sign([]byte(signing)))
}

func goodHeader(k *identity.Key) map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "earshot-device+jwt", "kid": k.DeviceID()}
}

func goodClaims(k *identity.Key) map[string]any {
	return map[string]any{
		"sub": k.DeviceID(), "aud": aud, "iat": tNow.Unix(), "exp": tNow.Add(time.Minute).Unix(),
		"jti": "n0nce-n0nce-n0nce-0001",
	}
}

func TestTokenRoundTrip(t *testing.T) {
	k := wiretest.DeviceKey()
	tok := mint(t, k, tNow, 0)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var h map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &h) != nil {
		t.Fatalf("header %q: %v", raw, err)
	}
	if h["alg"] != "EdDSA" || h["typ"] != "earshot-device+jwt" || h["kid"] != k.DeviceID() || len(h) != 3 {
		t.Errorf("header = %v", h)
	}

	c, err := identity.ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := identity.Claims{Subject: k.DeviceID(), Audience: aud, IssuedAt: tNow.Unix(),
		Expiry: tNow.Add(identity.DefaultTokenTTL).Unix(), Nonce: c.Nonce}
	if *c != want {
		t.Errorf("claims = %+v, want %+v", *c, want)
	}
	if n, err := base64.RawURLEncoding.DecodeString(c.Nonce); err != nil || len(n) != 16 {
		t.Errorf("nonce %q is not 16 random bytes", c.Nonce)
	}
	for _, at := range []time.Time{tNow, tNow.Add(-identity.ClockSkew), tNow.Add(identity.DefaultTokenTTL - time.Second)} {
		v, err := identity.VerifyToken(tok, k.Public(), aud, at)
		if err != nil {
			t.Errorf("VerifyToken at %s: %v", at, err)
		} else if *v != *c {
			t.Errorf("VerifyToken claims %+v, ParseToken %+v", *v, *c)
		}
	}
	if len(tok) > 2048 {
		t.Errorf("token of %d bytes", len(tok))
	}
}

func TestTokenNoncesAreUnique(t *testing.T) {
	k := wiretest.DeviceKey()
	seen := map[string]bool{}
	for range 100 {
		c, err := identity.ParseToken(mint(t, k, tNow, 0))
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.Nonce] {
			t.Fatalf("nonce %s repeated", c.Nonce)
		}
		seen[c.Nonce] = true
	}
}

func TestTokenTTL(t *testing.T) {
	k := wiretest.DeviceKey()
	tests := []struct {
		name    string
		ttl     time.Duration
		wantExp time.Duration
		ok      bool
	}{
		{"default", 0, identity.DefaultTokenTTL, true},
		{"negative means default", -time.Minute, identity.DefaultTokenTTL, true},
		{"one second", time.Second, time.Second, true},
		{"max", identity.MaxTokenTTL, identity.MaxTokenTTL, true},
		{"over max", identity.MaxTokenTTL + time.Second, identity.MaxTokenTTL + time.Second, false},
		{"a day", 24 * time.Hour, 24 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := mint(t, k, tNow, tt.ttl)
			c, err := identity.ParseToken(tok)
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Unix(c.Expiry, 0).Sub(time.Unix(c.IssuedAt, 0)); got != tt.wantExp {
				t.Errorf("lifetime %s, want %s", got, tt.wantExp)
			}
			_, err = identity.VerifyToken(tok, k.Public(), aud, tNow)
			if tt.ok && err != nil {
				t.Errorf("VerifyToken: %v", err)
			}
			if !tt.ok && !errors.Is(err, identity.ErrMalformedToken) {
				t.Errorf("VerifyToken = %v, want ErrMalformedToken (lifetime over MaxTokenTTL)", err)
			}
		})
	}
}

func TestVerifyTokenRefuses(t *testing.T) {
	k, other := wiretest.DeviceKey(), newKey(t)
	tok := mint(t, k, tNow, time.Minute)
	parts := strings.Split(tok, ".")
	with := func(mut func(h, c map[string]any)) string {
		h, c := goodHeader(k), goodClaims(k)
		mut(h, c)
		return craft(t, k, h, c)
	}
	tamperedClaims := func() string {
		c := goodClaims(k)
		c["exp"] = tNow.Add(identity.MaxTokenTTL).Unix()
		cj, _ := json.Marshal(c)
		return parts[0] + "." + b64(cj) + "." + parts[2]
	}()

	tests := []struct {
		name  string
		token string
		pub   []byte
		now   time.Time
		want  error
	}{
		{"expired at exp", tok, k.Public(), tNow.Add(time.Minute), identity.ErrTokenExpired},
		{"expired later", tok, k.Public(), tNow.Add(time.Hour), identity.ErrTokenExpired},
		{"issued in the future", mint(t, k, tNow.Add(identity.ClockSkew+time.Second), time.Minute), k.Public(), tNow, identity.ErrMalformedToken},
		{"wrong audience", with(func(_, c map[string]any) { c["aud"] = "earshot:gw-2" }), k.Public(), tNow, identity.ErrTokenAudience},
		{"empty audience", with(func(_, c map[string]any) { delete(c, "aud") }), k.Public(), tNow, identity.ErrTokenAudience},
		{"another device's key", tok, other.Public(), tNow, identity.ErrMalformedToken},
		{"tampered claims", tamperedClaims, k.Public(), tNow, identity.ErrMalformedToken},
		{"tampered header", b64([]byte(`{"alg":"EdDSA","typ":"earshot-device+jwt","kid":"`+k.DeviceID()+`" }`)) + "." + parts[1] + "." + parts[2],
			k.Public(), tNow, identity.ErrMalformedToken},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flipChar(parts[2], 20), k.Public(), tNow, identity.ErrMalformedToken},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(mint(t, k, tNow, time.Minute), ".")[2],
			k.Public(), tNow, identity.ErrMalformedToken},
		{"exp before iat", with(func(_, c map[string]any) { c["exp"] = tNow.Add(-time.Second).Unix() }), k.Public(), tNow, identity.ErrMalformedToken},
		{"exp equals iat", with(func(_, c map[string]any) { c["exp"] = tNow.Unix() }), k.Public(), tNow, identity.ErrMalformedToken},
		{"no iat", with(func(_, c map[string]any) { delete(c, "iat") }), k.Public(), tNow, identity.ErrMalformedToken},
		{"alg none", with(func(h, _ map[string]any) { h["alg"] = "none" }), k.Public(), tNow, identity.ErrMalformedToken},
		{"alg none unsigned", func() string {
			hj, _ := json.Marshal(map[string]any{"alg": "none", "typ": "earshot-device+jwt", "kid": k.DeviceID()})
			return b64(hj) + "." + parts[1] + "."
		}(), k.Public(), tNow, identity.ErrMalformedToken},
		{"alg HS256", with(func(h, _ map[string]any) { h["alg"] = "HS256" }), k.Public(), tNow, identity.ErrMalformedToken},
		{"alg ES256", with(func(h, _ map[string]any) { h["alg"] = "ES256" }), k.Public(), tNow, identity.ErrMalformedToken},
		{"alg Ed25519", with(func(h, _ map[string]any) { h["alg"] = "Ed25519" }), k.Public(), tNow, identity.ErrMalformedToken},
		{"alg lower case", with(func(h, _ map[string]any) { h["alg"] = "eddsa" }), k.Public(), tNow, identity.ErrMalformedToken},
		{"typ JWT", with(func(h, _ map[string]any) { h["typ"] = "JWT" }), k.Public(), tNow, identity.ErrMalformedToken},
		{"typ missing", with(func(h, _ map[string]any) { delete(h, "typ") }), k.Public(), tNow, identity.ErrMalformedToken},
		{"kid differs from sub", with(func(h, _ map[string]any) { h["kid"] = other.DeviceID() }), k.Public(), tNow, identity.ErrMalformedToken},
		{"kid missing", with(func(h, _ map[string]any) { delete(h, "kid") }), k.Public(), tNow, identity.ErrMalformedToken},
		{"sub missing", with(func(h, c map[string]any) { delete(c, "sub"); h["kid"] = "" }), k.Public(), tNow, identity.ErrMalformedToken},
		{"jti missing", with(func(_, c map[string]any) { delete(c, "jti") }), k.Public(), tNow, identity.ErrMalformedToken},
		{"jti too long", with(func(_, c map[string]any) { c["jti"] = strings.Repeat("n", 65) }), k.Public(), tNow, identity.ErrMalformedToken},
		{"claims not an object", craft(t, k, goodHeader(k), []int{1}), k.Public(), tNow, identity.ErrMalformedToken},
		{"claim of the wrong type", with(func(_, c map[string]any) { c["exp"] = "soon" }), k.Public(), tNow, identity.ErrMalformedToken},
		{"empty", "", k.Public(), tNow, identity.ErrMalformedToken},
		{"two parts", parts[0] + "." + parts[1], k.Public(), tNow, identity.ErrMalformedToken},
		{"four parts", tok + ".x", k.Public(), tNow, identity.ErrMalformedToken},
		{"header not base64url", "e30=." + parts[1] + "." + parts[2], k.Public(), tNow, identity.ErrMalformedToken},
		{"header not JSON", b64([]byte("EdDSA")) + "." + parts[1] + "." + parts[2], k.Public(), tNow, identity.ErrMalformedToken},
		{"signature too short", parts[0] + "." + parts[1] + "." + parts[2][:40], k.Public(), tNow, identity.ErrMalformedToken},
		{"signature padded", tok + "==", k.Public(), tNow, identity.ErrMalformedToken},
		{"over 2048 bytes", with(func(_, c map[string]any) { c["pad"] = strings.Repeat("p", 2048) }), k.Public(), tNow, identity.ErrMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := identity.VerifyToken(tt.token, tt.pub, aud, tt.now)
			if !errors.Is(err, tt.want) {
				t.Errorf("VerifyToken = %+v, %v; want %v", c, err, tt.want)
			}
			if c != nil {
				t.Errorf("claims returned with an error")
			}
		})
	}
}

// TestVerifyTokenAcceptsCrafted makes sure craft builds what Key.Token builds, so the
// refusals above are refusals of the one thing changed.
func TestVerifyTokenAcceptsCrafted(t *testing.T) {
	k := wiretest.DeviceKey()
	tok := craft(t, k, goodHeader(k), goodClaims(k))
	if _, err := identity.VerifyToken(tok, k.Public(), aud, tNow); err != nil {
		t.Fatalf("crafted token refused: %v", err)
	}
	// Within the clock skew, a token from a device whose clock runs ahead is accepted.
	ahead := mint(t, k, tNow.Add(identity.ClockSkew), time.Minute)
	if _, err := identity.VerifyToken(ahead, k.Public(), aud, tNow); err != nil {
		t.Errorf("token issued ClockSkew ahead refused: %v", err)
	}
}

func TestParseTokenDoesNotVerify(t *testing.T) {
	k, other := wiretest.DeviceKey(), newKey(t)
	// Signed by another key and expired: ParseToken only reads the shape, so the
	// gateway can find the device before verifying.
	c := goodClaims(k)
	c["exp"] = tNow.Add(-time.Hour).Unix()
	tok := craft(t, other, goodHeader(k), c)
	got, err := identity.ParseToken(tok)
	if err != nil || got.Subject != k.DeviceID() {
		t.Fatalf("ParseToken = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "a.b", "a.b.c", craft(t, k, map[string]any{"alg": "none", "typ": "earshot-device+jwt", "kid": k.DeviceID()}, goodClaims(k))} {
		if _, err := identity.ParseToken(bad); !errors.Is(err, identity.ErrMalformedToken) {
			t.Errorf("ParseToken(%.20q) = %v, want ErrMalformedToken", bad, err)
		}
	}
}
