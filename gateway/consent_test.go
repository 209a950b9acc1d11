package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/risk"
	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/refagent"
)

// scriptAgent answers every intent with what propose returns (a purchase request body
// without tx), keeps the mandates, and leaves redemption to the test, as a merchant's
// own agent would do it.
type scriptAgent struct {
	base, key string
	mandates  chan agent.Mandate
	answers   chan txView

	mu      sync.Mutex
	propose func(in agent.Intent) map[string]any
}

type txView struct {
	Tx     string `json:"tx"`
	State  string `json:"state"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
	Status int    `json:"-"`
}

func (a *scriptAgent) ID() string                                     { return "script" }
func (a *scriptAgent) Run(ctx context.Context) error                  { <-ctx.Done(); return nil }
func (a *scriptAgent) OnOutcome(context.Context, agent.Outcome) error { return nil }
func (a *scriptAgent) OnMandate(_ context.Context, m agent.Mandate) error {
	a.mandates <- m
	return nil
}

func (a *scriptAgent) OnIntent(_ context.Context, in agent.Intent) error {
	a.mu.Lock()
	propose := a.propose
	a.mu.Unlock()
	body := propose(in)
	body["tx"] = in.Tx
	go func() {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", a.base+"/v1/purchase-requests", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+a.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			a.answers <- txView{Tx: in.Tx, Status: -1, Reason: err.Error()}
			return
		}
		defer resp.Body.Close()
		var v txView
		raw, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(raw, &v)
		v.Status = resp.StatusCode
		if v.Tx == "" {
			v.Tx, v.Reason = in.Tx, string(raw)
		}
		a.answers <- v
	}()
	return nil
}

func (a *scriptAgent) set(propose func(in agent.Intent) map[string]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.propose = propose
}

// answer waits for the gateway's answer to the agent's next purchase request.
func (a *scriptAgent) answer(t *testing.T) txView {
	t.Helper()
	select {
	case v := <-a.answers:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's purchase request got no answer")
	}
	return txView{}
}

func (a *scriptAgent) mandate(t *testing.T) agent.Mandate {
	t.Helper()
	select {
	case m := <-a.mandates:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no mandate")
	}
	return agent.Mandate{}
}

// testPolicy is the default ladder without the new-device rule (every test device is
// new) and with room for many purchases.
const testPolicy = `version: 1
rules:
  tx_cap: {USD: 50000}
  daily_cap: {USD: 60000}
  velocity: {max: 100, window: 10m, action: refuse}
  said_mismatch: {action: step_up}
  step_up:
    glasses:
      - methods: [tap, voice, button]
      - methods: [phone]
        above: {USD: 2000}
    kiosk:
      - methods: [tap, button]
      - methods: [pin]
        above: {USD: 2000}
    phone:
      - methods: [tap]
`

// testRisk is testPolicy, parsed.
func testRisk(t *testing.T) *risk.Policy {
	t.Helper()
	p, err := risk.Parse([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startScript(t *testing.T, cfg gateway.Config) (*gw, *scriptAgent) {
	t.Helper()
	if cfg.Risk == nil {
		cfg.Risk = testRisk(t)
	}
	sa := &scriptAgent{mandates: make(chan agent.Mandate, 16), answers: make(chan txView, 16)}
	cfg.NewAgent = func(base, key string) (gateway.Agent, error) {
		sa.base, sa.key = base, key
		return sa, nil
	}
	return start(t, cfg), sa
}

// order is a purchase request body for qty of one item.
func order(merchant, sku, name string, qty int, unit wire.Amount) map[string]any {
	id := map[string]string{"earshot-coffee": "Earshot Coffee", "earshot-outfitters": "Earshot Outfitters"}[merchant]
	return map[string]any{
		"merchant": map[string]string{"id": merchant, "name": id},
		"items":    []map[string]any{{"sku": sku, "name": name, "qty": qty, "unit_amount": unit}},
		"total":    unit * wire.Amount(qty), "currency": "USD", "kind": "one_off",
	}
}

func jacket(agent.Intent) map[string]any {
	return order("earshot-outfitters", "jacket", "Rain jacket", 1, 12000)
}

// say says text and returns the prompt that answers it.
func say(t *testing.T, c *client.Client, text string) *wire.ConfirmRequest {
	t.Helper()
	if _, err := c.Say(t.Context(), text); err != nil {
		t.Fatal(err)
	}
	return next(t, c, wire.TypeConfirmRequest).ConfirmRequest
}

// refusedWith waits for the error event answering a confirm.
func refusedWith(t *testing.T, c *client.Client, want wire.Code) *wire.Error {
	t.Helper()
	e := next(t, c, wire.TypeError).Error
	if e.Code != want {
		t.Fatalf("error %s (%s), want %s", e.Code, e.Message, want)
	}
	return e
}

// A large glasses purchase waits for the user's phone: the prompt says so with a
// binding code, the glasses cannot approve it themselves, and the phone's approval
// issues the mandate.
func TestStepUpToThePhone(t *testing.T) {
	g, sa := startScript(t, gateway.Config{})
	sa.set(jacket)
	glasses := g.device("glasses", false)

	// No phone paired yet: refused before any prompt, saying what to do.
	if _, err := glasses.Say(t.Context(), "buy a rain jacket"); err != nil {
		t.Fatal(err)
	}
	if v := sa.answer(t); v.State != "rejected" || v.Code != "no_phone" {
		t.Fatalf("without a phone: %+v", v)
	}
	if r := result(t, glasses, wire.TxRejected); r.Code != wire.CodeNoPhone {
		t.Fatalf("tx.result %+v, want rejected no_phone", r)
	}

	phone := g.device("phone", false)
	req := say(t, glasses, "buy a rain jacket")
	if v := sa.answer(t); v.State != "prompted" {
		t.Fatalf("with a phone: %+v", v)
	}
	code := wire.BindingCode(req.Hash)
	if !slices.Equal(req.Methods, []wire.Method{wire.MethodPhone}) || req.Binding != code ||
		!strings.Contains(req.Text, "Approve on your phone: code "+code) {
		t.Fatalf("glasses prompt %+v", req)
	}

	// A stepped-up consent without the step: firmware that approves by voice anyway.
	forged := *req
	forged.Methods = []wire.Method{wire.MethodVoice}
	if err := glasses.Confirm(t.Context(), &forged, wire.DecisionApprove, wire.MethodVoice); err != nil {
		t.Fatal(err)
	}
	refusedWith(t, glasses, wire.CodeMethodNotAllowed)

	// The phone has the same terms and the same code, and approves.
	ask := next(t, phone, wire.TypeConfirmRequest).ConfirmRequest
	if ask.Tx != req.Tx || ask.Hash != req.Hash || ask.Binding != code || !strings.Contains(ask.Text, code) {
		t.Fatalf("phone prompt %+v, glasses %+v", ask, req)
	}
	if err := phone.Approve(t.Context(), ask, wire.DecisionApprove); err != nil {
		t.Fatal(err)
	}
	if r := result(t, glasses, wire.TxMandated); r.State != wire.TxMandated || r.Tx != req.Tx {
		t.Fatalf("glasses: %+v", r)
	}
	if r := next(t, phone, wire.TypeTxResult).TxResult; r.Tx != req.Tx || r.State != wire.TxMandated {
		t.Fatalf("phone: %+v", r)
	}
	if m := sa.mandate(t); m.Tx != req.Tx || m.AmountCap != 12000 {
		t.Fatalf("mandate %+v", m)
	}
	kinds := auditKinds(t, g)
	if !kinds["refusal:no_phone"] || !kinds["consent:approve"] {
		t.Fatalf("audit: %v", kinds)
	}
}

// A kiosk purchase above the step-up amount needs the user's PIN: set on the phone,
// never sent; three wrong PINs close the transaction.
func TestPINOnTheKiosk(t *testing.T) {
	g, sa := startScript(t, gateway.Config{})
	sa.set(func(agent.Intent) map[string]any { return order("earshot-coffee", "beans", "Coffee beans", 2, 1500) })
	kiosk := g.device("kiosk", false)

	if _, err := kiosk.Say(t.Context(), "two bags of beans"); err != nil {
		t.Fatal(err)
	}
	if v := sa.answer(t); v.State != "rejected" || v.Code != "no_pin" {
		t.Fatalf("without a PIN: %+v", v)
	}

	phone := g.device("phone", false)
	ref, err := phone.SetPIN(t.Context(), "2468")
	if err != nil {
		t.Fatal(err)
	}
	if ok := next(t, phone, wire.TypePINSetOK).PINSetOK; ok.Ref != ref {
		t.Fatalf("pin.set.ok %+v, want ref %s", ok, ref)
	}

	req := say(t, kiosk, "two bags of beans")
	sa.answer(t)
	if !slices.Equal(req.Methods, []wire.Method{wire.MethodPIN}) || req.PINSalt == "" || !strings.Contains(req.Text, "PIN") {
		t.Fatalf("kiosk prompt %+v", req)
	}
	// A tap where a PIN is asked for is refused.
	forged := *req
	forged.Methods = []wire.Method{wire.MethodTap}
	if err := kiosk.Confirm(t.Context(), &forged, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	refusedWith(t, kiosk, wire.CodeMethodNotAllowed)

	for i, left := range []string{"2 tries left", "1 try left"} {
		if err := kiosk.ConfirmPIN(t.Context(), req, wire.DecisionApprove, "1357"); err != nil {
			t.Fatal(err)
		}
		if e := refusedWith(t, kiosk, wire.CodeBadPIN); !strings.Contains(e.Message, left) {
			t.Fatalf("wrong PIN %d: %q, want %q", i+1, e.Message, left)
		}
	}
	if err := kiosk.ConfirmPIN(t.Context(), req, wire.DecisionApprove, "1357"); err != nil {
		t.Fatal(err)
	}
	// The transaction's end is pushed first, then the answer to the confirm.
	if r := result(t, kiosk, wire.TxRejected); r.Tx != req.Tx || r.Code != wire.CodePINLocked {
		t.Fatalf("locked: %+v", r)
	}
	refusedWith(t, kiosk, wire.CodePINLocked)
	// Locked means locked: the right PIN no longer helps on that transaction.
	if err := kiosk.ConfirmPIN(t.Context(), req, wire.DecisionApprove, "2468"); err != nil {
		t.Fatal(err)
	}
	refusedWith(t, kiosk, wire.CodeAlreadyDecided)

	// A new purchase with the right PIN goes through.
	req = say(t, kiosk, "two bags of beans")
	sa.answer(t)
	if err := kiosk.ConfirmPIN(t.Context(), req, wire.DecisionApprove, "2468"); err != nil {
		t.Fatal(err)
	}
	if r := result(t, kiosk, wire.TxMandated); r.State != wire.TxMandated {
		t.Fatalf("right PIN: %+v", r)
	}
	if m := sa.mandate(t); m.Tx != req.Tx {
		t.Fatalf("mandate %+v", m)
	}
	// Every wrong PIN is in the audit trail (as a refusal; never the PIN).
	if kinds := auditKinds(t, g); !kinds["refusal:bad_pin"] || !kinds["refusal:no_pin"] {
		t.Fatalf("audit: %v", kinds)
	}
}

// The risk rules refuse what is over a cap, saying why, and step up a proposal that
// costs more than the user said; every decision is counted.
func TestRiskRules(t *testing.T) {
	g, sa := startScript(t, gateway.Config{})
	glasses := g.device("glasses", false)
	g.device("phone", false)

	sa.set(func(agent.Intent) map[string]any { return order("earshot-outfitters", "tent", "Tent", 1, 60000) })
	if _, err := glasses.Say(t.Context(), "buy a tent"); err != nil {
		t.Fatal(err)
	}
	v := sa.answer(t)
	if v.State != "rejected" || v.Code != "refused" || !strings.Contains(v.Reason, "USD 500.00") {
		t.Fatalf("over the cap: %+v", v)
	}
	if r := result(t, glasses, wire.TxRejected); r.Code != wire.CodeRefused || r.Reason != v.Reason {
		t.Fatalf("tx.result %+v", r)
	}

	// Said "under 10", proposed 15.00: under the step-up amount, but stepped up.
	sa.set(func(agent.Intent) map[string]any {
		return order("earshot-outfitters", "water-bottle", "Water bottle", 1, 1500)
	})
	req := say(t, glasses, "buy a water bottle when it drops under ten dollars")
	sa.answer(t)
	if !slices.Equal(req.Methods, []wire.Method{wire.MethodPhone}) {
		t.Fatalf("said 10, proposed 15: methods %v, want the phone", req.Methods)
	}
	// Said nothing about price: tap or voice.
	req = say(t, glasses, "buy a water bottle")
	sa.answer(t)
	if !slices.Equal(req.Methods, []wire.Method{wire.MethodTap, wire.MethodVoice, wire.MethodButton}) {
		t.Fatalf("plain: methods %v", req.Methods)
	}

	metrics := scrape(t, g)
	for _, want := range []string{`earshot_risk_decisions_total{outcome="refuse"} 1`, `earshot_risk_decisions_total{outcome="step_up"} 1`,
		`earshot_risk_reasons_total{reason="over_tx_cap"} 1`, `earshot_risk_reasons_total{reason="said_mismatch_amount"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func scrape(t *testing.T, g *gw) string {
	t.Helper()
	resp, err := http.Get(g.srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A subscription: every payment counts against the period cap, and two payments at
// the same moment that together exceed it leave exactly one paid.
func TestSubscriptionPeriodCap(t *testing.T) {
	g, sa := startScript(t, gateway.Config{})
	sa.set(func(agent.Intent) map[string]any {
		b := order("earshot-coffee", "beans", "Coffee beans", 1, 1200)
		b["kind"] = "recurring"
		b["conditions"] = map[string]any{"every": "week", "times": 4, "period_cap": 2000,
			"until": time.Now().Add(30 * 24 * time.Hour).UnixMilli()}
		return b
	})
	glasses := g.device("glasses", false)
	req := say(t, glasses, "buy coffee beans every week")
	sa.answer(t)
	if !strings.Contains(req.Text, "every week") || !strings.Contains(req.Text, "4 times") {
		t.Fatalf("prompt %q", req.Text)
	}
	if err := glasses.Confirm(t.Context(), req, wire.DecisionApprove, wire.MethodVoice); err != nil {
		t.Fatal(err)
	}
	m := sa.mandate(t)
	if m.Kind != wire.KindRecurring || m.Conditions == nil || m.Conditions.PeriodCap != 2000 {
		t.Fatalf("mandate %+v", m)
	}
	pay := func(idem string, amount wire.Amount) (int, redemption) {
		return redeem(t, g, sa.key, idem, map[string]any{"mandate": m.Token, "amount": amount, "currency": "USD", "payee": "earshot-coffee"})
	}
	if st, out := pay("p1", 1200); st != 201 {
		t.Fatalf("first payment: %d %+v", st, out)
	}
	r := exactly(t, glasses, m.Tx, wire.TxMandated)
	for r.Amount == 0 { // the approval's own tx.result
		r = exactly(t, glasses, m.Tx, wire.TxMandated)
	}
	if r.Amount != 1200 || !strings.Contains(r.Reason, "Payment 1 of 4") {
		t.Fatalf("device after the first payment: %+v", r)
	}
	// 800 is left in this week: 500 and 500 at once, one of them must be refused.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	outs := make([]redemption, 2)
	for i := range 2 {
		wg.Go(func() { codes[i], outs[i] = pay("race-"+string(rune('a'+i)), 500) })
	}
	wg.Wait()
	slices.Sort(codes)
	if codes[0] != 201 || codes[1] != 422 {
		t.Fatalf("two payments at once: %v %+v", codes, outs)
	}
	if outs[0].Code != "over_period_cap" && outs[1].Code != "over_period_cap" {
		t.Fatalf("refusal: %+v", outs)
	}
}

// A tip after a kiosk order: inside the tip cap agreed on the order's prompt it needs
// no new prompt; beyond what is left of the cap it gets a small prompt of its own.
func TestTipAfterAKioskOrder(t *testing.T) {
	g, sa := startScript(t, gateway.Config{})
	kiosk := g.device("kiosk", false)
	var parent string
	sa.set(func(agent.Intent) map[string]any {
		b := order("earshot-coffee", "latte-oat", "Oat latte", 2, 550)
		b["conditions"] = map[string]any{"tip_cap": 300}
		return b
	})
	req := say(t, kiosk, "two oat lattes")
	sa.answer(t)
	if !strings.Contains(req.Text, "A tip of up to USD 3.00 may be added") {
		t.Fatalf("order prompt %q", req.Text)
	}
	if err := kiosk.Confirm(t.Context(), req, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	m := sa.mandate(t)
	parent = m.Tx
	if st, _ := redeem(t, g, sa.key, "order", map[string]any{"mandate": m.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}); st != 201 {
		t.Fatalf("order redemption: %d", st)
	}
	exactly(t, kiosk, parent, wire.TxRedeemed)

	tip := func(amount wire.Amount) func(agent.Intent) map[string]any {
		return func(agent.Intent) map[string]any {
			b := order("earshot-coffee", "tip", "Tip", 1, amount)
			b["kind"] = "tip"
			b["conditions"] = map[string]any{"parent": parent}
			return b
		}
	}
	sa.set(tip(200))
	if _, err := kiosk.Say(t.Context(), "add a two dollar tip"); err != nil {
		t.Fatal(err)
	}
	if v := sa.answer(t); v.State != "mandated" {
		t.Fatalf("tip inside the cap: %+v", v)
	}
	tm := sa.mandate(t)
	if tm.Kind != wire.KindTip || tm.AmountCap != 200 {
		t.Fatalf("tip mandate %+v", tm)
	}
	if r := exactly(t, kiosk, tm.Tx, wire.TxMandated); !strings.Contains(r.Reason, "Tip of USD 2.00") {
		t.Fatalf("tip result %+v", r)
	}
	if st, out := redeem(t, g, sa.key, "tip", map[string]any{"mandate": tm.Token, "amount": 200, "currency": "USD", "payee": "earshot-coffee"}); st != 201 {
		t.Fatalf("tip redemption: %d %+v", st, out)
	}
	exactly(t, kiosk, tm.Tx, wire.TxRedeemed)

	// 1.00 of the cap is left: a second 2.00 tip asks the user.
	sa.set(tip(200))
	req = say(t, kiosk, "add another two dollar tip")
	if v := sa.answer(t); v.State != "prompted" {
		t.Fatalf("tip over the cap: %+v", v)
	}
	if req.Terms.Kind != wire.KindTip || req.Terms.Total != 200 || !strings.HasPrefix(req.Text, "Tip Earshot Coffee USD 2.00") {
		t.Fatalf("tip prompt %+v", req)
	}
	if err := kiosk.Confirm(t.Context(), req, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	if tm := sa.mandate(t); tm.Kind != wire.KindTip || tm.Tx != req.Tx {
		t.Fatalf("second tip mandate %+v", tm)
	}
}

// A price target is redeemed only at or under the consented price: the amount charged
// is checked, not the agent's word.
func TestPriceTargetCap(t *testing.T) {
	g, sa := startScript(t, gateway.Config{})
	sa.set(func(agent.Intent) map[string]any {
		b := order("earshot-outfitters", "leggings-black", "Black leggings", 1, 8999)
		b["kind"] = "price_target"
		b["conditions"] = map[string]any{"until": time.Now().Add(7 * 24 * time.Hour).UnixMilli()}
		return b
	})
	glasses := g.device("glasses", false)
	phone := g.device("phone", false)
	req := say(t, glasses, "buy the black leggings when they drop under ninety dollars")
	sa.answer(t)
	if !strings.Contains(req.Text, "when the price is at most USD 89.99") {
		t.Fatalf("prompt %q", req.Text)
	}
	// 89.99 is over the step-up amount: the phone approves.
	if err := phone.Approve(t.Context(), next(t, phone, wire.TypeConfirmRequest).ConfirmRequest, wire.DecisionApprove); err != nil {
		t.Fatal(err)
	}
	m := sa.mandate(t)
	if m.Kind != wire.KindPriceTarget || time.Until(m.ExpiresAt) < 6*24*time.Hour {
		t.Fatalf("mandate %+v: a price target lives until its date", m)
	}
	body := map[string]any{"mandate": m.Token, "amount": 9500, "currency": "USD", "payee": "earshot-outfitters"}
	if st, out := redeem(t, g, sa.key, "too-dear", body); st != 422 || out.Code != "over_cap" {
		t.Fatalf("over the target: %d %+v", st, out)
	}
	body["amount"] = 8400
	if st, out := redeem(t, g, sa.key, "met", body); st != 201 {
		t.Fatalf("at the target: %d %+v", st, out)
	}
	if r := exactly(t, glasses, m.Tx, wire.TxRedeemed); r.Amount != 8400 || !strings.Contains(r.Reason, "price target was met") {
		t.Fatalf("device told %+v", r)
	}
}

// "Cancel my order", said, cancels the device's latest order: before the payment the
// mandate is revoked, and the answer names the utterance.
func TestCancelMyOrderBySaying(t *testing.T) {
	g, sa := startScript(t, gateway.Config{})
	sa.set(func(agent.Intent) map[string]any { return order("earshot-coffee", "latte-oat", "Oat latte", 2, 550) })
	glasses := g.device("glasses", false)

	// Nothing to cancel yet.
	ref, err := glasses.Say(t.Context(), "cancel my order")
	if err != nil {
		t.Fatal(err)
	}
	if e := refusedWith(t, glasses, wire.CodeNotCancellable); e.Ref != ref {
		t.Fatalf("error %+v, want ref %s", e, ref)
	}

	req := say(t, glasses, "buy two oat lattes")
	sa.answer(t)
	if err := glasses.Confirm(t.Context(), req, wire.DecisionApprove, wire.MethodVoice); err != nil {
		t.Fatal(err)
	}
	m := sa.mandate(t)
	if ref, err = glasses.Say(t.Context(), "cancel my order"); err != nil {
		t.Fatal(err)
	}
	for {
		r := next(t, glasses, wire.TypeTxResult).TxResult
		if r.Ref == ref {
			if r.Tx != m.Tx || r.State != wire.TxCancelled {
				t.Fatalf("answer to the cancel: %+v", r)
			}
			break
		}
	}
	body := map[string]any{"mandate": m.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}
	if st, out := redeem(t, g, sa.key, "after", body); st != 410 || out.Code != "revoked" {
		t.Fatalf("redeem after the cancel: %d %+v", st, out)
	}
}

// startRef runs the gateway with the reference agent and the test risk rules.
func startRef(t *testing.T) (*gw, *refagent.Agent) {
	t.Helper()
	var ra *refagent.Agent
	g := start(t, gateway.Config{Risk: testRisk(t), NewAgent: func(base, key string) (gateway.Agent, error) {
		var err error
		ra, err = refagent.New(refagent.Config{BaseURL: base, APIKey: key, WatchEvery: 50 * time.Millisecond})
		return ra, err
	}})
	return g, ra
}

// With the reference agent: the user sets a price target by voice, the price drops,
// the agent buys at the new price and the device is told.
func TestPriceTargetFiresAfterAPriceDrop(t *testing.T) {
	g, ra := startRef(t)
	glasses := g.device("glasses", false)
	phone := g.device("phone", false)
	req := say(t, glasses, "buy the black leggings when they drop under eighty five dollars")
	if req.Terms.Kind != wire.KindPriceTarget || req.Terms.Total != 8499 || req.Terms.Conditions == nil {
		t.Fatalf("terms %+v", req.Terms)
	}
	if err := phone.Approve(t.Context(), next(t, phone, wire.TypeConfirmRequest).ConfirmRequest, wire.DecisionApprove); err != nil {
		t.Fatal(err)
	}
	exactly(t, glasses, req.Tx, wire.TxMandated)
	if err := ra.SetPrice("leggings-black", 8600); err != nil { // still too dear
		t.Fatal(err)
	}
	noResult(t, glasses, 300*time.Millisecond)
	// The price drop, through the admin API as an operator or the simulator makes it.
	url := g.srv.URL() + "/admin/v1/catalog/prices/"
	if st := call(t, "PUT", url+"no-such-sku", g.admin, nil, map[string]any{"amount": 100}, nil); st != 422 {
		t.Fatalf("unknown sku: %d", st)
	}
	if st := call(t, "PUT", url+"leggings-black", g.admin, nil, map[string]any{"amount": 7900}, nil); st != 200 {
		t.Fatalf("price drop: %d", st)
	}
	r := exactly(t, glasses, req.Tx, wire.TxRedeemed)
	if r.Amount != 7900 || !strings.Contains(r.Reason, "price target was met") {
		t.Fatalf("fired: %+v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ra.Stats().TargetsFired != 1 { // counted after the redemption answered
		if time.Now().After(deadline) {
			t.Fatalf("agent stats %+v", ra.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noResult checks that no tx.result arrives for a while.
func noResult(t *testing.T, c *client.Client, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-c.Events():
			if ev.Type == wire.TypeTxResult {
				t.Fatalf("unexpected tx.result %+v", ev.TxResult)
			}
		case <-timeout:
			return
		}
	}
}

// With the reference agent: a kiosk order, then "add a two dollar tip" inside the tip
// cap the order's prompt showed: paid without a second prompt.
func TestKioskTipWithTheReferenceAgent(t *testing.T) {
	g, ra := startRef(t)
	kiosk := g.device("kiosk", false)
	req := say(t, kiosk, "two oat lattes please")
	if req.Terms.Conditions == nil || req.Terms.Conditions.TipCap != 500 {
		t.Fatalf("order terms %+v", req.Terms)
	}
	if err := kiosk.Confirm(t.Context(), req, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	exactly(t, kiosk, req.Tx, wire.TxRedeemed)
	// The device hears of the payment in the redemption's own transaction, a moment
	// before the agent has the answer and knows the order to tip.
	deadline := time.Now().Add(5 * time.Second)
	for ra.Stats().Redemptions != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("agent stats %+v", ra.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := kiosk.Say(t.Context(), "add a two dollar tip"); err != nil {
		t.Fatal(err)
	}
	for {
		ev := next(t, kiosk, wire.TypeTxResult)
		if ev.TxResult.Tx == req.Tx {
			continue
		}
		if ev.TxResult.State == wire.TxRedeemed {
			if ev.TxResult.Amount != 200 {
				t.Fatalf("tip %+v", ev.TxResult)
			}
			break
		}
		if ev.TxResult.State.Final() {
			t.Fatalf("tip ended %+v", ev.TxResult)
		}
	}
}

// Modify: the agent proposes a changed order that supersedes the approved one; once
// the user approves, the old mandate can no longer be redeemed and its transaction
// ends cancelled, all in one step.
func TestModifiedOrderSupersedes(t *testing.T) {
	g, sa := startScript(t, gateway.Config{})
	sa.set(func(agent.Intent) map[string]any { return order("earshot-coffee", "latte-oat", "Oat latte", 2, 550) })
	glasses := g.device("glasses", false)
	req := say(t, glasses, "buy two oat lattes")
	sa.answer(t)
	if err := glasses.Confirm(t.Context(), req, wire.DecisionApprove, wire.MethodVoice); err != nil {
		t.Fatal(err)
	}
	old := sa.mandate(t)

	sa.set(func(agent.Intent) map[string]any {
		b := order("earshot-coffee", "latte-oat", "Oat latte", 3, 550)
		b["supersedes"] = old.Tx
		return b
	})
	req = say(t, glasses, "make that three oat lattes")
	sa.answer(t)
	if !strings.HasPrefix(req.Text, "Change your order: Pay Earshot Coffee USD 16.50") {
		t.Fatalf("prompt %q", req.Text)
	}
	if err := glasses.Confirm(t.Context(), req, wire.DecisionApprove, wire.MethodVoice); err != nil {
		t.Fatal(err)
	}
	if r := exactly(t, glasses, old.Tx, wire.TxCancelled); !strings.Contains(r.Reason, "Replaced") {
		t.Fatalf("old order %+v", r)
	}
	m := sa.mandate(t)
	body := map[string]any{"mandate": old.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}
	if st, out := redeem(t, g, sa.key, "old", body); st != 410 || out.Code != "superseded" {
		t.Fatalf("redeem the old mandate: %d %+v", st, out)
	}
	body["mandate"], body["amount"] = m.Token, 1650
	if st, out := redeem(t, g, sa.key, "new", body); st != 201 {
		t.Fatalf("redeem the new mandate: %d %+v", st, out)
	}
	// A paid order cannot be modified: it is cancelled instead.
	sa.set(func(agent.Intent) map[string]any {
		b := order("earshot-coffee", "latte-oat", "Oat latte", 1, 550)
		b["supersedes"] = m.Tx
		return b
	})
	if _, err := glasses.Say(t.Context(), "make that one oat latte"); err != nil {
		t.Fatal(err)
	}
	if v := sa.answer(t); v.Status != http.StatusConflict {
		t.Fatalf("modify a paid order: %+v", v)
	}
}

// The daily cap reads what the user's mandates add up to in the store: a third order
// over the cap is refused, and an order cancelled before payment gives its room back.
func TestDailyCapOverTheStore(t *testing.T) {
	p, err := risk.Parse([]byte(strings.Replace(testPolicy, "daily_cap: {USD: 60000}", "daily_cap: {USD: 2500}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	g, sa := startScript(t, gateway.Config{Risk: p})
	sa.set(func(agent.Intent) map[string]any { return order("earshot-coffee", "latte-oat", "Oat latte", 2, 550) })
	glasses := g.device("glasses", false)
	var first agent.Mandate
	for i := range 2 {
		req := say(t, glasses, "buy two oat lattes")
		sa.answer(t)
		if err := glasses.Confirm(t.Context(), req, wire.DecisionApprove, wire.MethodVoice); err != nil {
			t.Fatal(err)
		}
		if m := sa.mandate(t); i == 0 {
			first = m
		}
	}
	if _, err := glasses.Say(t.Context(), "buy two oat lattes"); err != nil {
		t.Fatal(err)
	}
	if v := sa.answer(t); v.State != "rejected" || v.Code != "refused" || !strings.Contains(v.Reason, "USD 25.00") {
		t.Fatalf("third order over the daily cap: %+v", v)
	}
	if err := glasses.Cancel(t.Context(), first.Tx, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	exactly(t, glasses, first.Tx, wire.TxCancelled)
	say(t, glasses, "buy two oat lattes")
	if v := sa.answer(t); v.State != "prompted" {
		t.Fatalf("after a cancellation: %+v", v)
	}
}
