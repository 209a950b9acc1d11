package client

import (
	"context"
	"fmt"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/opus"
)

// EndAuto, as SpeakOptions.End, leaves the end of speech to the gateway's endpointer:
// Speak sends no audio.end, but up to TrailingSilence of silence after the speech,
// stopping early when the stream's speech.result arrives. It is not a wire reason and
// never travels.
const EndAuto wire.AudioEndReason = "auto"

// Speech limits.
const (
	// MaxPromptAudio bounds one prompt's speech; longer streams are cut.
	MaxPromptAudio = 30 * time.Second
	// TrailingSilence is what Speak sends after the speech with EndAuto.
	TrailingSilence = 1500 * time.Millisecond
	// maxAssembling bounds the prompt streams being received at once.
	maxAssembling = 2
	// frameDur is the length of one uplink audio frame or Opus packet.
	frameDur = 20 * time.Millisecond
	// rtcLeadIn is silence sent at real time before the speech over WebRTC, and
	// rtcTail the wait after it before audio.end: events (data channel) and audio
	// (RTP) travel separately, and the gateway drops packets outside a stream.
	rtcLeadIn = 100 * time.Millisecond
	rtcTail   = 100 * time.Millisecond
)

// SpeakOptions describe one spoken utterance. The zero value is a push-to-talk-less
// command in 16 kHz PCM, sent as fast as the link takes, ended with audio.end.
type SpeakOptions struct {
	Mode wire.SpeechMode // default wire.ModeCommand
	Tx   string          // confirm mode: the prompt answered
	PTT  bool            // the user pressed push-to-talk (purchases need it)
	// Codec over WebSocket: wire.CodecPCM (default) or wire.CodecOpus (needs the
	// libopus build tag). Over WebRTC the audio is always Opus on the track.
	Codec wire.Codec
	// Rate is the PCM rate to send: 8000, 16000 (default), 24000 or 48000. Opus is
	// always 48000.
	Rate int
	// Realtime paces frames at real time (20 ms each); false sends them as fast as the
	// link takes.
	Realtime bool
	// End is how the stream ends: wire.EndPTT (default; audio.end after the last
	// frame), wire.EndVAD, wire.EndCancel (audio.end with that reason), or EndAuto.
	End wire.AudioEndReason
}

// Speak streams pcm (16 kHz mono) as one utterance: audio.start, the audio in 20 ms
// frames (WebSocket: binary frames; WebRTC: Opus packets on the microphone track),
// then audio.end. It returns the audio.start's message id, the utterance's ref: the
// speech.result (Events: TypeSpeechResult) and the transaction it opens carry it.
// MQTT carries no audio: ErrAudioUnsupported. While the client reconnects Speak waits
// for a connection, bounded by ctx; a connection lost during the utterance ends it
// with ErrLinkChanged. If Speak fails after audio.start it cancels the stream.
func (c *Client) Speak(ctx context.Context, pcm []int16, opt SpeakOptions) (msgID string, err error) {
	if opt.Mode == "" {
		opt.Mode = wire.ModeCommand
	}
	switch opt.End {
	case "":
		opt.End = wire.EndPTT
	case wire.EndPTT, wire.EndVAD, wire.EndCancel, EndAuto:
	default:
		return "", fmt.Errorf("client: speak: end %q: want ptt, vad, cancel or auto", opt.End)
	}
	l, err := c.upLink(ctx)
	if err != nil {
		return "", fmt.Errorf("client: speak: %w", err)
	}
	if _, ok := l.(*mqttLink); ok {
		return "", fmt.Errorf("client: speak: %w over MQTT", ErrAudioUnsupported)
	}
	ol, rtc := l.(opusLink)
	codec, rate := opt.Codec, opt.Rate
	switch {
	case rtc:
		codec = wire.CodecOpus
	case codec == wire.CodecUnknown:
		codec = wire.CodecPCM
	}
	if rate == 0 {
		rate = speech.Rate
	}
	if codec == wire.CodecOpus {
		rate = 48000
	}
	enc, err := newEncoder(codec, rate, c.cfg.WebRTC.Bitrate)
	if err != nil {
		return "", fmt.Errorf("client: speak: %w", err)
	}
	stream := c.streamID.Add(1)
	start := &wire.AudioStart{Stream: stream, Codec: codec.String(), Rate: rate, Mode: opt.Mode, Tx: opt.Tx, PTT: opt.PTT}
	if err := start.Validate(); err != nil {
		return "", fmt.Errorf("client: speak: %w", err)
	}
	var heard <-chan struct{}
	if opt.End == EndAuto {
		heard = c.watch(stream)
		defer c.unwatch(stream)
	}
	id := c.cfg.NewID()
	frame, err := wire.Encode(wire.Envelope{ID: id, TS: c.cfg.Now().UnixMilli()}, start)
	if err != nil {
		return "", fmt.Errorf("client: speak: %w", err)
	}
	if err := l.write(ctx, frame); err != nil {
		return "", fmt.Errorf("client: speak: %w", err)
	}
	s := &speaker{c: c, l: l, ol: ol, enc: enc, stream: stream, realtime: opt.Realtime, began: time.Now()}
	if err := s.run(ctx, pcm, rtc, heard); err != nil {
		s.end(wire.EndCancel)
		return id, fmt.Errorf("client: speak: %w", err)
	}
	if opt.End == EndAuto {
		return id, nil
	}
	if rtc {
		if err := sleep(ctx, rtcTail); err != nil {
			s.end(wire.EndCancel)
			return id, fmt.Errorf("client: speak: %w", err)
		}
	}
	if err := s.sendEnd(ctx, opt.End); err != nil {
		return id, fmt.Errorf("client: speak: %w", err)
	}
	return id, nil
}

