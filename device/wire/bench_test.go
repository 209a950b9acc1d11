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
