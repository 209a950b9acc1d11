//go:build pocketsphinx

package gateway_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway"
	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/opus"
	"github.com/earshot/earshot/speech/tts"
)

// speaker enrols glasses for alice and connects them over the transport ("ws" or
// "webrtc"), asking for spoken prompts.
func (g *gw) speaker(transport string) *client.Client {
	g.t.Helper()
	var p struct{ Code string }
	if st := call(g.t, "POST", g.srv.URL()+"/admin/v1/pairing-codes", g.admin, nil, map[string]string{"user": "alice"}, &p); st != 201 {
		g.t.Fatalf("pairing code: %d", st)
	}
	k, err := identity.GenerateKey()
	if err != nil {
		g.t.Fatal(err)
	}
	en, err := client.Enroll(g.t.Context(), g.srv.URL(), k, p.Code, "glasses", "test glasses")
	if err != nil {
		g.t.Fatal(err)
	}
	u, _ := client.DeviceURL(g.srv.URL())
	if transport == "webrtc" {
		u = "whip://" + g.srv.Addr() + gateway.WHIPPath
	}
	c, err := client.Dial(g.t.Context(), client.Config{URL: u, Key: k, Audience: en.Audience, PromptAudio: true})
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { c.Close() })
	return c
}

// utterance is what the glasses' microphone hears: espeak-ng speech between short
// silences.
func utterance(t *testing.T, text string) []int16 {
	t.Helper()
	synth, err := tts.New(tts.Config{Voice: "en-us", Speed: 160})
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := synth.Say(t.Context(), text)
	if err != nil {
		t.Fatal(err)
	}
	return speech.Pad(pcm, 300*time.Millisecond, 300*time.Millisecond)
}

// turnEvents collects the events of one spoken turn until each wanted type arrived
// once; the client's event order between prompt audio and metrics is not fixed.
func turnEvents(t *testing.T, c *client.Client, want ...wire.Type) map[wire.Type]client.Event {
	t.Helper()
	got := make(map[wire.Type]client.Event, len(want))
	timeout := time.After(30 * time.Second)
	for len(got) < len(want) {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("client stopped; have %d of %v", len(got), want)
			}
			if ev.Type == wire.TypeError {
				t.Fatalf("error event: %+v", ev.Error)
			}
			for _, w := range want {
				if ev.Type == w {
					if _, dup := got[w]; !dup {
						got[w] = ev
					}
				}
			}
		case <-timeout:
			var have []wire.Type
			for typ := range got {
				have = append(have, typ)
			}
			if sr := got[wire.TypeSpeechResult].SpeechResult; sr != nil {
				t.Logf("speech.result: %+v", *sr)
			}
			t.Fatalf("have %v of %v after 30s", have, want)
		}
	}
	return got
}

