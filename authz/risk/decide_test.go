package risk

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
)

var (
	tapVoice = []Method{wire.MethodTap, wire.MethodVoice}
	phone    = []Method{wire.MethodPhone}
	pin      = []Method{wire.MethodPIN}
	tap      = []Method{wire.MethodTap}
)

// ladders is a rule 7 set for the table: glasses step up to the phone above 20.00,
// kiosks to the PIN above 20.00 and then to the phone above 100.00, and phones have
// a PIN reached only by a step-up.
func ladders() map[string][]Level {
	return map[string][]Level{
		"glasses": {{Methods: tapVoice}, {Methods: phone, Above: map[string]int64{"USD": 2000}}},
		"kiosk": {{Methods: tap}, {Methods: pin, Above: map[string]int64{"USD": 2000}},
			{Methods: phone, Above: map[string]int64{"USD": 10000}}},
		"phone": {{Methods: tap}, {Methods: pin}},
	}
}

func TestDecideRules(t *testing.T) {
	usd := func(v int64) map[string]int64 { return map[string]int64{"USD": v} }
	said := func(max int64, skus ...string) *Said { return &Said{MaxAmount: max, SKUs: skus} }
	tests := []struct {
		name    string
		policy  Policy
		req     func(*Request)
		hist    fakeHistory
		outcome Outcome
		methods []Method
		reasons []string
	}{
		{name: "zero policy allows a large amount", req: func(r *Request) { r.Amount = 1_000_000 },
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "zero policy allows any device kind", req: func(r *Request) { r.DeviceKind = "toaster" },
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "negative amount", req: func(r *Request) { r.Amount = -1 },
			outcome: OutcomeRefuse, reasons: []string{CodeInvalidRequest}},
		{name: "no time", req: func(r *Request) { r.Now = time.Time{} },
			outcome: OutcomeRefuse, reasons: []string{CodeInvalidRequest}},
		{name: "malformed currency", req: func(r *Request) { r.Currency = "usd" },
			outcome: OutcomeRefuse, reasons: []string{CodeInvalidRequest}},

		// Rule 1.
		{name: "tx cap: exactly the cap", policy: Policy{TxCap: usd(1500)},
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "tx cap: one over", policy: Policy{TxCap: usd(1499)},
			outcome: OutcomeRefuse, reasons: []string{CodeOverTxCap}},
		{name: "tx cap: currency not accepted", policy: Policy{TxCap: usd(5000)}, req: func(r *Request) { r.Currency = "EUR" },
			outcome: OutcomeRefuse, reasons: []string{CodeCurrencyNotAllowed}},

		// Rule 2.
		{name: "daily cap: exactly the cap", policy: Policy{DailyCap: usd(5000)}, hist: fakeHistory{spent: 3500},
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "daily cap: one over", policy: Policy{DailyCap: usd(5000)}, hist: fakeHistory{spent: 3501},
			outcome: OutcomeRefuse, reasons: []string{CodeOverDailyCap}},
		{name: "daily cap: another currency's", policy: Policy{DailyCap: map[string]int64{"EUR": 1}},
			outcome: OutcomeAllow, methods: tapVoice},

		// Rule 3.
		{name: "velocity: at the limit", policy: Policy{Velocity: Velocity{Max: 3}}, hist: fakeHistory{purchases: 2},
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "velocity: over", policy: Policy{Velocity: Velocity{Max: 3}}, hist: fakeHistory{purchases: 3},
			outcome: OutcomeRefuse, reasons: []string{CodeVelocity}},
		{name: "velocity: step up", policy: Policy{Velocity: Velocity{Max: 3, Action: ActionStepUp}, StepUp: ladders()},
			hist: fakeHistory{purchases: 3}, outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeVelocity}},

		// Rule 4.
		{name: "merchant denied", policy: Policy{Merchants: Merchants{Deny: []string{"m_coffee"}}},
			outcome: OutcomeRefuse, reasons: []string{CodeMerchantDenied}},
		{name: "merchant another denied", policy: Policy{Merchants: Merchants{Deny: []string{"m_other"}}},
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "merchant not allowed", policy: Policy{Merchants: Merchants{Allow: []string{"m_other"}}},
			outcome: OutcomeRefuse, reasons: []string{CodeMerchantNotAllowed}},
		{name: "merchant allowed", policy: Policy{Merchants: Merchants{Allow: []string{"m_other", "m_coffee"}}},
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "kind not allowed", policy: Policy{Kinds: []wire.Kind{wire.KindOneOff}}, req: func(r *Request) { r.Kind = wire.KindRecurring },
			outcome: OutcomeRefuse, reasons: []string{CodeKindNotAllowed}},
		{name: "kind allowed", policy: Policy{Kinds: []wire.Kind{wire.KindOneOff}},
			outcome: OutcomeAllow, methods: tapVoice},

		// Rule 5.
		{name: "said: exactly the spoken cap", policy: Policy{StepUp: ladders()}, req: func(r *Request) { r.Said = said(1500) },
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "said: over the spoken cap", policy: Policy{StepUp: ladders()}, req: func(r *Request) { r.Said = said(1499) },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeSaidAmount}},
		{name: "said: over the spoken cap, refuse", policy: Policy{SaidMismatch: ActionRefuse}, req: func(r *Request) { r.Said = said(1000) },
			outcome: OutcomeRefuse, reasons: []string{CodeSaidAmount}},
		{name: "said: the same items", policy: Policy{StepUp: ladders()},
			req:     func(r *Request) { r.Said = said(0, "croissant", "latte-oat") },
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "said: nothing named", policy: Policy{StepUp: ladders()}, req: func(r *Request) { r.Said = &Said{} },
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "said: an item not proposed", policy: Policy{StepUp: ladders()},
			req:     func(r *Request) { r.Said = said(0, "croissant", "latte-oat", "muffin") },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeSaidItem}},
		{name: "said: an item proposed, not named", policy: Policy{StepUp: ladders()},
			req:     func(r *Request) { r.Said = said(0, "latte-oat") },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeSaidItem}},
		{name: "said: the quantity differs", policy: Policy{StepUp: ladders()},
			req: func(r *Request) {
				r.Said = &Said{SKUs: []string{"croissant"}, Qty: map[string]int{"latte-oat": 2}}
			},
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeSaidItem}},
		{name: "said: both mismatches, one level up", policy: Policy{StepUp: ladders()},
			req:     func(r *Request) { r.DeviceKind = "kiosk"; r.Said = said(1000, "muffin") },
			outcome: OutcomeStepUp, methods: pin, reasons: []string{CodeSaidAmount, CodeSaidItem}},

		// Rule 6.
		{name: "new device: over the limit", policy: Policy{NewDevice: NewDevice{Cooldown: 24 * time.Hour, Limit: usd(1000)}, StepUp: ladders()},
			req:     func(r *Request) { r.Enrolled = t0.Add(-23 * time.Hour) },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeNewDevice}},
		{name: "new device: exactly the limit", policy: Policy{NewDevice: NewDevice{Cooldown: 24 * time.Hour, Limit: usd(1500)}, StepUp: ladders()},
			req:     func(r *Request) { r.Enrolled = t0.Add(-time.Hour) },
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "new device: cool-down just over", policy: Policy{NewDevice: NewDevice{Cooldown: 24 * time.Hour}, StepUp: ladders()},
			req:     func(r *Request) { r.Enrolled = t0.Add(-24 * time.Hour) },
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "new device: enrolment not known", policy: Policy{NewDevice: NewDevice{Cooldown: time.Hour}, StepUp: ladders()},
			req:     func(r *Request) { r.Enrolled = time.Time{} },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeNewDevice}},
		{name: "new device: refuse", policy: Policy{NewDevice: NewDevice{Cooldown: 24 * time.Hour, Action: ActionRefuse}},
			req:     func(r *Request) { r.Enrolled = t0.Add(-time.Minute) },
			outcome: OutcomeRefuse, reasons: []string{CodeNewDevice}},

		// Rule 7.
		{name: "step-up: exactly the threshold", policy: Policy{StepUp: ladders()}, req: func(r *Request) { r.Amount = 2000 },
			outcome: OutcomeAllow, methods: tapVoice},
		{name: "step-up: one over", policy: Policy{StepUp: ladders()}, req: func(r *Request) { r.Amount = 2001 },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeStepUpAmount}},
		{name: "step-up: kiosk middle level", policy: Policy{StepUp: ladders()}, req: func(r *Request) { r.DeviceKind = "kiosk"; r.Amount = 10000 },
			outcome: OutcomeStepUp, methods: pin, reasons: []string{CodeStepUpAmount}},
		{name: "step-up: kiosk top level", policy: Policy{StepUp: ladders()}, req: func(r *Request) { r.DeviceKind = "kiosk"; r.Amount = 10001 },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeStepUpAmount}},
		{name: "step-up: no threshold for the currency", policy: Policy{StepUp: ladders()}, req: func(r *Request) { r.Currency = "EUR"; r.Amount = 1 },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeStepUpAmount}},
		{name: "step-up: raise capped at the top", policy: Policy{StepUp: ladders()},
			req:     func(r *Request) { r.Amount = 5000; r.Said = said(3000) },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeSaidAmount, CodeStepUpAmount}},
		{name: "step-up: level reached only by a step-up", policy: Policy{StepUp: ladders()},
			req:     func(r *Request) { r.DeviceKind = "phone"; r.Amount = 1_000_000 },
			outcome: OutcomeAllow, methods: tap},
		{name: "step-up: phone raised to its PIN", policy: Policy{StepUp: ladders()},
			req:     func(r *Request) { r.DeviceKind = "phone"; r.Said = said(1000) },
			outcome: OutcomeStepUp, methods: pin, reasons: []string{CodeSaidAmount}},
		{name: "step-up: unknown device kind", policy: Policy{StepUp: ladders()}, req: func(r *Request) { r.DeviceKind = "toaster" },
			outcome: OutcomeRefuse, reasons: []string{CodeDeviceKindUnknown}},

		// Several at once: every rule that fired, in rule order; refuse wins.
		{name: "many rules", policy: Policy{
			TxCap: usd(1000), DailyCap: usd(1000), Velocity: Velocity{Max: 1},
			Merchants: Merchants{Deny: []string{"m_coffee"}}, NewDevice: NewDevice{Cooldown: time.Hour}, StepUp: ladders(),
		}, req: func(r *Request) { r.Amount = 2500; r.Said = said(2000, "tea"); r.Enrolled = t0 },
			hist: fakeHistory{purchases: 1}, outcome: OutcomeRefuse, reasons: []string{
				CodeOverTxCap, CodeOverDailyCap, CodeVelocity, CodeMerchantDenied,
				CodeSaidAmount, CodeSaidItem, CodeNewDevice, CodeStepUpAmount,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request()
			if tt.req != nil {
				tt.req(&req)
			}
			if err := tt.policy.Validate(); err != nil {
				t.Fatalf("the table's policy: %v", err)
			}
			h := tt.hist
			d := mustDecide(t, &tt.policy, req, &h)
			checkDecision(t, d, tt.outcome, tt.methods, tt.reasons...)
		})
	}
}

