package speech_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/earshot/earshot/speech"
)

func tone(n, rate int, freq, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return s
}

// fit least-squares fits a*sin + b*cos at freq to s (skipping edge samples)
// and returns the amplitude, the phase error (b relative to the amplitude:
// non-zero when the output is delayed) and the residual RMS.
func fit(s []int16, rate int, freq float64, edge int) (amp, phase, resid float64) {
	var ss, cc, sc, ys, yc float64
	for i := edge; i < len(s)-edge; i++ {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		sn, cs, y := math.Sin(w), math.Cos(w), float64(s[i])
		ss += sn * sn
		cc += cs * cs
		sc += sn * cs
		ys += y * sn
		yc += y * cs
	}
	det := ss*cc - sc*sc
	a := (ys*cc - yc*sc) / det
	b := (yc*ss - ys*sc) / det
	var r float64
	n := 0
	for i := edge; i < len(s)-edge; i++ {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		d := float64(s[i]) - a*math.Sin(w) - b*math.Cos(w)
		r += d * d
		n++
	}
	return math.Hypot(a, b), b / math.Hypot(a, b), math.Sqrt(r / float64(n))
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

func db(x float64) float64 { return 20 * math.Log10(x) }

// TestResampleTone: a 1 kHz tone keeps its frequency, amplitude and phase
// (no delay) through every conversion the system uses, with little else
// added (aliases, images, quantisation).
func TestResampleTone(t *testing.T) {
	pairs := [][2]int{
		{8000, 16000}, {22050, 16000}, {24000, 16000}, {32000, 16000}, {44100, 16000}, {48000, 16000},
		{16000, 48000}, {16000, 8000}, {16000, 16000}, {44100, 48000},
	}
	for _, p := range pairs {
		from, to := p[0], p[1]
		t.Run(fmt.Sprintf("%dto%d", from, to), func(t *testing.T) {
			in := tone(from/2, from, 1000, 10000)
			out, err := speech.Resample(in, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if want := (len(in)*to + from - 1) / from; len(out) != want {
				t.Fatalf("%d samples out, want %d", len(out), want)
			}
			amp, phase, resid := fit(out, to, 1000, to/50)
			if math.Abs(amp-10000) > 20 {
				t.Errorf("amplitude %.1f, want 10000 (%.3f dB)", amp, db(amp/10000))
			}
			if math.Abs(phase) > 0.005 {
				t.Errorf("phase error %.4f: output delayed", phase)
			}
			if snr := db(amp / math.Sqrt2 / resid); snr < 60 {
				t.Errorf("tone to residual %.1f dB, want >= 60", snr)
			}
		})
	}
}

// TestResampleAntiAlias: tones above the output's Nyquist frequency are
// removed (>40 dB; the design aims at 75), and the pass band reaches 7 kHz.
func TestResampleAntiAlias(t *testing.T) {
	tests := []struct {
		from, to   int
		freq       float64
		minAttenDB float64 // positive: attenuation wanted
		maxAttenDB float64
	}{
		{48000, 16000, 10000, 40, 200},
		{48000, 16000, 12000, 60, 200},
		{48000, 16000, 20000, 60, 200},
		{44100, 16000, 9000, 40, 200},
		{22050, 16000, 10000, 40, 200},
		{24000, 16000, 8500, 40, 200},
		{16000, 8000, 5000, 40, 200},
		{48000, 16000, 7000, 0, 0.5},
		{48000, 16000, 3000, 0, 0.05},
		{44100, 16000, 7000, 0, 0.5},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dto%d/%.0fHz", tt.from, tt.to, tt.freq), func(t *testing.T) {
			in := tone(tt.from/2, tt.from, tt.freq, 10000)
			out, err := speech.Resample(in, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			edge := tt.to / 20
			atten := db(rms(in) / rms(out[edge:len(out)-edge]))
			if math.IsInf(atten, 1) {
				atten = 200
			}
			t.Logf("%.0f Hz: %.2f dB", tt.freq, -atten)
			if atten < tt.minAttenDB || atten > tt.maxAttenDB {
				t.Errorf("attenuation %.2f dB, want %.1f..%.1f", atten, tt.minAttenDB, tt.maxAttenDB)
			}
		})
	}
}

// TestResampleStreaming: any chunking gives the whole-buffer output, and a
// resampler is reusable after Flush.
func TestResampleStreaming(t *testing.T) {
	in := speech.PinkNoise(12345, 3)
	for _, p := range [][2]int{{48000, 16000}, {44100, 16000}, {22050, 16000}, {8000, 16000}, {16000, 48000}} {
		want, err := speech.Resample(in, p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		r, err := speech.NewResampler(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, chunk := range []int{1, 7, 160, 441, 959, 4097} {
			var got []int16
			for i := 0; i < len(in); i += chunk {
				got = r.Process(got, in[i:min(i+chunk, len(in))])
			}
			got = r.Flush(got)
			if !slices.Equal(got, want) {
				t.Errorf("%d->%d in chunks of %d: output differs (%d vs %d samples)", p[0], p[1], chunk, len(got), len(want))
			}
		}
	}
}

func TestResampleDC(t *testing.T) {
	in := make([]int16, 4800)
	for i := range in {
		in[i] = -12345
	}
	out, err := speech.Resample(in, 48000, 16000)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out[100 : len(out)-100] {
		if v != -12345 {
			t.Fatalf("sample %d: %d, want -12345", i+100, v)
		}
	}
}

func TestResamplerRates(t *testing.T) {
	for _, p := range [][2]int{{0, 16000}, {16000, -1}, {1000, 16000}, {16000, 400000}, {44101, 16000}, {150010, 10240}} {
		if _, err := speech.NewResampler(p[0], p[1]); !errors.Is(err, speech.ErrRate) {
			t.Errorf("%d->%d: %v, want ErrRate", p[0], p[1], err)
		}
	}
}

func BenchmarkResample48to16(b *testing.B) {
	in := speech.PinkNoise(960, 1) // 20 ms at 48 kHz
	r, err := speech.NewResampler(48000, 16000)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]int16, 0, 400)
	b.ReportAllocs()
	for b.Loop() {
		out = r.Process(out[:0], in)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20e6, "rtf")
}
