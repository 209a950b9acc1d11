package speech_test

import (
	"testing"
	"time"

	"github.com/earshot/earshot/speech"
)

// push feeds s in 20 ms frames and returns the first final event and the
// stream time it came at (EventNone, 0 if none).
func push(ep *speech.Endpointer, s []int16) (speech.Event, time.Duration) {
	for i := 0; i < len(s); i += speech.FrameSamples {
		switch ev := ep.Push(s[i:min(i+speech.FrameSamples, len(s))]); ev {
		case speech.EventEnd, speech.EventCap, speech.EventNoSpeech:
			return ev, ep.Elapsed()
		}
	}
	return speech.EventNone, 0
}

func concat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func silence(d time.Duration) []int16 { return make([]int16, int(d*speech.Rate/time.Second)) }

func TestEndpointerNoSpeech(t *testing.T) {
	tests := []struct {
		name    string
		profile speech.Profile
		audio   func(n int) []int16
	}{
		{"digital silence/command", speech.CommandProfile, func(n int) []int16 { return make([]int16, n) }},
		{"white noise/command", speech.CommandProfile, func(n int) []int16 { return speech.WhiteNoise(n, 1) }},
		{"pink noise/confirm", speech.ConfirmProfile, func(n int) []int16 { return speech.PinkNoise(n, 2) }},
		{"quiet pink noise/confirm", speech.ConfirmProfile, func(n int) []int16 {
			s := speech.PinkNoise(n, 3)
			for i := range s {
				s[i] /= 30
			}
			return s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := speech.NewEndpointer(tt.profile)
			ev, at := push(ep, tt.audio(speech.Rate*8))
			if ev != speech.EventNoSpeech || at != tt.profile.NoSpeech {
				t.Fatalf("got %v at %v, want no-speech at %v", ev, at, tt.profile.NoSpeech)
			}
			if ep.SpeechStart() != 0 || ep.SpeechEnd() != 0 {
				t.Errorf("start %v end %v, want 0", ep.SpeechStart(), ep.SpeechEnd())
			}
			if got := dur(len(ep.Speech())); got != tt.profile.NoSpeech {
				t.Errorf("Speech() is %v, want the whole %v", got, tt.profile.NoSpeech)
			}
			if ev := ep.Push(make([]int16, 320)); ev != speech.EventNone {
				t.Errorf("push after the end: %v", ev)
			}
			if ev := ep.Finish(); ev != speech.EventNone {
				t.Errorf("finish after the end: %v", ev)
			}
		})
	}
}

func TestEndpointerCap(t *testing.T) {
	word := trim(say(t, "add a large coffee and two croissants to my order please", "en-us"))
	var long []int16
	for dur(len(long)) < 14*time.Second {
		long = concat(long, word, silence(ms(150)))
	}
	for _, p := range []speech.Profile{speech.CommandProfile, speech.ConfirmProfile} {
		t.Run(p.Name, func(t *testing.T) {
			ep := speech.NewEndpointer(p)
			sig := speech.MixAtSNR(concat(silence(ms(500)), long), speech.PinkNoise(speech.Rate, 9), 20)
			ev, at := push(ep, sig)
			if ev != speech.EventCap {
				t.Fatalf("got %v at %v, want cap", ev, at)
			}
			if d := at - (ep.SpeechStart() + p.MaxSpeech); d < 0 || d >= ms(20) {
				t.Errorf("cap at %v, start %v + max %v", at, ep.SpeechStart(), p.MaxSpeech)
			}
			if ep.SpeechEnd() != at {
				t.Errorf("end %v, want the cap time %v", ep.SpeechEnd(), at)
			}
			if got, limit := dur(len(ep.Speech())), p.MaxSpeech+time.Second; got > limit {
				t.Errorf("Speech() is %v, more than %v", got, limit)
			}
		})
	}
}

// TestEndpointerMemoryBound: before a start, at most MaxSpeech + 1 s is kept.
func TestEndpointerMemoryBound(t *testing.T) {
	p := speech.Profile{Name: "long", MaxSpeech: 2 * time.Second, NoSpeech: time.Minute}
	ep := speech.NewEndpointer(p)
	noise := speech.WhiteNoise(speech.Rate, 4)
	for range 30 {
		if ev := ep.Push(noise); ev != speech.EventNone {
			t.Fatalf("noise: %v", ev)
		}
		if got := dur(len(ep.Speech())); got > 3*time.Second {
			t.Fatalf("keeps %v of audio", got)
		}
	}
	if ep.Elapsed() != 30*time.Second {
		t.Errorf("elapsed %v", ep.Elapsed())
	}
}

