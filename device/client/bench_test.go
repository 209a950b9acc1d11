package client_test

import (
	"testing"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/wire"
)

// BenchmarkClientRoundTrip measures one utterance -> prompt round trip (with its ack)
// against the fake gateway over loopback, per transport (over MQTT through a real
// Mosquitto and the test proxy).
func BenchmarkClientRoundTrip(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			e := newEnv(b, tr, clienttest.Config{})
			key, en := enroll(b, e.g, "alice", "glasses")
			c := dial(b, e, key, en, nil)
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
		})
	}
}
