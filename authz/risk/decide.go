package risk

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// Outcome is what a decision says to do with a purchase request.
type Outcome string

// Outcomes. OutcomeUnknown, the zero value, is never returned.
const (
	OutcomeUnknown Outcome = ""
	OutcomeAllow   Outcome = "allow"   // prompt with the weakest methods of the device kind
	OutcomeStepUp  Outcome = "step_up" // prompt, but only with the stronger methods given
	OutcomeRefuse  Outcome = "refuse"  // do not prompt; tell the user why
)

// String returns the outcome's name, "unknown" for the zero value.
func (o Outcome) String() string {
	if o == OutcomeUnknown {
		return "unknown"
	}
	return string(o)
}

// Said is what the user asked for, from speech or text.
type Said struct {
	// MaxAmount is the spoken cap in minor units of the request's currency ("when it
	// drops under 30" is 3000); 0: none said. An amount equal to it is no mismatch.
	MaxAmount int64
	// SKUs are the items named; empty: not known.
	SKUs []string
	// Qty is the quantity said per SKU, when said. A SKU here counts as named.
	Qty map[string]int
}

// Request is one purchase the agent proposes, as the gateway knows it.
type Request struct {
	Now        time.Time // required: the rules' windows end here
	User       string
	Device     string
	DeviceKind string    // "glasses", "kiosk", "phone": the key of Policy.StepUp
	Enrolled   time.Time // when the device was enrolled; zero: not known, so new
	Merchant   string    // merchant id
	Amount     int64     // total in minor units
	Currency   string    // ISO 4217
	Items      []wire.Item
	Kind       wire.Kind
	Said       *Said // nil: nothing known of what the user said
}

// History is what the gateway knows of the past, implemented over its store.
type History interface {
	// Spent returns what the user has spent (redeemed or issued-and-unexpired
	// mandates) in currency since the given time.
	Spent(ctx context.Context, user, currency string, since time.Time) (int64, error)
	// Purchases returns how many purchase requests the device made since the time,
	// not counting the one being decided. The gateway records every request after
	// Decide, whatever the outcome, so refused requests count too.
	Purchases(ctx context.Context, device string, since time.Time) (int, error)
}

// ErrNoHistory is returned by Decide when the policy needs the past (a daily cap for
// the currency, or a velocity limit) and the History is nil.
var ErrNoHistory = errors.New("risk: the policy needs a History")

// Reason codes, one per rule; the package documentation has the table.
const (
	CodeInvalidRequest     = "invalid_request"
	CodeCurrencyNotAllowed = "currency_not_allowed"
	CodeOverTxCap          = "over_tx_cap"
	CodeOverDailyCap       = "over_daily_cap"
	CodeVelocity           = "velocity"
	CodeMerchantDenied     = "merchant_denied"
	CodeMerchantNotAllowed = "merchant_not_allowed"
	CodeKindNotAllowed     = "kind_not_allowed"
	CodeSaidAmount         = "said_mismatch_amount"
	CodeSaidItem           = "said_mismatch_item"
	CodeNewDevice          = "new_device"
	CodeDeviceKindUnknown  = "device_kind_unknown"
	CodeStepUpAmount       = "step_up_amount"
)

// Reason is one rule that fired.
type Reason struct {
	Code   string // one of the Code constants
	Detail string // the numbers: "amount USD 45.00 over the spoken cap USD 30.00"
}

// Decision is the risk policy's answer to one request. Each decision should be
// logged with its reasons.
type Decision struct {
	Outcome Outcome
	// Methods are the consent methods acceptable for the prompt; never empty unless
	// the outcome is OutcomeRefuse, then nil.
	Methods []Method
	// Reasons are every rule that fired, in rule order; empty when allowed plainly.
	Reasons []Reason
}

// zeroLadder is what every device kind gets when Policy.StepUp is empty.
func zeroLadder() []Level { return []Level{{Methods: []Method{wire.MethodTap, wire.MethodVoice}}} }