func TestEndpointerDeviceVAD(t *testing.T) {
	word := trim(say(t, "buy two oat lattes", "en-us"))
	noise := speech.PinkNoise(speech.Rate, 5)
	t.Run("start and end", func(t *testing.T) {
		ep := speech.NewEndpointer(speech.CommandProfile)
		push(ep, speech.MixAtSNR(silence(ms(400)), noise, 20))
		if ev := ep.DeviceVAD(true); ev != speech.EventSpeechStart {
			t.Fatalf("device start: %v", ev)
		}
		if ev := ep.DeviceVAD(true); ev != speech.EventNone {
			t.Fatalf("second device start: %v", ev)
		}
		if ep.SpeechStart() != ms(400) {
			t.Errorf("start %v, want 400ms", ep.SpeechStart())
		}
		// 300 ms of silence: the device says the end before ours would.
		if ev, _ := push(ep, concat(word, silence(ms(300)))); ev != speech.EventNone {
			t.Fatalf("speech: %v", ev)
		}
		ep.Push(silence(ms(5)))
		at := ep.Elapsed()
		if ev := ep.DeviceVAD(false); ev != speech.EventEnd {
			t.Fatalf("device end: %v", ev)
		}
		if ep.SpeechEnd() != at {
			t.Errorf("end %v, want %v", ep.SpeechEnd(), at)
		}
		if got := dur(len(ep.Speech())); got != at-ms(400)+ms(200) {
			t.Errorf("Speech() is %v, want %v", got, at-ms(200))
		}
		if ev := ep.Push(word); ev != speech.EventNone {
			t.Errorf("push after the end: %v", ev)
		}
		if ev := ep.DeviceVAD(false); ev != speech.EventNone {
			t.Errorf("device end after the end: %v", ev)
		}
	})
	t.Run("device start, our end", func(t *testing.T) {
		ep := speech.NewEndpointer(speech.CommandProfile)
		ep.Push(silence(ms(100)))
		ep.DeviceVAD(true)
		ev, _ := push(ep, concat(silence(ms(200)), word, silence(ms(1000))))
		if ev != speech.EventEnd {
			t.Fatalf("got %v, want end", ev)
		}
		if want := ms(300) + dur(len(word)); ep.SpeechEnd() != want {
			t.Errorf("end %v, want %v", ep.SpeechEnd(), want)
		}
	})
	t.Run("device start, nothing heard", func(t *testing.T) {
		// Our detector hears nothing: only the device or the cap ends it.
		ep := speech.NewEndpointer(speech.ConfirmProfile)
		ep.DeviceVAD(true)
		ev, at := push(ep, silence(6*time.Second))
		if ev != speech.EventCap || at != speech.ConfirmProfile.MaxSpeech {
			t.Fatalf("got %v at %v, want cap at %v", ev, at, speech.ConfirmProfile.MaxSpeech)
		}
	})
	t.Run("device end without start", func(t *testing.T) {
		ep := speech.NewEndpointer(speech.CommandProfile)
		ep.Push(silence(ms(90)))
		ep.Push(silence(ms(3))) // a partial frame is kept too
		if ev := ep.DeviceVAD(false); ev != speech.EventEnd {
			t.Fatalf("device end: %v", ev)
		}
		if got := len(ep.Speech()); got != speech.Rate*93/1000 {
			t.Errorf("Speech() has %d samples, want the whole buffer", got)
		}
	})
}

func TestEndpointerFinish(t *testing.T) {
	word := trim(say(t, "cancel", "en-us"))
	tests := []struct {
		name    string
		audio   []int16
		want    speech.Event
		wantEnd time.Duration
	}{
		{"speech then release", concat(silence(ms(300)), word, silence(ms(200))), speech.EventEnd, ms(300) + dur(len(word))},
		{"release mid-word", concat(silence(ms(300)), word[:len(word)/2]), speech.EventEnd, ms(300) + dur(len(word)/2)},
		{"stream shorter than the warm-up", concat(silence(ms(40)), word[:speech.Rate*12/100]), speech.EventEnd, ms(160)},
		{"nothing said", speech.WhiteNoise(speech.Rate, 6), speech.EventNoSpeech, 0},
		{"empty stream", nil, speech.EventNoSpeech, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := speech.NewEndpointer(speech.CommandProfile)
			if ev, _ := push(ep, tt.audio); ev != speech.EventNone {
				t.Fatalf("push: %v", ev)
			}
			if ev := ep.Finish(); ev != tt.want {
				t.Fatalf("finish: %v, want %v", ev, tt.want)
			}
			if d := ep.SpeechEnd() - tt.wantEnd; d < -ms(20) || d > ms(20) {
				t.Errorf("end %v, want %v", ep.SpeechEnd(), tt.wantEnd)
			}
			if ev := ep.Finish(); ev != speech.EventNone {
				t.Errorf("second finish: %v", ev)
			}
		})
	}
}

