package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech"
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
	if req.Binding != "" {
		fmt.Fprintf(&b, "  Code %s: the same on your phone and on the device that asked\n", req.Binding)
	}
	fmt.Fprintf(&b, "  %q\n", req.Text)
	return b.String()
}

// FormatApproval renders, the way a phone shows it, a prompt of another device that
// needs the phone: which device asks, the binding code to compare with the one it
// shows, and the prompt (FormatPrompt).
func FormatApproval(req *wire.ConfirmRequest, now time.Time) string {
	return fmt.Sprintf("Approve on this phone? Device %s asks, code %s\n%s", req.Terms.Device, req.Binding, FormatPrompt(req, now))
}

// FormatError renders an error from the gateway in one line: "error bad_pin (tx
// tx_1): wrong PIN: 2 tries left".
func FormatError(e *wire.Error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "error %s", e.Code)
	if e.Tx != "" {
		fmt.Fprintf(&b, " (tx %s)", e.Tx)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
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

// FormatSpeech renders what the gateway heard in one line: `heard "two oat lattes"
// (accepted)`, `heard "confirm" (approve)`, or the outcome and the gateway's reason.
func FormatSpeech(r *wire.SpeechResult) string {
	var b strings.Builder
	if r.Text != "" {
		fmt.Fprintf(&b, "heard %q", r.Text)
	} else {
		b.WriteString("heard nothing")
	}
	switch {
	case r.Outcome == wire.SpeechAccepted && r.Answer != "":
		fmt.Fprintf(&b, " (%s)", r.Answer)
	default:
		fmt.Fprintf(&b, " (%s)", r.Outcome)
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, ": %s", r.Reason)
	}
	return b.String()
}

// FormatPromptAudio renders a spoken prompt's length: "(spoken prompt: 3.2 s)".
func FormatPromptAudio(p *client.PromptSpeech) string {
	d := time.Duration(len(p.PCM)) * time.Second / speech.Rate
	if len(p.PCM) == 0 {
		d = time.Duration(p.Duration) * time.Millisecond
	}
	return fmt.Sprintf("(spoken prompt: %.1f s)", d.Seconds())
}

// FormatMetrics renders a turn's timings in one line: how long the speech was, then
// each stage the turn reached, in milliseconds after the end of speech.
func FormatMetrics(m *wire.TurnMetrics) string {
	var b strings.Builder
	fmt.Fprintf(&b, "turn: %.2f s of speech; after its end: final %d ms", float64(m.SpeechMS)/1000, m.FinalMS)
	for _, st := range []struct {
		name string
		ms   int64
	}{{"agent", m.AgentMS}, {"prompt", m.PromptMS}, {"first audio", m.FirstAudio}} {
		if st.ms > 0 {
			fmt.Fprintf(&b, ", %s %d ms", st.name, st.ms)
		}
	}
	if m.Recognizer != "" {
		fmt.Fprintf(&b, " (%s)", m.Recognizer)
	}
	return b.String()
}
