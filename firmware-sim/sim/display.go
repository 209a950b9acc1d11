package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// FormatPrompt renders a prompt the way the device shows it: merchant, items with
// quantity and unit price, the total, the expiry (relative to now) and the text the
// gateway asks the device to speak.
func FormatPrompt(req *wire.ConfirmRequest, now time.Time) string {
	t := req.Terms
	var b strings.Builder
	fmt.Fprintf(&b, "%s asks you to approve (tx %s):\n", t.Merchant.Name, req.Tx)
	for _, it := range t.Items {
		name := it.Name
		if len(it.Options) > 0 {
			name += " [" + strings.Join(it.Options, ", ") + "]"
		}
		fmt.Fprintf(&b, "  %3d x %-32s %14s each  %14s\n", it.Qty, name+" ("+it.SKU+")",
			wire.Money(it.UnitAmount, t.Currency), wire.Money(it.UnitAmount*wire.Amount(it.Qty), t.Currency))
	}
	fmt.Fprintf(&b, "  Total %s (%s)\n", wire.Money(t.Total, t.Currency), t.Kind)
	exp := time.UnixMilli(t.ExpiresAt)
	fmt.Fprintf(&b, "  Expires %s (in %s)\n", exp.Format("15:04:05"), exp.Sub(now).Round(time.Second))
	methods := make([]string, len(req.Methods))
	for i, m := range req.Methods {
		methods[i] = string(m)
	}
	fmt.Fprintf(&b, "  Confirm with: %s\n", strings.Join(methods, ", "))
	fmt.Fprintf(&b, "  %q\n", req.Text)
	return b.String()
}

// FormatResult renders a transaction result in one line: state (final or not),
// mandate id, redeemed amount, code and reason.
func FormatResult(r *wire.TxResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tx %s: %s", r.Tx, r.State)
	if r.State.Final() {
		b.WriteString(" (final)")
	}
	if r.Mandate != "" {
		fmt.Fprintf(&b, ", mandate %s", r.Mandate)
	}
	if r.State == wire.TxRedeemed || r.Amount > 0 {
		fmt.Fprintf(&b, ", amount %s", wire.Money(r.Amount, r.Currency))
	}
	if r.Code != wire.CodeUnknown {
		fmt.Fprintf(&b, ", code %s", r.Code)
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, ": %s", r.Reason)
	}
	return b.String()
}
