package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/device/wire/wiretest"
)

// TestAudioHeaderLayout pins the 16 header bytes: version, codec, flags, rate in kHz,
// then stream, seq and timestamp as big-endian uint32.
func TestAudioHeaderLayout(t *testing.T) {
	h := wire.AudioHeader{Codec: wire.CodecOpus, Flags: wire.FlagEnd | wire.FlagSpeechEnd, Rate: 48000,
		Stream: 0x01020304, Seq: 0x05060708, TS: 0x090a0b0c}
	frame, err := wire.AppendAudioFrame([]byte("prefix"), h, []byte{0xfc, 0xff, 0xfe})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("prefix\x01\x02\x05\x30\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\xfc\xff\xfe")
	if !bytes.Equal(frame, want) {
		t.Errorf("frame\n%x\nwant\n%x", frame, want)
	}
	if wire.AudioHeaderBytes != 16 || wire.AudioVersion != 1 || wire.MaxAudioPayload != 48000*2*80/1000 {
		t.Errorf("AudioHeaderBytes %d, AudioVersion %d, MaxAudioPayload %d", wire.AudioHeaderBytes, wire.AudioVersion, wire.MaxAudioPayload)
	}
}

// TestAudioHeaderRoundTrip: every header AppendAudioFrame writes, DecodeAudioFrame reads
// back unchanged, with the same payload.
func TestAudioHeaderRoundTrip(t *testing.T) {
	type tc struct {
		h wire.AudioHeader
		n int
	}
	var tests []tc
	for _, rate := range wire.SampleRates {
		for flags := range uint8(8) {
			tests = append(tests, tc{wire.AudioHeader{Codec: wire.CodecPCM, Flags: flags, Rate: rate, Stream: 1, Seq: uint32(flags), TS: 20 * uint32(flags)}, 2 * rate / 50})
		}
	}
	tests = append(tests,
		tc{wire.AudioHeader{Codec: wire.CodecOpus, Rate: 48000}, 0},
		tc{wire.AudioHeader{Codec: wire.CodecOpus, Flags: wire.FlagSpeechStart | wire.FlagSpeechEnd, Rate: 48000,
			Stream: math.MaxUint32, Seq: math.MaxUint32, TS: math.MaxUint32}, 1},
		tc{wire.AudioHeader{Codec: wire.CodecOpus, Rate: 48000, Stream: 9}, 1275},
		tc{wire.AudioHeader{Codec: wire.CodecOpus, Rate: 48000}, wire.MaxAudioPayload},
		tc{wire.AudioHeader{Codec: wire.CodecPCM, Rate: 8000}, 0},
		tc{wire.AudioHeader{Codec: wire.CodecPCM, Rate: 48000}, wire.MaxAudioPayload},
	)
	for _, tt := range tests {
		payload := make([]byte, tt.n)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		prefix := []byte{0xaa, 0xbb}
		frame, err := wire.AppendAudioFrame(prefix, tt.h, payload)
		if err != nil {
			t.Fatalf("AppendAudioFrame(%+v, %d bytes): %v", tt.h, tt.n, err)
		}
		if len(frame) != 2+wire.AudioHeaderBytes+tt.n || !bytes.Equal(frame[:2], prefix) {
			t.Fatalf("AppendAudioFrame(%+v) wrote %d bytes after the prefix, want %d", tt.h, len(frame)-2, wire.AudioHeaderBytes+tt.n)
		}
		h, got, err := wire.DecodeAudioFrame(frame[2:])
		if err != nil {
			t.Fatalf("DecodeAudioFrame(%+v): %v", tt.h, err)
		}
		if h != tt.h || !bytes.Equal(got, payload) {
			t.Errorf("round trip: %+v with %d bytes, want %+v with %d", h, len(got), tt.h, tt.n)
		}
	}
}

