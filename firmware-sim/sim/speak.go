package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech"
)

// Errors of spoken turns.
var (
	// ErrNotUnderstood reports an utterance the gateway did not take (not understood,
	// no speech heard, or cancelled); the *SpeechError that wraps it holds the
	// speech.result. Like a rejected transaction, it ends the turn without a prompt.
	ErrNotUnderstood = errors.New("sim: speech not understood")
	// ErrAnswer reports a spoken answer to a prompt that the gateway heard as another
	// answer, or did not understand twice.
	ErrAnswer = errors.New("sim: spoken answer not taken")
)

// SpeechError is the gateway's refusal of a spoken utterance. It wraps
// ErrNotUnderstood.
type SpeechError struct {
	// Said is what the simulated user said.
	Said string
	// Result is the gateway's speech.result; its Outcome is not accepted.
	Result *wire.SpeechResult
}

func (e *SpeechError) Error() string {
	s := fmt.Sprintf("sim: %q: %s", e.Said, e.Result.Outcome)
	if e.Result.Text != "" {
		s += fmt.Sprintf(" (heard %q)", e.Result.Text)
	}
	if e.Result.Reason != "" {
		s += ": " + e.Result.Reason
	}
	return s
}

func (e *SpeechError) Unwrap() error { return ErrNotUnderstood }

// noisePad is the noise heard before and after the speech when Config.NoiseSNR is set.
const noisePad = 300 * time.Millisecond

// answerAttempts is how often the user says a confirmation the gateway did not
// understand: once, and once again.
const answerAttempts = 2

// Speech returns the audio the simulated user makes saying text: 16 kHz mono,
// synthesised with the configured voice and speed, with pink noise at Config.NoiseSNR.
// It fails unless the device was started with Config.Audio.
func (d *Device) Speech(ctx context.Context, text string) ([]int16, error) {
	if d.synth == nil {
		return nil, fmt.Errorf("sim: %q: the device was started without audio", text)
	}
	pcm, err := d.synth.Say(ctx, text)
	if err != nil {
		return nil, fmt.Errorf("sim: the user's voice: %w", err)
	}
	if d.cfg.NoiseSNR != 0 {
		pcm = speech.Pad(pcm, noisePad, noisePad)
		h := fnv.New64a()
		_, _ = h.Write([]byte(text)) // a hash.Hash never fails to write
		pcm = speech.MixAtSNR(pcm, speech.PinkNoise(len(pcm), int64(h.Sum64()>>1)), d.cfg.NoiseSNR)
	}
	return pcm, nil
}

// speak says text as push-to-talk speech and returns the utterance's message id.
func (d *Device) speak(ctx context.Context, text string, opt client.SpeakOptions) (string, error) {
	pcm, err := d.Speech(ctx, text)
	if err != nil {
		return "", err
	}
	opt.PTT, opt.Realtime = true, d.cfg.Realtime
	ref, err := d.client.Speak(ctx, pcm, opt)
	if err != nil {
		return "", fmt.Errorf("sim: speaking %q: %w", text, err)
	}
	d.log.Debug("spoke", "ref", ref, "mode", opt.Mode, "ms", len(pcm)*1000/speech.Rate)
	return ref, nil
}

// Spoken reports whether the turn's utterance was spoken rather than sent as text.
func (t *Turn) Spoken() bool { return t.d.cfg.Audio }

// unheard returns the turn's SpeechError when the gateway did not take its utterance.
func (t *Turn) unheard() error {
	if t.Speech == nil || t.Speech.Outcome == wire.SpeechAccepted {
		return nil
	}
	return &SpeechError{Said: t.Text, Result: t.Speech}
}