// Decide applies the rules to a request, all of them, so that the reasons explain
// every rule that fired. A request with a negative or too large amount, a malformed
// currency or no time is refused at once (invalid_request). Decide returns an error
// only when History fails (or answers a negative number), or is needed and nil; the
// gateway then refuses the purchase and says the service is unavailable. A nil Policy
// is the zero Policy.
func (p *Policy) Decide(ctx context.Context, req Request, h History) (Decision, error) {
	if p == nil {
		p = &Policy{}
	}
	var d decision
	if req.Amount < 0 || req.Amount > int64(wire.MaxAmount) || wire.ValidCurrency(req.Currency) != nil {
		d.refuse(CodeInvalidRequest, "amount %d %q is not an amount in minor units of an ISO 4217 currency", req.Amount, req.Currency)
		return d.result(nil), nil
	}
	if req.Now.IsZero() {
		d.refuse(CodeInvalidRequest, "the request has no time")
		return d.result(nil), nil
	}
	money := func(a int64) string { return wire.Money(wire.Amount(a), req.Currency) }

	// Rule 1: per-transaction cap; TxCap also names the accepted currencies.
	if len(p.TxCap) > 0 {
		if limit, ok := p.TxCap[req.Currency]; !ok {
			d.refuse(CodeCurrencyNotAllowed, "currency %s is not accepted", req.Currency)
		} else if req.Amount > limit {
			d.refuse(CodeOverTxCap, "amount %s over the per-purchase cap %s", money(req.Amount), money(limit))
		}
	}

	// Rule 2: daily cap per user, over the 24 hours before Now.
	if limit, ok := p.DailyCap[req.Currency]; ok {
		if h == nil {
			return Decision{}, ErrNoHistory
		}
		spent, err := h.Spent(ctx, req.User, req.Currency, req.Now.Add(-24*time.Hour))
		if err != nil {
			return Decision{}, fmt.Errorf("risk: history: spent: %w", err)
		}
		if spent < 0 {
			return Decision{}, fmt.Errorf("risk: history: spent %d is negative", spent)
		}
		if spent > limit-req.Amount { // no overflow: limit and amount are at most 2^53
			d.refuse(CodeOverDailyCap, "spent %s in the last 24 h; with this %s, over the daily cap %s",
				money(spent), money(req.Amount), money(limit))
		}
	}

	// Rule 3: velocity per device.
	if v := p.Velocity; v.Max > 0 {
		if h == nil {
			return Decision{}, ErrNoHistory
		}
		window := v.Window
		if window <= 0 {
			window = DefaultVelocityWindow
		}
		n, err := h.Purchases(ctx, req.Device, req.Now.Add(-window))
		if err != nil {
			return Decision{}, fmt.Errorf("risk: history: purchases: %w", err)
		}
		if n < 0 {
			return Decision{}, fmt.Errorf("risk: history: %d purchases is negative", n)
		}
		if n >= v.Max {
			d.fire(v.Action.or(ActionRefuse), CodeVelocity, "purchase request %d in %v; the limit is %d", n+1, window, v.Max)
		}
	}

	// Rule 4: merchants and kinds.
	if slices.Contains(p.Merchants.Deny, req.Merchant) {
		d.refuse(CodeMerchantDenied, "merchant %q is on the deny list", req.Merchant)
	}
	if len(p.Merchants.Allow) > 0 && !slices.Contains(p.Merchants.Allow, req.Merchant) {
		d.refuse(CodeMerchantNotAllowed, "merchant %q is not on the allow list", req.Merchant)
	}
	if len(p.Kinds) > 0 && !slices.Contains(p.Kinds, req.Kind) {
		d.refuse(CodeKindNotAllowed, "kind %q is not accepted", req.Kind)
	}

	// Rule 5: what the user said against what the agent proposed.
	if s := req.Said; s != nil {
		act := p.SaidMismatch.or(ActionStepUp)
		if s.MaxAmount > 0 && req.Amount > s.MaxAmount {
			d.fire(act, CodeSaidAmount, "amount %s over the spoken cap %s", money(req.Amount), money(s.MaxAmount))
		}
		if detail := itemMismatch(s, req.Items); detail != "" {
			d.fire(act, CodeSaidItem, "%s", detail)
		}
	}

	// Rule 6: cool-down of a newly enrolled device.
	if nd := p.NewDevice; nd.Cooldown > 0 {
		age := req.Now.Sub(req.Enrolled)
		limit := nd.Limit[req.Currency]
		if (req.Enrolled.IsZero() || age < nd.Cooldown) && req.Amount > limit {
			since := "enrolment time not known"
			if !req.Enrolled.IsZero() {
				since = fmt.Sprintf("enrolled %v ago", age.Truncate(time.Second))
			}
			d.fire(nd.Action.or(ActionStepUp), CodeNewDevice, "device %s, cool-down %v; amount %s over the new-device limit %s",
				since, nd.Cooldown, money(req.Amount), money(limit))
		}
	}

	// Rule 7: the consent methods, by amount and device kind.
	ladder, ok := p.StepUp[req.DeviceKind]
	if len(p.StepUp) == 0 {
		ladder, ok = zeroLadder(), true
	}
	if !ok || len(ladder) == 0 {
		d.refuse(CodeDeviceKindUnknown, "no consent methods for device kind %q", req.DeviceKind)
		return d.result(nil), nil
	}
	level := 0
	var why string
	for i := 1; i < len(ladder); i++ {
		if len(ladder[i].Above) == 0 {
			continue // reached only by a step-up
		}
		if limit, ok := ladder[i].Above[req.Currency]; !ok {
			level, why = i, fmt.Sprintf("no %s threshold for %s", req.DeviceKind, req.Currency)
		} else if req.Amount > limit {
			level, why = i, fmt.Sprintf("amount %s over the %s threshold %s", money(req.Amount), req.DeviceKind, money(limit))
		}
	}
	if level > 0 {
		d.add(CodeStepUpAmount, "%s: %s", why, joinMethods(ladder[level].Methods))
	}
	if d.stepUp {
		level = min(level+1, len(ladder)-1)
	}
	if len(ladder[level].Methods) == 0 { // only a Policy that fails Validate
		d.refuse(CodeDeviceKindUnknown, "no consent methods for device kind %q at level %d", req.DeviceKind, level)
	}
	return d.result(ladder[level].Methods), nil
}

