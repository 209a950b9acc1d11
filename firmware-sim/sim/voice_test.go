package sim_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/firmware-sim/sim"
)

// audioTransports carry speech.
var audioTransports = []sim.Transport{sim.TransportWS, sim.TransportWebRTC}

// A spoken purchase over WebSocket and WebRTC against the fake gateway (which hears
// what Config.Hear says): the glasses say the order, show what was heard and the
// spoken prompt, answer by voice, and sign.
func TestBuyByVoice(t *testing.T) {
	var confirms atomic.Int32
	tests := []struct {
		name     string
		decision wire.Decision
		answers  []string // what the fake hears for each spoken answer
		state    wire.TxState
		err      error
		shows    []string
	}{
		{"approve", wire.DecisionApprove, []string{"confirm"}, wire.TxRedeemed, nil,
			[]string{"> buy two oat lattes (spoken: en-us, 160 wpm)", `heard "buy two oat lattes" (accepted)`, "Total USD 11.00",
				"(spoken prompt: 0.5 s)", "< approve (voice)", `heard "confirm" (approve)`, "redeemed (final)"}},
		{"decline", wire.DecisionDecline, []string{"cancel"}, wire.TxDeclined, nil,
			[]string{"< decline (voice)", `heard "cancel" (decline)`, "declined (final)"}},
		{"said again", wire.DecisionApprove, []string{"pardon", "yes"}, wire.TxRedeemed, nil,
			[]string{`heard "yes" (approve)`, "redeemed (final)"}},
		{"never understood", wire.DecisionApprove, []string{"pardon", "pardon", "yes"}, "", sim.ErrAnswer,
			[]string{`heard "pardon" (not_understood): Say yes or no.`}},
		{"heard the opposite", wire.DecisionApprove, []string{"no"}, "", sim.ErrAnswer, []string{`heard "no" (decline)`}},
	}
	for _, tr := range audioTransports {
		t.Run(tr.String(), func(t *testing.T) {
			for _, tt := range tests {
				if tr == sim.TransportWebRTC && tt.err != nil {
					continue // how answers are taken does not depend on the transport
				}
				t.Run(tt.name, func(t *testing.T) {
					confirms.Store(0)
					g, data := gateway(t, clienttest.Config{Hear: func(s clienttest.AudioStream) string {
						if s.Start.Mode != wire.ModeConfirm {
							return "buy two oat lattes"
						}
						return tt.answers[min(int(confirms.Add(1))-1, len(tt.answers)-1)]
					}})
					d := start(t, sim.Config{Gateway: g.URL(), DataDir: data, Transport: tr, Audio: true})
					var out strings.Builder
					p, err := d.Buy(ctxT(t), &out, "buy two oat lattes", tt.decision, wire.MethodVoice, 2*time.Second)
					if !errors.Is(err, tt.err) {
						t.Fatalf("Buy = %v, want %v\n%s", err, tt.err, out.String())
					}
					if tt.err == nil && (p.Final == nil || p.Final.State != tt.state || !p.OK()) {
						t.Fatalf("final %+v, want %s\n%s", p.Final, tt.state, out.String())
					}
					for _, s := range tt.shows {
						if !strings.Contains(out.String(), s) {
							t.Errorf("output lacks %q:\n%s", s, out.String())
						}
					}
					if n := confirms.Load(); tt.err == nil && int(n) != len(tt.answers) {
						t.Errorf("%d spoken answers, want %d", n, len(tt.answers))
					}
				})
			}
		})
	}
}

// A spoken command the gateway does not understand ends the turn with a
// *SpeechError: no prompt, no transaction.
func TestSpokenCommandNotUnderstood(t *testing.T) {
	g, data := gateway(t, clienttest.Config{
		Hear:          func(clienttest.AudioStream) string { return "get a milk" },
		NotUnderstood: func(string) string { return "Sorry?" },
	})
	d := start(t, sim.Config{Gateway: g.URL(), DataDir: data, Audio: true})
	turn, err := d.Say(ctxT(t), "play some music")
	if err != nil {
		t.Fatal(err)
	}
	_, err = turn.AwaitPrompt(ctxT(t))
	var se *sim.SpeechError
	if !errors.As(err, &se) || !errors.Is(err, sim.ErrNotUnderstood) || se.Result.Text != "get a milk" {
		t.Fatalf("AwaitPrompt = %v, want a SpeechError", err)
	}
	if !strings.Contains(err.Error(), `"play some music": not_understood (heard "get a milk"): Sorry?`) {
		t.Errorf("error %q", err)
	}
	if _, err := turn.AwaitResult(ctxT(t), ""); !errors.As(err, &se) {
		t.Errorf("AwaitResult = %v, want the SpeechError again", err)
	}
	if r, err := turn.AwaitSpeech(ctxT(t)); err != nil || r.Outcome != wire.SpeechNotUnderstood {
		t.Errorf("AwaitSpeech = %+v, %v", r, err)
	}
}

// A gateway that offers no WebRTC (here: the fake behind a proxy that hides it).
func TestNoWebRTC(t *testing.T) {
	g, data := gateway(t, clienttest.Config{})
	target, err := url.Parse(g.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/transports" {
			_, _ = w.Write([]byte(`{"ws":"` + g.DeviceURL() + `","recognizer":"none"}`)) // the test checks the outcome
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	_, err = sim.Start(ctxT(t), sim.Config{Gateway: srv.URL, DataDir: data, Transport: sim.TransportWebRTC})
	if !errors.Is(err, sim.ErrNoWebRTC) || !strings.Contains(err.Error(), "names no WHIP endpoint") {
		t.Fatalf("Start = %v, want ErrNoWebRTC", err)
	}
}
