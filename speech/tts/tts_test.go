package tts_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/tts"
)

func newSynth(t testing.TB, cfg tts.Config) *tts.Synth {
	t.Helper()
	s, err := tts.New(cfg)
	if err != nil {
		t.Fatalf("espeak-ng is needed: %v", err)
	}
	return s
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)+1))
}

// TestVoices: the voices and variants espeak-ng lists for English speak,
// at 16 kHz, for about as long as the text takes.
func TestVoices(t *testing.T) {
	s := newSynth(t, tts.Config{})
	for _, voice := range []string{"en-us", "en-gb", "en-gb-scotland", "en-029", "en-us+f3", "en-gb+m3", "en-us-nyc"} {
		t.Run(voice, func(t *testing.T) {
			pcm, err := s.SayWith(context.Background(), "buy two oat lattes", voice, 165, 50)
			if err != nil {
				t.Fatal(err)
			}
			d := time.Duration(len(pcm)) * time.Second / speech.Rate
			if d < 700*time.Millisecond || d > 3*time.Second || rms(pcm) < 500 {
				t.Errorf("%v of audio at rms %.0f", d, rms(pcm))
			}
		})
	}
	if got := s.Name(); got != "espeak-ng en-us" {
		t.Errorf("Name() = %q", got)
	}
}

func TestSpeedAndPitch(t *testing.T) {
	s := newSynth(t, tts.Config{})
	ctx := context.Background()
	slow, err := s.SayWith(ctx, "one two three four five", "en-us", 100, 50)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.SayWith(ctx, "one two three four five", "en-us", 300, 50)
	if err != nil {
		t.Fatal(err)
	}
	if float64(len(slow)) < 1.8*float64(len(fast)) {
		t.Errorf("100 wpm: %d samples, 300 wpm: %d", len(slow), len(fast))
	}
	low, err := s.SayWith(ctx, "one two three four five", "en-us", 165, 0)
	if err != nil {
		t.Fatal(err)
	}
	high, err := s.SayWith(ctx, "one two three four five", "en-us", 165, 99)
	if err != nil {
		t.Fatal(err)
	}
	if zcr(high) <= zcr(low) {
		t.Errorf("pitch 99 crosses zero %.3f, pitch 0 %.3f", zcr(high), zcr(low))
	}
}

func zcr(s []int16) float64 {
	n := 0
	for i := 1; i < len(s); i++ {
		if (s[i] >= 0) != (s[i-1] >= 0) {
			n++
		}
	}
	return float64(n) / float64(len(s))
}

