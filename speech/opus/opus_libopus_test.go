//go:build libopus && nolibopusfile

package opus_test

import (
	"context"
	"encoding/binary"
	"flag"
	"math"
	"os"
	"testing"

	hraban "gopkg.in/hraban/opus.v2"

	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/opus"
	"github.com/earshot/earshot/speech/tts"
)

var update = flag.Bool("update", false, "rewrite testdata/lattes.packets")

// speech48 returns espeak-ng speech at 48 kHz (what a browser would send)
// and the same at 16 kHz.
func speech48(t testing.TB, text string) (pcm48, pcm16 []int16) {
	t.Helper()
	s, err := tts.New(tts.Config{})
	if err != nil {
		t.Fatalf("espeak-ng is needed: %v", err)
	}
	pcm16, err = s.Say(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	if pcm48, err = speech.Resample(pcm16, speech.Rate, opus.EncodeRate); err != nil {
		t.Fatal(err)
	}
	return pcm48, pcm16
}

func encodeAll(t testing.TB, pcm48 []int16, bitrate int) [][]byte {
	t.Helper()
	enc, err := opus.NewEncoder(bitrate)
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	for i := 0; i+opus.EncodeFrame <= len(pcm48); i += opus.EncodeFrame {
		p, err := enc.Encode(pcm48[i : i+opus.EncodeFrame])
		if err != nil {
			t.Fatal(err)
		}
		packets = append(packets, p)
	}
	return packets
}

// mode names the coding mode of a packet from its TOC byte (RFC 6716 3.1).
func mode(p []byte) string {
	switch c := p[0] >> 3; {
	case c < 12:
		return "silk"
	case c < 16:
		return "hybrid"
	default:
		return "celt"
	}
}

// TestDecodeLibopusSpeech encodes real speech with libopus as WebRTC would,
// decodes it with our pure-Go decoder, and compares with the original and
// with libopus's own decoder.
func TestDecodeLibopusSpeech(t *testing.T) {
	pcm48, pcm16 := speech48(t, "buy two oat lattes and a blueberry muffin")
	for _, bitrate := range []int{12000, 24000, 32000, 64000} {
		packets := encodeAll(t, pcm48, bitrate)
		modes := map[string]int{}
		dec, err := opus.NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		ref, err := hraban.NewDecoder(speech.Rate, 1)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []int16
		buf := make([]int16, 5760)
		for _, p := range packets {
			modes[mode(p)]++
			if got, err = dec.Decode(got, p); err != nil {
				t.Fatalf("%d bit/s: %v", bitrate, err)
			}
			n, err := ref.Decode(p, buf)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, buf[:n]...)
		}
		if len(got) != len(packets)*320 {
			t.Fatalf("%d bit/s: %d samples from %d packets", bitrate, len(got), len(packets))
		}
		lag, corr := align(pcm16, got, 320)
		envDB := envelopeError(pcm16, got, lag)
		vsLibopus := snr(want, got)
		t.Logf("%5d bit/s: modes %v; vs original: lag %d samples, correlation %.3f, envelope error %.2f dB; vs libopus decoder: %.1f dB SNR",
			bitrate, modes, lag, corr, envDB, vsLibopus)
		if corr < 0.85 || envDB > 2 {
			t.Errorf("%d bit/s: correlation %.3f, envelope error %.2f dB", bitrate, corr, envDB)
		}
		if vsLibopus < 30 {
			t.Errorf("%d bit/s: pion and libopus decoders differ: %.1f dB SNR", bitrate, vsLibopus)
		}
		if bitrate == 24000 || bitrate == 32000 {
			if modes["hybrid"] == 0 && modes["celt"] == 0 {
				t.Errorf("%d bit/s: libopus chose only %v; WebRTC's default mode is not covered", bitrate, modes)
			}
		}
	}
}

// align finds the lag (0..maxLag) of b behind a with the best normalised
// correlation.
func align(a, b []int16, maxLag int) (int, float64) {
	best, bestLag := -2.0, 0
	for lag := 0; lag <= maxLag; lag++ {
		var ab, aa, bb float64
		for i := 0; i+lag < len(b) && i < len(a); i++ {
			x, y := float64(a[i]), float64(b[i+lag])
			ab += x * y
			aa += x * x
			bb += y * y
		}
		if c := ab / math.Sqrt(aa*bb+1); c > best {
			best, bestLag = c, lag
		}
	}
	return bestLag, best
}