// TestDecodeAudioFrameAliases: the payload is a slice of the frame, not a copy.
func TestDecodeAudioFrameAliases(t *testing.T) {
	frame, err := wire.AppendAudioFrame(nil, wire.AudioHeader{Codec: wire.CodecPCM, Rate: 16000}, []byte{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	_, payload, err := wire.DecodeAudioFrame(frame)
	if err != nil {
		t.Fatal(err)
	}
	payload[0] = 9
	if frame[wire.AudioHeaderBytes] != 9 {
		t.Errorf("payload does not alias the frame")
	}
}

// frameOf builds a frame byte by byte, bypassing AppendAudioFrame's checks.
func frameOf(version, codec, flags, kHz byte, payload int) []byte {
	f := []byte{version, codec, flags, kHz, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}
	return append(f, make([]byte, payload)...)
}

// TestDecodeAudioFrameRefuses covers every check of the header and the payload; each
// error wraps ErrAudioFrame and says what was wrong.
func TestDecodeAudioFrameRefuses(t *testing.T) {
	const pcm, opus = byte(wire.CodecPCM), byte(wire.CodecOpus)
	tests := []struct {
		name  string
		frame []byte
		says  string
	}{
		{"empty", nil, "0 bytes, shorter than the 16-byte header"},
		{"one byte short", frameOf(1, pcm, 0, 16, 0)[:15], "15 bytes, shorter"},
		{"version 0", frameOf(0, pcm, 0, 16, 2), "header version 0, want 1"},
		{"version 2", frameOf(2, pcm, 0, 16, 2), "header version 2"},
		{"codec 0", frameOf(1, 0, 0, 16, 2), "unknown codec 0"},
		{"codec 3", frameOf(1, 3, 0, 48, 2), "unknown codec 3"},
		{"unknown flag 0x08", frameOf(1, pcm, 0x08, 16, 2), "unknown flags 0x8"},
		{"unknown flag 0x80 with known ones", frameOf(1, pcm, 0x80|wire.FlagEnd, 16, 2), "unknown flags 0x80"},
		{"rate 0", frameOf(1, pcm, 0, 0, 2), "sample rate 0 Hz"},
		{"rate 44 kHz", frameOf(1, pcm, 0, 44, 2), "sample rate 44000 Hz"},
		{"rate 255 kHz", frameOf(1, pcm, 0, 255, 2), "sample rate 255000 Hz"},
		{"opus at 16 kHz", frameOf(1, opus, 0, 16, 2), "opus at 16000 Hz, want 48000"},
		{"opus at 8 kHz", frameOf(1, opus, wire.FlagEnd, 8, 0), "opus at 8000 Hz"},
		{"pcm payload over the limit", frameOf(1, pcm, 0, 48, wire.MaxAudioPayload+2), "payload of 7682 bytes, limit 7680"},
		{"opus payload over the limit", frameOf(1, opus, 0, 48, wire.MaxAudioPayload+1), "payload of 7681 bytes"},
		{"pcm payload of odd length", frameOf(1, pcm, 0, 16, 3), "pcm payload of odd length 3"},
		{"pcm payload of one byte", frameOf(1, pcm, wire.FlagEnd, 8, 1), "odd length 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, payload, err := wire.DecodeAudioFrame(tt.frame)
			if err == nil {
				t.Fatalf("DecodeAudioFrame accepted % x", tt.frame[:min(len(tt.frame), 20)])
			}
			if !errors.Is(err, wire.ErrAudioFrame) {
				t.Errorf("error %v does not wrap ErrAudioFrame", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
			if h != (wire.AudioHeader{}) || payload != nil {
				t.Errorf("refused frame returned %+v and %d bytes", h, len(payload))
			}
		})
	}
}

// TestAppendAudioFrameRefuses: the writer checks what the reader checks, and leaves dst
// as it was.
func TestAppendAudioFrameRefuses(t *testing.T) {
	tests := []struct {
		name string
		h    wire.AudioHeader
		n    int
	}{
		{"no codec", wire.AudioHeader{Rate: 16000}, 2},
		{"codec 3", wire.AudioHeader{Codec: 3, Rate: 16000}, 2},
		{"unknown flag", wire.AudioHeader{Codec: wire.CodecPCM, Flags: 1 << 3, Rate: 16000}, 2},
		{"no rate", wire.AudioHeader{Codec: wire.CodecPCM}, 2},
		{"44.1 kHz", wire.AudioHeader{Codec: wire.CodecPCM, Rate: 44100}, 2},
		{"16.5 kHz", wire.AudioHeader{Codec: wire.CodecPCM, Rate: 16500}, 2},
		{"negative rate", wire.AudioHeader{Codec: wire.CodecPCM, Rate: -16000}, 2},
		{"opus at 24 kHz", wire.AudioHeader{Codec: wire.CodecOpus, Rate: 24000}, 2},
		{"payload over the limit", wire.AudioHeader{Codec: wire.CodecOpus, Rate: 48000}, wire.MaxAudioPayload + 1},
		{"odd pcm", wire.AudioHeader{Codec: wire.CodecPCM, Rate: 16000}, 641},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := wire.AppendAudioFrame(dst, tt.h, make([]byte, tt.n))
			if !errors.Is(err, wire.ErrAudioFrame) {
				t.Fatalf("AppendAudioFrame = %v, want ErrAudioFrame", err)
			}
			if string(got) != "keep" {
				t.Errorf("dst changed to %q", got)
			}
		})
	}
}

func TestCodec(t *testing.T) {
	for _, tt := range []struct {
		c    wire.Codec
		name string
	}{{wire.CodecPCM, "pcm"}, {wire.CodecOpus, "opus"}} {
		if tt.c.String() != tt.name {
			t.Errorf("Codec(%d).String() = %q, want %q", tt.c, tt.c.String(), tt.name)
		}
		if c, err := wire.ParseCodec(tt.name); c != tt.c || err != nil {
			t.Errorf("ParseCodec(%q) = %v, %v", tt.name, c, err)
		}
	}
	if s := wire.CodecUnknown.String(); s != "codec(0)" {
		t.Errorf("CodecUnknown.String() = %q", s)
	}
	if s := wire.Codec(9).String(); s != "codec(9)" {
		t.Errorf("Codec(9).String() = %q", s)
	}
	for _, s := range []string{"", "PCM", "Opus", "codec(1)", "wav", " pcm"} {
		if c, err := wire.ParseCodec(s); err == nil || c != wire.CodecUnknown {
			t.Errorf("ParseCodec(%q) = %v, %v; want an error", s, c, err)
		}
	}
	for _, r := range []int{8000, 16000, 24000, 48000} {
		if !wire.ValidRate(r) {
			t.Errorf("ValidRate(%d) = false", r)
		}
	}
	for _, r := range []int{0, -16000, 11025, 22050, 32000, 44100, 96000, 16} {
		if wire.ValidRate(r) {
			t.Errorf("ValidRate(%d) = true", r)
		}
	}
}

// TestAudioValidate covers the audio message bodies: what they accept, what they
// refuse, and that what Validate refuses, Encode and DecodeBody refuse too.
func TestAudioValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	start := func(f func(a *wire.AudioStart)) *wire.AudioStart {
		a := &wire.AudioStart{Stream: 1, Codec: "opus", Rate: 48000, Mode: wire.ModeCommand, PTT: true}
		f(a)
		return a
	}
	result := func(f func(r *wire.SpeechResult)) *wire.SpeechResult {
		r := &wire.SpeechResult{Stream: 1, Ref: "m1", Mode: wire.ModeConfirm, Outcome: wire.SpeechAccepted, Text: "confirm", Answer: wire.AnswerApprove, Tx: "t1"}
		f(r)
		return r
	}
	prompt := func(f func(p *wire.PromptAudio)) *wire.PromptAudio {
		p := &wire.PromptAudio{Tx: "t1", Stream: 1, Codec: "pcm", Rate: 16000, Duration: 4210, Text: "Say confirm to pay."}
		f(p)
		return p
	}
	metrics := func(f func(m *wire.TurnMetrics)) *wire.TurnMetrics {
		m := &wire.TurnMetrics{Ref: "m1", Stream: 1, Recognizer: "pocketsphinx", SpeechMS: 900, FinalMS: 40}
		f(m)
		return m
	}
	tests := []struct {
		name     string
		body     wire.Body
		ok       bool
		tooLarge bool
	}{
		{"audio.start command", start(func(*wire.AudioStart) {}), true, false},
		{"audio.start pcm 8 kHz", start(func(a *wire.AudioStart) { a.Codec, a.Rate = "pcm", 8000 }), true, false},
		{"audio.start pcm 24 kHz with vad", start(func(a *wire.AudioStart) { a.Codec, a.Rate, a.VAD = "pcm", 24000, true }), true, false},
		{"audio.start confirm", start(func(a *wire.AudioStart) { a.Mode, a.Tx = wire.ModeConfirm, "t1" }), true, false},
		{"audio.start command with a tx", start(func(a *wire.AudioStart) { a.Tx = "t1" }), true, false},
		{"audio.start without ptt", start(func(a *wire.AudioStart) { a.PTT = false }), true, false},
		{"audio.start lang at limit", start(func(a *wire.AudioStart) { a.Lang = long(35) }), true, false},
		{"audio.start confirm without tx", start(func(a *wire.AudioStart) { a.Mode = wire.ModeConfirm }), false, false},
		{"audio.start confirm with a bad tx", start(func(a *wire.AudioStart) { a.Mode, a.Tx = wire.ModeConfirm, "t 1" }), false, false},
		{"audio.start confirm with a long tx", start(func(a *wire.AudioStart) { a.Mode, a.Tx = wire.ModeConfirm, long(wire.MaxIDBytes+1) }), false, true},
		{"audio.start command with a long tx", start(func(a *wire.AudioStart) { a.Tx = long(wire.MaxIDBytes + 1) }), false, true},
		{"audio.start opus at 16 kHz", start(func(a *wire.AudioStart) { a.Rate = 16000 }), false, false},
		{"audio.start pcm at 44.1 kHz", start(func(a *wire.AudioStart) { a.Codec, a.Rate = "pcm", 44100 }), false, false},
		{"audio.start no rate", start(func(a *wire.AudioStart) { a.Rate = 0 }), false, false},
		{"audio.start no codec", start(func(a *wire.AudioStart) { a.Codec = "" }), false, false},
		{"audio.start unknown codec", start(func(a *wire.AudioStart) { a.Codec = "aac" }), false, false},
		{"audio.start no mode", start(func(a *wire.AudioStart) { a.Mode = "" }), false, false},
		{"audio.start unknown mode", start(func(a *wire.AudioStart) { a.Mode = "dictation" }), false, false},
		{"audio.start long lang", start(func(a *wire.AudioStart) { a.Lang = long(36) }), false, true},
		{"audio.end ptt", &wire.AudioEnd{Stream: 1, Reason: wire.EndPTT}, true, false},
		{"audio.end vad", &wire.AudioEnd{Stream: 1, Reason: wire.EndVAD}, true, false},
		{"audio.end cancel", &wire.AudioEnd{Stream: 1, Reason: wire.EndCancel}, true, false},
		{"audio.end no reason", &wire.AudioEnd{Stream: 1}, false, false},
		{"audio.end unknown reason", &wire.AudioEnd{Stream: 1, Reason: "timeout"}, false, false},
		{"speech.result approve", result(func(*wire.SpeechResult) {}), true, false},
		{"speech.result pin", result(func(r *wire.SpeechResult) { r.Answer, r.PIN, r.Text = wire.AnswerPIN, "4711", "four seven one one" }), true, false},
		{"speech.result command", result(func(r *wire.SpeechResult) {
			r.Mode, r.Answer, r.Tx, r.Text = wire.ModeCommand, "", "", "get me a latte"
		}), true, false},
		{"speech.result not understood", result(func(r *wire.SpeechResult) {
			r.Outcome, r.Answer, r.Reason = wire.SpeechNotUnderstood, "", "Sorry, say confirm or cancel."
		}), true, false},
		{"speech.result no speech", result(func(r *wire.SpeechResult) { r.Outcome, r.Answer, r.Text = wire.SpeechNoSpeech, "", "" }), true, false},
		{"speech.result cancelled", result(func(r *wire.SpeechResult) { r.Outcome, r.Answer, r.Text = wire.SpeechCancelled, "", "" }), true, false},
		{"speech.result no outcome", result(func(r *wire.SpeechResult) { r.Outcome = "" }), false, false},
		{"speech.result unknown outcome", result(func(r *wire.SpeechResult) { r.Outcome = "partial" }), false, false},
		{"speech.result long text", result(func(r *wire.SpeechResult) { r.Text = long(wire.MaxTextBytes + 1) }), false, true},
		{"speech.result long reason", result(func(r *wire.SpeechResult) { r.Reason = long(wire.MaxTextBytes + 1) }), false, true},
		{"speech.result long ref", result(func(r *wire.SpeechResult) { r.Ref = long(wire.MaxIDBytes + 1) }), false, true},
		{"speech.result long tx", result(func(r *wire.SpeechResult) { r.Tx = long(wire.MaxIDBytes + 1) }), false, true},
		{"speech.result long pin", result(func(r *wire.SpeechResult) { r.Answer, r.PIN = wire.AnswerPIN, long(17) }), false, true},
		{"speech.result long answer", result(func(r *wire.SpeechResult) { r.Answer = wire.Answer(long(17)) }), false, true},
		{"prompt.audio pcm", prompt(func(*wire.PromptAudio) {}), true, false},
		{"prompt.audio opus", prompt(func(p *wire.PromptAudio) { p.Codec, p.Rate = "opus", 48000 }), true, false},
		{"prompt.audio without tx", prompt(func(p *wire.PromptAudio) { p.Tx, p.Ref = "", "m1" }), true, false},
		{"prompt.audio text at limit", prompt(func(p *wire.PromptAudio) { p.Text = long(wire.MaxTextBytes) }), true, false},
		{"prompt.audio no text", prompt(func(p *wire.PromptAudio) { p.Text = "" }), false, false},
		{"prompt.audio long text", prompt(func(p *wire.PromptAudio) { p.Text = long(wire.MaxTextBytes + 1) }), false, true},
		{"prompt.audio unknown codec", prompt(func(p *wire.PromptAudio) { p.Codec = "mp3" }), false, false},
		{"prompt.audio bad rate", prompt(func(p *wire.PromptAudio) { p.Rate = 22050 }), false, false},
		{"prompt.audio opus at 16 kHz", prompt(func(p *wire.PromptAudio) { p.Codec = "opus" }), false, false},
		{"prompt.audio negative duration", prompt(func(p *wire.PromptAudio) { p.Duration = -1 }), false, false},
		{"prompt.audio long tx", prompt(func(p *wire.PromptAudio) { p.Tx = long(wire.MaxIDBytes + 1) }), false, true},
		{"prompt.audio long ref", prompt(func(p *wire.PromptAudio) { p.Ref = long(wire.MaxIDBytes + 1) }), false, true},
		{"turn.metrics", metrics(func(*wire.TurnMetrics) {}), true, false},
		{"turn.metrics all stages", metrics(func(m *wire.TurnMetrics) { m.Tx, m.AgentMS, m.PromptMS, m.FirstAudio = "t1", 150, 180, 181 }), true, false},
		{"turn.metrics zero", &wire.TurnMetrics{}, true, false},
		{"turn.metrics negative speech", metrics(func(m *wire.TurnMetrics) { m.SpeechMS = -1 }), false, false},
		{"turn.metrics negative first audio", metrics(func(m *wire.TurnMetrics) { m.FirstAudio = -5 }), false, false},
		{"turn.metrics long ref", metrics(func(m *wire.TurnMetrics) { m.Ref = long(wire.MaxIDBytes + 1) }), false, true},
		{"turn.metrics long tx", metrics(func(m *wire.TurnMetrics) { m.Tx = long(wire.MaxIDBytes + 1) }), false, true},
		{"turn.metrics long recognizer", metrics(func(m *wire.TurnMetrics) { m.Recognizer = long(wire.MaxNameBytes + 1) }), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.body.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
			if got := errors.Is(err, wire.ErrTooLarge); got != tt.tooLarge {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooLarge)
			}
			frame, encErr := wire.Encode(wire.Envelope{ID: "m1"}, tt.body)
			raw, err := json.Marshal(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			e := wire.Envelope{V: wire.Version, Type: tt.body.Type(), Body: raw}
			decErr := wire.DecodeBody(e, wire.NewBody(e.Type))
			if tt.ok {
				if encErr != nil || decErr != nil {
					t.Errorf("valid %s: Encode %v, DecodeBody %v", tt.body.Type(), encErr, decErr)
				}
				if !bytes.Contains(frame, []byte(`"type":"`+string(tt.body.Type())+`"`)) {
					t.Errorf("frame %s does not name its type", frame)
				}
				return
			}
			if encErr == nil {
				t.Errorf("Encode accepted an invalid %s", tt.body.Type())
			}
			if decErr == nil {
				t.Errorf("DecodeBody accepted an invalid %s", tt.body.Type())
			}
		})
	}
}

