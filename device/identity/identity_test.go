package identity_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/device/wire/wiretest"
)

func newKey(t testing.TB) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyFromSeed(t *testing.T) {
	seed := wiretest.DeviceSeed()
	k1, err := identity.KeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := identity.KeyFromSeed(seed)
	if !k1.Public().Equal(k2.Public()) {
		t.Errorf("same seed, different keys")
	}
	if want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey); !k1.Public().Equal(want) {
		t.Errorf("KeyFromSeed is not the RFC 8032 key of the seed")
	}
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := identity.KeyFromSeed(make([]byte, n)); err == nil {
			t.Errorf("KeyFromSeed accepted a %d-byte seed", n)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	if k1.Public().Equal(k2.Public()) || k1.DeviceID() == k2.DeviceID() {
		t.Errorf("two generated keys are the same")
	}
	msg := []byte("hello")
	if !ed25519.Verify(k1.Public(), msg, k1.Sign(msg)) {
		t.Errorf("Sign does not verify")
	}
}

func TestPEMRoundTrip(t *testing.T) {
	k := newKey(t)
	p, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	blk, rest := pem.Decode(p)
	if blk == nil || blk.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("MarshalPEM wrote %q", p)
	}
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
		t.Errorf("not PKCS #8: %v", err)
	}
	back, err := identity.ParsePEM(p)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Public().Equal(k.Public()) || back.DeviceID() != k.DeviceID() {
		t.Errorf("round trip changed the key")
	}
	msg := []byte("m")
	if !bytes.Equal(back.Sign(msg), k.Sign(msg)) {
		t.Errorf("round trip changed the signatures")
	}
}

