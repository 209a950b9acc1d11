package webhook

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test vector published with the Standard Webhooks reference libraries
// (libraries/go/webhook_test.go, TestWebhookSign, and the other languages' suites).
const (
	vecSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecUnix      = 1614265330
	vecPayload   = `{"test": 2432232314}`
	vecSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignVector(t *testing.T) {
	got, err := Sign(vecSecret, vecID, time.Unix(vecUnix, 0), []byte(vecPayload))
	if err != nil {
		t.Fatal(err)
	}
	if got != vecSignature {
		t.Fatalf("Sign = %s, want %s", got, vecSignature)
	}
	// Sub-second parts of the time do not enter the signature.
	got, err = Sign(vecSecret, vecID, time.Unix(vecUnix, 999_999_999), []byte(vecPayload))
	if err != nil || got != vecSignature {
		t.Fatalf("Sign with nanoseconds = %s, %v", got, err)
	}
}

func vecHeader() http.Header {
	h := http.Header{}
	h.Set(HeaderID, vecID)
	h.Set(HeaderTimestamp, strconv.Itoa(vecUnix))
	h.Set(HeaderSignature, vecSignature)
	return h
}

func TestVerify(t *testing.T) {
	now := time.Unix(vecUnix, 0)
	other, err := NewSecret(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		secret    string
		edit      func(h http.Header)
		body      string
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{name: "vector", want: nil},
		{name: "several signatures, one matching", edit: func(h http.Header) {
			h.Set(HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== "+vecSignature)
		}},
		{name: "right signature under another scheme", edit: func(h http.Header) {
			h.Set(HeaderSignature, "v2,"+strings.TrimPrefix(vecSignature, "v1,"))
		}, want: ErrSignature},
		{name: "tampered body", body: `{"test": 2432232315}`, want: ErrSignature},
		{name: "body with a space more", body: `{"test":  2432232314}`, want: ErrSignature},
		{name: "tampered id", edit: func(h http.Header) { h.Set(HeaderID, vecID+"x") }, want: ErrSignature},
		{name: "tampered timestamp", edit: func(h http.Header) { h.Set(HeaderTimestamp, strconv.Itoa(vecUnix+1)) }, want: ErrSignature},
		{name: "other secret", secret: other, want: ErrSignature},
		{name: "signature not base64", edit: func(h http.Header) { h.Set(HeaderSignature, "v1,!!!") }, want: ErrSignature},
		{name: "missing id", edit: func(h http.Header) { h.Del(HeaderID) }, want: ErrMissingHeaders},
		{name: "missing timestamp", edit: func(h http.Header) { h.Del(HeaderTimestamp) }, want: ErrMissingHeaders},
		{name: "missing signature", edit: func(h http.Header) { h.Del(HeaderSignature) }, want: ErrMissingHeaders},
		{name: "timestamp not an integer", edit: func(h http.Header) { h.Set(HeaderTimestamp, "1614265330.5") }, want: ErrMalformedHeader},
		{name: "signature without version", edit: func(h http.Header) { h.Set(HeaderSignature, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") }, want: ErrMalformedHeader},
		{name: "at the edge of the default tolerance", now: now.Add(5 * time.Minute)},
		{name: "too old", now: now.Add(5*time.Minute + time.Second), want: ErrTimestamp},
		{name: "too new", now: now.Add(-5*time.Minute - time.Second), want: ErrTimestamp},
		{name: "wider tolerance", now: now.Add(time.Hour), tolerance: 2 * time.Hour},
		{name: "narrower tolerance", now: now.Add(2 * time.Second), tolerance: time.Second, want: ErrTimestamp},
		{name: "secret without prefix", secret: strings.TrimPrefix(vecSecret, SecretPrefix), want: ErrSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := vecHeader()
			if tc.edit != nil {
				tc.edit(h)
			}
			secret, body, at := vecSecret, vecPayload, now
			if tc.secret != "" {
				secret = tc.secret
			}
			if tc.body != "" {
				body = tc.body
			}
			if !tc.now.IsZero() {
				at = tc.now
			}
			err := Verify(secret, h, []byte(body), at, tc.tolerance)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSecretShape(t *testing.T) {
	b64 := func(n int) string {
		return SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, n))
	}
	tests := []struct {
		name, secret string
		ok           bool
	}{
		{"vector, 24 bytes", vecSecret, true},
		{"64 bytes", b64(64), true},
		{"23 bytes", b64(23), false},
		{"65 bytes", b64(65), false},
		{"no prefix", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), false},
		{"not base64", SecretPrefix + "not*base64*at*all*not*base64*at*all", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Sign(tc.secret, "msg_1", time.Unix(1, 0), nil)
			if tc.ok != (err == nil) {
				t.Fatalf("Sign err = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				if !errors.Is(err, ErrSecret) {
					t.Fatalf("err = %v, want ErrSecret", err)
				}
				if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
					t.Fatalf("error %q shows the secret", err)
				}
			}
			if (ValidSecret(tc.secret) == nil) != tc.ok {
				t.Fatalf("ValidSecret disagrees with Sign")
			}
		})
	}
}

func TestSignRefusesAmbiguousID(t *testing.T) {
	for _, id := range []string{"", "evt.1"} {
		if _, err := Sign(vecSecret, id, time.Unix(1, 0), nil); !errors.Is(err, ErrID) {
			t.Errorf("Sign(id %q) err = %v, want ErrID", id, err)
		}
	}
}

func TestNewSecret(t *testing.T) {
	s, err := NewSecret(bytes.NewReader(bytes.Repeat([]byte{0xab}, 40)))
	if err != nil {
		t.Fatal(err)
	}
	want := SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xab}, 32))
	if s != want {
		t.Fatalf("NewSecret = %s, want %s", s, want)
	}
	body := []byte(`{"type":"x"}`)
	now := time.Unix(1_700_000_000, 0)
	sig, err := Sign(s, "evt_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "evt_1")
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, sig)
	if err := Verify(s, h, body, now, 0); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := NewSecret(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("NewSecret with 31 bytes of randomness succeeded")
	}
}
