package wire_test

import (
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/device/wire/wiretest"
)

func BenchmarkEncodeConfirmRequest(b *testing.B) {
	var req wire.ConfirmRequest
	e := benchDecodeGolden(b, wire.TypeConfirmRequest, &req)
	e.Body = nil
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Encode(e, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeConfirmRequest(b *testing.B) {
	frame := wiretest.Golden(wire.TypeConfirmRequest)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := wire.Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		var req wire.ConfirmRequest
		if err := wire.DecodeBody(e, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTermsHash(b *testing.B) {
	var req wire.ConfirmRequest
	benchDecodeGolden(b, wire.TypeConfirmRequest, &req)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := req.Terms.Hash(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAudioFrame reads one 100 ms frame of 16 kHz PCM, as prompts are sent.
func BenchmarkDecodeAudioFrame(b *testing.B) {
	frame, err := wire.AppendAudioFrame(nil, wire.AudioHeader{Codec: wire.CodecPCM, Rate: 16000, Stream: 1, Seq: 3, TS: 300}, make([]byte, 3200))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := wire.DecodeAudioFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendAudioFrame writes the golden Opus frame into a reused buffer.
func BenchmarkAppendAudioFrame(b *testing.B) {
	h, payload, err := wire.DecodeAudioFrame(wiretest.AudioFrame(wiretest.FrameOpus))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, wire.AudioHeaderBytes+wire.MaxAudioPayload)
	b.SetBytes(int64(wire.AudioHeaderBytes + len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = wire.AppendAudioFrame(buf[:0], h, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecodeGolden(b *testing.B, typ wire.Type, body wire.Body) wire.Envelope {
	b.Helper()
	e, err := wire.Decode(wiretest.Golden(typ))
	if err != nil {
		b.Fatal(err)
	}
	if err := wire.DecodeBody(e, body); err != nil {
		b.Fatal(err)
	}
	return e
}
