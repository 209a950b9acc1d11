package identity_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire/wiretest"
)

// FuzzParseToken feeds strings to ParseToken and VerifyToken. Nothing may panic; every
// refusal is one of the token errors; whatever VerifyToken accepts, ParseToken reads
// the same way. Under plain go test only the seed corpus runs.
func FuzzParseToken(f *testing.F) {
	k := wiretest.DeviceKey()
	good := mint(f, k, tNow, time.Minute)
	parts := strings.Split(good, ".")
	for _, s := range []string{
		good,
		mint(f, k, tNow, identity.MaxTokenTTL),
		craft(f, k, goodHeader(k), goodClaims(k)),
		craft(f, k, map[string]any{"alg": "none", "typ": "earshot-device+jwt", "kid": k.DeviceID()}, goodClaims(k)),
		craft(f, k, map[string]any{"alg": "HS256", "typ": "JWT"}, goodClaims(k)),
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		"", ".", "..", "...", "a.b.c", "e30.e30.e30",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := identity.ParseToken(token)
		if err != nil {
			if !errors.Is(err, identity.ErrMalformedToken) {
				t.Fatalf("ParseToken error %v is not ErrMalformedToken", err)
			}
			if c != nil {
				t.Fatalf("claims with an error")
			}
		} else if c.Subject == "" || c.Nonce == "" || len(c.Nonce) > 64 {
			t.Fatalf("ParseToken accepted claims %+v", c)
		}
		v, verr := identity.VerifyToken(token, k.Public(), aud, tNow)
		switch {
		case verr == nil && err != nil:
			t.Fatalf("VerifyToken accepted what ParseToken refused: %v", err)
		case verr == nil && *v != *c:
			t.Fatalf("VerifyToken claims %+v, ParseToken %+v", *v, *c)
		case verr == nil && v.Subject != k.DeviceID():
			// Only the golden key signs here, and it only signs its own id... unless
			// a test crafted otherwise; the seeds do not.
			t.Fatalf("verified a token for %q with %q's key", v.Subject, k.DeviceID())
		case verr != nil && !errors.Is(verr, identity.ErrMalformedToken) &&
			!errors.Is(verr, identity.ErrTokenExpired) && !errors.Is(verr, identity.ErrTokenAudience):
			t.Fatalf("VerifyToken error %v is none of the token errors", verr)
		}
	})
}