func TestParsePEMRefuses(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	good, err := newKey(t).MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a key")},
		{"other block type", bytes.Replace(good, []byte("PRIVATE KEY"), []byte("EC PRIVATE KEY"), 2)},
		{"public key block", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}})},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})},
		{"ECDSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := identity.ParsePEM(tt.in); err == nil {
				t.Errorf("ParsePEM accepted it: %v", k.DeviceID())
			}
		})
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "device.key")
	k1, err := identity.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %o, want 600", mode)
	}
	k2, err := identity.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Public().Equal(k2.Public()) {
		t.Errorf("second load made a new key")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if k3, err := identity.ParsePEM(b); err != nil || !k3.Public().Equal(k1.Public()) {
		t.Errorf("key file does not hold the key: %v", err)
	}

	t.Run("corrupt file is refused, not replaced", func(t *testing.T) {
		p := filepath.Join(dir, "corrupt.key")
		if err := os.WriteFile(p, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := identity.LoadOrCreateKey(p); err == nil {
			t.Errorf("corrupt key file accepted")
		}
		if b, _ := os.ReadFile(p); string(b) != "garbage" {
			t.Errorf("corrupt key file was overwritten")
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		if _, err := identity.LoadOrCreateKey(filepath.Join(dir, "nope", "device.key")); err == nil {
			t.Errorf("created a key in a missing directory")
		}
	})
	t.Run("path is a directory", func(t *testing.T) {
		if _, err := identity.LoadOrCreateKey(dir); err == nil {
			t.Errorf("accepted a directory")
		}
	})
}

func TestDeviceID(t *testing.T) {
	shape := regexp.MustCompile(`^dev_[a-z2-7]{20}$`)
	golden := wiretest.DeviceKey()
	if got, want := golden.DeviceID(), "dev_72asyextvngonlc5w2nm"; got != want {
		t.Errorf("golden DeviceID = %q, want %q", got, want)
	}
	seen := map[string]bool{}
	for range 50 {
		k := newKey(t)
		id := k.DeviceID()
		if !shape.MatchString(id) {
			t.Fatalf("DeviceID %q does not match %s", id, shape)
		}
		if id != identity.DeviceID(k.Public()) {
			t.Fatalf("Key.DeviceID and DeviceID differ")
		}
		if len(id) > wire.MaxIDBytes {
			t.Fatalf("DeviceID longer than MaxIDBytes")
		}
		// The documented derivation: "dev_" + the first 20 characters of the
		// lower-case, unpadded base32 (RFC 4648) of SHA-256(public key).
		sum := sha256.Sum256(k.Public())
		want := "dev_" + strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:20]
		if id != want {
			t.Fatalf("DeviceID = %q, derivation gives %q", id, want)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}

func TestPublicEncoding(t *testing.T) {
	k := wiretest.DeviceKey()
	s := identity.EncodePublic(k.Public())
	if len(s) != 43 || strings.ContainsAny(s, "+/=") {
		t.Errorf("EncodePublic = %q, want 43 base64url characters", s)
	}
	pub, err := identity.DecodePublic(s)
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("DecodePublic(EncodePublic) = %x, %v", pub, err)
	}
	for _, bad := range []string{
		"", "!!!", s + "=", s[:42], s + "AA",
		base64.StdEncoding.EncodeToString(k.Public()), // padded
		base64.RawURLEncoding.EncodeToString(make([]byte, 31)),
		base64.RawURLEncoding.EncodeToString(make([]byte, 33)),
	} {
		if _, err := identity.DecodePublic(bad); err == nil {
			t.Errorf("DecodePublic(%q) accepted", bad)
		}
	}
}

func TestEnrollProof(t *testing.T) {
	k, other := wiretest.DeviceKey(), newKey(t)
	const code = "K7QM-3XPD"
	proof := k.EnrollProof(code)
	if err := identity.VerifyEnrollProof(k.Public(), code, proof); err != nil {
		t.Fatalf("proof does not verify: %v", err)
	}
	if proof != k.EnrollProof(code) {
		t.Errorf("Ed25519 proofs should be deterministic")
	}
	tests := []struct {
		name  string
		pub   ed25519.PublicKey
		code  string
		proof string
	}{
		{"other code", k.Public(), "K7QM-3XPE", proof},
		{"code in another spelling", k.Public(), "k7qm-3xpd", proof},
		{"code without dash", k.Public(), "K7QM3XPD", proof},
		{"other key", other.Public(), code, proof},
		{"proof by another key", k.Public(), code, other.EnrollProof(code)},
		{"garbage proof", k.Public(), code, "not base64!"},
		{"empty proof", k.Public(), code, ""},
		{"truncated proof", k.Public(), code, proof[:40]},
		{"confirm signature as proof", k.Public(), code, confirmSig(k)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := identity.VerifyEnrollProof(tt.pub, tt.code, tt.proof); err == nil {
				t.Errorf("VerifyEnrollProof accepted")
			}
		})
	}
}

func confirmSig(k *identity.Key) string {
	c := wire.Confirm{Tx: "K7QM-3XPD", Hash: "h", Decision: wire.DecisionApprove, Method: wire.MethodTap}
	k.SignConfirm(&c)
	return c.Sig
}

func goldenConfirm(t *testing.T) wire.Confirm {
	t.Helper()
	e, err := wire.Decode(wiretest.Golden(wire.TypeConfirm))
	if err != nil {
		t.Fatal(err)
	}
	var c wire.Confirm
	if err := wire.DecodeBody(e, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSigningInput(t *testing.T) {
	c := goldenConfirm(t)
	want := "earshot/confirm/v1\ndev_72asyextvngonlc5w2nm\ntx_01JPB5Q3YF8V2K7M9N4R6T0W1X\n" +
		"aQmQk1s6Ku6mfv4JHmpldNz_ohwAYCbK8_FvzLZpAOE\napprove\ntap"
	if got := string(c.SigningInput(wiretest.DeviceKey().DeviceID())); got != want {
		t.Errorf("SigningInput =\n%q\nwant\n%q", got, want)
	}
}

func TestSignConfirm(t *testing.T) {
	k := wiretest.DeviceKey()
	dev := k.DeviceID()
	base := goldenConfirm(t)
	if err := identity.VerifyConfirm(k.Public(), dev, &base); err != nil {
		t.Fatalf("golden confirm: %v", err)
	}
	c := base
	c.Sig = ""
	k.SignConfirm(&c)
	if c.Sig != base.Sig {
		t.Errorf("SignConfirm is not deterministic: %s vs %s", c.Sig, base.Sig)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("signed confirm does not validate: %v", err)
	}

	other := newKey(t)
	tests := []struct {
		name   string
		pub    ed25519.PublicKey
		device string
		mut    func(c *wire.Confirm)
	}{
		{"tx", k.Public(), dev, func(c *wire.Confirm) { c.Tx = "tx_01JPB5Q3YF8V2K7M9N4R6T0W1Y" }},
		{"hash", k.Public(), dev, func(c *wire.Confirm) { c.Hash = "bQmQk1s6Ku6mfv4JHmpldNz_ohwAYCbK8_FvzLZpAOE" }},
		{"decision", k.Public(), dev, func(c *wire.Confirm) { c.Decision = wire.DecisionDecline }},
		{"method", k.Public(), dev, func(c *wire.Confirm) { c.Method = wire.MethodVoice }},
		{"device", k.Public(), other.DeviceID(), func(*wire.Confirm) {}},
		{"key", other.Public(), dev, func(*wire.Confirm) {}},
		{"signature by another key", k.Public(), dev, func(c *wire.Confirm) { other.SignConfirm(c) }},
		{"signature bit", k.Public(), dev, func(c *wire.Confirm) { c.Sig = flipChar(c.Sig, 10) }},
		{"signature truncated", k.Public(), dev, func(c *wire.Confirm) { c.Sig = c.Sig[:80] }},
		{"signature not base64url", k.Public(), dev, func(c *wire.Confirm) { c.Sig = strings.ReplaceAll(c.Sig, "_", "/") + "==" }},
		{"signature empty", k.Public(), dev, func(c *wire.Confirm) { c.Sig = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mut(&c)
			err := identity.VerifyConfirm(tt.pub, tt.device, &c)
			if !errors.Is(err, identity.ErrBadSignature) {
				t.Errorf("VerifyConfirm = %v, want ErrBadSignature", err)
			}
		})
	}
}

// TestSigningInputUnambiguous: two different confirms must not share a signing input.
func TestSigningInputUnambiguous(t *testing.T) {
	k := wiretest.DeviceKey()
	a := wire.Confirm{Tx: "tx_1\nx", Hash: "h", Decision: wire.DecisionApprove, Method: wire.MethodTap}
	b := wire.Confirm{Tx: "tx_1", Hash: "x\nh", Decision: wire.DecisionApprove, Method: wire.MethodTap}
	k.SignConfirm(&a)
	b.Sig = a.Sig
	if a.Validate() == nil && b.Validate() == nil && identity.VerifyConfirm(k.Public(), k.DeviceID(), &b) == nil {
		t.Errorf("a signature for tx %q verifies for tx %q", a.Tx, b.Tx)
	}
}

// flipChar replaces the base64url character at i with another one, changing the
// decoded bytes (i is far from the last character, whose low bits are padding).
func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}
