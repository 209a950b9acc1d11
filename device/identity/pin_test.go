package identity_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

func TestPINScheme(t *testing.T) {
	set, err := identity.NewPIN("482913", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Validate(); err != nil {
		t.Fatalf("PINSet does not validate: %v", err)
	}
	pub, err := identity.DecodePublic(set.Pub)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains([]byte(set.Salt+set.Pub), []byte("482913")) {
		t.Fatal("the PIN travels in the PINSet")
	}
	c := &wire.Confirm{Tx: "tx_1", Hash: "h", Decision: wire.DecisionApprove, Method: wire.MethodPIN}
	sign := func(pin string) *wire.Confirm {
		k, err := identity.PINKey(pin, set.Salt)
		if err != nil {
			t.Fatal(err)
		}
		cc := *c
		identity.SignPIN(&cc, "dev_kiosk", k)
		return &cc
	}
	good := sign("482913")
	if err := identity.VerifyPIN(pub, "dev_kiosk", good); err != nil {
		t.Fatalf("right PIN: %v", err)
	}
	if err := identity.VerifyPIN(pub, "dev_kiosk", sign("482914")); !errors.Is(err, identity.ErrBadPINSig) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if err := identity.VerifyPIN(pub, "dev_other", good); !errors.Is(err, identity.ErrBadPINSig) {
		t.Fatalf("another device: %v", err)
	}
	other := *good
	other.Tx = "tx_2"
	if err := identity.VerifyPIN(pub, "dev_kiosk", &other); !errors.Is(err, identity.ErrBadPINSig) {
		t.Fatalf("replayed on another transaction: %v", err)
	}
	// Another salt gives another key: the same PIN of two users differs.
	set2, _ := identity.NewPIN("482913", nil)
	if set2.Pub == set.Pub {
		t.Fatal("two salts gave one key")
	}
	k1, _ := identity.PINKey("482913", set.Salt)
	if !k1.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatal("PINKey is not deterministic")
	}
}

func TestPINKeyRefuses(t *testing.T) {
	set, _ := identity.NewPIN("1234", nil)
	for _, pin := range []string{"", "123", "1234567890123", "12a4", "١٢٣٤"} {
		if _, err := identity.PINKey(pin, set.Salt); !errors.Is(err, identity.ErrBadPIN) {
			t.Errorf("PINKey(%q) = %v, want ErrBadPIN", pin, err)
		}
	}
	for _, salt := range []string{"", "c2hvcnQ", "not base64!"} {
		if _, err := identity.PINKey("1234", salt); err == nil {
			t.Errorf("PINKey with salt %q accepted", salt)
		}
	}
	bad := &wire.Confirm{Tx: "tx_1", Hash: "h", Decision: wire.DecisionApprove, Method: wire.MethodPIN, PINSig: "!!"}
	pub, _ := identity.DecodePublic(set.Pub)
	if err := identity.VerifyPIN(pub, "d", bad); !errors.Is(err, identity.ErrBadPINSig) {
		t.Fatalf("malformed PINSig: %v", err)
	}
}

func BenchmarkPINKey(b *testing.B) {
	set, _ := identity.NewPIN("1234", nil)
	for b.Loop() {
		if _, err := identity.PINKey("1234", set.Salt); err != nil {
			b.Fatal(err)
		}
	}
}
