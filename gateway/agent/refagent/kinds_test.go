package refagent_test

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/refagent"
)

// clock is an injected clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Millisecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (h *harness) intentFrom(t *testing.T, tx, device, text string) {
	t.Helper()
	if err := h.a.OnIntent(t.Context(), agent.Intent{Tx: tx, Device: device, User: "usr_1", Text: text, At: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	h.wait(t, 1)
}

// issueAs registers fm with the fake gateway and returns the mandate the gateway would
// hand over for the purchase request it got for fm.tx: its kind, conditions and items.
func (h *harness) issueAs(t *testing.T, fm fakeMandate, expires time.Time) agent.Mandate {
	t.Helper()
	_, purchases, _ := h.g.snapshot()
	pb, ok := purchases[fm.tx]
	if !ok {
		t.Fatalf("no purchase request for %s", fm.tx)
	}
	fm.kind = pb.Kind
	if c := pb.Conditions; c != nil && pb.Kind == wire.KindRecurring {
		fm.periodCap, fm.times = c.PeriodCap, c.Times
	}
	m := h.issue(fm.id, fm.tx, fm.payee, fm.currency, fm.cap)
	h.g.mu.Lock()
	h.g.mandates[m.Token] = fm
	h.g.mu.Unlock()
	m.Kind, m.Conditions, m.Items, m.ExpiresAt = pb.Kind, pb.Conditions, pb.Items, expires
	return m
}

// eventually waits until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAgentSetPrice(t *testing.T) {
	h := start(t, newFakeGateway(t, apiKey), refagent.Config{})
	for _, tt := range []struct {
		sku    string
		amount wire.Amount
		err    error
	}{
		{"no-such-sku", 100, refagent.ErrUnknownItem},
		{"latte", 0, refagent.ErrBadPrice},
		{"latte", -5, refagent.ErrBadPrice},
		{"latte", wire.MaxAmount + 1, refagent.ErrBadPrice},
		{"latte", 50, refagent.ErrBadPrice}, // a small latte would cost nothing
		{"latte", wire.MaxAmount, refagent.ErrBadPrice},
	} {
		if err := h.a.SetPrice(tt.sku, tt.amount); !errors.Is(err, tt.err) {
			t.Errorf("SetPrice(%s, %d) = %v, want %v", tt.sku, tt.amount, err, tt.err)
		}
	}
	if p, ok := h.a.Price("latte"); !ok || p != 500 {
		t.Errorf("Price(latte) = %d, %v after refused changes", p, ok)
	}
	if _, ok := h.a.Price("no-such-sku"); ok {
		t.Error("Price of an unknown sku")
	}
	if err := h.a.SetPrice("latte", 420); err != nil {
		t.Fatal(err)
	}
	if p, _ := h.a.Price("latte"); p != 420 {
		t.Errorf("Price(latte) = %d, want 420", p)
	}
	// New orders are proposed at the new price, the sizes keeping their difference.
	h.intent(t, "tx_1", "a large latte and a latte")
	_, purchases, _ := h.g.snapshot()
	if got := purchases["tx_1"]; got.Total != 470+420 || got.Items[0].UnitAmount != 470 {
		t.Errorf("purchase request at the new price: %+v", got)
	}
	// SetPrice and Price from many goroutines (run with -race).
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				if err := h.a.SetPrice("espresso", wire.Amount(200+i+j)); err != nil {
					t.Error(err)
					return
				}
				h.a.Price("espresso")
			}
		})
	}
	wg.Wait()
}