func TestRejects(t *testing.T) {
	s := newSynth(t, tts.Config{})
	ctx := context.Background()
	tests := []struct {
		name         string
		text, voice  string
		speed, pitch int
		want         error
	}{
		{"empty", "", "en-us", 165, 50, tts.ErrText},
		{"too long", strings.Repeat("a", tts.MaxText+1), "en-us", 165, 50, tts.ErrText},
		{"newline", "buy\nnow", "en-us", 165, 50, tts.ErrText},
		{"escape", "buy \x1b[2J now", "en-us", 165, 50, tts.ErrText},
		{"nul", "buy\x00", "en-us", 165, 50, tts.ErrText},
		{"bad utf-8", "buy \xff", "en-us", 165, 50, tts.ErrText},
		{"c1 control", "buy \u0085", "en-us", 165, 50, tts.ErrText},
		{"option as voice", "hi", "-w/tmp/x", 165, 50, tts.ErrVoice},
		{"path as voice", "hi", "../../etc/passwd", 165, 50, tts.ErrVoice},
		{"space in voice", "hi", "en us", 165, 50, tts.ErrVoice},
		{"two variants", "hi", "en+f3+m1", 165, 50, tts.ErrVoice},
		{"unknown voice", "hi", "xx-nosuch", 165, 50, tts.ErrVoice},
		{"slow", "hi", "en-us", 10, 50, tts.ErrVoice},
		{"fast", "hi", "en-us", 1000, 50, tts.ErrVoice},
		{"pitch", "hi", "en-us", 165, 100, tts.ErrVoice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.SayWith(ctx, tt.text, tt.voice, tt.speed, tt.pitch); !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
	// What looks like options or markup in the text is spoken, not obeyed.
	for _, text := range []string{"-w /tmp/x", "--version", "<speak>hello</speak>", "$(id); `id` | rm"} {
		if pcm, err := s.Say(ctx, text); err != nil || len(pcm) == 0 {
			t.Errorf("%q: %d samples, %v", text, len(pcm), err)
		}
	}
}

func TestNew(t *testing.T) {
	if _, err := tts.New(tts.Config{Binary: "no-such-espeak"}); !errors.Is(err, tts.ErrUnavailable) {
		t.Errorf("missing binary: %v, want ErrUnavailable", err)
	}
	if _, err := tts.New(tts.Config{Voice: "-x"}); !errors.Is(err, tts.ErrVoice) {
		t.Errorf("bad voice: %v, want ErrVoice", err)
	}
}

// countingSynth returns a Synth whose binary is a wrapper script that counts
// its runs in a file and then runs espeak-ng (or sleeps, when slow).
func countingSynth(t *testing.T, cfg tts.Config, slow bool) (*tts.Synth, func() int) {
	t.Helper()
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	script := "#!/bin/sh\necho x >> " + count + "\n"
	if slow {
		script += "exec sleep 10\n"
	} else {
		script += "exec espeak-ng \"$@\"\n"
	}
	bin := filepath.Join(dir, "espeak-wrapper")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Binary = bin
	runs := func() int {
		b, _ := os.ReadFile(count) // missing: no runs yet
		return strings.Count(string(b), "x")
	}
	return newSynth(t, cfg), runs
}

func TestCache(t *testing.T) {
	s, runs := countingSynth(t, tts.Config{CacheSize: 2}, false)
	ctx := context.Background()
	a1, err := s.Say(ctx, "yes")
	if err != nil {
		t.Fatal(err)
	}
	a1[0] = 12345 // the caller owns the slice; the cache must not change
	a2, err := s.Say(ctx, "yes")
	if err != nil {
		t.Fatal(err)
	}
	if runs() != 1 {
		t.Errorf("%d runs for a repeated text, want 1", runs())
	}
	if a2[0] == 12345 {
		t.Errorf("cached audio aliases a returned slice")
	}
	a1[0] = a2[0]
	if !slices.Equal(a1, a2) {
		t.Errorf("cache hit returned different audio")
	}
	if _, err := s.SayWith(ctx, "yes", "en-gb", 165, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Say(ctx, "no"); err != nil { // evicts en-us "yes"
		t.Fatal(err)
	}
	if _, err := s.Say(ctx, "yes"); err != nil {
		t.Fatal(err)
	}
	if runs() != 4 {
		t.Errorf("%d runs, want 4 (LRU of 2)", runs())
	}

	off, offRuns := countingSynth(t, tts.Config{CacheSize: -1}, false)
	for range 2 {
		if _, err := off.Say(ctx, "yes"); err != nil {
			t.Fatal(err)
		}
	}
	if offRuns() != 2 {
		t.Errorf("cache disabled: %d runs, want 2", offRuns())
	}
}

func TestTimeout(t *testing.T) {
	s, _ := countingSynth(t, tts.Config{Timeout: 200 * time.Millisecond}, true)
	start := time.Now()
	_, err := s.Say(context.Background(), "hello")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Say(ctx, "hello"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	s := newSynth(t, tts.Config{CacheSize: 3, MaxProcs: 2})
	texts := []string{"one", "two", "three", "four", "five"}
	want := make(map[string][]int16)
	for _, tx := range texts {
		pcm, err := s.Say(context.Background(), tx)
		if err != nil {
			t.Fatal(err)
		}
		want[tx] = pcm
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			tx := texts[i%len(texts)]
			pcm, err := s.Say(context.Background(), tx)
			if err == nil && !slices.Equal(pcm, want[tx]) {
				err = errors.New("different audio for " + tx)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkSay(b *testing.B) {
	s := newSynth(b, tts.Config{CacheSize: -1})
	for b.Loop() {
		if _, err := s.Say(context.Background(), "you are buying two oat lattes for nine dollars, say yes to confirm"); err != nil {
			b.Fatal(err)
		}
	}
}
