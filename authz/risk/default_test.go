package risk

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// TestDefaultFile keeps Default, default.yaml and the example in the package
// documentation the same policy.
func TestDefaultFile(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := Parse(DefaultFile())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, Default()) {
		t.Errorf("default.yaml is\n%+v\nDefault() is\n%+v", p, Default())
	}

	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(doc), "(DefaultFile returns it):\n//\n")
	if !ok {
		t.Fatal("doc.go: the rule file example is missing")
	}
	var b strings.Builder
	for _, line := range strings.Split(example, "\n") {
		text, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			break
		}
		b.WriteString(text + "\n")
	}
	p, err = Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("doc.go example: %v", err)
	}
	if !reflect.DeepEqual(p, Default()) {
		t.Errorf("the doc.go example is\n%+v\nDefault() is\n%+v", p, Default())
	}
}

func TestDefaultDecisions(t *testing.T) {
	tapVoiceButton := []Method{wire.MethodTap, wire.MethodVoice, wire.MethodButton}
	tapButton := []Method{wire.MethodTap, wire.MethodButton}
	denied := Default()
	denied.Merchants.Deny = []string{"m_coffee"}
	tests := []struct {
		name    string
		policy  *Policy
		req     func(*Request)
		hist    fakeHistory
		outcome Outcome
		methods []Method
		reasons []string
	}{
		{name: "small glasses purchase", outcome: OutcomeAllow, methods: tapVoiceButton},
		{name: "glasses at the threshold", req: func(r *Request) { r.Amount = 2000 }, outcome: OutcomeAllow, methods: tapVoiceButton},
		{name: "large glasses purchase", req: func(r *Request) { r.Amount = 4500 },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeStepUpAmount}},
		{name: "small kiosk purchase", req: func(r *Request) { r.DeviceKind = "kiosk" }, outcome: OutcomeAllow, methods: tapButton},
		{name: "kiosk over the PIN threshold", req: func(r *Request) { r.DeviceKind = "kiosk"; r.Amount = 2500 },
			outcome: OutcomeStepUp, methods: pin, reasons: []string{CodeStepUpAmount}},
		{name: "phone", req: func(r *Request) { r.DeviceKind = "phone"; r.Amount = 20000 }, outcome: OutcomeAllow, methods: tap},
		{name: "said under 10, proposed 15", req: func(r *Request) { r.Said = &Said{MaxAmount: 1000} },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeSaidAmount}},
		{name: "said mismatch on a kiosk", req: func(r *Request) { r.DeviceKind = "kiosk"; r.Said = &Said{SKUs: []string{"latte-oat"}} },
			outcome: OutcomeStepUp, methods: pin, reasons: []string{CodeSaidItem}},
		{name: "said mismatch on a phone", req: func(r *Request) { r.DeviceKind = "phone"; r.Said = &Said{SKUs: []string{"tea"}} },
			outcome: OutcomeStepUp, methods: tap, reasons: []string{CodeSaidItem}},
		{name: "new device", req: func(r *Request) { r.Enrolled = t0.Add(-2 * time.Hour); r.Amount = 1501 },
			outcome: OutcomeStepUp, methods: phone, reasons: []string{CodeNewDevice}},
		{name: "new device under its limit", req: func(r *Request) { r.Enrolled = t0.Add(-2 * time.Hour); r.Amount = 1500 },
			outcome: OutcomeAllow, methods: tapVoiceButton},
		{name: "denied merchant", policy: denied, outcome: OutcomeRefuse, reasons: []string{CodeMerchantDenied}},
		{name: "over the purchase cap", req: func(r *Request) { r.Amount = 25001 },
			outcome: OutcomeRefuse, reasons: []string{CodeOverTxCap, CodeStepUpAmount}},
		{name: "over the daily cap", hist: fakeHistory{spent: 49000},
			outcome: OutcomeRefuse, reasons: []string{CodeOverDailyCap}},
		{name: "eleventh request in ten minutes", hist: fakeHistory{purchases: 10},
			outcome: OutcomeRefuse, reasons: []string{CodeVelocity}},
		{name: "small yen purchase", req: func(r *Request) { r.Currency = "JPY"; r.Amount = 3000 }, outcome: OutcomeAllow, methods: tapVoiceButton},
		{name: "currency not accepted", req: func(r *Request) { r.Currency = "CHF" },
			outcome: OutcomeRefuse, reasons: []string{CodeCurrencyNotAllowed, CodeStepUpAmount}},
		{name: "unknown device kind", req: func(r *Request) { r.DeviceKind = "watch" },
			outcome: OutcomeRefuse, reasons: []string{CodeDeviceKindUnknown}},
		{name: "price target", req: func(r *Request) { r.Kind = wire.KindPriceTarget; r.Said = &Said{MaxAmount: 1500} },
			outcome: OutcomeAllow, methods: tapVoiceButton},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			if p == nil {
				p = Default()
			}
			req := request()
			if tt.req != nil {
				tt.req(&req)
			}
			h := tt.hist
			checkDecision(t, mustDecide(t, p, req, &h), tt.outcome, tt.methods, tt.reasons...)
		})
	}
}
