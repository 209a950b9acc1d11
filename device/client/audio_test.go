package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/wire"
)

// speechEvent reads events until one of type typ, skipping others.
func speechEvent(t *testing.T, c *client.Client, typ wire.Type) client.Event {
	t.Helper()
	for {
		if ev := next(t, c); ev.Type == typ {
			return ev
		}
	}
}

// TestSpeakPCM: an utterance as PCM frames at several rates over WebSocket; the fake
// hears a command, answers speech.result with the utterance's ref and prompts.
func TestSpeakPCM(t *testing.T) {
	tone := clienttest.Tone(300, 600*time.Millisecond)
	for _, rate := range []int{8000, 16000, 48000} {
		t.Run(map[int]string{8000: "8k", 16000: "16k", 48000: "48k"}[rate], func(t *testing.T) {
			e := newEnv(t, "ws", clienttest.Config{})
			key, en := enroll(t, e.g, "alice", "glasses")
			c := dial(t, e, key, en, nil)
			id, err := c.Speak(ctxT(t), tone, client.SpeakOptions{PTT: true, Rate: rate})
			if err != nil {
				t.Fatal(err)
			}
			ev := speechEvent(t, c, wire.TypeSpeechResult)
			if r := ev.SpeechResult; r.Ref != id || r.Outcome != wire.SpeechAccepted || r.Text != "buy two oat lattes" {
				t.Fatalf("speech.result %+v, want ref %s accepted", r, id)
			}
			if ev := speechEvent(t, c, wire.TypeConfirmRequest); ev.ConfirmRequest.Ref != id {
				t.Fatalf("prompt ref %q, want %q", ev.ConfirmRequest.Ref, id)
			}
			st, _ := e.g.Device(en.Device)
			s := st.Streams[0]
			want := len(tone) * rate / 16000
			if s.End != wire.EndPTT || s.Start.Rate != rate || s.Start.Codec != "pcm" || !s.Start.PTT ||
				len(s.PCM) < want-rate/100 || len(s.PCM) > want+rate/100 || s.Frames != 30 {
				t.Fatalf("stream %+v with %d samples in %d frames, want %d samples at %d Hz in 30", s.Start, len(s.PCM), s.Frames, want, rate)
			}
		})
	}
}

// TestSpeakEndAuto: without audio.end the client sends trailing silence until the
// gateway's endpointer ends the stream.
func TestSpeakEndAuto(t *testing.T) {
	e := newEnv(t, "ws", clienttest.Config{})
	key, en := enroll(t, e.g, "alice", "glasses")
	c := dial(t, e, key, en, nil)
	tone := clienttest.Tone(300, 400*time.Millisecond)
	if _, err := c.Speak(ctxT(t), tone, client.SpeakOptions{PTT: true, End: client.EndAuto}); err != nil {
		t.Fatal(err)
	}
	speechEvent(t, c, wire.TypeSpeechResult)
	st, _ := e.g.Device(en.Device)
	if s := st.Streams[0]; s.End != "auto" || st.Uplinks[wire.TypeAudioEnd] != 0 {
		t.Fatalf("stream ended %q with %d audio.end, want auto and none", s.End, st.Uplinks[wire.TypeAudioEnd])
	}
}

// TestSpeakConfirm: a spoken answer to a prompt, then a voice confirmation.
func TestSpeakConfirm(t *testing.T) {
	e := newEnv(t, "ws", clienttest.Config{})
	key, en := enroll(t, e.g, "alice", "glasses")
	c := dial(t, e, key, en, nil)
	req := prompt(t, c, "buy two oat lattes")
	if _, err := c.Speak(ctxT(t), clienttest.Tone(300, 300*time.Millisecond),
		client.SpeakOptions{Mode: wire.ModeConfirm, Tx: req.Tx, PTT: true, Realtime: true}); err != nil {
		t.Fatal(err)
	}
	r := speechEvent(t, c, wire.TypeSpeechResult).SpeechResult
	if r.Answer != wire.AnswerApprove || r.Tx != req.Tx {
		t.Fatalf("speech.result %+v, want approve for %s", r, req.Tx)
	}
	if err := c.ConfirmVoice(ctxT(t), req, wire.DecisionApprove); err != nil {
		t.Fatal(err)
	}
	if ev := speechEvent(t, c, wire.TypeTxResult); ev.TxResult.State != wire.TxMandated {
		t.Fatalf("tx.result %+v", ev.TxResult)
	}
}

