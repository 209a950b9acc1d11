package speech_test

import (
	"testing"
	"time"

	"github.com/earshot/earshot/speech"
)

type noiseKind int

const (
	noNoise noiseKind = iota
	white
	pink
)

type epCase struct {
	name          string
	text, voice   string
	profile       speech.Profile
	noise         noiseKind
	snr           float64
	before, after time.Duration
	chunk         int
}

type epResult struct {
	startEv, endEv time.Duration // stream time of the events (-1 if none)
	final          speech.Event
	start, end     time.Duration // what the endpointer reported
	truthStart     time.Duration
	truthEnd       time.Duration
	speechLen      int
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func dur(samples int) time.Duration { return time.Duration(samples) * time.Second / speech.Rate }

func runEndpointer(t *testing.T, c epCase, seed int64) epResult {
	t.Helper()
	clean := trim(say(t, c.text, c.voice))
	sig := speech.Pad(clean, c.before, c.after)
	switch c.noise {
	case white:
		sig = speech.MixAtSNR(sig, speech.WhiteNoise(len(sig), seed), c.snr)
	case pink:
		sig = speech.MixAtSNR(sig, speech.PinkNoise(len(sig), seed), c.snr)
	}
	chunk := c.chunk
	if chunk == 0 {
		chunk = speech.FrameSamples
	}
	ep := speech.NewEndpointer(c.profile)
	r := epResult{startEv: -1, endEv: -1, truthStart: c.before, truthEnd: c.before + dur(len(clean))}
	for i := 0; i < len(sig); i += chunk {
		ev := ep.Push(sig[i:min(i+chunk, len(sig))])
		switch ev {
		case speech.EventSpeechStart:
			r.startEv = ep.Elapsed()
		case speech.EventEnd, speech.EventCap, speech.EventNoSpeech:
			r.endEv, r.final = ep.Elapsed(), ev
		}
		if r.final != speech.EventNone {
			break
		}
	}
	if r.final == speech.EventNone {
		r.final = ep.Finish()
	}
	r.start, r.end, r.speechLen = ep.SpeechStart(), ep.SpeechEnd(), len(ep.Speech())
	return r
}

// TestEndpointerFindsSpeech: real espeak-ng speech, padded with silence and
// mixed with noise, must be found within tolerances by both profiles,
// including speech that starts with the stream (the warm-up must not be
// taken as silence). At 10 dB weak word endings drown: the end may come
// early by up to 250 ms (Speech() adds 200 ms after it).
func TestEndpointerFindsSpeech(t *testing.T) {
	texts := []struct{ text, voice string }{
		{"buy two oat lattes", "en-us"},
		{"add a large coffee and two croissants to my order please", "en-gb"},
		{"yes", "en-us+f3"},
		{"cancel", "en-us"},
		{"show me the cheapest sparkling water", "en-us+m3"},
	}
	noises := []struct {
		name     string
		noise    noiseKind
		snr      float64
		earlyEnd time.Duration
	}{
		{"clean", noNoise, 0, ms(60)}, {"white20dB", white, 20, ms(60)}, {"pink20dB", pink, 20, ms(60)},
		{"white10dB", white, 10, ms(250)}, {"pink10dB", pink, 10, ms(250)},
	}
	for _, p := range []speech.Profile{speech.CommandProfile, speech.ConfirmProfile} {
		for _, tx := range texts {
			for _, nz := range noises {
				for _, before := range []time.Duration{0, ms(30), ms(700)} {
					c := epCase{text: tx.text, voice: tx.voice, profile: p, noise: nz.noise, snr: nz.snr, before: before, after: p.TrailingSilence + ms(600)}
					t.Run(p.Name+"/"+tx.text+"/"+nz.name+"/"+before.String(), func(t *testing.T) {
						r := runEndpointer(t, c, int64(len(tx.text)))
						checkFound(t, c, r, nz.earlyEnd)
					})
				}
			}
		}
	}
}

func checkFound(t *testing.T, c epCase, r epResult, earlyEnd time.Duration) {
	t.Helper()
	if r.final != speech.EventEnd {
		t.Fatalf("final event %v, want end", r.final)
	}
	if r.startEv < 0 {
		t.Errorf("no speech-start event")
	} else if r.startEv > r.truthStart+c.profile.WarmUp+ms(150) {
		t.Errorf("speech-start event at %v, speech starts at %v", r.startEv, r.truthStart)
	}
	if d := r.start - r.truthStart; d < -ms(60) || d > ms(80) {
		t.Errorf("start %v, truth %v (error %v)", r.start, r.truthStart, d)
	}
	if d := r.end - r.truthEnd; d < -earlyEnd || d > ms(60) {
		t.Errorf("end %v, truth %v (error %v)", r.end, r.truthEnd, d)
	}
	if d := r.endEv - (r.end + c.profile.TrailingSilence); d < 0 || d > ms(30) {
		t.Errorf("end event at %v, %v after the end (trailing silence %v)", r.endEv, r.endEv-r.end, c.profile.TrailingSilence)
	}
	want := dur(r.speechLen)
	lo := r.end - max(0, r.start-ms(200)) + ms(200)
	if want != lo {
		t.Errorf("Speech() is %v long, want %v (start-200ms..end+200ms)", want, lo)
	}
}

// TestEndpointerChunking: pushing in odd chunk sizes changes nothing.
func TestEndpointerChunking(t *testing.T) {
	base := epCase{text: "buy two oat lattes", voice: "en-us", profile: speech.CommandProfile, noise: pink, snr: 20, before: ms(400), after: ms(1200)}
	ref := runEndpointer(t, base, 7)
	for _, chunk := range []int{1, 7, 160, 333, 4801, 1 << 20} {
		c := base
		c.chunk = chunk
		r := runEndpointer(t, c, 7)
		if r.start != ref.start || r.end != ref.end || r.final != ref.final || r.speechLen != ref.speechLen {
			t.Errorf("chunk %d: start %v end %v final %v len %d; 320-sample chunks: %v %v %v %d",
				chunk, r.start, r.end, r.final, r.speechLen, ref.start, ref.end, ref.final, ref.speechLen)
		}
	}
}
