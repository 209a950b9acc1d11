package voice

import (
	"context"
	"fmt"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/opus"
)

// stream is one uplink audio stream: decoding, resampling and endpointing. It is
// guarded by Conn.mu.
type stream struct {
	id    uint32
	ref   string // the audio.start's envelope id
	start wire.AudioStart
	codec wire.Codec
	res   *speech.Resampler // PCM not at 16 kHz
	dec   *opus.Decoder     // opus
	ep    *speech.Endpointer
	began time.Time
	next  uint32 // the seq expected next
	pcm   []int16
}

func (c *Conn) start(ref string, a *wire.AudioStart) *wire.Error {
	if c.svc.cfg.Recognizer == nil {
		return wire.NewError(wire.CodeSpeechUnavailable, "this gateway has no speech recogniser; send the utterance as text")
	}
	if ref == "" {
		return wire.NewError(wire.CodeBadRequest, "audio.start needs an envelope id")
	}
	codec, _ := wire.ParseCodec(a.Codec) // validated
	st := &stream{id: a.Stream, ref: ref, start: *a, codec: codec, began: c.svc.cfg.Now()}
	var err error
	switch {
	case codec == wire.CodecOpus:
		st.dec, err = opus.NewDecoder()
	case a.Rate != speech.Rate:
		st.res, err = speech.NewResampler(a.Rate, speech.Rate)
	}
	if err != nil {
		c.log.Error("opening an audio stream", "err", err)
		return wire.NewError(wire.CodeInternal, "could not open the audio stream; retry")
	}
	profile := speech.CommandProfile
	if a.Mode == wire.ModeConfirm {
		profile = speech.ConfirmProfile
	}
	st.ep = speech.NewEndpointer(profile)

	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.stream != nil:
		return wire.NewError(wire.CodeBadRequest, fmt.Sprintf("stream %d is still open; end it first", c.stream.id))
	case c.busy:
		return wire.NewError(wire.CodeRateLimited, "the last utterance is still being recognised; retry")
	}
	c.stream = st
	c.svc.m.Streams.WithLabelValues(string(a.Mode), codec.String()).Inc()
	return nil
}

func (c *Conn) end(a *wire.AudioEnd) *wire.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stream
	if st == nil || st.id != a.Stream {
		if c.ended == a.Stream && a.Stream != 0 {
			return nil // the endpointer ended it first: the speech.result says how
		}
		return wire.NewError(wire.CodeNoStream, fmt.Sprintf("stream %d is not open", a.Stream))
	}
	switch a.Reason {
	case wire.EndCancel:
		c.stream = nil
		c.sendEvent(&wire.SpeechResult{Stream: st.id, Ref: st.ref, Mode: st.start.Mode, Outcome: wire.SpeechCancelled, Tx: st.start.Tx})
		c.svc.m.outcome(st.start.Mode, wire.SpeechCancelled)
		return nil
	case wire.EndVAD:
		if st.start.VAD {
			c.endpoint(st, st.ep.DeviceVAD(false))
			return nil
		}
	}
	c.endpoint(st, st.ep.Finish())
	return nil
}

func (c *Conn) handleAudio(_ context.Context, frame []byte) error {
	if !c.sc.Ready() {
		return wire.NewError(wire.CodeProtocolViolation, "the first message must be hello")
	}
	h, payload, err := wire.DecodeAudioFrame(frame)
	if err != nil {
		c.svc.m.AudioDropped.WithLabelValues("malformed").Inc()
		c.reply("", wire.NewError(wire.CodeBadRequest, err.Error()))
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stream
	switch {
	case st == nil || st.id != h.Stream:
		// Frames still in flight after the endpointer closed a stream land here too:
		// count them, and tell the device only about streams it never opened.
		c.svc.m.AudioDropped.WithLabelValues("no_stream").Inc()
		return nil
	case h.Codec != st.codec || h.Rate != st.start.Rate:
		c.svc.m.AudioDropped.WithLabelValues("format").Inc()
		c.reply(st.ref, wire.NewError(wire.CodeBadRequest, fmt.Sprintf("frame is %s at %d Hz; the stream is %s at %d Hz", h.Codec, h.Rate, st.codec, st.start.Rate)))
		return nil
	}
	if h.Seq != st.next {
		c.svc.m.AudioGaps.Inc()
	}
	st.next = h.Seq + 1
	if err := c.decode(st, payload); err != nil {
		c.svc.m.AudioDropped.WithLabelValues("undecodable").Inc()
		return nil
	}
	ev := st.ep.Push(st.pcm)
	if st.start.VAD {
		if h.Flags&wire.FlagSpeechStart != 0 {
			ev = max(ev, st.ep.DeviceVAD(true))
		}
		if h.Flags&wire.FlagSpeechEnd != 0 {
			ev = max(ev, st.ep.DeviceVAD(false))
		}
	}
	if h.Flags&wire.FlagEnd != 0 && !final(ev) {
		ev = st.ep.Finish()
	}
	c.endpoint(st, ev)
	return nil
}

func (c *Conn) handleOpus(_ context.Context, packet []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stream
	if st == nil || st.codec != wire.CodecOpus {
		c.svc.m.AudioDropped.WithLabelValues("no_stream").Inc()
		return
	}
	if err := c.decode(st, packet); err != nil {
		c.svc.m.AudioDropped.WithLabelValues("undecodable").Inc()
		return
	}
	c.endpoint(st, st.ep.Push(st.pcm))
}

// decode turns a payload into 16 kHz samples in st.pcm.
func (c *Conn) decode(st *stream, payload []byte) error {
	var err error
	switch st.codec {
	case wire.CodecOpus:
		st.pcm, err = st.dec.Decode(st.pcm[:0], payload)
	default:
		var in []int16
		if in, err = speech.DecodePCM(payload); err == nil {
			if st.res != nil {
				st.pcm = st.res.Process(st.pcm[:0], in)
			} else {
				st.pcm = in
			}
		}
	}
	return err
}

func final(ev speech.Event) bool {
	return ev == speech.EventEnd || ev == speech.EventCap || ev == speech.EventNoSpeech
}

// endpoint acts on what the endpointer found. Called with c.mu held.
func (c *Conn) endpoint(st *stream, ev speech.Event) {
	if !final(ev) {
		return
	}
	c.stream, c.ended = nil, st.id
	mode := st.start.Mode
	if ev == speech.EventNoSpeech {
		c.svc.m.outcome(mode, wire.SpeechNoSpeech)
		c.sendEvent(&wire.SpeechResult{Stream: st.id, Ref: st.ref, Mode: mode, Outcome: wire.SpeechNoSpeech, Tx: st.start.Tx,
			Reason: "I did not hear anything."})
		return
	}
	if ev == speech.EventCap {
		c.svc.m.Capped.Inc()
	}
	t := &turn{ref: st.ref, stream: st.id, mode: mode, tx: st.start.Tx, speech: st.ep.SpeechEnd(), endAt: c.svc.cfg.Now()}
	c.svc.m.SpeechSeconds.Observe(t.speech.Seconds())
	select {
	case c.svc.queue <- struct{}{}:
	default:
		c.svc.m.Busy.Inc()
		c.reply(st.ref, wire.NewError(wire.CodeRateLimited, "the gateway is busy recognising speech; say it again in a moment"))
		return
	}
	c.busy = true
	audio := st.ep.Speech()
	c.wg.Add(1)
	go c.recognize(t, st.start, audio)
}
