//go:build pocketsphinx

package pocketsphinx_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/pocketsphinx"
	"github.com/earshot/earshot/speech/tts"
)

const testJSGF = `#JSGF V1.0;
grammar test;
public <command> = [can i get] [buy] <qty> [<size>] <item> [please];
<qty> = a | one | two | three;
<size> = small | large;
<item> = oat latte | oat lattes | muffin | muffins;
`

var testWords = strings.Fields("can i get buy a one two three small large oat latte muffin muffins please")

// extra gives the plural the CMU dictionary lacks.
var testExtra = map[string]string{"lattes": "L AA T EY Z"}

func say(t testing.TB, text string) []int16 {
	t.Helper()
	s, err := tts.New(tts.Config{})
	if errors.Is(err, tts.ErrUnavailable) {
		t.Skip("espeak-ng not installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := s.SayWith(context.Background(), text, "en-us", 160, 50)
	if err != nil {
		t.Fatal(err)
	}
	// A little noise: pure digital silence is not what microphones send.
	pcm = speech.Pad(pcm, 300*time.Millisecond, 300*time.Millisecond)
	return speech.MixAtSNR(pcm, speech.PinkNoise(len(pcm), 1), 40)
}

func newDecoder(t testing.TB) *pocketsphinx.Decoder {
	t.Helper()
	d, err := pocketsphinx.NewDecoder(pocketsphinx.Config{
		Words: testWords, Extra: testExtra,
		Grammars: map[string]string{"command": testJSGF},
		PhoneLM:  "-", Args: []string{"-allphone_ci", "yes"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func TestDecode(t *testing.T) {
	d := newDecoder(t)
	if got, want := strings.Join(d.Searches(), ","), "command,phones"; got != want {
		t.Errorf("searches %q, want %q", got, want)
	}
	for _, text := range []string{"buy two oat lattes", "can i get a large muffin please"} {
		t.Run(text, func(t *testing.T) {
			pcm := say(t, text)
			h, err := d.Decode("command", pcm)
			if err != nil {
				t.Fatal(err)
			}
			if h.Text != text {
				t.Errorf("heard %q, want %q", h.Text, text)
			}
			frames := len(pcm) / (pocketsphinx.SampleRate / pocketsphinx.FrameRate)
			if h.Frames < frames-2 || h.Frames > frames+2 {
				t.Errorf("%d frames, want about %d", h.Frames, frames)
			}
			var words []string
			for _, w := range h.Words {
				if w.Start < 0 || w.End < w.Start || w.End >= h.Frames {
					t.Errorf("word %+v outside [0,%d)", w, h.Frames)
				}
				if !w.Filler {
					words = append(words, w.Text)
				}
			}
			if strings.Join(words, " ") != text {
				t.Errorf("segments %q, want %q", words, text)
			}
			p, err := d.Decode(pocketsphinx.PhoneSearch, pcm)
			if err != nil {
				t.Fatal(err)
			}
			if len(strings.Fields(p.Text)) < 5 || p.Acoustic <= h.Acoustic {
				t.Errorf("phone loop %q scores %d, want several phones scoring above the grammar's %d", p.Text, p.Acoustic, h.Acoustic)
			}
		})
	}
}

// TestNoCarryOver checks that nothing learned from one utterance (cepstral mean, noise
// estimate) changes the decoding of the next: pooled decoders serve many devices.
func TestNoCarryOver(t *testing.T) {
	pcm := say(t, "buy two oat lattes")
	fresh := newDecoder(t)
	want, err := fresh.Decode("command", pcm)
	if err != nil {
		t.Fatal(err)
	}
	used := newDecoder(t)
	// Another device: loud, noisy, a different level and spectrum.
	other := say(t, "three small muffins")
	for i := range other {
		other[i] = int16(max(-32768, min(32767, int32(other[i])*6)))
	}
	other = speech.MixAtSNR(other, speech.WhiteNoise(len(other), 2), 5)
	for range 3 {
		if _, err := used.Decode("command", other); err != nil {
			t.Fatal(err)
		}
		if _, err := used.Decode(pocketsphinx.PhoneSearch, other); err != nil {
			t.Fatal(err)
		}
	}
	got, err := used.Decode("command", pcm)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != want.Text || got.Score != want.Score || got.Acoustic != want.Acoustic {
		t.Errorf("after other audio: %q score %d/%d, fresh decoder: %q score %d/%d",
			got.Text, got.Score, got.Acoustic, want.Text, want.Score, want.Acoustic)
	}
}

func TestErrors(t *testing.T) {
	d := newDecoder(t)
	if _, err := d.Decode("nope", make([]int16, 1600)); !errors.Is(err, pocketsphinx.ErrSearch) {
		t.Errorf("unknown search: %v, want ErrSearch", err)
	}
	if _, err := d.Decode("command", make([]int16, pocketsphinx.MaxSamples+1)); !errors.Is(err, pocketsphinx.ErrDecode) {
		t.Errorf("too long: %v, want ErrDecode", err)
	}
	if h, err := d.Decode("command", nil); err != nil || h.Text != "" {
		t.Errorf("empty audio: %q, %v; want no text, no error", h.Text, err)
	}
	d.Close()
	d.Close()
	if _, err := d.Decode("command", make([]int16, 1600)); !errors.Is(err, pocketsphinx.ErrClosed) {
		t.Errorf("closed: %v, want ErrClosed", err)
	}
	for name, cfg := range map[string]pocketsphinx.Config{
		"missing word": {Words: testWords, Grammars: map[string]string{"command": testJSGF}}, // no "lattes"
		"bad jsgf":     {Words: testWords, Grammars: map[string]string{"command": "#JSGF V1.0; grammar x; public <a> = (b;"}},
		"bad model":    {ModelDir: "/nonexistent"},
		"odd args":     {Args: []string{"-beam"}},
		"phones name":  {Grammars: map[string]string{pocketsphinx.PhoneSearch: testJSGF}},
	} {
		if _, err := pocketsphinx.NewDecoder(cfg); !errors.Is(err, pocketsphinx.ErrInit) {
			t.Errorf("%s: %v, want ErrInit", name, err)
		}
	}
}

func BenchmarkNewDecoder(b *testing.B) {
	for _, bc := range []struct {
		name  string
		words []string
	}{{"pruned", testWords}, {"full-dict", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				d, err := pocketsphinx.NewDecoder(pocketsphinx.Config{Words: bc.words, Extra: testExtra,
					Grammars: map[string]string{"command": strings.ReplaceAll(testJSGF, "oat lattes |", "")}})
				if err != nil {
					b.Fatal(err)
				}
				d.Close()
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	d := newDecoder(b)
	pcm := say(b, "can i get two large oat lattes please")
	for _, search := range []string{"command", pocketsphinx.PhoneSearch} {
		b.Run(search, func(b *testing.B) {
			for b.Loop() {
				if _, err := d.Decode(search, pcm); err != nil {
					b.Fatal(err)
				}
			}
			audio := float64(len(pcm)) / pocketsphinx.SampleRate
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/audio, "rtf")
		})
	}
}

// TestWarpFrontEnds checks the extra front ends: one whose warp is barely off neutral
// decodes like the decoder's own (the cepstra go the other way into the decoder, so
// this checks that path), a real warp changes the scores, and making the front ends
// leaves the next decoder's own front end unwarped.
func TestWarpFrontEnds(t *testing.T) {
	pcm := say(t, "can i get two oat lattes please")
	mk := func(warps ...float64) *pocketsphinx.Decoder {
		d, err := pocketsphinx.NewDecoder(pocketsphinx.Config{
			Words: testWords, Extra: testExtra,
			Grammars: map[string]string{"command": testJSGF},
			PhoneLM:  "-", Args: []string{"-allphone_ci", "yes"}, Warps: warps,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		return d
	}
	plain := mk()
	want, err := plain.Decode("command", pcm)
	if err != nil {
		t.Fatal(err)
	}
	d := mk(1.0000001, 1.3)
	if got := d.Warps(); len(got) != 3 || got[0] != 1 || got[2] != 1.3 {
		t.Fatalf("Warps() = %v", got)
	}
	near, err := d.DecodeWarp("command", 1.0000001, pcm)
	if err != nil {
		t.Fatal(err)
	}
	if near.Text != want.Text || near.Frames != want.Frames || abs(near.Acoustic-want.Acoustic) > abs(want.Acoustic)/1000 {
		t.Errorf("neutral front end through cepstra: %q %d frames acoustic %d; own front end: %q %d frames acoustic %d",
			near.Text, near.Frames, near.Acoustic, want.Text, want.Frames, want.Acoustic)
	}
	warped, err := d.DecodeWarp("command", 1.3, pcm)
	if err != nil {
		t.Fatal(err)
	}
	if warped.Acoustic == want.Acoustic {
		t.Errorf("warp 1.3 scored like no warp (%d)", warped.Acoustic)
	}
	// The statics of sphinxbase's warp now hold 1.3: a new decoder must not take it.
	again, err := mk().Decode("command", pcm)
	if err != nil {
		t.Fatal(err)
	}
	if again.Acoustic != want.Acoustic || again.Text != want.Text {
		t.Errorf("a decoder made after a warped front end: %q acoustic %d, want %q %d", again.Text, again.Acoustic, want.Text, want.Acoustic)
	}
	if _, err := d.DecodeWarp("command", 1.1, pcm); !errors.Is(err, pocketsphinx.ErrWarp) {
		t.Errorf("unknown warp: %v, want ErrWarp", err)
	}
	if _, err := pocketsphinx.NewDecoder(pocketsphinx.Config{Warps: []float64{3}}); !errors.Is(err, pocketsphinx.ErrInit) {
		t.Errorf("warp 3: %v, want ErrInit", err)
	}
	if _, err := pocketsphinx.NewDecoder(pocketsphinx.Config{Args: []string{"-warp_params", "1.2"}}); !errors.Is(err, pocketsphinx.ErrInit) {
		t.Errorf("-warp_params in Args: %v, want ErrInit", err)
	}
}

func abs(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}

// testARPA is a small bigram model over testWords.
const testARPA = `\data\
ngram 1=6
ngram 2=5

\1-grams:
-99 <s> -0.3
-0.7 </s>
-0.7 buy -0.3
-0.7 two -0.3
-0.7 oat -0.3
-0.7 lattes -0.3

\2-grams:
-0.1 <s> buy
-0.1 buy two
-0.1 two oat
-0.1 oat lattes
-0.1 lattes </s>

\end\
`

func TestDecodeLM(t *testing.T) {
	d, err := pocketsphinx.NewDecoder(pocketsphinx.Config{
		Words: testWords, Extra: testExtra,
		Grammars: map[string]string{"command": testJSGF},
		LMs:      map[string]string{"command-lm": testARPA},
		PhoneLM:  "-", Args: []string{"-allphone_ci", "yes"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got, want := strings.Join(d.Searches(), ","), "command,command-lm,phones"; got != want {
		t.Errorf("searches %q, want %q", got, want)
	}
	h, err := d.Decode("command-lm", say(t, "buy two oat lattes"))
	if err != nil {
		t.Fatal(err)
	}
	if h.Text != "buy two oat lattes" {
		t.Errorf("heard %q", h.Text)
	}
	for name, cfg := range map[string]pocketsphinx.Config{
		"not ARPA":     {LMs: map[string]string{"x": "hello"}},
		"phones name":  {LMs: map[string]string{pocketsphinx.PhoneSearch: testARPA}},
		"grammar name": {Grammars: map[string]string{"x": testJSGF}, LMs: map[string]string{"x": testARPA}},
	} {
		cfg.Words, cfg.Extra, cfg.PhoneLM = testWords, testExtra, "-"
		if d, err := pocketsphinx.NewDecoder(cfg); !errors.Is(err, pocketsphinx.ErrInit) {
			if d != nil {
				d.Close()
			}
			t.Errorf("%s: %v, want ErrInit", name, err)
		}
	}
}
