package sim_test

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/firmware-sim/sim"
	"github.com/earshot/earshot/speech"
)

// The simulated user's voice: real espeak-ng speech, and the same speech in pink noise
// with 300 ms of noise before and after.
func TestSpeech(t *testing.T) {
	g, data := gateway(t, clienttest.Config{})
	clean := start(t, sim.Config{Gateway: g.URL(), DataDir: data, Audio: true})
	noisy := start(t, sim.Config{Gateway: g.URL(), DataDir: data, Audio: true, NoiseSNR: 10})
	a, err := clean.Speech(ctxT(t), "buy two oat lattes")
	if err != nil {
		t.Fatal(err)
	}
	b, err := noisy.Speech(ctxT(t), "buy two oat lattes")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) < speech.Rate/2 || len(a) > 4*speech.Rate {
		t.Fatalf("%d samples for four words", len(a))
	}
	if pad := 2 * 300 * speech.Rate / 1000; len(b) != len(a)+pad {
		t.Fatalf("noisy speech has %d samples, want %d + %d", len(b), len(a), pad)
	}
	if r := rms(b[:speech.Rate/4]); r < 100 {
		t.Errorf("no noise before the speech: rms %.0f", r)
	}
	again, err := noisy.Speech(ctxT(t), "buy two oat lattes")
	if err != nil || !slices.Equal(again, b) {
		t.Errorf("the noise is not deterministic (%v)", err)
	}
	text := start(t, sim.Config{Gateway: g.URL(), DataDir: data})
	if _, err := text.Speech(ctxT(t), "hi"); err == nil {
		t.Error("a text device spoke")
	}
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	if len(s) == 0 {
		return 0
	}
	return math.Sqrt(sum / float64(len(s)))
}

func TestStartRefusals(t *testing.T) {
	g, data := gateway(t, clienttest.Config{}) // WebSocket only, text only
	tests := []struct {
		name string
		cfg  sim.Config
		want error
		msg  string
	}{
		{"audio over mqtt", sim.Config{Transport: sim.TransportMQTT, Audio: true}, sim.ErrAudioTransport, "audio needs ws or webrtc: mqtt"},
		{"whip url over ws", sim.Config{WebRTC: "whip://127.0.0.1:1/v1/whip"}, nil, "a WHIP URL with transport ws"},
		{"bad voice", sim.Config{Audio: true, Voice: "-x"}, nil, "tts: bad voice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Gateway, tt.cfg.DataDir = g.URL(), data
			_, err := sim.Start(ctxT(t), tt.cfg)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Start = %v, want %v with %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestDiscover(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       sim.Transports
		speech     bool
		err        string
	}{
		{"full", `{"ws":"ws://h/v1/device","mqtt":"tcp://h:1883","webrtc":"whip://h/v1/whip","recognizer":"pocketsphinx"}`, 200,
			sim.Transports{WS: "ws://h/v1/device", MQTT: "tcp://h:1883", WebRTC: "whip://h/v1/whip", Recognizer: "pocketsphinx"}, true, ""},
		{"text only", `{"ws":"ws://h/v1/device","recognizer":"none"}`, 200, sim.Transports{WS: "ws://h/v1/device", Recognizer: "none"}, false, ""},
		{"before speech", `{"ws":"ws://h/v1/device"}`, 200, sim.Transports{WS: "ws://h/v1/device", Recognizer: "none"}, false, ""},
		{"before transports", ``, 404, sim.Transports{Recognizer: "none"}, false, ""},
		{"bad whip url", `{"ws":"ws://h/v1/device","webrtc":"http://h/v1/whip"}`, 200, sim.Transports{}, false, "whip[s]://host"},
		{"not json", `<html>`, 200, sim.Transports{}, false, "v1/transports"},
		{"refused", ``, 500, sim.Transports{}, false, "500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/transports" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body)) // the test reads what arrived
			}))
			defer srv.Close()
			got, err := sim.Discover(ctxT(t), sim.Config{Gateway: srv.URL})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Discover = %+v, %v, want %q", got, err, tt.err)
				}
				return
			}
			if tt.status == 404 {
				tt.want.WS = "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/device"
			}
			if err != nil || got != tt.want || got.Speech() != tt.speech {
				t.Fatalf("Discover = %+v, %v, want %+v", got, err, tt.want)
			}
		})
	}
}
