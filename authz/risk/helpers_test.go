package risk

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeHistory answers with fixed numbers and remembers what it was asked.
type fakeHistory struct {
	spent     int64
	purchases int
	err       error

	spentSince, purchasesSince time.Time
	calls                      int
}

var _ History = (*fakeHistory)(nil)

func (f *fakeHistory) Spent(_ context.Context, user, currency string, since time.Time) (int64, error) {
	f.calls++
	f.spentSince = since
	return f.spent, f.err
}

func (f *fakeHistory) Purchases(_ context.Context, device string, since time.Time) (int, error) {
	f.calls++
	f.purchasesSince = since
	return f.purchases, f.err
}

// request is a 15.00 USD one-off for one oat latte and a croissant on glasses
// enrolled a month ago.
func request() Request {
	return Request{
		Now: t0, User: "u_1", Device: "dev_1", DeviceKind: "glasses", Enrolled: t0.Add(-30 * 24 * time.Hour),
		Merchant: "m_coffee", Amount: 1500, Currency: "USD", Kind: wire.KindOneOff,
		Items: []wire.Item{
			{SKU: "latte-oat", Name: "Oat latte", Qty: 1, UnitAmount: 1000},
			{SKU: "croissant", Name: "Croissant", Qty: 1, UnitAmount: 500},
		},
	}
}

func codes(d Decision) []string {
	var c []string
	for _, r := range d.Reasons {
		c = append(c, r.Code)
	}
	return c
}

// checkDecision compares a decision with the wanted outcome, methods and reason codes,
// and checks that every reason explains itself.
func checkDecision(t *testing.T, d Decision, outcome Outcome, methods []Method, reasons ...string) {
	t.Helper()
	if d.Outcome != outcome || !slices.Equal(d.Methods, methods) || !slices.Equal(codes(d), reasons) {
		t.Errorf("decision %s %v %v, want %s %v %v", d.Outcome, d.Methods, d.Reasons, outcome, methods, reasons)
	}
	for _, r := range d.Reasons {
		if r.Detail == "" {
			t.Errorf("reason %s has no detail", r.Code)
		}
	}
}

func mustDecide(t testing.TB, p *Policy, req Request, h History) Decision {
	t.Helper()
	d, err := p.Decide(context.Background(), req, h)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return d
}