// ConfirmVoice answers a prompt with a spoken decision: Confirm with wire.MethodVoice,
// after the gateway's speech.result said what the user answered.
func (c *Client) ConfirmVoice(ctx context.Context, req *wire.ConfirmRequest, d wire.Decision) error {
	return c.Confirm(ctx, req, d, wire.MethodVoice)
}

// speaker sends one utterance's audio.
type speaker struct {
	c        *Client
	l        link
	ol       opusLink // WebRTC: the track; nil over WebSocket
	enc      *encoder
	stream   uint32
	realtime bool
	began    time.Time
	n        int    // frames paced so far (real time)
	seq      uint32 // the next binary frame's seq
	buf      []byte
}

// run sends the lead-in (WebRTC), the speech and the trailing silence (EndAuto).
func (s *speaker) run(ctx context.Context, pcm []int16, rtc bool, heard <-chan struct{}) error {
	silence := make([]int16, speech.FrameSamples)
	if rtc {
		for range int(rtcLeadIn / frameDur) {
			if err := s.frame(ctx, silence, false, true); err != nil {
				return err
			}
		}
	}
	for off := 0; off < len(pcm) || off == 0; off += speech.FrameSamples {
		end := min(off+speech.FrameSamples, len(pcm))
		last := end == len(pcm) && heard == nil
		if err := s.frame(ctx, pcm[off:end], last, s.realtime); err != nil {
			return err
		}
		if end == len(pcm) {
			break
		}
	}
	if heard == nil {
		return nil
	}
	n := int(TrailingSilence / frameDur)
	for i := range n {
		select {
		case <-heard:
			return nil
		default:
		}
		if err := s.frame(ctx, silence, i == n-1, s.realtime); err != nil {
			return err
		}
	}
	return nil
}

