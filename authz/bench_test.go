package authz

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

// BenchmarkConfirmToMandate is the gateway's work between a device's confirm and the
// mandate handed to the agent: verify the confirmation, build and sign the claims,
// record them.
func BenchmarkConfirmToMandate(b *testing.B) {
	f := newFixture(b, nil)
	ch := newChallenge(b, testTerms(f.device.DeviceID(), "tx_1"))
	c := signedConfirm(f.device, "tx_1", ch.Hash, wire.DecisionApprove, wire.MethodTap)
	ctx, pub := context.Background(), f.device.Public()
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyConfirmation(ch, c, f.device.DeviceID(), testSession, pub, t0); err != nil {
			b.Fatal(err)
		}
		claims, err := ClaimsFor(ch, testUser, testAgent, testIssuer, t0, 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.keys.Sign(claims); err != nil {
			b.Fatal(err)
		}
		if err := f.mem.Update(ctx, func(txn kv.Txn) error { return f.ledger.Record(txn, claims) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedeem redeems one fresh mandate per iteration (JWS verification included).
func BenchmarkRedeem(b *testing.B) {
	f := newFixture(b, nil)
	reqs := make([]RedeemRequest, b.N)
	for i := range reqs {
		tok, c := f.issue(b, testAgent, time.Hour)
		reqs[i] = request(tok, c, fmt.Sprintf("key-%d", i))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := f.ledger.Redeem(ctx, reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