func TestAgentPriceTarget(t *testing.T) {
	clk := newClock()
	g := newFakeGateway(t, apiKey)
	h := start(t, g, refagent.Config{Now: clk.Now})

	// At 89.00 "under 90" is met already: bought now, at today's price.
	h.intent(t, "tx_now", "buy the black leggings when they drop under 90 dollars")
	_, purchases, _ := g.snapshot()
	if got := purchases["tx_now"]; got.Kind != wire.KindOneOff || got.Total != 8900 || got.Conditions != nil {
		t.Errorf("price met already: %+v, want a one-off at 8900", got)
	}

	if err := h.a.SetPrice("leggings-black", 9500); err != nil {
		t.Fatal(err)
	}
	h.intent(t, "tx_1", "buy the black leggings when they drop under 90 dollars")
	_, purchases, _ = g.snapshot()
	want := purchaseBody{
		Tx: "tx_1", Merchant: wire.Merchant{ID: "earshot-outfitters", Name: "Earshot Outfitters"},
		Items: []wire.Item{{SKU: "leggings-black", Name: "Black leggings", Qty: 1, UnitAmount: 8999}},
		Total: 8999, Currency: "USD", Kind: wire.KindPriceTarget,
		Conditions: &wire.Conditions{Until: clk.Now().Add(refagent.DefaultTargetValidity).UnixMilli()},
	}
	got := purchases["tx_1"]
	if !strings.Contains(got.Summary, "at most USD 89.99") {
		t.Errorf("summary %q does not say the limit", got.Summary)
	}
	got.Summary = ""
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("purchase request =\n%+v\nwant\n%+v", got, want)
	}

	// The mandate is kept while the price is above the cap.
	m := h.issueAs(t, fakeMandate{id: "mnd_1", tx: "tx_1", payee: "earshot-outfitters", currency: "USD", cap: 8999},
		clk.Now().Add(24*time.Hour))
	h.mandate(t, m)
	calls, _, _ := g.snapshot()
	if red := callsTo(calls, "/v1/redemptions"); len(red) != 0 {
		t.Fatalf("redeemed before the price came down: %+v", red)
	}
	if st := h.a.Stats(); st.TargetsWatched != 1 || st.TargetsFired != 0 || refagent.Watched(h.a) != 1 {
		t.Fatalf("stats %+v, watched %d", st, refagent.Watched(h.a))
	}
	if err := h.a.SetPrice("leggings-black", 9000); err != nil { // not under 90: no job
		t.Fatal(err)
	}
	// The price comes down: the current total is redeemed, not the cap.
	if err := h.a.SetPrice("leggings-black", 8700); err != nil {
		t.Fatal(err)
	}
	h.wait(t, 1)
	if got := g.redeemedAmount("redeem-mnd_1"); got != 8700 {
		t.Errorf("redeemed %d, want the current price 8700", got)
	}
	if st := h.a.Stats(); st.TargetsFired != 1 || st.Redemptions != 1 || st.Failures != 0 || refagent.Watched(h.a) != 0 {
		t.Errorf("stats %+v, watched %d", st, refagent.Watched(h.a))
	}
	// Handed over again (at least once): nothing more is redeemed.
	h.mandate(t, m)
	calls, _, _ = g.snapshot()
	if red := callsTo(calls, "/v1/redemptions"); len(red) != 1 {
		t.Errorf("redemptions after a re-delivery: %+v", red)
	}
	if st := h.a.Stats(); st.TargetsWatched != 1 || st.TargetsFired != 1 {
		t.Errorf("stats after a re-delivery %+v", st)
	}
}

// A target whose price is met before its mandate arrives is redeemed at once; one the
// agent never proposed (it restarted) is watched from the mandate's terms; a second
// delivery while it is watched changes nothing.
func TestAgentPriceTargetRedelivered(t *testing.T) {
	clk := newClock()
	g := newFakeGateway(t, apiKey)
	h := start(t, g, refagent.Config{Now: clk.Now})
	if err := h.a.SetPrice("leggings-black", 9500); err != nil {
		t.Fatal(err)
	}
	h.intent(t, "tx_1", "leggings when they drop under 90")
	m := h.issueAs(t, fakeMandate{id: "mnd_1", tx: "tx_1", payee: "earshot-outfitters", currency: "USD", cap: 8999},
		clk.Now().Add(time.Hour))

	// Another agent (a restart) gets the mandate, with the price met already.
	h2 := start(t, g, refagent.Config{Now: clk.Now})
	if err := h2.a.SetPrice("leggings-black", 8800); err != nil {
		t.Fatal(err)
	}
	h2.mandate(t, m)
	if got := g.redeemedAmount("redeem-mnd_1"); got != 8800 {
		t.Errorf("redeemed %d, want 8800", got)
	}
	// The first agent still watches it; when its price is met it presents the same
	// key with the same body: the gateway replays, nothing is paid twice.
	h.mandate(t, m)
	h.mandate(t, m)
	if st := h.a.Stats(); st.TargetsWatched != 1 {
		t.Errorf("watched twice: %+v", st)
	}
	if err := h.a.SetPrice("leggings-black", 8800); err != nil {
		t.Fatal(err)
	}
	h.wait(t, 1)
	calls, _, _ := g.snapshot()
	red := callsTo(calls, "/v1/redemptions")
	if len(red) != 2 || red[1].status != http.StatusOK {
		t.Errorf("redemptions %+v, want a 201 then a 200 replay", red)
	}
	if len(g.paymentsOf("mnd_1")) != 1 {
		t.Errorf("paid %v", g.paymentsOf("mnd_1"))
	}
}