// TestPromptAudio: a device that asks for prompt audio gets each prompt's speech as
// one event after the confirm.request, over WebSocket and WebRTC.
func TestPromptAudio(t *testing.T) {
	for _, tr := range []string{"ws", "webrtc"} {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, tr, clienttest.Config{})
			key, en := enroll(t, e.g, "alice", "glasses")
			c := dial(t, e, key, en, func(cfg *client.Config) { cfg.PromptAudio = true })
			req := prompt(t, c, "buy two oat lattes")
			ev := next(t, c)
			if ev.Type != wire.TypePromptAudio || ev.PromptAudio == nil {
				t.Fatalf("got %s, want prompt.audio", ev.Type)
			}
			if p := ev.PromptAudio; p.Tx != req.Tx || p.Text != req.Text || len(p.PCM) != 8000 {
				t.Fatalf("prompt speech for %s %q with %d samples, want %s, %q, 8000", p.Tx, p.Text, len(p.PCM), req.Tx, req.Text)
			}
			if st, _ := e.g.Device(en.Device); !st.Hellos[0].PromptAudio {
				t.Error("hello without prompt_audio")
			}
		})
	}
}

// TestPromptAudioBounds: frames of streams that were not announced are dropped and
// counted; a third announcement abandons the oldest stream.
func TestPromptAudioBounds(t *testing.T) {
	e := newEnv(t, "ws", clienttest.Config{})
	key, en := enroll(t, e.g, "alice", "glasses")
	c := dial(t, e, key, en, func(cfg *client.Config) { cfg.PromptAudio = true })
	frame := func(stream uint32, end bool, rate int) []byte {
		h := wire.AudioHeader{Codec: wire.CodecPCM, Rate: rate, Stream: stream}
		if end {
			h.Flags = wire.FlagEnd
		}
		f, err := wire.AppendAudioFrame(nil, h, make([]byte, 2*rate/50))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	announce := func(stream uint32, rate int) {
		if err := e.g.SendEvent(en.Device, &wire.PromptAudio{Stream: stream, Codec: "pcm", Rate: rate, Text: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(f []byte) {
		if err := e.g.SendAudio(en.Device, f); err != nil {
			t.Fatal(err)
		}
	}
	send(frame(9, true, 16000)) // never announced
	announce(1, 16000)
	announce(2, 8000)
	announce(3, 48000) // abandons 1
	send(frame(1, true, 16000))
	send(frame(2, false, 8000))
	send(frame(3, true, 48000))
	send(frame(2, true, 8000))
	for _, want := range []struct {
		stream  uint32
		samples int // 20 ms a frame
	}{{3, 320}, {2, 640}} {
		ev := speechEvent(t, c, wire.TypePromptAudio)
		if p := ev.PromptAudio; p.Stream != want.stream || len(p.PCM) < want.samples-20 || len(p.PCM) > want.samples+20 {
			t.Fatalf("prompt stream %d with %d samples, want %d with about %d", p.Stream, len(p.PCM), want.stream, want.samples)
		}
	}
	if got := c.Stats().AudioDropped; got != 3 {
		t.Errorf("AudioDropped %d, want 3 (unknown stream, abandoned stream, its frame)", got)
	}
}

func TestSpeakOverMQTT(t *testing.T) {
	e := newEnv(t, "mqtt", clienttest.Config{})
	key, en := enroll(t, e.g, "alice", "glasses")
	c := dial(t, e, key, en, nil)
	if _, err := c.Speak(ctxT(t), make([]int16, 320), client.SpeakOptions{}); !errors.Is(err, client.ErrAudioUnsupported) {
		t.Fatalf("Speak over MQTT = %v, want ErrAudioUnsupported", err)
	}
}
