package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway"
)

// exactly waits for a tx.result of tx in state want, skipping others.
func exactly(t *testing.T, c *client.Client, tx string, want wire.TxState) *wire.TxResult {
	t.Helper()
	for {
		r := next(t, c, wire.TypeTxResult).TxResult
		if r.Tx == tx && r.State == want {
			return r
		}
	}
}

type mandateState struct {
	State    string   `json:"state"`
	Receipts []string `json:"receipts"`
	Code     string   `json:"code"`
}

// The user cancels: before payment the mandate is revoked; after it, inside the
// window, the merchant confirms. Every step carries a signed receipt and lands in the
// audit trail, which verifies.
func TestCancelBeforeAndAfterPayment(t *testing.T) {
	g, ha := startHold(t, gateway.Config{CancelWindow: time.Minute})
	c := g.device("glasses", false)

	// Before the redemption: revoked, and the agent can no longer be paid.
	m := approve(t, c, ha)
	if err := c.Cancel(t.Context(), m.Tx, "cancel my order"); err != nil {
		t.Fatal(err)
	}
	if r := exactly(t, c, m.Tx, wire.TxCancelled); r.Receipt == "" {
		t.Fatalf("cancelled without a receipt: %+v", r)
	}
	body := map[string]any{"mandate": m.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}
	if st, out := redeem(t, g, ha.key, "after-cancel", body); st != 410 || out.Code != "revoked" {
		t.Fatalf("redeem of a revoked mandate: %d %+v", st, out)
	}

	// After the redemption, inside the window: cancelling until the merchant confirms.
	m = approve(t, c, ha)
	body["mandate"] = m.Token
	if st, _ := redeem(t, g, ha.key, "pay", body); st != 201 {
		t.Fatalf("redeem: %d", st)
	}
	paid := exactly(t, c, m.Tx, wire.TxRedeemed)
	if paid.SettleAfter <= time.Now().UnixMilli() || paid.Receipt == "" {
		t.Fatalf("redeemed: %+v", paid)
	}
	if err := c.Cancel(t.Context(), m.Tx, "wrong drink"); err != nil {
		t.Fatal(err)
	}
	exactly(t, c, m.Tx, wire.TxCancelling)
	var ms mandateState
	accept := func() int {
		return call(t, "POST", g.srv.URL()+"/v1/transactions/"+m.Tx+"/cancellation", ha.key, map[string]string{"Idempotency-Key": "accept-" + m.Tx},
			map[string]any{"accept": true}, &ms)
	}
	if st := accept(); st != 200 || ms.State != "cancelled" {
		t.Fatalf("accept: %d %+v", st, ms)
	}
	// A retry gets the same answer, not a conflict.
	ms = mandateState{}
	if st := accept(); st != 200 || ms.State != "cancelled" {
		t.Fatalf("accept again: %d %+v", st, ms)
	}
	if st := call(t, "POST", g.srv.URL()+"/v1/transactions/"+m.Tx+"/cancellation", ha.key, map[string]string{"Idempotency-Key": "accept-" + m.Tx},
		map[string]any{"accept": false, "reason": "changed my mind"}, &ms); st != 422 || ms.Code != "idempotency_key_reused" {
		t.Fatalf("the same key for another body: %d %+v", st, ms)
	}
	if st := call(t, "POST", g.srv.URL()+"/v1/transactions/"+m.Tx+"/cancellation", ha.key, nil,
		map[string]any{"accept": true}, &ms); st != 400 || ms.Code != "idempotency_key_required" {
		t.Fatalf("no key: %d %+v", st, ms)
	}
	exactly(t, c, m.Tx, wire.TxCancelled)
	if st := call(t, "GET", g.srv.URL()+"/v1/mandates/"+m.ID, ha.key, nil, nil, &ms); st != 200 ||
		ms.State != "cancelled" || len(ms.Receipts) != 4 {
		t.Fatalf("mandate: %d %+v", st, ms)
	}
	if st := call(t, "GET", g.srv.URL()+"/v1/mandates/"+m.ID, "esk_not-a-key", nil, nil, nil); st != 401 {
		t.Fatalf("mandate without a key: %d", st)
	}

	// Cancelling what cannot be cancelled says why.
	if err := c.Cancel(t.Context(), m.Tx, "again"); err != nil {
		t.Fatal(err)
	}
	if e := next(t, c, wire.TypeError).Error; e.Code != wire.CodeNotCancellable {
		t.Fatalf("second cancel: %+v", e)
	}

	// The audit trail holds every step and verifies.
	var rep struct {
		Records  int `json:"records"`
		Problems []struct {
			Kind string `json:"kind"`
		} `json:"problems"`
	}
	if st := call(t, "GET", g.srv.URL()+"/admin/v1/audit/verify", g.admin, nil, nil, &rep); st != 200 || len(rep.Problems) != 0 || rep.Records < 8 {
		t.Fatalf("audit verify: %d %+v", st, rep)
	}
	kinds := auditKinds(t, g)
	for _, want := range []string{"consent:approve", "mandate:issued", "revocation:revoked", "redemption:redeemed",
		"cancellation:cancelling", "cancellation:cancelled"} {
		if !kinds[want] {
			t.Errorf("the audit trail has no %s record: %v", want, kinds)
		}
	}
}

