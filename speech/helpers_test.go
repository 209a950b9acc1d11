package speech_test

import (
	"context"
	"sync"
	"testing"

	"github.com/earshot/earshot/speech/tts"
)

var (
	synthOnce sync.Once
	synth     *tts.Synth
	synthErr  error
)

// say synthesises text with espeak-ng (16 kHz); the test fails without it.
func say(t testing.TB, text, voice string) []int16 {
	t.Helper()
	synthOnce.Do(func() { synth, synthErr = tts.New(tts.Config{Speed: 160}) })
	if synthErr != nil {
		t.Fatalf("espeak-ng is needed: %v", synthErr)
	}
	pcm, err := synth.SayWith(context.Background(), text, voice, 160, 50)
	if err != nil {
		t.Fatalf("say %q: %v", text, err)
	}
	return pcm
}

// bounds returns the first and last sample of the clean signal's speech:
// 10 ms frames whose RMS exceeds -50 dBFS.
func bounds(clean []int16) (first, last int) {
	first, last = -1, -1
	for i := 0; i+160 <= len(clean); i += 160 {
		var s float64
		for _, v := range clean[i : i+160] {
			s += float64(v) * float64(v)
		}
		if s/160 > 100*100 {
			if first < 0 {
				first = i
			}
			last = i + 160
		}
	}
	return first, last
}

// trim drops the leading and trailing non-speech of clean.
func trim(clean []int16) []int16 {
	f, l := bounds(clean)
	if f < 0 {
		return nil
	}
	return clean[f:l]
}
