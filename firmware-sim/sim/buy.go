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
	// Final is the transaction's final result; nil if none arrived in time. After
	// Cancel, the final result the cancellation led to.
	Final *wire.TxResult
	// Cancelled is set by Cancel: the user cancelled after the redemption.
	Cancelled bool
}

// OK reports whether the purchase ended as the simulated user wanted: redeemed after
// an approval, declined after a decline, cancelled after a Cancel.
func (p *Purchase) OK() bool {
	switch {
	case p.Final == nil:
		return false
	case p.Cancelled:
		return p.Final.State == wire.TxCancelled
	case p.Decision == wire.DecisionDecline:
		return p.Final.State == wire.TxDeclined
	}
	return p.Final.State == wire.TxRedeemed
}

// Cancel cancels a redeemed purchase (the user's "cancel my order" inside the cancel
// window), printing each result, and follows the transaction to its next final state:
// cancelled, or redeemed again with the merchant's reason. Each wait is bounded by
// timeout. A refusal (not_cancellable) is returned as an error wrapping the
// *wire.Error.
func (p *Purchase) Cancel(ctx context.Context, out io.Writer, reason string, timeout time.Duration) error {
	t := p.Turn
	if t == nil || p.Final == nil || p.Final.State != wire.TxRedeemed {
		return fmt.Errorf("%w: nothing redeemed to cancel", ErrNoPrompt)
	}
	p.Cancelled = true
	fmt.Fprintf(out, "< cancel %q\n", reason)
	if err := t.Cancel(ctx, reason); err != nil {
		return err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		r, err := t.NextResult(wctx)
		cancel()
		if err != nil {
			return err
		}
		fmt.Fprintln(out, FormatResult(r))
		if r.State.Final() {
			p.Final = r
			return nil
		}
	}
}

// Buy says text, shows the prompt on out, answers it with decision (verified with m,
// or as Turn.Method picks: a kiosk types Config.PIN at a PIN prompt) and follows the
// transaction to its final state, printing each result. A prompt that needs the phone
// is approved there: Buy shows the code and waits for the result until the prompt
// expires. A device started with Config.Audio speaks, and Buy also shows what the
// gateway heard, the spoken prompt's length and the turn's timings. Each wait is
// bounded by timeout. It returns an error only when the exchange itself failed (a
// wrong PIN included); a declined, rejected or not understood purchase is a Purchase
// that is not OK.
func (d *Device) Buy(ctx context.Context, out io.Writer, text string, decision wire.Decision, m wire.Method, timeout time.Duration) (*Purchase, error) {
	p := &Purchase{Decision: decision}
	t, err := d.Say(ctx, text)
	if err != nil {
		return p, err
	}
	p.Turn = t
	if d.cfg.Audio {
		fmt.Fprintf(out, "> %s (spoken: %s, %d wpm%s)\n", text, d.cfg.Voice, d.cfg.Speed, noiseNote(d.cfg.NoiseSNR))
	} else {
		fmt.Fprintf(out, "> %s\n", text)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := t.AwaitPrompt(wctx)
	cancel()
	if t.Speech != nil {
		fmt.Fprintln(out, FormatSpeech(t.Speech))
	}
	var se *SpeechError
	switch {
	case errors.As(err, &se):
		d.showSpoken(ctx, out, t, timeout)
		return p, nil
	case errors.Is(err, ErrNoPrompt):
		p.Final = t.Final
		fmt.Fprintln(out, FormatResult(t.Final))
		return p, nil
	case err != nil:
		return p, err
	}
	fmt.Fprint(out, FormatPrompt(req, d.cfg.Now()))
	if d.cfg.Audio {
		d.showSpoken(ctx, out, t, timeout)
	}
	m = t.Method(decision, m)
	if m == wire.MethodPhone && decision == wire.DecisionApprove && t.OnPhone() {
		fmt.Fprintf(out, "< %s on your phone (code %s)\n", decision, req.Binding)
	} else {
		fmt.Fprintf(out, "< %s (%s)\n", decision, m)
	}
	cctx, cancel := context.WithTimeout(ctx, answerAttempts*timeout) // a spoken answer may be said twice
	err = t.Confirm(cctx, decision, m)
	cancel()
	if m == wire.MethodVoice && t.Answer != nil {
		fmt.Fprintln(out, FormatSpeech(t.Answer))
	}
	if err != nil {
		return p, err
	}
	wait := timeout
	if t.OnPhone() && decision == wire.DecisionApprove {
		// The user reaches for the phone: until the prompt expires, and the gateway's
		// word on that.
		wait += max(0, time.UnixMilli(req.Terms.ExpiresAt).Sub(d.cfg.Now()))
	}
	for p.Final == nil {
		wctx, cancel := context.WithTimeout(ctx, wait)
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

// showSpoken prints the turn's spoken prompt and timings, waiting for them at most
// timeout. Their absence is logged, not an error: the purchase goes on without them.
func (d *Device) showSpoken(ctx context.Context, out io.Writer, t *Turn, timeout time.Duration) {
	wctx, cancel := context.WithTimeout(ctx, min(timeout, spokenWait))
	err := t.AwaitSpoken(wctx)
	cancel()
	if err != nil {
		d.log.Warn("no spoken prompt or turn metrics", "ref", t.Ref, "err", err)
	}
	if t.PromptAudio != nil {
		fmt.Fprintln(out, FormatPromptAudio(t.PromptAudio))
	}
	if t.Metrics != nil {
		fmt.Fprintln(out, FormatMetrics(t.Metrics))
	}
}

// spokenWait bounds the wait for a turn's metrics and spoken prompt: the gateway sends
// the metrics with the first prompt audio frame, or right after the prompt when it
// does not speak.
const spokenWait = 3 * time.Second

func noiseNote(snr float64) string {
	if snr == 0 {
		return ""
	}
	return fmt.Sprintf(", pink noise at %g dB SNR", snr)
}
