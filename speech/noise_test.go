package speech_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/earshot/earshot/speech"
)

func TestNoise(t *testing.T) {
	for name, gen := range map[string]func(int, int64) []int16{"white": speech.WhiteNoise, "pink": speech.PinkNoise} {
		t.Run(name, func(t *testing.T) {
			a, b, c := gen(16000, 1), gen(16000, 1), gen(16000, 2)
			if !slices.Equal(a, b) || slices.Equal(a, c) {
				t.Errorf("not deterministic by seed")
			}
			if r := rms(a); math.Abs(db(r/3277)) > 0.5 {
				t.Errorf("rms %.0f, want about 3277 (-20 dBFS)", r)
			}
			if len(gen(0, 1)) != 0 || len(gen(-5, 1)) != 0 {
				t.Errorf("empty sizes")
			}
		})
	}
	// Pink noise is dominated by low frequencies: neighbours correlate.
	if w, p := lag1(speech.WhiteNoise(16000, 3)), lag1(speech.PinkNoise(16000, 3)); math.Abs(w) > 0.05 || p < 0.5 {
		t.Errorf("lag-1 correlation: white %.2f, pink %.2f", w, p)
	}
}

func lag1(s []int16) float64 {
	var num, den float64
	for i := 1; i < len(s); i++ {
		num += float64(s[i]) * float64(s[i-1])
		den += float64(s[i]) * float64(s[i])
	}
	return num / den
}

func TestMixAtSNR(t *testing.T) {
	word := trim(say(t, "buy two oat lattes", "en-us"))
	sp := speech.Pad(word, 500*time.Millisecond, 500*time.Millisecond)
	var mix []int16
	for _, snr := range []float64{30, 20, 10, 0} {
		noise := speech.PinkNoise(4000, 5) // shorter than the speech: looped
		mix = speech.MixAtSNR(sp, noise, snr)
		if len(mix) != len(sp) {
			t.Fatalf("length %d, want %d", len(mix), len(sp))
		}
		// The noise alone is what the mixture has in the padding.
		nz := make([]int16, len(mix))
		for i := range mix {
			nz[i] = mix[i] - sp[i]
		}
		active := make([]int16, 0, len(word))
		active = append(active, sp[8000:8000+len(word)]...)
		got := db(rms(active) / rms(nz))
		// rms over all of the word includes its quieter frames: the active
		// level is a little higher.
		if got > snr+0.5 || got < snr-3 {
			t.Errorf("snr %v: measured %.2f dB", snr, got)
		}
	}
	// Clip-safe: a loud mixture is scaled down, not clipped or wrapped.
	loud := make([]int16, 1600)
	for i := range loud {
		loud[i] = 32000
		if i%2 == 1 {
			loud[i] = -32000
		}
	}
	mix = speech.MixAtSNR(loud, speech.WhiteNoise(1600, 1), 20)
	peak := 0
	for i, v := range mix {
		peak = max(peak, int(v), -int(v))
		if int(v)*int(loud[i]) <= 0 {
			t.Fatalf("sample %d: %d for %d", i, v, loud[i])
		}
	}
	if peak < 32000 {
		t.Errorf("peak %d: scaled more than needed", peak)
	}
	if got := speech.MixAtSNR(loud, nil, 10); !slices.Equal(got, loud) {
		t.Errorf("no noise: changed the signal")
	}
	if got := speech.MixAtSNR(make([]int16, 10), speech.WhiteNoise(10, 1), 10); slices.Max(got) != 0 {
		t.Errorf("silent speech: got noise")
	}
}

func TestPad(t *testing.T) {
	s := speech.Pad([]int16{1, 2}, time.Millisecond, -time.Second)
	if len(s) != 18 || s[16] != 1 || s[17] != 2 || s[0] != 0 {
		t.Errorf("Pad: %v", s)
	}
}

func TestRaiseFloor(t *testing.T) {
	word := trim(say(t, "buy two oat lattes", "en-us"))
	sp := speech.Pad(word, 500*time.Millisecond, 500*time.Millisecond)
	pad := sp[:8000] // the leading half second: digital silence
	if rms(pad) != 0 {
		t.Fatalf("padding not silent")
	}
	raised := speech.RaiseFloor(sp, 20)
	if len(raised) != len(sp) {
		t.Fatalf("length %d, want %d", len(raised), len(sp))
	}
	floor := rms(raised[:8000])
	// The floor sits about 20 dB under the active speech level, which is a little above
	// the word's overall RMS (see MixAtSNR).
	if got := db(rms(word) / floor); got < 15 || got > 22 {
		t.Errorf("speech %.1f dB above the raised floor, want about 20", got)
	}
	if !slices.Equal(speech.RaiseFloor(sp, 20), raised) {
		t.Errorf("not deterministic")
	}
	// A floor already there is left alone: pink noise at 10 dB.
	noisy := speech.MixAtSNR(sp, speech.PinkNoise(len(sp), 9), 10)
	if got := speech.RaiseFloor(noisy, 20); &got[0] != &noisy[0] {
		t.Errorf("a noisy utterance was changed")
	}
	// Silence and short input are returned as they are.
	silence := make([]int16, 16000)
	if got := speech.RaiseFloor(silence, 20); rms(got) != 0 {
		t.Errorf("silence got noise")
	}
	if got := speech.RaiseFloor(sp[:100], 20); len(got) != 100 {
		t.Errorf("short input: length %d", len(got))
	}
}
