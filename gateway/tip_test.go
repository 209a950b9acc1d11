package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/wire"
)

// With the reference agent: a tip said at the end of an order ("two oat lattes and add
// a two dollar tip", a sentence of the speech grammar's <buy> ... <tiptail>). The order's
// prompt carries the tip cap; once the user approves and the order is paid, the agent
// starts the tip itself (no tx of its own, the order's user and device), the gateway
// grants it inside the cap without a second prompt, and the agent redeems it. On the
// glasses, a kiosk of the same user connected later must not get the tip: it goes to
// the order's device.
func TestTipSaidWithTheOrder(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		method wire.Method
	}{
		{"kiosk", wire.MethodTap},
		{"glasses", wire.MethodVoice},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			g, ra := startRef(t)
			dev := g.device(tc.kind, false)
			if tc.kind != "kiosk" {
				g.device("kiosk", false) // connected last: the gateway's default device
			}
			req := say(t, dev, "two oat lattes and add a two dollar tip")
			if c := req.Terms.Conditions; req.Terms.Kind != wire.KindOneOff || c == nil || c.TipCap != 500 ||
				!strings.Contains(req.Text, "A tip of up to USD 5.00 may be added afterwards.") {
				t.Fatalf("order prompt %+v: want a one-off order with Earshot Coffee's tip cap", req)
			}
			if err := dev.Confirm(t.Context(), req, wire.DecisionApprove, tc.method); err != nil {
				t.Fatal(err)
			}
			if r := exactly(t, dev, req.Tx, wire.TxRedeemed); r.Amount != req.Terms.Total {
				t.Fatalf("order paid %+v, want %d", r, req.Terms.Total)
			}
			mandated, paid := tipResults(t, dev, req.Tx)
			if mandated.Tx == req.Tx+"-tip" || !strings.Contains(mandated.Reason, "Tip of USD 2.00 added, within the USD 5.00 you allowed.") {
				t.Fatalf("tip granted %+v", mandated)
			}
			if paid.Amount != 200 || paid.Currency != "USD" {
				t.Fatalf("tip paid %+v", paid)
			}
			// The agent counts the tip's redemption once the gateway's answer is back,
			// a moment after the device heard of it.
			deadline := time.Now().Add(5 * time.Second)
			for ra.Stats().Redemptions != 2 {
				if time.Now().After(deadline) {
					t.Fatalf("agent stats %+v", ra.Stats())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if st := ra.Stats(); st.TipsRequested != 1 || st.Failures != 0 {
				t.Fatalf("agent stats %+v", st)
			}
		})
	}
}

// tipResults waits on c, after the order was paid, for the results of the tip on it:
// mandated (without a prompt: a confirm.request fails the test) and then redeemed.
func tipResults(t *testing.T, c *client.Client, order string) (mandated, redeemed *wire.TxResult) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatal("client stopped while waiting for the tip")
			}
			switch {
			case ev.Type == wire.TypeConfirmRequest:
				t.Fatalf("a second prompt for the tip: %q", ev.ConfirmRequest.Text)
			case ev.Type != wire.TypeTxResult || ev.TxResult.Tx == order:
			case ev.TxResult.State == wire.TxMandated:
				mandated = ev.TxResult
			case ev.TxResult.State == wire.TxRedeemed:
				if mandated == nil || mandated.Tx != ev.TxResult.Tx {
					t.Fatalf("tip redeemed %+v before it was mandated (%+v)", ev.TxResult, mandated)
				}
				return mandated, ev.TxResult
			case ev.TxResult.State.Final():
				t.Fatalf("tip ended %+v", ev.TxResult)
			}
		case <-timeout:
			t.Fatalf("no tip paid within 15s (mandated: %+v)", mandated)
		}
	}
}
