package identity_test

import (
	"testing"
	"time"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire/wiretest"
)

func BenchmarkVerifyToken(b *testing.B) {
	k := wiretest.DeviceKey()
	tok := mint(b, k, tNow, time.Minute)
	pub := k.Public()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := identity.VerifyToken(tok, pub, aud, tNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToken(b *testing.B) {
	k := wiretest.DeviceKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Token(aud, tNow, 0); err != nil {
			b.Fatal(err)
		}
	}
}