// TestEndpointerReset: a reused endpointer behaves like a new one.
func TestEndpointerReset(t *testing.T) {
	word := trim(say(t, "yes", "en-us"))
	sig := speech.MixAtSNR(concat(silence(ms(500)), word, silence(ms(800))), speech.WhiteNoise(speech.Rate, 8), 20)
	ep := speech.NewEndpointer(speech.ConfirmProfile)
	ev1, at1 := push(ep, sig)
	s1, e1, n1 := ep.SpeechStart(), ep.SpeechEnd(), len(ep.Speech())
	ep.Reset()
	if ep.Elapsed() != 0 || ep.SpeechEnd() != 0 || len(ep.Speech()) != 0 {
		t.Fatalf("after reset: elapsed %v end %v speech %d", ep.Elapsed(), ep.SpeechEnd(), len(ep.Speech()))
	}
	ev2, at2 := push(ep, sig)
	if ev1 != speech.EventEnd || ev1 != ev2 || at1 != at2 || s1 != ep.SpeechStart() || e1 != ep.SpeechEnd() || n1 != len(ep.Speech()) {
		t.Errorf("first %v@%v %v..%v %d; after reset %v@%v %v..%v %d",
			ev1, at1, s1, e1, n1, ev2, at2, ep.SpeechStart(), ep.SpeechEnd(), len(ep.Speech()))
	}
}

// TestEndpointerNoiseStep: noise that gets 15 dB louder looks like speech,
// but the floor catches up and the stream ends well before the cap.
func TestEndpointerNoiseStep(t *testing.T) {
	quiet := speech.PinkNoise(2*speech.Rate, 10)
	for i := range quiet {
		quiet[i] /= 6
	}
	sig := concat(quiet, speech.PinkNoise(12*speech.Rate, 11))
	ep := speech.NewEndpointer(speech.CommandProfile)
	ev, at := push(ep, sig)
	t.Logf("noise step: %v at %v (start %v)", ev, at, ep.SpeechStart())
	if ev != speech.EventEnd || at > 6*time.Second {
		t.Errorf("got %v at %v, want an end within 4 s of the step", ev, at)
	}
}

// TestEndpointerClicks: short loud bursts (a knock, a tap on the glasses)
// are not utterances; speech after them is found.
func TestEndpointerClicks(t *testing.T) {
	burst := speech.WhiteNoise(speech.Rate*6/100, 12) // 60 ms at -20 dBFS
	for i := range burst {
		burst[i] *= 3
	}
	var clicks []int16
	for range 5 {
		clicks = concat(clicks, silence(ms(900)), burst)
	}
	bg := speech.PinkNoise(speech.Rate, 13)
	for i := range bg {
		bg[i] /= 30
	}
	ep := speech.NewEndpointer(speech.CommandProfile)
	sig := concat(clicks, silence(2*time.Second))
	for i := range sig {
		sig[i] += bg[i%len(bg)]
	}
	if ev, at := push(ep, sig); ev != speech.EventNoSpeech {
		t.Errorf("clicks: %v at %v, want no-speech", ev, at)
	}

	word := trim(say(t, "cancel", "en-us"))
	ep.Reset()
	sig = concat(clicks[:len(clicks)/2], silence(ms(500)), word, silence(ms(1200)))
	for i := range sig {
		sig[i] += bg[i%len(bg)]
	}
	wantStart := dur(len(clicks)/2) + ms(500)
	ev, _ := push(ep, sig)
	if d := ep.SpeechStart() - wantStart; ev != speech.EventEnd || d < -ms(30) || d > ms(30) {
		t.Errorf("clicks then speech: %v, start %v, want end and start %v", ev, ep.SpeechStart(), wantStart)
	}
}

func TestEventString(t *testing.T) {
	for ev, want := range map[speech.Event]string{
		speech.EventNone: "none", speech.EventSpeechStart: "speech-start", speech.EventEnd: "end",
		speech.EventCap: "cap", speech.EventNoSpeech: "no-speech", speech.Event(99): "event(99)",
	} {
		if got := ev.String(); got != want {
			t.Errorf("%d: %q, want %q", uint8(ev), got, want)
		}
	}
}

func TestProfileDefaults(t *testing.T) {
	got := speech.NewEndpointer(speech.Profile{TrailingSilence: time.Second}).Profile()
	want := speech.CommandProfile
	want.TrailingSilence = time.Second
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// BenchmarkEndpointer measures one 20 ms frame of speech in noise; rtf is
// the real-time factor (processing time / audio time).
func BenchmarkEndpointer(b *testing.B) {
	word := trim(say(b, "add a large coffee and two croissants to my order please", "en-us"))
	sig := speech.MixAtSNR(concat(silence(ms(500)), word, silence(ms(800))), speech.PinkNoise(speech.Rate, 1), 20)
	ep := speech.NewEndpointer(speech.CommandProfile)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i+speech.FrameSamples > len(sig) {
			i = 0
			ep.Reset()
		}
		if ev := ep.Push(sig[i : i+speech.FrameSamples]); ev == speech.EventEnd {
			i = len(sig)
		}
		i += speech.FrameSamples
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20e6, "rtf")
}