// TestVoicePurchase is the whole loop by voice: the glasses say the order, the prompt
// comes back as text and speech, the glasses say "confirm", sign, and the mandate is
// redeemed.
func TestVoicePurchase(t *testing.T) {
	for _, transport := range []string{"ws", "webrtc"} {
		t.Run(transport, func(t *testing.T) {
			if transport == "webrtc" && !opus.EncoderAvailable() {
				t.Skip("the WebRTC glasses need libopus (build tag libopus)")
			}
			g := start(t, gateway.Config{})
			c := g.speaker(transport)
			next(t, c, wire.TypeHelloOK)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			ref, err := c.Speak(ctx, utterance(t, "buy two oat lattes"), client.SpeakOptions{PTT: true})
			if err != nil {
				t.Fatal(err)
			}
			evs := turnEvents(t, c, wire.TypeSpeechResult, wire.TypeConfirmRequest, wire.TypePromptAudio, wire.TypeTurnMetrics)
			sr := evs[wire.TypeSpeechResult].SpeechResult
			if sr.Outcome != wire.SpeechAccepted || sr.Ref != ref {
				t.Fatalf("speech.result = %+v, want accepted for %s", sr, ref)
			}
			cr := evs[wire.TypeConfirmRequest].ConfirmRequest
			if cr.Ref != ref || len(cr.Terms.Items) != 1 || cr.Terms.Items[0].Qty != 2 || cr.Terms.Items[0].SKU != "latte-oat" {
				t.Fatalf("prompt = %+v, want 2 x latte-oat for %s (heard %q)", cr.Terms, ref, sr.Text)
			}
			pa := evs[wire.TypePromptAudio].PromptAudio
			if pa.Text != cr.Text || pa.Tx != cr.Tx {
				t.Errorf("prompt audio for %q (%s), want the prompt's text %q (%s)", pa.Text, pa.Tx, cr.Text, cr.Tx)
			}
			if secs := float64(len(pa.PCM)) / speech.Rate; secs < 1.5 || rms(pa.PCM) < 300 {
				t.Errorf("prompt audio is %.2f s at RMS %.0f; want spoken words", secs, rms(pa.PCM))
			}
			tm := evs[wire.TypeTurnMetrics].TurnMetrics
			if tm.Ref != ref || tm.Tx != cr.Tx || tm.SpeechMS <= 0 || tm.AgentMS < tm.FinalMS || tm.FirstAudio < tm.PromptMS || tm.FirstAudio == 0 {
				t.Errorf("turn.metrics = %+v; want ordered stages for %s", tm, ref)
			}

			if _, err := c.Speak(ctx, utterance(t, "confirm"), client.SpeakOptions{Mode: wire.ModeConfirm, Tx: cr.Tx, PTT: true}); err != nil {
				t.Fatal(err)
			}
			ans := next(t, c, wire.TypeSpeechResult).SpeechResult
			if ans.Outcome != wire.SpeechAccepted || ans.Answer != wire.AnswerApprove || ans.Tx != cr.Tx {
				t.Fatalf("answer = %+v, want approve for %s", ans, cr.Tx)
			}
			if err := c.Confirm(ctx, cr, wire.DecisionApprove, wire.MethodVoice); err != nil {
				t.Fatal(err)
			}
			if r := result(t, c, wire.TxRedeemed); r.State != wire.TxRedeemed || r.Amount != 1100 {
				t.Fatalf("result = %+v, want redeemed 1100", r)
			}
		})
	}
}

// TestVoiceOutOfGrammar: speech that is not an order is answered "did not
// understand" and buys nothing; the next order is the one that gets a prompt.
func TestVoiceOutOfGrammar(t *testing.T) {
	g := start(t, gateway.Config{})
	c := g.speaker("ws")
	next(t, c, wire.TypeHelloOK)
	ctx := t.Context()
	for _, text := range []string{"play some music", "the stock market closed higher today on strong earnings"} {
		ref, err := c.Speak(ctx, utterance(t, text), client.SpeakOptions{PTT: true})
		if err != nil {
			t.Fatal(err)
		}
		evs := turnEvents(t, c, wire.TypeSpeechResult, wire.TypePromptAudio)
		if sr := evs[wire.TypeSpeechResult].SpeechResult; sr.Outcome != wire.SpeechNotUnderstood || sr.Ref != ref {
			t.Fatalf("%q: speech.result = %+v, want not_understood", text, sr)
		}
		if pa := evs[wire.TypePromptAudio].PromptAudio; pa.Ref != ref || pa.Tx != "" {
			t.Errorf("%q: spoken apology = %+v, want one for %s without a tx", text, pa.PromptAudio, ref)
		}
	}
	ref, err := c.Speak(ctx, utterance(t, "buy a croissant"), client.SpeakOptions{PTT: true})
	if err != nil {
		t.Fatal(err)
	}
	if cr := next(t, c, wire.TypeConfirmRequest).ConfirmRequest; cr.Ref != ref {
		t.Fatalf("the first prompt answers %s, want %s: something out of grammar was bought", cr.Ref, ref)
	}
}

func rms(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var sum float64
	for _, s := range pcm {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(len(pcm)))
}
