package wiretest_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/device/wire/wiretest"
)

func TestGoldenReturnsCopies(t *testing.T) {
	g := wiretest.Golden(wire.TypeAck)
	if len(g) == 0 {
		t.Fatal("no ack golden")
	}
	g[0] = 'X'
	if wiretest.Golden(wire.TypeAck)[0] == 'X' {
		t.Errorf("Golden returns shared memory")
	}
	all := wiretest.Goldens()
	all[wire.TypeAck][0] = 'X'
	delete(all, wire.TypePing)
	again := wiretest.Goldens()
	if again[wire.TypeAck][0] == 'X' || again[wire.TypePing] == nil {
		t.Errorf("Goldens returns shared memory")
	}
	for typ, b := range again {
		if !bytes.Equal(b, wiretest.Golden(typ)) {
			t.Errorf("Goldens()[%q] differs from Golden", typ)
		}
	}
}

func TestGoldenUnknown(t *testing.T) {
	for _, typ := range []wire.Type{"", "nope", "../testdata/ack", "testdata/ack", `..\ack`} {
		if b := wiretest.Golden(typ); b != nil {
			t.Errorf("Golden(%q) = %d bytes, want nil", typ, len(b))
		}
	}
}

func TestAudioFrames(t *testing.T) {
	all := wiretest.AudioFrames()
	if len(all) != 2 || all[wiretest.FrameOpus] == nil || all[wiretest.FramePCM] == nil {
		t.Fatalf("AudioFrames() has %d frames: %v", len(all), keys(all))
	}
	for name, b := range all {
		if !bytes.Equal(b, wiretest.AudioFrame(name)) {
			t.Errorf("AudioFrames()[%q] differs from AudioFrame", name)
		}
		if _, _, err := wire.DecodeAudioFrame(b); err != nil {
			t.Errorf("frame %s: %v", name, err)
		}
		b[0] = 'X'
		if wiretest.AudioFrame(name)[0] == 'X' {
			t.Errorf("AudioFrame(%q) returns shared memory", name)
		}
	}
	for _, name := range []string{"", "wav", "opus.bin", "../testdata/frame.opus", "frame.opus", `..\pcm`} {
		if b := wiretest.AudioFrame(name); b != nil {
			t.Errorf("AudioFrame(%q) = %d bytes, want nil", name, len(b))
		}
	}
	for typ := range wiretest.Goldens() {
		if !typ.Known() {
			t.Errorf("Goldens() holds %q, not a message type", typ)
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDeviceKey(t *testing.T) {
	seed := wiretest.DeviceSeed()
	if len(seed) != 32 || !bytes.Equal(seed, bytes.Repeat([]byte{0x07}, 32)) {
		t.Fatalf("DeviceSeed() = %x", seed)
	}
	seed[0] = 0
	if wiretest.DeviceSeed()[0] != 0x07 {
		t.Errorf("DeviceSeed returns shared memory")
	}
	k1, k2 := wiretest.DeviceKey(), wiretest.DeviceKey()
	if k1 == nil || !k1.Public().Equal(k2.Public()) {
		t.Fatalf("DeviceKey is not deterministic")
	}
	if got, want := k1.DeviceID(), "dev_72asyextvngonlc5w2nm"; got != want {
		t.Errorf("DeviceID() = %q, want %q", got, want)
	}
}

func ExampleGolden() {
	e, err := wire.Decode(wiretest.Golden(wire.TypeAck))
	if err != nil {
		fmt.Println(err)
		return
	}
	var a wire.Ack
	if err := wire.DecodeBody(e, &a); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.Type, a.Seq)
	// Output: ack 42
}

func ExampleAudioFrame() {
	h, payload, err := wire.DecodeAudioFrame(wiretest.AudioFrame(wiretest.FramePCM))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h.Codec, h.Rate, h.Stream, h.Seq, h.TS, h.Flags == wire.FlagEnd, len(payload))
	// Output: pcm 16000 1 42 4200 true 320
}
