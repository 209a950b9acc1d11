package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Speech travels in streams. A device opens one with audio.start (an event, on every
// transport), sends the audio (WebSocket: binary frames with an AudioHeader; WebRTC: the
// Opus track of the peer connection), and ends it with audio.end, or lets the gateway's
// endpointer find the end of speech. The gateway answers with speech.result, then, for a
// command, with the usual transaction messages; turn.metrics follows each turn. The
// spoken prompt comes back as prompt.audio followed by binary frames of its own stream
// (WebSocket binary frames, or binary messages on the WebRTC data channel), always after
// the confirm.request that carries the same text.

// Audio message types.
const (
	TypeAudioStart   Type = "audio.start"   // device -> gateway, opens a stream
	TypeAudioEnd     Type = "audio.end"     // device -> gateway, the device's end of speech
	TypeSpeechResult Type = "speech.result" // gateway -> device, what was recognised
	TypePromptAudio  Type = "prompt.audio"  // gateway -> device, a spoken prompt follows
	TypeTurnMetrics  Type = "turn.metrics"  // gateway -> device, timings of one turn
)

// Codec is how an audio frame's payload is encoded. The zero value is not a codec.
type Codec uint8

// Codecs.
const (
	CodecUnknown Codec = 0
	CodecPCM     Codec = 1 // signed 16-bit little-endian mono samples
	CodecOpus    Codec = 2 // one Opus packet (RFC 6716), decoded at 48 kHz
)

func (c Codec) String() string {
	switch c {
	case CodecPCM:
		return "pcm"
	case CodecOpus:
		return "opus"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec maps "pcm" and "opus" to their Codec.
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "pcm":
		return CodecPCM, nil
	case "opus":
		return CodecOpus, nil
	}
	return CodecUnknown, fmt.Errorf("codec: %q, want \"pcm\" or \"opus\"", s)
}

// Sample rates a stream may use. PCM streams may use any of them; Opus streams are
// 48 kHz (Opus decodes at 48 kHz whatever the encoder's bandwidth was).
var SampleRates = []int{8000, 16000, 24000, 48000}

// ValidRate reports whether r is one of SampleRates.
func ValidRate(r int) bool {
	for _, s := range SampleRates {
		if s == r {
			return true
		}
	}
	return false
}

// Audio frame flags.
const (
	// FlagEnd marks the last frame of a stream: the device ended it (push-to-talk
	// released). It is the binary form of audio.end with reason "ptt".
	FlagEnd uint8 = 1 << 0
	// FlagSpeechStart and FlagSpeechEnd carry the device's own voice activity detection,
	// honoured when the stream's audio.start said vad: true.
	FlagSpeechStart uint8 = 1 << 1
	FlagSpeechEnd   uint8 = 1 << 2

	knownFlags = FlagEnd | FlagSpeechStart | FlagSpeechEnd
)

// Audio frame limits.
const (
	// AudioHeaderBytes is the size of the header in front of every binary audio frame.
	AudioHeaderBytes = 16
	// MaxAudioPayload bounds one frame's payload: 80 ms of 48 kHz PCM, or any Opus packet.
	MaxAudioPayload = 7680
	// AudioVersion is the header version this package writes and reads.
	AudioVersion = 1
)

// ErrAudioFrame reports a binary audio frame that is malformed; the message says how.
var ErrAudioFrame = errors.New("wire: bad audio frame")

// AudioHeader leads every binary audio frame. On the wire it is 16 bytes, big-endian:
//
//	offset size field
//	0      1    version (1)
//	1      1    codec (1 pcm, 2 opus)
//	2      1    flags (FlagEnd, FlagSpeechStart, FlagSpeechEnd; other bits must be 0)
//	3      1    sample rate in kHz (8, 16, 24 or 48)
//	4      4    stream id, as in audio.start / prompt.audio
//	8      4    seq, the frame's number in its stream, from 0
//	12     4    timestamp, milliseconds since the stream's first frame
//
// and the payload follows, at most MaxAudioPayload bytes (PCM: an even number of bytes).
type AudioHeader struct {
	Codec  Codec
	Flags  uint8
	Rate   int // Hz
	Stream uint32
	Seq    uint32
	TS     uint32 // ms since the stream's first frame
}

// AppendAudioFrame appends the frame of h and payload to dst.
func AppendAudioFrame(dst []byte, h AudioHeader, payload []byte) ([]byte, error) {
	if err := h.validate(len(payload)); err != nil {
		return dst, err
	}
	dst = append(dst, AudioVersion, byte(h.Codec), h.Flags, byte(h.Rate/1000))
	dst = binary.BigEndian.AppendUint32(dst, h.Stream)
	dst = binary.BigEndian.AppendUint32(dst, h.Seq)
	dst = binary.BigEndian.AppendUint32(dst, h.TS)
	return append(dst, payload...), nil
}

// DecodeAudioFrame splits a binary frame into its header and payload. The payload
// aliases frame.
func DecodeAudioFrame(frame []byte) (AudioHeader, []byte, error) {
	var h AudioHeader
	if len(frame) < AudioHeaderBytes {
		return h, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrAudioFrame, len(frame), AudioHeaderBytes)
	}
	if frame[0] != AudioVersion {
		return h, nil, fmt.Errorf("%w: header version %d, want %d", ErrAudioFrame, frame[0], AudioVersion)
	}
	h = AudioHeader{
		Codec: Codec(frame[1]), Flags: frame[2], Rate: int(frame[3]) * 1000,
		Stream: binary.BigEndian.Uint32(frame[4:]), Seq: binary.BigEndian.Uint32(frame[8:]), TS: binary.BigEndian.Uint32(frame[12:]),
	}
	payload := frame[AudioHeaderBytes:]
	if err := h.validate(len(payload)); err != nil {
		return AudioHeader{}, nil, err
	}
	return h, payload, nil
}

