package risk_test

import (
	"context"
	"fmt"
	"time"

	"github.com/earshot/earshot/authz/risk"
	"github.com/earshot/earshot/device/wire"
)

// history is the gateway's store in this example: nothing spent, no earlier requests.
type history struct{}

func (history) Spent(context.Context, string, string, time.Time) (int64, error) { return 0, nil }
func (history) Purchases(context.Context, string, time.Time) (int, error)       { return 0, nil }

func ExamplePolicy_Decide() {
	p, err := risk.Parse([]byte(`
rules:
  tx_cap: {USD: 25000}
  step_up:
    glasses:
      - methods: [tap, voice]
      - methods: [phone]
        above: {USD: 2000}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	// The user said "two oat lattes under 30"; the agent proposes 45.00.
	req := risk.Request{
		Now: now, User: "u_1", Device: "dev_1", DeviceKind: "glasses", Enrolled: now.AddDate(0, -1, 0),
		Merchant: "m_coffee", Amount: 4500, Currency: "USD", Kind: wire.KindOneOff,
		Items: []wire.Item{{SKU: "latte-oat", Name: "Oat latte", Qty: 2, UnitAmount: 2250}},
		Said:  &risk.Said{MaxAmount: 3000, Qty: map[string]int{"latte-oat": 2}},
	}
	d, err := p.Decide(context.Background(), req, history{})
	if err != nil {
		fmt.Println("refuse: risk service unavailable:", err)
		return
	}
	fmt.Println(d.Outcome, d.Methods)
	for _, r := range d.Reasons {
		fmt.Printf("%s: %s\n", r.Code, r.Detail)
	}
	// Output:
	// step_up [phone]
	// said_mismatch_amount: amount USD 45.00 over the spoken cap USD 30.00
	// step_up_amount: amount USD 45.00 over the glasses threshold USD 20.00: phone
}

func ExampleParse_error() {
	_, err := risk.Parse([]byte("rules:\n  daily_cap: {USD: 25.00}\n"))
	fmt.Println(err)
	// Output:
	// risk: bad policy: rules.daily_cap.USD (line 2): want an integer in minor units (write 2500 for 25.00), got "25.00"
}