// frame encodes 20 ms (or less, at the end) of 16 kHz speech and sends what it makes.
func (s *speaker) frame(ctx context.Context, pcm []int16, last, pace bool) error {
	if !s.c.current(s.l) {
		return ErrLinkChanged
	}
	if pace {
		if err := sleep(ctx, time.Until(s.began.Add(time.Duration(s.n)*frameDur))); err != nil {
			return err
		}
	}
	s.n++
	payloads, err := s.enc.push(pcm, last)
	if err != nil {
		return err
	}
	for _, p := range payloads {
		if s.ol != nil {
			err = s.ol.writeOpus(p)
		} else {
			h := wire.AudioHeader{Codec: s.enc.codec, Rate: s.enc.rate, Stream: s.stream, Seq: s.seq,
				TS: uint32(time.Duration(s.seq) * frameDur / time.Millisecond)}
			if s.buf, err = wire.AppendAudioFrame(s.buf[:0], h, p); err == nil {
				err = s.l.writeAudio(ctx, s.buf)
			}
			s.seq++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *speaker) sendEnd(ctx context.Context, reason wire.AudioEndReason) error {
	frame, err := wire.Encode(wire.Envelope{ID: s.c.cfg.NewID(), TS: s.c.cfg.Now().UnixMilli()},
		&wire.AudioEnd{Stream: s.stream, Reason: reason})
	if err != nil {
		return err
	}
	if !s.c.current(s.l) {
		return ErrLinkChanged
	}
	return s.l.write(ctx, frame)
}

// end cancels the stream after a failure, best effort, within a second.
func (s *speaker) end(reason wire.AudioEndReason) {
	ctx, cancel := context.WithTimeout(s.c.ctx, time.Second)
	defer cancel()
	if err := s.sendEnd(ctx, reason); err != nil {
		s.c.log.Debug("audio.end not sent", "stream", s.stream, "err", err)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watch returns a channel closed when the stream's speech.result arrives.
func (c *Client) watch(stream uint32) <-chan struct{} {
	ch := make(chan struct{})
	c.resultsMu.Lock()
	c.results[stream] = ch
	c.resultsMu.Unlock()
	return ch
}

func (c *Client) unwatch(stream uint32) {
	c.resultsMu.Lock()
	delete(c.results, stream)
	c.resultsMu.Unlock()
}

// heard tells a waiting Speak that its stream's speech.result arrived.
func (c *Client) heard(stream uint32) {
	c.resultsMu.Lock()
	defer c.resultsMu.Unlock()
	if ch, ok := c.results[stream]; ok {
		close(ch)
		delete(c.results, stream)
	}
}

// encoder turns 16 kHz speech into the payloads of a stream: PCM at its rate, or
// 20 ms Opus packets at 48 kHz.
type encoder struct {
	codec wire.Codec
	rate  int
	res   *speech.Resampler // nil at 16 kHz
	opus  *opus.Encoder
	buf   []int16 // resampled samples not yet in a packet (Opus)
}

// opusFrame is one 20 ms Opus frame at 48 kHz.
const opusFrame = 960

func newEncoder(codec wire.Codec, rate, bitrate int) (*encoder, error) {
	e := &encoder{codec: codec, rate: rate}
	var err error
	if rate != speech.Rate {
		if e.res, err = speech.NewResampler(speech.Rate, rate); err != nil {
			return nil, err
		}
	}
	if codec == wire.CodecOpus {
		if e.opus, err = opus.NewEncoder(bitrate); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAudioUnsupported, err)
		}
	}
	return e, nil
}

// push encodes in; with last, it drains the resampler and pads the last Opus frame.
func (e *encoder) push(in []int16, last bool) ([][]byte, error) {
	samples := in
	if e.res != nil {
		samples = e.res.Process(nil, in)
		if last {
			samples = e.res.Flush(samples)
		}
	}
	if e.codec == wire.CodecPCM {
		if len(samples) == 0 {
			return nil, nil
		}
		return [][]byte{speech.AppendPCM(nil, samples)}, nil
	}
	e.buf = append(e.buf, samples...)
	if last && len(e.buf)%opusFrame != 0 {
		e.buf = append(e.buf, make([]int16, opusFrame-len(e.buf)%opusFrame)...)
	}
	var out [][]byte
	for len(e.buf) >= opusFrame {
		p, err := e.opus.Encode(e.buf[:opusFrame])
		if err != nil {
			return out, err
		}
		out = append(out, append([]byte(nil), p...))
		e.buf = e.buf[opusFrame:]
	}
	return out, nil
}
