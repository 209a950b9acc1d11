package opus_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/earshot/earshot/speech/opus"
)

// golden returns the packets of testdata/lattes.packets: espeak-ng saying
// "buy two oat lattes", encoded by libopus at 32 kbit/s in VOIP mode (hybrid).
func golden(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/lattes.packets")
	if err != nil {
		t.Fatal(err)
	}
	var ps [][]byte
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			t.Fatalf("testdata truncated")
		}
		ps, b = append(ps, b[2:2+n]), b[2+n:]
	}
	return ps
}

func decodeAll(t testing.TB, ps [][]byte) []int16 {
	t.Helper()
	d, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	for i, p := range ps {
		if out, err = d.Decode(out, p); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	return out
}

func TestDecodeGolden(t *testing.T) {
	ps := golden(t)
	out := decodeAll(t, ps)
	if len(out) != 320*len(ps) {
		t.Fatalf("%d samples from %d packets, want 320 each", len(out), len(ps))
	}
	if again := decodeAll(t, ps); !slices.Equal(out, again) {
		t.Errorf("decoding is not deterministic")
	}
	// Speech: loud 20 ms frames in the middle, near silence at the edges.
	peak := 0.0
	for i := 0; i+320 <= len(out); i += 320 {
		var s float64
		for _, v := range out[i : i+320] {
			s += float64(v) * float64(v)
		}
		peak = max(peak, math.Sqrt(s/320))
	}
	if peak < 2000 {
		t.Errorf("loudest frame rms %.0f: no speech", peak)
	}
}

func TestDecodeBadPackets(t *testing.T) {
	ps := golden(t)
	tests := []struct {
		name   string
		packet []byte
	}{
		{"empty", nil},
		{"oversized", make([]byte, opus.MaxPacketSize+1)},
		{"code 3 without count", []byte{0x03}},
		{"code 2 bad length", []byte{0x02, 0xff, 0xff}},
		{"code 0 frame over 1275 bytes", make([]byte, 1277)},
	}
	d, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []int16{7}
			got, err := d.Decode(dst, tt.packet)
			if !errors.Is(err, opus.ErrPacket) {
				t.Fatalf("err %v, want ErrPacket", err)
			}
			if !slices.Equal(got, dst) {
				t.Errorf("dst changed on error")
			}
		})
	}
	// Still usable afterwards.
	if out, err := d.Decode(nil, ps[10]); err != nil || len(out) != 320 {
		t.Errorf("after errors: %d samples, %v", len(out), err)
	}
}

func TestNoEncoder(t *testing.T) {
	if opus.EncoderAvailable() {
		t.Skip("built with libopus")
	}
	if _, err := opus.NewEncoder(0); !errors.Is(err, opus.ErrNoEncoder) {
		t.Errorf("NewEncoder: %v, want ErrNoEncoder", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, p := range golden(f)[:20] {
		f.Add(p)
	}
	f.Add([]byte{0x03, 0x83, 0x00})
	f.Add([]byte{0xfc, 0xff, 0xfe})
	d, err := opus.NewDecoder()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		out, err := d.Decode(nil, p)
		if err != nil {
			if !errors.Is(err, opus.ErrPacket) || out != nil {
				t.Fatalf("err %v with %d samples", err, len(out))
			}
			return
		}
		if len(out) == 0 || len(out) > 1920 || len(out)%40 != 0 {
			t.Fatalf("%d samples from a %d-byte packet", len(out), len(p))
		}
	})
}

// BenchmarkDecode measures one 20 ms hybrid packet; rtf is the real-time
// factor.
func BenchmarkDecode(b *testing.B) {
	ps := golden(b)
	d, err := opus.NewDecoder()
	if err != nil {
		b.Fatal(err)
	}
	out := make([]int16, 0, 1920)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if out, err = d.Decode(out[:0], ps[i%len(ps)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20e6, "rtf")
}
