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
// each result. A device started with Config.Audio speaks, and Buy also shows what the
// gateway heard, the spoken prompt's length and the turn's timings. Each wait is
// bounded by timeout. It returns an error only when the exchange itself failed; a
// declined, rejected or not understood purchase is a Purchase that is not OK.
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
	if m == "" {
		m = d.profile.DefaultMethod
	}
	fmt.Fprintf(out, "< %s (%s)\n", decision, m)
	cctx, cancel := context.WithTimeout(ctx, answerAttempts*timeout) // a spoken answer may be said twice
	err = t.Confirm(cctx, decision, m)
	cancel()
	if m == wire.MethodVoice && t.Answer != nil {
		fmt.Fprintln(out, FormatSpeech(t.Answer))
	}
	if err != nil {
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
