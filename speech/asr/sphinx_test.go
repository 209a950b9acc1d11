//go:build pocketsphinx

package asr_test

import (
	"context"
	"errors"
	"github.com/earshot/earshot/speech/grammar/grammartest"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/asr"
	"github.com/earshot/earshot/speech/grammar"
	"github.com/earshot/earshot/speech/tts"
)

func say(t testing.TB, text, voice string) []int16 {
	t.Helper()
	s, err := tts.New(tts.Config{})
	if errors.Is(err, tts.ErrUnavailable) {
		t.Skip("espeak-ng not installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := s.SayWith(context.Background(), text, voice, 160, 50)
	if err != nil {
		t.Fatal(err)
	}
	return speech.Pad(pcm, 300*time.Millisecond, 300*time.Millisecond)
}

func newSphinx(t testing.TB, g *grammar.Grammar, pool int) asr.Recognizer {
	t.Helper()
	r, err := asr.NewSphinx(asr.SphinxConfig{Grammar: g, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestSphinx(t *testing.T) {
	g := grammartest.Grammar(t)
	r := newSphinx(t, g, 2)
	if r.Name() != "pocketsphinx" {
		t.Errorf("name %q", r.Name())
	}
	for _, c := range []struct {
		mode     wire.SpeechMode
		text     string
		accepted bool
	}{
		{wire.ModeCommand, "buy two oat lattes", true},
		{wire.ModeCommand, "can i get a large iced americano please", true},
		{wire.ModeCommand, "cancel my order", true},
		{wire.ModeCommand, "the stock market closed higher today on strong earnings", false},
		{wire.ModeCommand, "did you see the game last night", false},
		{wire.ModeConfirm, "yes", true},
		{wire.ModeConfirm, "one two three four", true},
		{wire.ModeConfirm, "let me think about it", false},
	} {
		t.Run(c.text, func(t *testing.T) {
			res, err := r.Recognize(context.Background(), asr.Request{Mode: c.mode, Audio: say(t, c.text, "en-us")})
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != c.accepted {
				t.Fatalf("%+v, want accepted %v", res, c.accepted)
			}
			if !c.accepted {
				if res.Reject != asr.RejectOutOfGrammar && res.Reject != asr.RejectLowConfidence {
					t.Errorf("reject %q", res.Reject)
				}
				return
			}
			if res.Confidence <= 0 || res.Confidence > 1 {
				t.Errorf("confidence %v", res.Confidence)
			}
			if c.mode == wire.ModeConfirm {
				return
			}
			want, err := g.Parse(c.text)
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.Parse(res.Text)
			if err != nil || !got.Equal(want) {
				t.Errorf("heard %q = %v, want %v", res.Text, got, want)
			}
		})
	}
}

func TestSphinxNoSpeech(t *testing.T) {
	r := newSphinx(t, grammartest.Grammar(t), 1)
	for name, audio := range map[string][]int16{
		"empty":       nil,
		"short":       make([]int16, 800),
		"silence":     make([]int16, 16000),
		"quiet noise": speech.MixAtSNR(make([]int16, 16000), speech.PinkNoise(16000, 1), 60),
	} {
		res, err := r.Recognize(context.Background(), asr.Request{Mode: wire.ModeCommand, Audio: audio})
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted {
			t.Errorf("%s: accepted %q", name, res.Text)
		}
	}
	if _, err := r.Recognize(context.Background(), asr.Request{Mode: "x", Audio: make([]int16, 16000)}); !errors.Is(err, asr.ErrBadRequest) {
		t.Errorf("bad mode: %v", err)
	}
}

func TestSphinxPool(t *testing.T) {
	g := grammartest.Grammar(t)
	r, err := asr.NewSphinx(asr.SphinxConfig{Grammar: g, Pool: 1})
	if err != nil {
		t.Fatal(err)
	}
	audio := say(t, "buy two oat lattes", "en-us")
	// Concurrent callers share the one decoder.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Recognize(context.Background(), asr.Request{Mode: wire.ModeCommand, Audio: audio})
			if err == nil && !res.Accepted {
				err = errors.New("not accepted: " + res.Text)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Recognize(context.Background(), asr.Request{Mode: wire.ModeCommand, Audio: audio}); !errors.Is(err, asr.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

func TestSphinxConfig(t *testing.T) {
	if _, err := asr.NewSphinx(asr.SphinxConfig{}); !errors.Is(err, asr.ErrConfig) {
		t.Errorf("no grammar: %v", err)
	}
	if _, err := asr.NewSphinx(asr.SphinxConfig{Grammar: grammartest.Grammar(t), Dict: "/nonexistent"}); !errors.Is(err, asr.ErrConfig) {
		t.Errorf("no dictionary: %v", err)
	}
}

// BenchmarkRecognize measures one command (grammar decode, phone loop, n-gram decode).
func BenchmarkRecognize(b *testing.B) {
	r := newSphinx(b, grammartest.Grammar(b), 1)
	audio := say(b, "can i get two large oat lattes please", "en-us")
	req := asr.Request{Mode: wire.ModeCommand, Audio: audio}
	for b.Loop() {
		if _, err := r.Recognize(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	sec := float64(len(audio)) / speech.Rate
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/sec, "rtf")
}

// BenchmarkConcurrentRealtime: how many utterances the machine recognises in real time,
// from throughput (audio seconds per wall second) with one decoder per core.
func BenchmarkConcurrentRealtime(b *testing.B) {
	const pool = 2
	r := newSphinx(b, grammartest.Grammar(b), pool)
	audio := say(b, "buy two oat lattes and a blueberry muffin", "en-us")
	req := asr.Request{Mode: wire.ModeCommand, Audio: audio}
	const perOp = 2 * pool
	start := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		for range perOp {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.Recognize(context.Background(), req); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	audioSec := float64(b.N*perOp*len(audio)) / speech.Rate
	b.ReportMetric(audioSec/time.Since(start).Seconds(), "streams")
}

// TestSphinxLearnsTheVoice: a speaker's warp is learnt from their first accepted
// utterances, the high en-us+f3 voice settling on a compressing warp and the low
// en-us+m3 voice on none; from then on only that warp is decoded.
func TestSphinxLearnsTheVoice(t *testing.T) {
	g := grammartest.Grammar(t)
	r := newSphinx(t, g, 1).(asr.Analyzer)
	orders := []string{"buy two oat lattes", "can i get a blueberry muffin", "order three espressos",
		"i'd like a large cappuccino", "get me two croissants", "buy a flat white", "two americanos please",
		"a pair of running socks"}
	for _, c := range []struct {
		voice string
		high  bool
	}{{"en-us+f3", true}, {"en-us+m3", false}} {
		sp := asr.NewSpeaker()
		settled := 0 // utterances decoded after settling
		for _, text := range orders {
			before := sp.Warp()
			_, sig, err := r.Analyze(t.Context(), asr.Request{Mode: wire.ModeCommand, Audio: say(t, text, c.voice), Speaker: sp})
			if err != nil {
				t.Fatal(err)
			}
			if before != 0 {
				settled++
				if sig.Warp != before {
					t.Errorf("%s: %q decoded through %v after settling on %v", c.voice, text, sig.Warp, before)
				}
			}
		}
		if w := sp.Warp(); w == 0 || (w > 1) != c.high {
			t.Errorf("%s settled on warp %v (0: not settled); want one above 1: %v", c.voice, w, c.high)
		}
		if settled == 0 {
			t.Errorf("%s: no utterance was decoded after settling", c.voice)
		}
	}
}

// TestSphinxSure: a command whose score without the n-gram decode reaches Sure is
// accepted without that decode; below it, the decode runs.
func TestSphinxSure(t *testing.T) {
	g := grammartest.Grammar(t)
	audio := say(t, "buy two oat lattes", "en-us")
	for _, c := range []struct {
		sure   float64
		decode bool
	}{{0, true}, {-1e6, false}, {1e6, true}} {
		rej := asr.DefaultRejection
		rej.Command.Sure = c.sure
		r, err := asr.NewSphinx(asr.SphinxConfig{Grammar: g, Pool: 1, Rejection: rej})
		if err != nil {
			t.Fatal(err)
		}
		res, sig, err := r.(asr.Analyzer).Analyze(t.Context(), asr.Request{Mode: wire.ModeCommand, Audio: audio})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !res.Accepted {
			t.Fatalf("sure %v: %+v, want accepted", c.sure, res)
		}
		if decoded := sig.LMText != ""; decoded != c.decode {
			t.Errorf("sure %v: n-gram decode ran: %v (%q), want %v", c.sure, decoded, sig.LMText, c.decode)
		}
	}
}