func TestAgentPriceTargetSplit(t *testing.T) {
	h := start(t, newFakeGateway(t, apiKey), refagent.Config{})
	if err := h.a.SetPrice("socks-running", 1500); err != nil {
		t.Fatal(err)
	}
	h.intent(t, "tx_odd", "two pairs of socks when they drop under 25 dollars")      // 24.99 over 2
	h.intent(t, "tx_even", "two pairs of socks when they drop to 25 dollars")        // 25.00 over 2
	h.intent(t, "tx_two", "a pair of socks and a water bottle when they drop to 20") // two lines
	_, purchases, rejects := h.g.snapshot()
	if r := rejects["tx_odd"]; !strings.Contains(r.Reason, "USD 24.99 doesn't split evenly over 2") {
		t.Errorf("tx_odd rejected with %q", r.Reason)
	}
	if r := rejects["tx_two"]; !strings.Contains(r.Reason, "one item at a time") {
		t.Errorf("tx_two rejected with %q", r.Reason)
	}
	if p := purchases["tx_even"]; p.Total != 2500 || len(p.Items) != 1 || p.Items[0].UnitAmount != 1250 || p.Items[0].Qty != 2 {
		t.Errorf("tx_even: %+v", p)
	}
}

func TestAgentPriceTargetExpires(t *testing.T) {
	clk := newClock()
	g := newFakeGateway(t, apiKey)
	h := start(t, g, refagent.Config{Now: clk.Now, WatchEvery: 2 * time.Millisecond})
	if err := h.a.SetPrice("leggings-black", 9500); err != nil {
		t.Fatal(err)
	}
	h.intent(t, "tx_1", "leggings when they drop under 90 for one day")
	_, purchases, _ := g.snapshot()
	if c := purchases["tx_1"].Conditions; c == nil || c.Until != clk.Now().Add(24*time.Hour).UnixMilli() {
		t.Fatalf("conditions %+v, want until in a day", c)
	}
	m := h.issueAs(t, fakeMandate{id: "mnd_1", tx: "tx_1", payee: "earshot-outfitters", currency: "USD", cap: 8999},
		clk.Now().Add(48*time.Hour)) // the earlier of the mandate's expiry and until counts
	h.mandate(t, m)
	clk.advance(24 * time.Hour)
	eventually(t, "the target expires", func() bool { return h.a.Stats().TargetsExpired == 1 })
	if n := refagent.Watched(h.a); n != 0 {
		t.Fatalf("%d targets watched after expiry", n)
	}
	if err := h.a.SetPrice("leggings-black", 8000); err != nil {
		t.Fatal(err)
	}
	calls, _, _ := g.snapshot()
	if red := callsTo(calls, "/v1/redemptions"); len(red) != 0 {
		t.Errorf("an expired target was redeemed: %+v", red)
	}
}