func TestDecideHistoryWindows(t *testing.T) {
	p := &Policy{DailyCap: map[string]int64{"USD": 5000}, Velocity: Velocity{Max: 5}}
	h := &fakeHistory{}
	mustDecide(t, p, request(), h)
	if want := t0.Add(-24 * time.Hour); !h.spentSince.Equal(want) {
		t.Errorf("Spent since %v, want %v", h.spentSince, want)
	}
	if want := t0.Add(-DefaultVelocityWindow); !h.purchasesSince.Equal(want) {
		t.Errorf("Purchases since %v, want %v", h.purchasesSince, want)
	}
	p.Velocity.Window = time.Hour
	mustDecide(t, p, request(), h)
	if want := t0.Add(-time.Hour); !h.purchasesSince.Equal(want) {
		t.Errorf("Purchases since %v, want %v", h.purchasesSince, want)
	}
}

func TestDecideNeedsNoHistoryWhenNoRuleDoes(t *testing.T) {
	p := &Policy{TxCap: map[string]int64{"USD": 5000}, DailyCap: map[string]int64{"EUR": 5000}}
	checkDecision(t, mustDecide(t, p, request(), nil), OutcomeAllow, tapVoice)
	checkDecision(t, mustDecide(t, nil, request(), nil), OutcomeAllow, tapVoice)
}

