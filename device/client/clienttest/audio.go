package clienttest

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// AudioStream is an uplink audio stream the fake received. The fake has no
// recogniser: Config.Hear says what it heard.
type AudioStream struct {
	Ref   string // the audio.start's envelope id
	Start wire.AudioStart
	// Frames counts binary frames, or RTP packets over WebRTC.
	Frames int
	// PCM holds a PCM stream's samples, at Start.Rate.
	PCM []int16
	// Opus holds an Opus stream's packets (binary frame payloads or RTP payloads).
	Opus [][]byte
	// End is the audio.end reason (wire.EndPTT also for a frame with wire.FlagEnd),
	// or "auto" when the fake's endpointer found the end: 700 ms of digital silence
	// after sound, in a PCM stream.
	End wire.AudioEndReason
}

// DefaultHear hears "buy two oat lattes" in a command and "yes" in a confirm.
func DefaultHear(s AudioStream) string {
	if s.Start.Mode == wire.ModeConfirm {
		return "yes"
	}
	return "buy two oat lattes"
}

// Tone returns d of a sine tone at 16 kHz, at about a quarter of full scale.
func Tone(hz float64, d time.Duration) []int16 {
	pcm := make([]int16, int(d.Seconds()*16000))
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/16000))
	}
	return pcm
}

// endSilence is the fake endpointer's trailing silence.
const endSilence = 700 * time.Millisecond

// audioEventLocked handles audio.start and audio.end.
func (g *Gateway) audioEventLocked(d *device, env wire.Envelope) {
	switch env.Type {
	case wire.TypeAudioStart:
		a := new(wire.AudioStart)
		if err := wire.DecodeBody(env, a); err != nil {
			g.refuseLocked(d, env.ID, "", wire.CodeBadRequest, err.Error())
			return
		}
		if d.audio != nil {
			g.refuseLocked(d, env.ID, "", wire.CodeBadRequest, fmt.Sprintf("stream %d is still open", d.audio.Start.Stream))
			return
		}
		d.audio = &AudioStream{Ref: env.ID, Start: *a}
	case wire.TypeAudioEnd:
		a := new(wire.AudioEnd)
		if err := wire.DecodeBody(env, a); err != nil {
			g.refuseLocked(d, env.ID, "", wire.CodeBadRequest, err.Error())
			return
		}
		if d.audio == nil || d.audio.Start.Stream != a.Stream {
			g.refuseLocked(d, env.ID, "", wire.CodeNoStream, fmt.Sprintf("stream %d is not open", a.Stream))
			return
		}
		g.finishLocked(d, a.Reason)
	}
}

// audioFrameLocked takes one binary audio frame.
func (g *Gateway) audioFrameLocked(d *device, frame []byte) {
	h, payload, err := wire.DecodeAudioFrame(frame)
	if err != nil {
		g.refuseLocked(d, "", "", wire.CodeBadRequest, err.Error())
		return
	}
	s := d.audio
	if s == nil || s.Start.Stream != h.Stream {
		return // after the end, or never opened: dropped, as the gateway does
	}
	s.Frames++
	if h.Codec == wire.CodecOpus {
		s.Opus = append(s.Opus, slices.Clone(payload))
	} else {
		for i := 0; i+1 < len(payload); i += 2 {
			s.PCM = append(s.PCM, int16(binary.LittleEndian.Uint16(payload[i:])))
		}
		if endpointed(s.PCM, s.Start.Rate) {
			g.finishLocked(d, "auto")
			return
		}
	}
	if h.Flags&wire.FlagEnd != 0 {
		g.finishLocked(d, wire.EndPTT)
	}
}

// rtpLocked takes one Opus RTP payload from a WebRTC microphone track.
func (g *Gateway) rtpLocked(d *device, payload []byte) {
	if d.audio == nil || d.audio.Start.Codec != "opus" {
		d.rtpDropped++
		return
	}
	d.audio.Frames++
	d.audio.Opus = append(d.audio.Opus, slices.Clone(payload))
}