// auditKinds reads the audit export and returns the kind:state pairs in it.
func auditKinds(t *testing.T, g *gw) map[string]bool {
	t.Helper()
	req, _ := http.NewRequest("GET", g.srv.URL()+"/admin/v1/audit/export", nil)
	req.Header.Set("Authorization", "Bearer "+g.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	kinds := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var r struct{ Kind, State string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		kinds[r.Kind+":"+r.State] = true
	}
	return kinds
}

// A paid purchase settles by itself when its cancel window closes, and can then no
// longer be cancelled; the merchant cannot settle it earlier.
func TestSettlementAfterTheWindow(t *testing.T) {
	g, ha := startHold(t, gateway.Config{CancelWindow: 1500 * time.Millisecond})
	c := g.device("glasses", false)
	m := approve(t, c, ha)
	body := map[string]any{"mandate": m.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}
	if st, _ := redeem(t, g, ha.key, "pay", body); st != 201 {
		t.Fatalf("redeem: %d", st)
	}
	var ms mandateState
	if st := call(t, "POST", g.srv.URL()+"/v1/transactions/"+m.Tx+"/settle", ha.key, map[string]string{"Idempotency-Key": "settle-early"}, nil, &ms); st != 409 || ms.Code != "cancel_window_open" {
		t.Fatalf("settle inside the window: %d %+v", st, ms)
	}
	if r := exactly(t, c, m.Tx, wire.TxSettled); r.Receipt == "" {
		t.Fatalf("settled: %+v", r)
	}
	if err := c.Cancel(t.Context(), m.Tx, "too late"); err != nil {
		t.Fatal(err)
	}
	if e := next(t, c, wire.TypeError).Error; e.Code != wire.CodeNotCancellable {
		t.Fatalf("cancel after settlement: %+v", e)
	}
	if !auditKinds(t, g)["settlement:settled"] {
		t.Fatal("no settlement in the audit trail")
	}
}

// The agent revokes and redeems the same mandate at the same moment, over the real
// store: exactly one wins, every time.
func TestRevokeRedeemRaceOverTheStore(t *testing.T) {
	g, ha := startHold(t, gateway.Config{})
	c := g.device("glasses", false)
	wins := map[string]int{}
	for i := range 20 {
		m := approve(t, c, ha)
		body := map[string]any{"mandate": m.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}
		var (
			wg             sync.WaitGroup
			revSt, redSt   int
			revOut, redOut mandateState
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			revSt = post(g.srv.URL()+"/v1/transactions/"+m.Tx+"/revoke", ha.key, "revoke-"+m.Tx, map[string]any{"reason": "race"}, &revOut)
		}()
		go func() {
			defer wg.Done()
			redSt = post(g.srv.URL()+"/v1/redemptions", ha.key, fmt.Sprintf("race-%d", i), body, &redOut)
		}()
		wg.Wait()
		switch {
		case revSt == 200 && redSt == 410:
			wins["revoke"]++
		case redSt == 201 && revSt == 409:
			wins["redeem"]++
		default:
			t.Fatalf("iteration %d: revoke %d %+v, redeem %d %+v", i, revSt, revOut, redSt, redOut)
		}
	}
	t.Logf("wins %v", wins)
}

func post(url, key, idem string, body, out any) int {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(out)
	return resp.StatusCode
}