func TestDecideErrors(t *testing.T) {
	broken := errors.New("store closed")
	tests := []struct {
		name   string
		policy Policy
		h      History
		want   error
	}{
		{"spent fails", Policy{DailyCap: map[string]int64{"USD": 5000}}, &fakeHistory{err: broken}, broken},
		{"purchases fail", Policy{Velocity: Velocity{Max: 5}}, &fakeHistory{err: broken}, broken},
		{"negative spend", Policy{DailyCap: map[string]int64{"USD": 5000}}, &fakeHistory{spent: -1}, nil},
		{"negative purchases", Policy{Velocity: Velocity{Max: 5}}, &fakeHistory{purchases: -1}, nil},
		{"daily cap without history", Policy{DailyCap: map[string]int64{"USD": 5000}}, nil, ErrNoHistory},
		{"velocity without history", Policy{Velocity: Velocity{Max: 5}}, nil, ErrNoHistory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.policy.Decide(context.Background(), request(), tt.h)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "risk: ") {
				t.Errorf("error %v, want %v with the risk: prefix", err, tt.want)
			}
			if d.Outcome != OutcomeUnknown {
				t.Errorf("outcome %s with an error", d.Outcome)
			}
		})
	}
}

func TestDecideDetails(t *testing.T) {
	p := &Policy{StepUp: ladders(), DailyCap: map[string]int64{"USD": 5000}}
	req := request()
	req.Amount = 4500
	req.Said = &Said{MaxAmount: 3000, SKUs: []string{"latte-oat", "muffin"}, Qty: map[string]int{"latte-oat": 2}}
	d := mustDecide(t, p, req, &fakeHistory{spent: 1000})
	want := []Reason{
		{CodeOverDailyCap, "spent USD 10.00 in the last 24 h; with this USD 45.00, over the daily cap USD 50.00"},
		{CodeSaidAmount, "amount USD 45.00 over the spoken cap USD 30.00"},
		{CodeSaidItem, "named but not proposed: muffin; proposed but not named: croissant; quantity latte-oat: said 2, proposed 1"},
		{CodeStepUpAmount, "amount USD 45.00 over the glasses threshold USD 20.00: phone"},
	}
	if !slices.Equal(d.Reasons, want) {
		t.Errorf("reasons\n%q\nwant\n%q", d.Reasons, want)
	}
}