// endpointed reports whether pcm ends with endSilence of digital silence after sound.
func endpointed(pcm []int16, rate int) bool {
	n := int(endSilence.Seconds() * float64(rate))
	if len(pcm) <= n {
		return false
	}
	for _, v := range pcm[len(pcm)-n:] {
		if v > 64 || v < -64 {
			return false
		}
	}
	return slices.ContainsFunc(pcm[:len(pcm)-n], func(v int16) bool { return v > 64 || v < -64 })
}

// finishLocked ends the open stream: speech.result, then, for a command, the
// utterance it carried.
func (g *Gateway) finishLocked(d *device, reason wire.AudioEndReason) {
	s := d.audio
	d.audio = nil
	s.End = reason
	d.streams = append(d.streams, *s)
	r := &wire.SpeechResult{Stream: s.Start.Stream, Ref: s.Ref, Mode: s.Start.Mode, Tx: s.Start.Tx}
	if reason == wire.EndCancel {
		r.Outcome = wire.SpeechCancelled
		g.sendLocked(d, "", r)
		return
	}
	text := g.cfg.Hear(*s)
	r.Outcome, r.Text = wire.SpeechAccepted, text
	if s.Start.Mode == wire.ModeConfirm {
		switch strings.ToLower(text) {
		case "yes", "confirm":
			r.Answer = wire.AnswerApprove
		case "no", "cancel":
			r.Answer = wire.AnswerDecline
		default:
			r.Outcome, r.Reason = wire.SpeechNotUnderstood, "Say yes or no."
		}
	}
	if s.Start.Mode == wire.ModeCommand && g.cfg.NotUnderstood != nil {
		if why := g.cfg.NotUnderstood(text); why != "" {
			r.Outcome, r.Reason = wire.SpeechNotUnderstood, why
			g.sendLocked(d, "", r)
			return
		}
	}
	g.sendLocked(d, "", r)
	if s.Start.Mode == wire.ModeCommand {
		g.utteranceLocked(d, s.Ref, &wire.Utterance{Text: text, PTT: s.Start.PTT})
	}
}

// speakLocked sends a prompt's speech to a device that asked for it: prompt.audio,
// then 100 ms PCM frames, the last with wire.FlagEnd.
func (g *Gateway) speakLocked(d *device, req *wire.ConfirmRequest) {
	if !d.promptAudio || d.conn == nil {
		return
	}
	pcm := g.cfg.PromptPCM(req.Text)
	d.outStream++
	id := d.outStream
	g.sendLocked(d, "", &wire.PromptAudio{Tx: req.Tx, Ref: req.Ref, Stream: id, Codec: "pcm", Rate: 16000,
		Duration: len(pcm) / 16, Text: req.Text})
	const step = 1600
	for off, seq := 0, uint32(0); ; seq++ {
		end := min(off+step, len(pcm))
		h := wire.AudioHeader{Codec: wire.CodecPCM, Rate: 16000, Stream: id, Seq: seq, TS: uint32(off / 16)}
		if end == len(pcm) {
			h.Flags = wire.FlagEnd
		}
		payload := make([]byte, 0, 2*(end-off))
		for _, v := range pcm[off:end] {
			payload = binary.LittleEndian.AppendUint16(payload, uint16(v))
		}
		frame, err := wire.AppendAudioFrame(nil, h, payload)
		if err != nil || d.conn == nil || d.conn.writeBinary(frame) != nil {
			return
		}
		if off = end; end == len(pcm) {
			return
		}
	}
}

// SendEvent sends a message without a seq to a connected device (a prompt.audio, a
// speech.result), as the gateway's speech layer does.
func (g *Gateway) SendEvent(deviceID string, b wire.Body) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.devices[deviceID]
	if d == nil || d.conn == nil {
		return fmt.Errorf("clienttest: %s is not connected", deviceID)
	}
	g.sendLocked(d, "", b)
	return nil
}

// SendAudio sends one binary audio frame to a connected device.
func (g *Gateway) SendAudio(deviceID string, frame []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.devices[deviceID]
	if d == nil || d.conn == nil {
		return fmt.Errorf("clienttest: %s is not connected", deviceID)
	}
	return d.conn.writeBinary(frame)
}