// claimSpeech takes the speech events of the turn: the speech.result and turn.metrics
// of its utterance and of its spoken answers, and its spoken prompt. A command that
// was not understood fails the turn.
func (t *Turn) claimSpeech(ev client.Event) (verdict, error) {
	switch {
	case ev.SpeechResult != nil:
		r := ev.SpeechResult
		switch {
		case t.Ref != "" && r.Ref == t.Ref:
			t.Speech = r
			if err := t.unheard(); err != nil {
				return finish, err
			}
			return consume, nil
		case t.answers[r.Ref]:
			t.Answer = r
			return consume, nil
		}
	case ev.TurnMetrics != nil:
		m := ev.TurnMetrics
		switch {
		case t.Ref != "" && m.Ref == t.Ref:
			t.Metrics = m
			return consume, nil
		case t.answers[m.Ref]:
			t.AnswerMetrics = m
			return consume, nil
		}
	case ev.PromptAudio != nil:
		p := ev.PromptAudio
		if (p.Tx != "" && p.Tx == t.Tx) || (p.Ref != "" && p.Ref == t.Ref) {
			t.PromptAudio = p
			return consume, nil
		}
	}
	return keep, nil
}

// AwaitSpeech waits for the gateway's speech.result for the turn's spoken utterance,
// whatever its outcome.
func (t *Turn) AwaitSpeech(ctx context.Context) (*wire.SpeechResult, error) {
	if !t.Spoken() {
		return nil, fmt.Errorf("sim: %q was sent as text: no speech.result", t.Text)
	}
	if t.Speech != nil {
		return t.Speech, nil
	}
	err := t.d.await(ctx, func(ev client.Event) (verdict, error) {
		v, err := t.claim(ev)
		if t.Speech != nil {
			return finish, nil // a SpeechError is what the caller asks about
		}
		return v, err
	})
	if err != nil {
		return nil, err
	}
	return t.Speech, nil
}

// AwaitSpoken waits for the gateway's spoken answer (the prompt, or the apology for a
// command not understood) or, when the gateway does not speak it, for the turn's
// turn.metrics. The gateway sends the metrics with the first frame of the spoken
// answer, so both are there when the audio is. It is for devices started with
// Config.Audio; others get neither.
func (t *Turn) AwaitSpoken(ctx context.Context) error {
	done := func() bool {
		m := t.Metrics
		return t.PromptAudio != nil || (m != nil && m.PromptMS == 0 && m.FirstAudio == 0)
	}
	if done() {
		return nil
	}
	return t.d.await(ctx, func(ev client.Event) (verdict, error) {
		v, err := t.claim(ev)
		var se *SpeechError
		if errors.As(err, &se) {
			err = nil // the apology and the metrics follow
		}
		if err == nil && done() {
			return finish, nil
		}
		return v, err
	})
}

// answer speaks the user's decision on the prompt ("confirm" or "cancel") and waits
// until the gateway heard it as that decision. A confirmation the gateway did not
// understand is said once more.
func (t *Turn) answer(ctx context.Context, decision wire.Decision) error {
	word, want := "confirm", wire.AnswerApprove
	if decision == wire.DecisionDecline {
		word, want = "cancel", wire.AnswerDecline
	}
	for attempt := 1; ; attempt++ {
		t.Answer = nil
		ref, err := t.d.speak(ctx, word, client.SpeakOptions{Mode: wire.ModeConfirm, Tx: t.Tx})
		if err != nil {
			return err
		}
		t.answers[ref] = true
		err = t.d.await(ctx, func(ev client.Event) (verdict, error) {
			v, err := t.claim(ev)
			if err == nil && t.Answer != nil && t.Answer.Ref == ref {
				return finish, nil
			}
			return v, err
		})
		if err != nil {
			return err
		}
		r := t.Answer
		switch {
		case r.Outcome == wire.SpeechAccepted && r.Answer == want:
			return nil
		case r.Outcome == wire.SpeechAccepted:
			return fmt.Errorf("%w: said %q, the gateway heard %q as %s", ErrAnswer, word, r.Text, r.Answer)
		case attempt < answerAttempts:
			t.d.log.Info("spoken answer not understood; saying it again", "said", word, "outcome", r.Outcome, "heard", r.Text)
		default:
			return fmt.Errorf("%w: said %q %d times, the gateway answered %s: %s", ErrAnswer, word, attempt, r.Outcome, r.Reason)
		}
	}
}