func (h AudioHeader) validate(n int) error {
	switch {
	case h.Codec != CodecPCM && h.Codec != CodecOpus:
		return fmt.Errorf("%w: unknown codec %d", ErrAudioFrame, uint8(h.Codec))
	case h.Flags&^knownFlags != 0:
		return fmt.Errorf("%w: unknown flags %#x", ErrAudioFrame, h.Flags&^knownFlags)
	case !ValidRate(h.Rate):
		return fmt.Errorf("%w: sample rate %d Hz, want one of %v", ErrAudioFrame, h.Rate, SampleRates)
	case h.Codec == CodecOpus && h.Rate != 48000:
		return fmt.Errorf("%w: opus at %d Hz, want 48000", ErrAudioFrame, h.Rate)
	case n > MaxAudioPayload:
		return fmt.Errorf("%w: payload of %d bytes, limit %d", ErrAudioFrame, n, MaxAudioPayload)
	case h.Codec == CodecPCM && n%2 != 0:
		return fmt.Errorf("%w: pcm payload of odd length %d", ErrAudioFrame, n)
	}
	return nil
}

// SpeechMode says what a stream is: a command ("buy two oat lattes") or the answer to
// a pending prompt ("confirm"). The modes use different grammars and endpointing.
type SpeechMode string

// Speech modes.
const (
	ModeCommand SpeechMode = "command"
	ModeConfirm SpeechMode = "confirm"
)

// AudioStart opens an audio stream. The envelope's ID identifies the utterance, as for
// a text utterance: the transaction a command opens carries it as Ref, and a repeated
// audio.start with the same ID is answered with that transaction's state.
type AudioStart struct {
	Stream uint32     `json:"stream"` // the id the audio frames carry; unique per connection
	Codec  string     `json:"codec"`  // "pcm" or "opus"
	Rate   int        `json:"rate"`   // Hz, one of SampleRates; 48000 for opus
	Mode   SpeechMode `json:"mode"`   // "command" or "confirm"
	Tx     string     `json:"tx,omitempty"`
	// PTT is true when the user pressed push-to-talk or said the wake word; purchases
	// from ambient speech are refused.
	PTT bool `json:"ptt"`
	// VAD is true when the device runs its own voice activity detection and marks
	// speech with FlagSpeechStart/FlagSpeechEnd or audio.end{reason: "vad"}.
	VAD  bool   `json:"vad,omitempty"`
	Lang string `json:"lang,omitempty"` // BCP 47, default "en"
}

