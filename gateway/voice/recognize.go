package voice

import (
	"context"
	"errors"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech/asr"
	"github.com/earshot/earshot/speech/grammar"
)

// Device-visible texts of a turn that did not work out.
const (
	notUnderstoodCommand = "Sorry, I did not understand. Try an order like: two oat lattes."
	notUnderstoodAnswer  = "Please say confirm or cancel."
)

// recognize runs one recognition in its own goroutine, owned by the connection.
func (c *Conn) recognize(t *turn, start wire.AudioStart, audio []int16) {
	defer c.wg.Done()
	defer func() {
		<-c.svc.queue
		c.mu.Lock()
		c.busy = false
		c.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(c.ctx, c.svc.cfg.RecognizeTimeout)
	defer cancel()
	select {
	case c.svc.slots <- struct{}{}:
	case <-ctx.Done():
		c.svc.m.Busy.Inc()
		c.reply(t.ref, wire.NewError(wire.CodeRateLimited, "the gateway is busy recognising speech; say it again in a moment"))
		return
	}
	began := time.Now()
	res, err := c.svc.cfg.Recognizer.Recognize(ctx, asr.Request{Mode: start.Mode, Audio: audio, Lang: start.Lang, Speaker: c.voice})
	<-c.svc.slots
	if err != nil {
		if errors.Is(err, context.Canceled) && c.ctx.Err() != nil {
			return // the connection ended
		}
		c.log.Error("recognising", "ref", t.ref, "err", err)
		c.svc.m.outcome(start.Mode, "error")
		c.reply(t.ref, wire.NewError(wire.CodeInternal, "speech recognition failed; say it again"))
		return
	}
	if d := float64(len(audio)) / 16000; d > 0 {
		c.svc.m.RealTime.Observe(time.Since(began).Seconds() / d)
	}
	t.finalAt = c.svc.cfg.Now()
	c.svc.m.stage("final", t.finalAt.Sub(t.endAt))
	if start.Mode == wire.ModeConfirm {
		c.answer(t, res)
		return
	}
	c.command(t, start, res)
}

// answer tells the device what it answered to a prompt; the device signs the decision.
func (c *Conn) answer(t *turn, res asr.Result) {
	r := &wire.SpeechResult{Stream: t.stream, Ref: t.ref, Mode: wire.ModeConfirm, Tx: t.tx, Text: res.Text}
	if res.Accepted {
		a, pin, err := grammar.ParseAnswer(res.Text)
		if err == nil {
			r.Outcome, r.Answer, r.PIN = wire.SpeechAccepted, a, pin
		}
	}
	if r.Outcome == "" {
		r.Outcome, r.Reason = wire.SpeechNotUnderstood, notUnderstoodAnswer
	}
	c.svc.m.outcome(wire.ModeConfirm, r.Outcome)
	c.sendEvent(r)
	if r.Answer == wire.AnswerRepeat {
		c.repeat(t.tx)
	}
	c.finishTurn(t)
}

// command hands an understood command to the core, as the utterance the device would
// have sent as text, under the audio.start's id.
func (c *Conn) command(t *turn, start wire.AudioStart, res asr.Result) {
	r := &wire.SpeechResult{Stream: t.stream, Ref: t.ref, Mode: wire.ModeCommand, Text: res.Text}
	if res.Accepted {
		if _, err := c.svc.cfg.Grammar.Parse(res.Text); err != nil {
			res.Accepted = false // a recogniser's word is not enough: the grammar decides
		}
	}
	if !res.Accepted {
		r.Outcome, r.Reason = wire.SpeechNotUnderstood, notUnderstoodCommand
		c.svc.m.outcome(wire.ModeCommand, r.Outcome)
		c.sendEvent(r)
		c.sayNotUnderstood(t, notUnderstoodCommand)
		return
	}
	r.Outcome = wire.SpeechAccepted
	c.svc.m.outcome(wire.ModeCommand, r.Outcome)
	c.sendEvent(r)
	frame, err := wire.Encode(wire.Envelope{ID: t.ref, TS: c.svc.cfg.Now().UnixMilli()},
		&wire.Utterance{Text: res.Text, Lang: start.Lang, PTT: start.PTT})
	if err != nil {
		c.log.Error("encoding the utterance", "ref", t.ref, "err", err)
		return
	}
	c.mu.Lock()
	c.turns.put(t)
	c.mu.Unlock()
	if err := c.sc.Handle(c.ctx, frame); err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			c.t.Close(we.Code, we.Message)
		}
	}
}