// A redemption that fails transiently keeps the target; the next check presents the
// same body again, so that a first attempt that did reach the gateway is replayed.
func TestAgentPriceTargetRetry(t *testing.T) {
	clk := newClock()
	g := newFakeGateway(t, apiKey)
	h := start(t, g, refagent.Config{Now: clk.Now, Retries: -1})
	if err := h.a.SetPrice("leggings-black", 9500); err != nil {
		t.Fatal(err)
	}
	h.intent(t, "tx_1", "leggings when they drop under 90")
	h.mandate(t, h.issueAs(t, fakeMandate{id: "mnd_1", tx: "tx_1", payee: "earshot-outfitters", currency: "USD", cap: 8999},
		clk.Now().Add(time.Hour)))
	g.failNext("/v1/redemptions", 1)
	if err := h.a.SetPrice("leggings-black", 8700); err != nil {
		t.Fatal(err)
	}
	h.wait(t, 1)
	if st := h.a.Stats(); st.Failures != 1 || st.TargetsFired != 0 || refagent.Watched(h.a) != 1 {
		t.Fatalf("after a 503: stats %+v, watched %d", st, refagent.Watched(h.a))
	}
	if err := h.a.SetPrice("leggings-black", 8600); err != nil {
		t.Fatal(err)
	}
	h.wait(t, 1)
	if got := g.redeemedAmount("redeem-mnd_1"); got != 8700 {
		t.Errorf("redeemed %d, want 8700, the amount first presented", got)
	}
	if st := h.a.Stats(); st.TargetsFired != 1 || st.Redemptions != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestAgentPriceTargetBounded(t *testing.T) {
	clk := newClock()
	h := start(t, newFakeGateway(t, apiKey), refagent.Config{Now: clk.Now, MaxTracked: 1})
	if err := h.a.SetPrice("leggings-black", 9500); err != nil {
		t.Fatal(err)
	}
	h.intent(t, "tx_1", "leggings when they drop under 90")
	h.mandate(t, h.issueAs(t, fakeMandate{id: "mnd_1", tx: "tx_1", payee: "earshot-outfitters", currency: "USD", cap: 8999},
		clk.Now().Add(time.Hour)))
	h.intent(t, "tx_2", "leggings when they drop under 80")
	m2 := h.issueAs(t, fakeMandate{id: "mnd_2", tx: "tx_2", payee: "earshot-outfitters", currency: "USD", cap: 7999},
		clk.Now().Add(time.Hour))
	if err := h.a.OnMandate(t.Context(), m2); !errors.Is(err, refagent.ErrBusy) {
		t.Errorf("a second target with MaxTracked 1: %v, want ErrBusy", err)
	}
	if st := h.a.Stats(); st.QueueDrops != 1 || st.TargetsWatched != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestAgentSubscription(t *testing.T) {
	clk := newClock()
	g := newFakeGateway(t, apiKey)
	h := start(t, g, refagent.Config{Now: clk.Now})
	h.intent(t, "tx_1", "two oat lattes every week for 3 weeks")
	_, purchases, _ := g.snapshot()
	p := purchases["tx_1"]
	wantCond := &wire.Conditions{Every: wire.PeriodWeek, Times: 3, PeriodCap: 1100,
		Until: clk.Now().Add(21 * 24 * time.Hour).UnixMilli()}
	if p.Kind != wire.KindRecurring || p.Total != 1100 || !reflect.DeepEqual(p.Conditions, wantCond) {
		t.Fatalf("purchase request %+v (conditions %+v), want recurring %+v", p, p.Conditions, wantCond)
	}
	if err := h.a.Charge(t.Context(), "tx_1"); !errors.Is(err, refagent.ErrNoSubscription) {
		t.Errorf("Charge before the mandate = %v, want ErrNoSubscription", err)
	}

	m := h.issueAs(t, fakeMandate{id: "mnd_1", tx: "tx_1", payee: "earshot-coffee", currency: "USD", cap: 1100},
		clk.Now().Add(21*24*time.Hour))
	h.mandate(t, m) // the first payment, at once
	h.mandate(t, m) // handed over again: no second payment
	charge := func(wantCode string) {
		t.Helper()
		err := h.a.Charge(t.Context(), "tx_1")
		if got := refagent.Code(err); got != wantCode || (wantCode == "") != (err == nil) {
			t.Errorf("Charge = %v (code %q), want code %q", err, got, wantCode)
		}
	}
	charge("over_period_cap") // the same week
	g.nextPeriod()
	charge("")
	g.nextPeriod()
	charge("")
	g.nextPeriod()
	charge("exhausted")
	if got := g.paymentsOf("mnd_1"); !reflect.DeepEqual(got, []wire.Amount{1100, 1100, 1100}) {
		t.Errorf("payments %v", got)
	}
	calls, _, _ := g.snapshot()
	var keys []string
	for _, c := range callsTo(calls, "/v1/redemptions") {
		keys = append(keys, c.key)
	}
	// A refused key is final: the next payment has a key of its own.
	want := []string{"redeem-mnd_1:1", "redeem-mnd_1:2", "redeem-mnd_1:3", "redeem-mnd_1:4", "redeem-mnd_1:5"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if st := h.a.Stats(); st.SubscriptionPayments != 3 || st.Redemptions != 3 || st.Failures != 2 {
		t.Errorf("stats %+v", st)
	}
	if refagent.Code(nil) != "" || refagent.Code(errors.New("x")) != "" {
		t.Error("Code of a non-refusal")
	}
}

// A payment that fails transiently is tried again with the same key: a first attempt
// that reached the gateway is replayed, never paid twice.
func TestAgentSubscriptionRetry(t *testing.T) {
	clk := newClock()
	g := newFakeGateway(t, apiKey)
	h := start(t, g, refagent.Config{Now: clk.Now, Retries: -1})
	h.intent(t, "tx_1", "a croissant every day")
	_, purchases, _ := g.snapshot()
	if c := purchases["tx_1"].Conditions; c == nil || c.Times != 0 || c.Until != clk.Now().Add(refagent.DefaultTargetValidity).UnixMilli() {
		t.Fatalf("conditions %+v", c)
	}
	m := h.issueAs(t, fakeMandate{id: "mnd_1", tx: "tx_1", payee: "earshot-coffee", currency: "USD", cap: 350}, clk.Now().Add(time.Hour))
	g.failNext("/v1/redemptions", 1)
	h.mandate(t, m)
	if st := h.a.Stats(); st.SubscriptionPayments != 0 || st.Failures != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := h.a.Charge(t.Context(), "tx_1"); err != nil { // the first payment, again
		t.Fatal(err)
	}
	g.nextPeriod()
	if err := h.a.Charge(t.Context(), "tx_1"); err != nil {
		t.Fatal(err)
	}
	calls, _, _ := g.snapshot()
	var keys []string
	for _, c := range callsTo(calls, "/v1/redemptions") {
		keys = append(keys, c.key)
	}
	if want := []string{"redeem-mnd_1:1", "redeem-mnd_1:1", "redeem-mnd_1:2"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if st := h.a.Stats(); st.SubscriptionPayments != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestAgentTips(t *testing.T) {
	g := newFakeGateway(t, apiKey)
	h := start(t, g, refagent.Config{})

	// No order paid yet on this device: nothing to tip.
	h.intentFrom(t, "tx_0", "dev_1", "add a two dollar tip")
	_, _, rejects := g.snapshot()
	if r := rejects["tx_0"]; !strings.Contains(r.Reason, "no recent order to tip") {
		t.Errorf("tip without an order rejected with %q", r.Reason)
	}

	h.intentFrom(t, "tx_1", "dev_1", "a latte")
	h.mandate(t, h.issue("mnd_1", "tx_1", "earshot-coffee", "USD", 500))
	// Another device's order is not this one's to tip.
	h.intentFrom(t, "tx_x", "dev_2", "tip two dollars")

	h.intentFrom(t, "tx_2", "dev_1", "could you add a two dollar tip")
	_, purchases, rejects := g.snapshot()
	if r := rejects["tx_x"]; !strings.Contains(r.Reason, "no recent order") {
		t.Errorf("tip from another device rejected with %q", r.Reason)
	}
	want := purchaseBody{
		Tx: "tx_2", Merchant: wire.Merchant{ID: "earshot-coffee", Name: "Earshot Coffee"},
		Items: []wire.Item{{SKU: "tip", Name: "Tip", Qty: 1, UnitAmount: 200}},
		Total: 200, Currency: "USD", Kind: wire.KindTip, Conditions: &wire.Conditions{Parent: "tx_1"},
		Summary: "Tip of USD 2.00 on your Earshot Coffee order",
	}
	if got := purchases["tx_2"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("tip request =\n%+v\nwant\n%+v", got, want)
	}
	// Inside the order's tip cap the gateway grants the mandate without a prompt; it
	// arrives as any other and is redeemed once.
	m := h.issue("mnd_2", "tx_2", "earshot-coffee", "USD", 200)
	m.Kind, m.Conditions = wire.KindTip, &wire.Conditions{Parent: "tx_1"}
	h.mandate(t, m)
	if got := g.redeemedAmount("redeem-mnd_2"); got != 200 {
		t.Errorf("tip redeemed %d", got)
	}
	if st := h.a.Stats(); st.TipsRequested != 1 || st.Redemptions != 2 || st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}

	// A tip said with the order: the order's tip cap covers it, and it is asked for
	// once the order is paid.
	h.intentFrom(t, "tx_3", "dev_1", "two pairs of socks and add a ten dollar tip")
	_, purchases, _ = g.snapshot()
	if c := purchases["tx_3"].Conditions; c == nil || c.TipCap != 1000 || !strings.Contains(purchases["tx_3"].Summary, "then a tip of USD 10.00") {
		t.Fatalf("order with a tip: %+v", purchases["tx_3"])
	}
	// The tip is a purchase the agent starts itself: no tx of its own in the request,
	// the order's user and device, Idempotency-Key tip-<order tx>; the gateway names it.
	order := h.issue("mnd_3", "tx_3", "earshot-outfitters", "USD", 2400)
	h.mandate(t, order)
	tipTx := g.startedTx("tip-tx_3")
	_, purchases, _ = g.snapshot()
	tip, ok := purchases[tipTx]
	if !ok || tip.Kind != wire.KindTip || tip.Total != 1000 || tip.Conditions.Parent != "tx_3" ||
		tip.Merchant.ID != "earshot-outfitters" || tip.User != "usr_1" || tip.Device != "dev_1" {
		t.Fatalf("tip after the order (tx %q): %+v", tipTx, tip)
	}
	if st := h.a.Stats(); st.TipsRequested != 2 {
		t.Errorf("stats %+v", st)
	}
	// The order's mandate handed over again (delivery is at least once): no second tip.
	h.mandate(t, order)
	calls, _, _ := g.snapshot()
	if n := len(callsTo(calls, "/v1/purchase-requests")); n != 4 { // tx_1, tx_2, tx_3 and its tip
		t.Errorf("%d purchase requests after the order's mandate came twice, want 4", n)
	}
	// The tip's mandate is recognised under the tx the gateway picked, and redeemed.
	tm := h.issue("mnd_4", tipTx, "earshot-outfitters", "USD", 1000)
	tm.Kind, tm.Conditions = wire.KindTip, &wire.Conditions{Parent: "tx_3"}
	h.mandate(t, tm)
	if got := g.redeemedAmount("redeem-mnd_4"); got != 1000 {
		t.Errorf("tip redeemed %d", got)
	}
	if st := h.a.Stats(); st.TipsRequested != 2 || st.Redemptions != 4 || st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}

	// A cancelled order is not tipped.
	if err := h.a.OnOutcome(t.Context(), agent.Outcome{Tx: "tx_3", State: wire.TxCancelling}); err != nil {
		t.Fatal(err)
	}
	h.wait(t, 1)
	h.intentFrom(t, "tx_4", "dev_1", "add a one dollar tip")
	_, _, rejects = g.snapshot()
	if r := rejects["tx_4"]; !strings.Contains(r.Reason, "no recent order") {
		t.Errorf("tip after a cancellation rejected with %q", r.Reason)
	}
}

// A tip said with the order, under the ways its request can go: the gateway's answer
// lost (the same Idempotency-Key replays it: one tip), its mandate handed over before
// the answer (redeemed from the mandate's terms, once), and the request failing for
// good (asked again, with the same key, when the order's mandate comes again).
func TestAgentTipSaidWithTheOrder(t *testing.T) {
	order := func(t *testing.T, h *harness, tx, mandate string) agent.Mandate {
		t.Helper()
		h.intentFrom(t, tx, "dev_1", "two oat lattes and add a two dollar tip")
		_, purchases, _ := h.g.snapshot()
		pb := purchases[tx]
		if c := pb.Conditions; c == nil || c.TipCap != 500 { // Earshot Coffee's cap covers the tip
			t.Fatalf("order %+v", pb)
		}
		return h.issue(mandate, tx, "earshot-coffee", "USD", pb.Total)
	}
	tipKeys := func(g *fakeGateway, key string) int {
		calls, _, _ := g.snapshot()
		n := 0
		for _, c := range callsTo(calls, "/v1/purchase-requests") {
			if c.key == key {
				n++
			}
		}
		return n
	}

	t.Run("answer lost", func(t *testing.T) {
		g := newFakeGateway(t, apiKey)
		h := start(t, g, refagent.Config{})
		m := order(t, h, "tx_1", "mnd_1")
		g.mu.Lock()
		g.lose = 1
		g.mu.Unlock()
		h.mandate(t, m)
		if n := tipKeys(g, "tip-tx_1"); n != 2 {
			t.Errorf("%d tip requests, want 2 (the lost answer, then its replay)", n)
		}
		_, purchases, _ := g.snapshot()
		if len(purchases) != 2 || purchases[g.startedTx("tip-tx_1")].Total != 200 {
			t.Errorf("purchases %+v, want the order and one tip", purchases)
		}
		if st := h.a.Stats(); st.TipsRequested != 1 || st.Failures != 0 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("mandate before the answer", func(t *testing.T) {
		g := newFakeGateway(t, apiKey)
		h := start(t, g, refagent.Config{})
		m := order(t, h, "tx_1", "mnd_1")
		hold := make(chan struct{})
		g.mu.Lock()
		g.hold = hold
		g.mu.Unlock()
		if err := h.a.OnMandate(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		var tipTx string
		eventually(t, "the tip's request", func() bool { tipTx = g.startedTx("tip-tx_1"); return tipTx != "" })
		tm := h.issue("mnd_2", tipTx, "earshot-coffee", "USD", 200)
		tm.Kind, tm.Conditions, tm.Items = wire.KindTip, &wire.Conditions{Parent: "tx_1"},
			[]wire.Item{{SKU: "tip", Name: "Tip", Qty: 1, UnitAmount: 200}}
		h.mandate(t, tm) // the order's job still waits for the answer
		if got := g.redeemedAmount("redeem-mnd_2"); got != 200 {
			t.Errorf("tip redeemed %d before its request was answered", got)
		}
		close(hold)
		h.wait(t, 1)
		// The answer then names the tx already redeemed: the mandate handed over
		// again is a replay, not a second payment.
		h.mandate(t, tm)
		if st := h.a.Stats(); st.TipsRequested != 1 || st.Redemptions != 2 || st.Failures != 0 {
			t.Errorf("stats %+v", st)
		}
		calls, _, _ := g.snapshot()
		if red := callsTo(calls, "/v1/redemptions"); len(red) != 3 || red[2].status != http.StatusOK {
			t.Errorf("redemptions %+v, want the order, the tip and the tip's replay", red)
		}
	})

	t.Run("request failed", func(t *testing.T) {
		g := newFakeGateway(t, apiKey)
		h := start(t, g, refagent.Config{Retries: 1})
		m := order(t, h, "tx_1", "mnd_1")
		g.failNext("/v1/purchase-requests", 2)
		h.mandate(t, m)
		if st := h.a.Stats(); st.TipsRequested != 0 || st.Failures != 1 || st.Redemptions != 1 {
			t.Errorf("stats %+v", st)
		}
		h.mandate(t, m) // handed over again: the tip is asked for again, with the same key
		h.mandate(t, m) // and again: answered already, nothing to ask
		if n := tipKeys(g, "tip-tx_1"); n != 3 {
			t.Errorf("%d tip requests, want 2 failed and 1 answered", n)
		}
		if st := h.a.Stats(); st.TipsRequested != 1 || st.Redemptions != 1 || g.startedTx("tip-tx_1") == "" {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("no user", func(t *testing.T) {
		g := newFakeGateway(t, apiKey)
		h := start(t, g, refagent.Config{})
		if err := h.a.OnIntent(t.Context(), agent.Intent{Tx: "tx_1", Device: "dev_1", Text: "a latte and add a one dollar tip"}); err != nil {
			t.Fatal(err)
		}
		h.wait(t, 1)
		m := h.issue("mnd_1", "tx_1", "earshot-coffee", "USD", 500)
		m.User = ""
		h.mandate(t, m)
		if st := h.a.Stats(); st.TipsRequested != 0 || st.Failures != 1 || st.Redemptions != 1 {
			t.Errorf("stats %+v", st)
		}
		if n := tipKeys(g, "tip-tx_1"); n != 0 {
			t.Errorf("%d tip requests without a user", n)
		}
	})
}

func TestNewKindsConfig(t *testing.T) {
	for _, cfg := range []refagent.Config{
		{TargetValidity: refagent.MaxValidity + time.Hour},
		{TargetValidity: -time.Hour},
		{WatchEvery: -time.Second},
	} {
		cfg.BaseURL, cfg.APIKey = "http://127.0.0.1:8080", apiKey
		if _, err := refagent.New(cfg); !errors.Is(err, refagent.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}