// AudioEndReason says why the device ended a stream.
type AudioEndReason string

// Reasons for audio.end.
const (
	EndPTT    AudioEndReason = "ptt"    // push-to-talk released: recognise what was said
	EndVAD    AudioEndReason = "vad"    // the device's VAD heard the end of speech
	EndCancel AudioEndReason = "cancel" // discard the stream
)

// AudioEnd ends a stream from the device's side.
type AudioEnd struct {
	Stream uint32         `json:"stream"`
	Reason AudioEndReason `json:"reason"`
}

// SpeechOutcome is what became of a stream.
type SpeechOutcome string

// Speech outcomes.
const (
	SpeechAccepted      SpeechOutcome = "accepted"       // understood: a command or an answer
	SpeechNotUnderstood SpeechOutcome = "not_understood" // speech outside the grammar, or too unsure
	SpeechNoSpeech      SpeechOutcome = "no_speech"      // the stream held no speech
	SpeechCancelled     SpeechOutcome = "cancelled"      // the device cancelled it
)

// Answer is the meaning of a spoken answer to a prompt. The gateway never approves on
// the device's behalf: on AnswerApprove the device signs a Confirm with MethodVoice.
type Answer string

// Answers.
const (
	AnswerApprove Answer = "approve" // "yes", "confirm"
	AnswerDecline Answer = "decline" // "no", "cancel"
	AnswerRepeat  Answer = "repeat"  // "repeat", "say that again"
	AnswerPIN     Answer = "pin"     // digits, in PIN
)

// SpeechResult tells the device what the gateway heard on one stream.
type SpeechResult struct {
	Stream  uint32        `json:"stream"`
	Ref     string        `json:"ref"` // the audio.start's envelope id
	Mode    SpeechMode    `json:"mode"`
	Outcome SpeechOutcome `json:"outcome"`
	Text    string        `json:"text,omitempty"`   // the transcript, when there was one
	Answer  Answer        `json:"answer,omitempty"` // confirm mode, when accepted
	PIN     string        `json:"pin,omitempty"`    // confirm mode, AnswerPIN: the digits
	Tx      string        `json:"tx,omitempty"`     // confirm mode: the prompt answered
	Reason  string        `json:"reason,omitempty"` // device-visible text when not accepted
}

// PromptAudio announces the spoken form of a prompt. Binary frames of Stream follow,
// the last one with FlagEnd; the text is the prompt's, as in its confirm.request.
type PromptAudio struct {
	Tx       string `json:"tx,omitempty"`
	Ref      string `json:"ref,omitempty"` // the utterance the prompt answers, if any
	Stream   uint32 `json:"stream"`
	Codec    string `json:"codec"`
	Rate     int    `json:"rate"`
	Duration int    `json:"duration_ms"`
	Text     string `json:"text"`
}

// TurnMetrics reports the timings of one spoken turn, in milliseconds from the end of
// speech (as the gateway's endpointer or the device marked it). A stage that did not
// happen is absent.
type TurnMetrics struct {
	Ref        string `json:"ref"`
	Tx         string `json:"tx,omitempty"`
	Stream     uint32 `json:"stream"`
	Recognizer string `json:"recognizer"`
	SpeechMS   int64  `json:"speech_ms"`                // from the first frame to the end of speech
	FinalMS    int64  `json:"final_ms"`                 // the recogniser's final result
	AgentMS    int64  `json:"agent_ms,omitempty"`       // the agent's answer (the prompt's terms)
	PromptMS   int64  `json:"prompt_ms,omitempty"`      // prompt audio synthesised
	FirstAudio int64  `json:"first_audio_ms,omitempty"` // first prompt audio frame sent
}

