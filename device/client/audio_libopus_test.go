//go:build libopus && nolibopusfile

package client_test

import (
	"math"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech/opus"
)

// TestSpeakOpus: an utterance in Opus, as binary frames over WebSocket and on the
// microphone track over WebRTC; the fake decodes what it got back to the tone.
func TestSpeakOpus(t *testing.T) {
	tone := clienttest.Tone(300, 600*time.Millisecond)
	for _, tr := range []string{"ws", "webrtc"} {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, tr, clienttest.Config{})
			key, en := enroll(t, e.g, "alice", "glasses")
			c := dial(t, e, key, en, nil)
			id, err := c.Speak(ctxT(t), tone, client.SpeakOptions{PTT: true, Codec: wire.CodecOpus})
			if err != nil {
				t.Fatal(err)
			}
			if r := speechEvent(t, c, wire.TypeSpeechResult).SpeechResult; r.Ref != id || r.Outcome != wire.SpeechAccepted {
				t.Fatalf("speech.result %+v", r)
			}
			st, _ := e.g.Device(en.Device)
			s := st.Streams[0]
			if s.Start.Codec != "opus" || s.Start.Rate != 48000 || s.End != wire.EndPTT {
				t.Fatalf("stream %+v ended %q", s.Start, s.End)
			}
			// 30 frames of speech; over WebRTC also up to 5 of lead-in silence, less
			// whatever arrived before the gateway read audio.start.
			if n := len(s.Opus); n < 30 || n > 35 {
				t.Fatalf("%d Opus packets, want 30-35", n)
			}
			dec, err := opus.NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			var pcm []int16
			for _, p := range s.Opus {
				if pcm, err = dec.Decode(pcm, p); err != nil {
					t.Fatal(err)
				}
			}
			if r := rms(pcm[len(pcm)-len(tone)/2:]); r < 2000 {
				t.Errorf("decoded speech RMS %.0f, want the tone's (about 5600)", r)
			}
		})
	}
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}
