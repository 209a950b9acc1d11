package identity_test

import (
	"errors"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire/wiretest"
)

// TestProtocolDoc checks the identity examples of docs/protocol.md against the golden
// key: public key, device id, enrolment proof, and the example token.
func TestProtocolDoc(t *testing.T) {
	b, err := os.ReadFile("../../docs/protocol.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("docs/protocol.md not found")
	}
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	k := wiretest.DeviceKey()
	for what, want := range map[string]string{
		"public key":       identity.EncodePublic(k.Public()),
		"device id":        k.DeviceID(),
		"enrolment proof":  k.EnrollProof("K7QM-3XPD"),
		"enroll context":   identity.EnrollContext,
		"token type":       "earshot-device+jwt",
		"max token ttl":    "at most 600 (10 minutes",
		"default ttl":      "the reference uses 300",
		"clock skew":       "30\nseconds in the future",
		"max token length": "at most 2048 bytes",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/protocol.md does not show the %s %q", what, want)
		}
	}
	if identity.MaxTokenTTL != 10*time.Minute || identity.DefaultTokenTTL != 5*time.Minute || identity.ClockSkew != 30*time.Second {
		t.Errorf("token constants changed: update docs/protocol.md section 4")
	}
	tok := regexp.MustCompile(`(?m)^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`).FindString(doc)
	if tok == "" {
		t.Fatal("no example token in docs/protocol.md")
	}
	c, err := identity.ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := identity.VerifyToken(tok, k.Public(), "earshot:gw-1", time.Unix(c.IssuedAt, 0)); err != nil {
		t.Errorf("example token does not verify: %v", err)
	}
}
