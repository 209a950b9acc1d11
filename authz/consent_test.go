package authz

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
)

func TestVerifyConfirmation(t *testing.T) {
	dev, other := newDevice(t), newDevice(t)
	terms := testTerms(dev.DeviceID(), "tx_1")
	ch := newChallenge(t, terms, wire.MethodTap, wire.MethodPIN)
	otherTerms := terms
	otherTerms.Total = 400
	otherTerms.Items = []wire.Item{{SKU: "latte-oat", Name: "Oat latte", Qty: 1, UnitAmount: 400}}
	otherHash, err := otherTerms.Hash()
	if err != nil {
		t.Fatal(err)
	}
	otherCh := newChallenge(t, testTerms(other.DeviceID(), "tx_2"))
	tampered := *ch
	tampered.Terms.Merchant.Name = "Someone Else"

	type call struct {
		ch      *Challenge
		c       *wire.Confirm
		device  string
		session string
		pubOf   func() []byte
		now     time.Time
	}
	ok := func() call {
		return call{ch, signedConfirm(dev, "tx_1", ch.Hash, wire.DecisionApprove, wire.MethodTap),
			dev.DeviceID(), testSession, func() []byte { return dev.Public() }, t0}
	}
	tests := []struct {
		name   string
		mutate func(*call)
		want   wire.Code // CodeUnknown: accepted
	}{
		{"approve", func(*call) {}, wire.CodeUnknown},
		{"approve with pin", func(c *call) {
			c.c = signedConfirm(dev, "tx_1", ch.Hash, wire.DecisionApprove, wire.MethodPIN)
		}, wire.CodeUnknown},
		{"decline", func(c *call) {
			c.c = signedConfirm(dev, "tx_1", ch.Hash, wire.DecisionDecline, wire.MethodTap)
		}, wire.CodeUnknown},
		{"decline by any method", func(c *call) {
			c.c = signedConfirm(dev, "tx_1", ch.Hash, wire.DecisionDecline, wire.MethodVoice)
		}, wire.CodeUnknown},
		{"just before expiry", func(c *call) { c.now = time.UnixMilli(terms.ExpiresAt - 1) }, wire.CodeUnknown},
		{"tampered signature", func(c *call) {
			sig := []byte(c.c.Sig)
			sig[10] ^= 0x01
			c.c.Sig = string(sig)
		}, wire.CodeBadSignature},
		{"signature of another decision", func(c *call) { c.c.Decision = wire.DecisionDecline }, wire.CodeBadSignature},
		{"unsigned decline", func(c *call) {
			c.c = &wire.Confirm{Tx: "tx_1", Hash: ch.Hash, Decision: wire.DecisionDecline, Method: wire.MethodTap,
				Sig: "AAAA"}
		}, wire.CodeBadSignature},
		{"hash of other terms", func(c *call) {
			c.c = signedConfirm(dev, "tx_1", otherHash, wire.DecisionApprove, wire.MethodTap)
		}, wire.CodeChallengeMismatch},
		{"another transaction", func(c *call) {
			c.c = signedConfirm(dev, "tx_9", ch.Hash, wire.DecisionApprove, wire.MethodTap)
		}, wire.CodeChallengeMismatch},
		{"challenge terms changed after hashing", func(c *call) { c.ch = &tampered }, wire.CodeChallengeMismatch},
		{"another device's challenge, signed by that device", func(c *call) {
			c.ch = otherCh
			c.c = signedConfirm(other, "tx_2", otherCh.Hash, wire.DecisionApprove, wire.MethodTap)
			// the confirmation arrives on dev's connection
		}, wire.CodeWrongDevice},
		{"another device's key for this device", func(c *call) {
			c.c = signedConfirm(other, "tx_1", ch.Hash, wire.DecisionApprove, wire.MethodTap)
			c.pubOf = func() []byte { return other.Public() }
		}, wire.CodeWrongDevice},
		{"another session", func(c *call) { c.session = "ses_2" }, wire.CodeWrongDevice},
		{"expired", func(c *call) { c.now = time.UnixMilli(terms.ExpiresAt) }, wire.CodeChallengeExpired},
		{"method not allowed", func(c *call) {
			c.c = signedConfirm(dev, "tx_1", ch.Hash, wire.DecisionApprove, wire.MethodVoice)
		}, wire.CodeMethodNotAllowed},
		{"malformed decision", func(c *call) { c.c.Decision = "maybe" }, wire.CodeBadRequest},
		{"nil challenge", func(c *call) { c.ch = nil }, wire.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.mutate(&c)
			err := VerifyConfirmation(c.ch, c.c, c.device, c.session, c.pubOf(), c.now)
			if tt.want == wire.CodeUnknown {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var we *wire.Error
			if !errors.As(err, &we) {
				t.Fatalf("error %v (%T), want *wire.Error %s", err, err, tt.want)
			}
			if we.Code != tt.want {
				t.Fatalf("code %s (%v), want %s", we.Code, we, tt.want)
			}
			if err := we.Validate(); err != nil {
				t.Fatalf("wire error does not validate: %v", err)
			}
		})
	}
}

func TestNewChallenge(t *testing.T) {
	good := testTerms("dev_a", "tx_1")
	tests := []struct {
		name    string
		terms   func() wire.Terms
		methods []wire.Method
		ok      bool
	}{
		{"valid", func() wire.Terms { return good }, []wire.Method{wire.MethodTap}, true},
		{"total does not add up", func() wire.Terms { t := good; t.Total++; return t }, []wire.Method{wire.MethodTap}, false},
		{"already expired", func() wire.Terms { t := good; t.ExpiresAt = t0.UnixMilli(); return t }, []wire.Method{wire.MethodTap}, false},
		{"no methods", func() wire.Terms { return good }, nil, false},
		{"unknown method", func() wire.Terms { return good }, []wire.Method{"wink"}, false},
		{"too many methods", func() wire.Terms { return good }, []wire.Method{"tap", "pin", "voice", "phone", "button", "tap"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := NewChallenge(tt.terms(), tt.methods, t0)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidChallenge) {
					t.Fatalf("error %v, want ErrInvalidChallenge", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _ := good.Hash()
			if ch.Hash != want || ch.IssuedAt != t0.UnixMilli() {
				t.Fatalf("challenge %+v, want hash %s issued at %d", ch, want, t0.UnixMilli())
			}
		})
	}
}

func TestNewNonce(t *testing.T) {
	a, err := NewNonce(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewNonce(nil)
	if len(a) != 22 || a == b {
		t.Fatalf("nonces %q %q: want two distinct 22-character values", a, b)
	}
	fixed, _ := NewNonce(bytes.NewReader(make([]byte, 16)))
	if fixed != "AAAAAAAAAAAAAAAAAAAAAA" {
		t.Fatalf("nonce from zero bytes: %q", fixed)
	}
	if _, err := NewNonce(bytes.NewReader(make([]byte, 3))); err == nil {
		t.Fatal("short reader: no error")
	}
}
