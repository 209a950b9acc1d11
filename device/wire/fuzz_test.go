package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/device/wire/wiretest"
)

// FuzzDecode feeds frames to Decode and DecodeBody. Nothing may panic, and whatever
// decodes and validates must re-encode and decode again to the same header and body.
// Under plain go test only the seed corpus runs: every golden, compact and pretty.
func FuzzDecode(f *testing.F) {
	for _, g := range wiretest.Goldens() {
		f.Add(g)
		var compact bytes.Buffer
		if err := json.Compact(&compact, g); err != nil {
			f.Fatal(err)
		}
		f.Add(compact.Bytes())
	}
	for _, s := range []string{
		"", "{}", "null", `{"v":1}`, `{"v":1,"type":"x.y","body":[]}`,
		`{"v":1,"type":"ack","body":{"seq":18446744073709551615}}`,
		`{"v":1,"type":"tx.result","body":{"tx":"t","state":"redeemed","amount":9007199254740991,"currency":"USD"}}`,
		`{"v":1,"type":"utterance","id":"\ud800","body":{"text":"\u0000\ufffd"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		e, err := wire.Decode(frame)
		if err != nil {
			return
		}
		b := wire.NewBody(e.Type)
		if b == nil {
			if e.Known() {
				t.Fatalf("known type %q without a body", e.Type)
			}
			return
		}
		if err := wire.DecodeBody(e, b); err != nil {
			return
		}
		again, err := wire.Encode(e, b)
		if errors.Is(err, wire.ErrTooLarge) {
			// Known: Encode's HTML escaping can grow a frame past the limit
			// (TestEncodeEscapesInflate).
			return
		}
		if err != nil {
			t.Fatalf("decoded and valid, but Encode fails: %v", err)
		}
		e2, err := wire.Decode(again)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v\n%s", err, again)
		}
		b2 := wire.NewBody(e2.Type)
		if err := wire.DecodeBody(e2, b2); err != nil {
			t.Fatalf("re-encoded body does not decode: %v\n%s", err, again)
		}
		e.Body, e2.Body = nil, nil
		if !reflect.DeepEqual(e, e2) {
			t.Errorf("header changed:\n%+v\n%+v", e, e2)
		}
		if j1, j2 := mustJSON(t, b), mustJSON(t, b2); !bytes.Equal(j1, j2) {
			t.Errorf("body changed:\n%s\n%s", j1, j2)
		}
	})
}

// FuzzCanonicalize checks that canonical JSON is valid JSON, a fixed point, and the same
// value as the input.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],` +
			`"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`,
		`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew","1":"One","\ud83d\ude00":"Emoji","\u0080":"Control","\u00f6":"o"}`,
		goldenCanonical, `[5e-324,-1.7976931348623157e+308,1e21,1e-7]`, `{"a":1,"a":2}`, `"\ud800"`, `[[[[[]]]]]`,
	} {
		f.Add([]byte(s))
	}
	for _, g := range wiretest.Goldens() {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := wire.Canonicalize(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not JSON: %q", out)
		}
		again, err := wire.Canonicalize(out)
		if err != nil {
			t.Fatalf("canonical output refused: %v\n%q", err, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%q\n%q", out, again)
		}
		if !json.Valid(in) {
			t.Fatalf("Canonicalize accepted invalid JSON %q", in)
		}
		var vin, vout any
		if json.Unmarshal(in, &vin) != nil || json.Unmarshal(out, &vout) != nil {
			t.Fatalf("unmarshal failed")
		}
		if !reflect.DeepEqual(vin, vout) {
			t.Errorf("value changed:\n%q\n%q", in, out)
		}
	})
}

// FuzzDecodeAudioFrame feeds binary frames to DecodeAudioFrame. Nothing may panic; a
// refused frame is refused with ErrAudioFrame and nothing else; and a frame that decodes
// re-encodes to the same bytes (the header has one encoding). Seeds: the golden frames,
// their bare headers, and frames one check away from refusal.
func FuzzDecodeAudioFrame(f *testing.F) {
	for _, g := range wiretest.AudioFrames() {
		f.Add(g)
		f.Add(g[:wire.AudioHeaderBytes])
		f.Add(g[:wire.AudioHeaderBytes-1])
		odd := append([]byte(nil), g...)
		f.Add(odd[:len(odd)-1])
		for i := range 4 {
			bad := append([]byte(nil), g...)
			bad[i] ^= 0xff
			f.Add(bad)
		}
	}
	f.Add([]byte{})
	f.Add(append([]byte{1, 1, 7, 48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, make([]byte, wire.MaxAudioPayload)...))
	f.Add(append([]byte{1, 2, 0, 48, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, make([]byte, wire.MaxAudioPayload+1)...))
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, payload, err := wire.DecodeAudioFrame(frame)
		if err != nil {
			if !errors.Is(err, wire.ErrAudioFrame) {
				t.Fatalf("error %v does not wrap ErrAudioFrame", err)
			}
			if h != (wire.AudioHeader{}) || payload != nil {
				t.Fatalf("refused frame returned %+v and %d bytes", h, len(payload))
			}
			return
		}
		if len(payload) != len(frame)-wire.AudioHeaderBytes || len(payload) > wire.MaxAudioPayload {
			t.Fatalf("payload of %d bytes from a %d-byte frame", len(payload), len(frame))
		}
		again, err := wire.AppendAudioFrame(nil, h, payload)
		if err != nil {
			t.Fatalf("decoded %+v, but AppendAudioFrame refuses it: %v", h, err)
		}
		if !bytes.Equal(again, frame) {
			t.Fatalf("re-encoded frame differs:\n%x\n%x", frame, again)
		}
	})
}

// FuzzAppendAudioFrame builds frames from arbitrary header fields: whatever
// AppendAudioFrame writes, DecodeAudioFrame reads back as the same header and payload.
func FuzzAppendAudioFrame(f *testing.F) {
	f.Add(uint8(wire.CodecOpus), wire.FlagSpeechStart, 48000, uint32(7), uint32(2), uint32(40), 54)
	f.Add(uint8(wire.CodecPCM), wire.FlagEnd, 16000, uint32(1), uint32(42), uint32(4200), 320)
	f.Add(uint8(wire.CodecPCM), uint8(0xff), 44100, uint32(0), uint32(0), uint32(0), -1)
	f.Fuzz(func(t *testing.T, codec, flags uint8, rate int, stream, seq, ts uint32, n int) {
		if n < 0 || n > 2*wire.MaxAudioPayload {
			return
		}
		h := wire.AudioHeader{Codec: wire.Codec(codec), Flags: flags, Rate: rate, Stream: stream, Seq: seq, TS: ts}
		payload := bytes.Repeat([]byte{0x5a}, n)
		frame, err := wire.AppendAudioFrame(nil, h, payload)
		if err != nil {
			if !errors.Is(err, wire.ErrAudioFrame) || frame != nil {
				t.Fatalf("refusal %v, %d bytes written", err, len(frame))
			}
			return
		}
		got, p, err := wire.DecodeAudioFrame(frame)
		if err != nil {
			t.Fatalf("AppendAudioFrame wrote %+v, DecodeAudioFrame refuses it: %v", h, err)
		}
		if got != h || !bytes.Equal(p, payload) {
			t.Fatalf("round trip: %+v, want %+v", got, h)
		}
	})
}