// decision collects the rules that fired.
type decision struct {
	reasons         []Reason
	refused, stepUp bool
}

func (d *decision) add(code, format string, args ...any) {
	d.reasons = append(d.reasons, Reason{Code: code, Detail: fmt.Sprintf(format, args...)})
}

func (d *decision) refuse(code, format string, args ...any) {
	d.fire(ActionRefuse, code, format, args...)
}

func (d *decision) fire(a Action, code, format string, args ...any) {
	if a == ActionStepUp {
		d.stepUp = true
	} else {
		d.refused = true
	}
	d.add(code, format, args...)
}

func (d *decision) result(methods []Method) Decision {
	switch {
	case d.refused || len(methods) == 0:
		return Decision{Outcome: OutcomeRefuse, Reasons: d.reasons}
	case d.stepUp || len(d.reasons) > 0:
		return Decision{Outcome: OutcomeStepUp, Methods: slices.Clone(methods), Reasons: d.reasons}
	}
	return Decision{Outcome: OutcomeAllow, Methods: slices.Clone(methods)}
}

// itemMismatch compares the items the user named with those proposed: named and not
// proposed, proposed and not named, and quantities said that differ. "" when they
// agree or the user named none.
func itemMismatch(s *Said, items []wire.Item) string {
	named := map[string]bool{}
	for _, sku := range s.SKUs {
		named[sku] = true
	}
	for sku := range s.Qty {
		named[sku] = true
	}
	if len(named) == 0 {
		return ""
	}
	proposed := map[string]int{}
	for _, it := range items {
		proposed[it.SKU] += it.Qty
	}
	var missing, extra, qty []string
	for _, sku := range slices.Sorted(maps.Keys(named)) {
		got, ok := proposed[sku]
		switch want := s.Qty[sku]; {
		case !ok:
			missing = append(missing, sku)
		case want > 0 && got != want:
			qty = append(qty, fmt.Sprintf("%s: said %d, proposed %d", sku, want, got))
		}
	}
	for _, sku := range slices.Sorted(maps.Keys(proposed)) {
		if !named[sku] {
			extra = append(extra, sku)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "named but not proposed: "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "proposed but not named: "+strings.Join(extra, ", "))
	}
	if len(qty) > 0 {
		parts = append(parts, "quantity "+strings.Join(qty, "; "))
	}
	return strings.Join(parts, "; ")
}

func joinMethods(ms []Method) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, " or ")
}