// envelopeError is the mean absolute difference in dB of the 20 ms frame
// energies over the frames within 30 dB of the loudest.
func envelopeError(a, b []int16, lag int) float64 {
	var ea, eb []float64
	peak := 0.0
	for i := 0; i+320 <= len(a) && i+lag+320 <= len(b); i += 320 {
		var x, y float64
		for j := range 320 {
			x += float64(a[i+j]) * float64(a[i+j])
			y += float64(b[i+lag+j]) * float64(b[i+lag+j])
		}
		ea, eb = append(ea, 10*math.Log10(x/320+1)), append(eb, 10*math.Log10(y/320+1))
		peak = max(peak, ea[len(ea)-1])
	}
	var sum float64
	var n int
	for i := range ea {
		if ea[i] > peak-30 {
			sum += math.Abs(ea[i] - eb[i])
			n++
		}
	}
	return sum / float64(n)
}

func snr(ref, x []int16) float64 {
	var s, e float64
	for i := range min(len(ref), len(x)) {
		d := float64(ref[i]) - float64(x[i])
		s += float64(ref[i]) * float64(ref[i])
		e += d * d
	}
	return 10 * math.Log10(s/(e+1))
}

// TestGoldenPackets keeps testdata/lattes.packets (used by the tests that
// run without libopus) decodable; -update rewrites it.
func TestGoldenPackets(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata")
	}
	pcm48, _ := speech48(t, "buy two oat lattes")
	var out []byte
	for _, p := range encodeAll(t, pcm48, 32000) {
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	if err := os.WriteFile("testdata/lattes.packets", out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEncoder(t *testing.T) {
	if !opus.EncoderAvailable() {
		t.Fatal("EncoderAvailable is false with libopus")
	}
	enc, err := opus.NewEncoder(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 959, 961, 320} {
		if _, err := enc.Encode(make([]int16, n)); err == nil {
			t.Errorf("%d samples accepted", n)
		}
	}
	if _, err := opus.NewEncoder(1000); err == nil {
		t.Error("bitrate 1000 accepted")
	}
}

func BenchmarkEncode(b *testing.B) {
	pcm48, _ := speech48(b, "buy two oat lattes")
	enc, err := opus.NewEncoder(32000)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if i+opus.EncodeFrame > len(pcm48) {
			i = 0
		}
		if _, err := enc.Encode(pcm48[i : i+opus.EncodeFrame]); err != nil {
			b.Fatal(err)
		}
		i += opus.EncodeFrame
	}
}

// TestDecodeLibopusShapes: stereo packets and 10/40/60 ms frames (which
// browsers may send) decode to 16 kHz mono of the right length.
func TestDecodeLibopusShapes(t *testing.T) {
	pcm48, _ := speech48(t, "yes please")
	tests := []struct {
		name     string
		channels int
		frame    int // samples per channel at 48 kHz
	}{
		{"mono 10ms", 1, 480}, {"mono 40ms", 1, 1920}, {"mono 60ms", 1, 2880}, {"stereo 20ms", 2, 960},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := hraban.NewEncoder(48000, tt.channels, hraban.AppVoIP)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := opus.NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			in := pcm48
			if tt.channels == 2 {
				in = make([]int16, 2*len(pcm48))
				for i, v := range pcm48 {
					in[2*i], in[2*i+1] = v, v/2
				}
			}
			buf := make([]byte, 4000)
			var out []int16
			frames := 0
			step := tt.frame * tt.channels
			for i := 0; i+step <= len(in); i += step {
				n, err := enc.Encode(in[i:i+step], buf)
				if err != nil {
					t.Fatal(err)
				}
				if out, err = dec.Decode(out, buf[:n]); err != nil {
					t.Fatalf("packet %d: %v", frames, err)
				}
				frames++
			}
			if want := frames * tt.frame / 3; len(out) != want {
				t.Errorf("%d samples, want %d", len(out), want)
			}
			if r := rmsOf(out); r < 300 {
				t.Errorf("rms %.0f: no speech came out", r)
			}
		})
	}
}

func rmsOf(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)+1))
}
