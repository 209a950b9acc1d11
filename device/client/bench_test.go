package client_test

import (
	"testing"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/wire"
)

// BenchmarkClientRoundTrip measures one utterance -> prompt round trip (with its ack)
// against the fake gateway over loopback.
func BenchmarkClientRoundTrip(b *testing.B) {
	g := newGateway(b, clienttest.Config{})
	key, en := enroll(b, g, "alice", "glasses")
	c := dial(b, g, key, en, nil)
	ctx := ctxT(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Say(ctx, "buy two oat lattes"); err != nil {
			b.Fatal(err)
		}
		if ev := next(b, c); ev.Type != wire.TypeConfirmRequest {
			b.Fatalf("got %s", ev.Type)
		}
	}
}