// TestDecideMethodsAreCopies checks that a caller changing Decision.Methods does not
// change the policy.
func TestDecideMethodsAreCopies(t *testing.T) {
	p := &Policy{StepUp: ladders()}
	d := mustDecide(t, p, request(), nil)
	d.Methods[0] = wire.MethodPhone
	checkDecision(t, mustDecide(t, p, request(), nil), OutcomeAllow, tapVoice)
	checkDecision(t, mustDecide(t, nil, request(), nil), OutcomeAllow, tapVoice)
	d = mustDecide(t, nil, request(), nil)
	d.Methods[0] = wire.MethodPhone
	checkDecision(t, mustDecide(t, nil, request(), nil), OutcomeAllow, tapVoice)
}

func TestEnumStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{OutcomeUnknown.String(), "unknown"}, {OutcomeAllow.String(), "allow"}, {OutcomeStepUp.String(), "step_up"},
		{OutcomeRefuse.String(), "refuse"}, {ActionDefault.String(), "default"}, {ActionRefuse.String(), "refuse"},
	} {
		if c.got != c.want {
			t.Errorf("String() = %q, want %q", c.got, c.want)
		}
	}
}

// TestDecideInvalidPolicyFailsSafe: a Policy built in code that fails Validate still
// never allows what it cannot judge.
func TestDecideInvalidPolicyFailsSafe(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		reasons []string
	}{
		{"unknown action", Policy{Velocity: Velocity{Max: 1, Action: "maybe"}}, []string{CodeVelocity}},
		{"level without methods", Policy{StepUp: map[string][]Level{"glasses": {{}}}}, []string{CodeDeviceKindUnknown}},
		{"empty ladder", Policy{StepUp: map[string][]Level{"glasses": nil}}, []string{CodeDeviceKindUnknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.policy.Validate() == nil {
				t.Fatal("the policy passes Validate")
			}
			d := mustDecide(t, &tt.policy, request(), &fakeHistory{purchases: 1})
			checkDecision(t, d, OutcomeRefuse, nil, tt.reasons...)
		})
	}
}