// TestGoldenAudioStory checks the audio goldens tell one consistent spoken purchase:
// the Opus frame belongs to the audio.start's stream, the PCM frame ends the prompt's
// stream at the announced duration, and the results and metrics point back at the
// command and the prompt.
func TestGoldenAudioStory(t *testing.T) {
	var start wire.AudioStart
	startEnv := decodeGolden(t, wire.TypeAudioStart, &start)
	var end wire.AudioEnd
	decodeGolden(t, wire.TypeAudioEnd, &end)
	var res wire.SpeechResult
	decodeGolden(t, wire.TypeSpeechResult, &res)
	var utt wire.Utterance
	decodeGolden(t, wire.TypeUtterance, &utt)
	var req wire.ConfirmRequest
	decodeGolden(t, wire.TypeConfirmRequest, &req)
	var pa wire.PromptAudio
	decodeGolden(t, wire.TypePromptAudio, &pa)
	var m wire.TurnMetrics
	decodeGolden(t, wire.TypeTurnMetrics, &m)
	var txr wire.TxResult
	decodeGolden(t, wire.TypeTxResult, &txr)

	if end.Stream != start.Stream || res.Stream != start.Stream || m.Stream != start.Stream {
		t.Errorf("streams: audio.start %d, audio.end %d, speech.result %d, turn.metrics %d", start.Stream, end.Stream, res.Stream, m.Stream)
	}
	if res.Ref != startEnv.ID || m.Ref != startEnv.ID || txr.Ref != startEnv.ID {
		t.Errorf("refs: speech.result %q, turn.metrics %q, tx.result %q; audio.start id %q", res.Ref, m.Ref, txr.Ref, startEnv.ID)
	}
	if res.Mode != start.Mode || res.Outcome != wire.SpeechAccepted || res.Text != utt.Text {
		t.Errorf("speech.result %+v does not accept the command %q", res, utt.Text)
	}
	if pa.Tx != req.Tx || m.Tx != req.Tx || pa.Text != req.Text {
		t.Errorf("prompt.audio (%s, %q) and turn.metrics (%s) do not speak the prompt (%s, %q)", pa.Tx, pa.Text, m.Tx, req.Tx, req.Text)
	}
	if !(0 < m.FinalMS && m.FinalMS < m.AgentMS && m.AgentMS < m.PromptMS && m.PromptMS <= m.FirstAudio) {
		t.Errorf("turn.metrics stages out of order: %+v", m)
	}

	frames := wiretest.AudioFrames()
	if len(frames) != 2 {
		t.Fatalf("%d golden audio frames, want 2", len(frames))
	}
	h, payload, err := wire.DecodeAudioFrame(frames[wiretest.FrameOpus])
	if err != nil {
		t.Fatalf("opus frame: %v", err)
	}
	if h.Stream != start.Stream || h.Codec.String() != start.Codec || h.Rate != start.Rate {
		t.Errorf("opus frame %+v is not of the audio.start's stream %+v", h, start)
	}
	if h.Flags != wire.FlagSpeechStart || !start.VAD {
		t.Errorf("opus frame flags %#x, audio.start vad %v: want the device's speech start", h.Flags, start.VAD)
	}
	// RFC 6716 section 3.1: TOC config 12-15 is hybrid with 10 or 20 ms frames (odd
	// configs 20 ms); code 0 is one frame.
	if toc := payload[0]; toc>>3 != 15 || toc&0x04 != 0 || toc&0x03 != 0 || h.TS != h.Seq*20 {
		t.Errorf("opus packet TOC %#x at seq %d ts %d: want hybrid fullband 20 ms mono, one frame", payload[0], h.Seq, h.TS)
	}

	h, payload, err = wire.DecodeAudioFrame(frames[wiretest.FramePCM])
	if err != nil {
		t.Fatalf("pcm frame: %v", err)
	}
	if h.Stream != pa.Stream || h.Codec.String() != pa.Codec || h.Rate != pa.Rate || h.Flags != wire.FlagEnd {
		t.Errorf("pcm frame %+v is not the end of the prompt's stream %+v", h, pa)
	}
	if got := int(h.TS) + len(payload)/2*1000/h.Rate; got != pa.Duration || h.TS != h.Seq*100 {
		t.Errorf("pcm frame seq %d ts %d with %d bytes ends at %d ms; prompt.audio says %d", h.Seq, h.TS, len(payload), got, pa.Duration)
	}
}
