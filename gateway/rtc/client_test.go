package rtc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/rtc"
	"github.com/earshot/earshot/gateway/session"
)

// TestReferenceClient: the reference device client over WHIP against this transport:
// hello, a purchase prompt with its speech, Close (DELETE), and the gateway's shutdown
// code at the client.
func TestReferenceClient(t *testing.T) {
	r := newRig(t, rtc.Config{})
	k := r.enroll()
	whip := "whip" + strings.TrimPrefix(r.url, "http")
	c, err := client.Dial(t.Context(), client.Config{URL: whip, Key: k, Audience: "earshot:test", PromptAudio: true,
		WebRTC: client.WebRTCSettings{Loopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	next := func(typ wire.Type) client.Event {
		t.Helper()
		for {
			select {
			case ev, ok := <-c.Events():
				if !ok {
					t.Fatalf("events closed before %s", typ)
				}
				if ev.Type == typ {
					return ev
				}
			case <-time.After(waitFor):
				t.Fatalf("no %s", typ)
			}
		}
	}
	next(wire.TypeHelloOK)
	id, err := c.Say(t.Context(), "a latte")
	if err != nil {
		t.Fatal(err)
	}
	in := <-r.agent.intents
	if _, err := r.core.RequestPurchase(t.Context(), "agent", session.PurchaseRequest{
		Tx: in.Tx, Merchant: wire.Merchant{ID: "m1", Name: "Cafe"}, Currency: "EUR", Total: 450,
		Items: []wire.Item{{SKU: "latte", Name: "Latte", Qty: 1, UnitAmount: 450}},
	}); err != nil {
		t.Fatal(err)
	}
	if req := next(wire.TypeConfirmRequest).ConfirmRequest; req.Ref != id {
		t.Errorf("prompt ref %q, want %q", req.Ref, id)
	}
	if p := next(wire.TypePromptAudio).PromptAudio; p.Tx != in.Tx || len(p.PCM) != 5600 {
		t.Errorf("prompt speech for %s with %d samples, want %s with 5600", p.Tx, len(p.PCM), in.Tx)
	}
	if err := r.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := next(client.EventDisconnected).Disconnected; d.Code != wire.CodeShutdown {
		t.Errorf("disconnected with %v, want shutdown", d.Code)
	}
	_ = c.Close()
	if n := testutil.ToFloat64(r.srv.Metrics().Peers); n != 0 {
		t.Errorf("%v peers after shutdown", n)
	}
}

// TestReferenceClientDelete: closing the client ends the WHIP session by DELETE.
func TestReferenceClientDelete(t *testing.T) {
	r := newRig(t, rtc.Config{})
	k := r.enroll()
	c, err := client.Dial(t.Context(), client.Config{URL: "whip" + strings.TrimPrefix(r.url, "http"), Key: k,
		Audience: "earshot:test", WebRTC: client.WebRTCSettings{Loopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	if testutil.ToFloat64(r.srv.Metrics().Peers) != 1 {
		t.Fatal("no peer")
	}
	_ = c.Close()
	eventually(t, "peer gone", func() bool { return testutil.ToFloat64(r.srv.Metrics().Peers) == 0 })
	if got := testutil.ToFloat64(r.srv.Metrics().Closed.WithLabelValues("unknown")); got != 1 {
		t.Errorf("closed{unknown} = %v, want 1 (deleted)", got)
	}
}
