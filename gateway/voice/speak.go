package voice

import (
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech"
)

// turn is one spoken turn's timeline, for turn.metrics.
type turn struct {
	ref    string
	stream uint32
	mode   wire.SpeechMode
	tx     string
	speech time.Duration // stream offset of the end of speech
	endAt  time.Time     // gateway clock: end of speech found
	// Later stages; zero when they did not happen.
	finalAt, agentAt, promptAt, audioAt time.Time
}

// turns holds the recognised commands waiting for the agent's answer, oldest first.
type turns struct{ list []*turn }

// maxTurns bounds the turns a connection remembers; an agent slower than that many
// commands loses only the metrics of the oldest.
const maxTurns = 16

func (ts *turns) put(t *turn) {
	if len(ts.list) == maxTurns {
		ts.list = ts.list[1:]
	}
	ts.list = append(ts.list, t)
}

func (ts *turns) take(ref string) *turn {
	if ref == "" {
		return nil
	}
	for i, t := range ts.list {
		if t.ref == ref {
			ts.list = append(ts.list[:i], ts.list[i+1:]...)
			return t
		}
	}
	return nil
}

// finishTurn sends the turn's metrics to the device and to Prometheus.
func (c *Conn) finishTurn(t *turn) {
	since := func(at time.Time) int64 {
		if at.IsZero() {
			return 0
		}
		return max(at.Sub(t.endAt).Milliseconds(), 0)
	}
	m := &wire.TurnMetrics{Ref: t.ref, Tx: t.tx, Stream: t.stream, Recognizer: c.svc.Recognizer(),
		SpeechMS: t.speech.Milliseconds(), FinalMS: since(t.finalAt), AgentMS: since(t.agentAt),
		PromptMS: since(t.promptAt), FirstAudio: since(t.audioAt)}
	for stage, at := range map[string]time.Time{"agent": t.agentAt, "prompt": t.promptAt, "first_audio": t.audioAt} {
		if !at.IsZero() {
			c.svc.m.stage(stage, at.Sub(t.endAt))
		}
	}
	c.sendEvent(m)
}

// queuePrompt queues a prompt for the speaker goroutine. Called with c.mu held.
func (c *Conn) queuePrompt(p prompt, t *turn) {
	if len(c.prompts) == maxPrompts {
		c.svc.m.PromptsDropped.Inc()
		if old := c.prompts[0]; old.turn != nil {
			c.finishTurn(old.turn) // it only queues an event: safe under c.mu
		}
		c.prompts = c.prompts[1:]
	}
	p.turn = t
	c.prompts = append(c.prompts, p)
	if p.tx != "" {
		c.spoken.put(p.tx, p.text)
	}
	if !c.speaking {
		c.speaking = true
		c.wg.Add(1)
		go c.speaker()
	}
}

// repeat speaks the prompt of tx again.
func (c *Conn) repeat(tx string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if text, ok := c.spoken.get(tx); ok && c.speak && !c.gone {
		c.queuePrompt(prompt{tx: tx, text: text, at: c.svc.cfg.Now()}, nil)
	}
}

// sayNotUnderstood speaks the apology for a command that was not understood.
func (c *Conn) sayNotUnderstood(t *turn, text string) {
	c.mu.Lock()
	speak := c.speak && !c.gone
	if speak {
		c.queuePrompt(prompt{ref: t.ref, text: text, at: c.svc.cfg.Now()}, t)
	}
	c.mu.Unlock()
	if !speak {
		c.finishTurn(t)
	}
}

// speaker speaks the queued prompts in order, then ends. It is started by queuePrompt
// and owned by the connection (c.wg).
func (c *Conn) speaker() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		if len(c.prompts) == 0 || c.gone {
			c.speaking = false
			c.prompts = nil
			c.mu.Unlock()
			return
		}
		p := c.prompts[0]
		c.prompts = c.prompts[1:]
		c.outID++
		id := c.outID
		c.mu.Unlock()
		c.say(p, id)
	}
}

// say synthesises one prompt and streams it: prompt.audio, then binary frames, the last
// with wire.FlagEnd.
func (c *Conn) say(p prompt, id uint32) {
	t := p.turn
	pcm, err := c.svc.cfg.Speaker.Say(c.ctx, p.text)
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.Error("synthesising a prompt", "tx", p.tx, "err", err)
			c.svc.m.PromptsDropped.Inc()
		}
		if t != nil {
			c.finishTurn(t)
		}
		return
	}
	if t != nil {
		t.promptAt = c.svc.cfg.Now()
	}
	frameSamples := int(c.svc.cfg.PromptFrame.Seconds() * speech.Rate)
	c.sendEvent(&wire.PromptAudio{Tx: p.tx, Ref: p.ref, Stream: id, Codec: wire.CodecPCM.String(), Rate: speech.Rate,
		Duration: len(pcm) * 1000 / speech.Rate, Text: p.text})
	var buf []byte
	for off, seq := 0, uint32(0); off < len(pcm) || seq == 0; seq++ {
		end := min(off+frameSamples, len(pcm))
		h := wire.AudioHeader{Codec: wire.CodecPCM, Rate: speech.Rate, Stream: id, Seq: seq, TS: uint32(off * 1000 / speech.Rate)}
		if end == len(pcm) {
			h.Flags = wire.FlagEnd
		}
		var err error
		if buf, err = wire.AppendAudioFrame(buf[:0], h, speech.AppendPCM(nil, pcm[off:end])); err != nil {
			c.log.Error("framing prompt audio", "err", err)
			return
		}
		frame := append([]byte(nil), buf...) // the transport keeps it until written
		if err := c.t.SendBinary(c.ctx, frame); err != nil {
			c.log.Debug("prompt audio not sent", "tx", p.tx, "err", err)
			return
		}
		if seq == 0 && t != nil {
			t.audioAt = c.svc.cfg.Now()
			c.finishTurn(t)
			t = nil
		}
		c.svc.m.PromptAudioSeconds.Add(float64(end-off) / speech.Rate)
		off = end
		if end == len(pcm) {
			break
		}
	}
}

// spoken remembers the last prompts' texts by tx, for "repeat".
type spoken struct{ tx, text []string }

func (s *spoken) put(tx, text string) {
	if _, ok := s.get(tx); ok {
		return
	}
	if len(s.tx) == maxPrompts {
		s.tx, s.text = s.tx[1:], s.text[1:]
	}
	s.tx, s.text = append(s.tx, tx), append(s.text, text)
}

func (s *spoken) get(tx string) (string, bool) {
	for i := range s.tx {
		if s.tx[i] == tx {
			return s.text[i], true
		}
	}
	return "", false
}
