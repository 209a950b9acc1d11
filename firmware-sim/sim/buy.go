package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// Purchase is the outcome of one spoken purchase.
type Purchase struct {
	Turn     *Turn
	Decision wire.Decision
	// Final is the transaction's final result; nil if none arrived in time.
	Final *wire.TxResult
}

// OK reports whether the purchase ended as the simulated user wanted: redeemed after
// an approval, declined after a decline.
func (p *Purchase) OK() bool {
	if p.Final == nil {
		return false
	}
	if p.Decision == wire.DecisionDecline {
		return p.Final.State == wire.TxDeclined
	}
	return p.Final.State == wire.TxRedeemed
}

// Buy says text, shows the prompt on out, answers it with decision (verified with m,
// or the profile's default) and follows the transaction to its final state, printing
// each result. Each wait is bounded by timeout. It returns an error only when the
// exchange itself failed; a declined or rejected purchase is a Purchase that is not
// OK.
func (d *Device) Buy(ctx context.Context, out io.Writer, text string, decision wire.Decision, m wire.Method, timeout time.Duration) (*Purchase, error) {
	p := &Purchase{Decision: decision}
	t, err := d.Say(ctx, text)
	if err != nil {
		return p, err
	}
	p.Turn = t
	fmt.Fprintf(out, "> %s\n", text)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := t.AwaitPrompt(wctx)
	cancel()
	if errors.Is(err, ErrNoPrompt) {
		p.Final = t.Final
		fmt.Fprintln(out, FormatResult(t.Final))
		return p, nil
	}
	if err != nil {
		return p, err
	}
	fmt.Fprint(out, FormatPrompt(req, d.cfg.Now()))
	if m == "" {
		m = d.profile.DefaultMethod
	}
	fmt.Fprintf(out, "< %s (%s)\n", decision, m)
	if err := t.Confirm(ctx, decision, m); err != nil {
		return p, err
	}
	for p.Final == nil {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		r, err := t.NextResult(wctx)
		cancel()
		if err != nil {
			return p, err
		}
		fmt.Fprintln(out, FormatResult(r))
		if r.State.Final() {
			p.Final = r
		}
	}
	return p, nil
}