func (*AudioStart) Type() Type   { return TypeAudioStart }
func (*AudioEnd) Type() Type     { return TypeAudioEnd }
func (*SpeechResult) Type() Type { return TypeSpeechResult }
func (*PromptAudio) Type() Type  { return TypePromptAudio }
func (*TurnMetrics) Type() Type  { return TypeTurnMetrics }

func (a *AudioStart) Validate() error {
	codec, err := ParseCodec(a.Codec)
	if err != nil {
		return err
	}
	switch {
	case !ValidRate(a.Rate):
		return fmt.Errorf("rate: %d Hz, want one of %v", a.Rate, SampleRates)
	case codec == CodecOpus && a.Rate != 48000:
		return fmt.Errorf("rate: opus streams are 48000 Hz, got %d", a.Rate)
	case a.Mode != ModeCommand && a.Mode != ModeConfirm:
		return fmt.Errorf("mode: %q, want %q or %q", a.Mode, ModeCommand, ModeConfirm)
	case a.Mode == ModeConfirm:
		if err := id("tx", a.Tx); err != nil {
			return fmt.Errorf("confirm mode needs the prompt's tx: %w", err)
		}
	}
	return firstErr(maxLen("tx", a.Tx, MaxIDBytes), maxLen("lang", a.Lang, 35))
}

func (a *AudioEnd) Validate() error {
	switch a.Reason {
	case EndPTT, EndVAD, EndCancel:
		return nil
	}
	return fmt.Errorf("reason: %q, want %q, %q or %q", a.Reason, EndPTT, EndVAD, EndCancel)
}

func (r *SpeechResult) Validate() error {
	switch r.Outcome {
	case SpeechAccepted, SpeechNotUnderstood, SpeechNoSpeech, SpeechCancelled:
	default:
		return fmt.Errorf("outcome: unknown %q", r.Outcome)
	}
	return firstErr(maxLen("ref", r.Ref, MaxIDBytes), maxLen("text", r.Text, MaxTextBytes), maxLen("pin", r.PIN, 16),
		maxLen("tx", r.Tx, MaxIDBytes), maxLen("reason", r.Reason, MaxTextBytes), maxLen("answer", string(r.Answer), 16))
}

func (p *PromptAudio) Validate() error {
	codec, err := ParseCodec(p.Codec)
	if err != nil {
		return err
	}
	switch {
	case !ValidRate(p.Rate):
		return fmt.Errorf("rate: %d Hz, want one of %v", p.Rate, SampleRates)
	case codec == CodecOpus && p.Rate != 48000:
		return fmt.Errorf("rate: opus streams are 48000 Hz, got %d", p.Rate)
	case p.Duration < 0:
		return fmt.Errorf("duration_ms: negative (%d)", p.Duration)
	}
	return firstErr(maxLen("tx", p.Tx, MaxIDBytes), maxLen("ref", p.Ref, MaxIDBytes), required("text", p.Text), maxLen("text", p.Text, MaxTextBytes))
}

func (m *TurnMetrics) Validate() error {
	for _, f := range []struct {
		name string
		ms   int64
	}{{"speech_ms", m.SpeechMS}, {"final_ms", m.FinalMS}, {"agent_ms", m.AgentMS}, {"prompt_ms", m.PromptMS}, {"first_audio_ms", m.FirstAudio}} {
		if f.ms < 0 {
			return fmt.Errorf("%s: negative (%d)", f.name, f.ms)
		}
	}
	return firstErr(maxLen("ref", m.Ref, MaxIDBytes), maxLen("tx", m.Tx, MaxIDBytes), maxLen("recognizer", m.Recognizer, MaxNameBytes))
}
