package rtc_test

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/rtc"
	"github.com/earshot/earshot/gateway/session"
)

func TestWHIPRefusals(t *testing.T) {
	r := newRig(t, rtc.Config{MaxOfferBytes: 8 << 10})
	k := r.enroll()
	_, good := newDevice(t, offerOpts{})
	_, noAudio := newDevice(t, offerOpts{noAudio: true})
	_, noData := newDevice(t, offerOpts{noData: true})
	tests := []struct {
		name        string
		tok         string
		contentType string
		body        string
		status      int
		detail      string
	}{
		{"no token", "", "application/sdp", good, http.StatusUnauthorized, "Bearer"},
		{"bad token", "garbage", "application/sdp", good, http.StatusUnauthorized, "malformed"},
		{"wrong content type", r.token(k), "application/json", good, http.StatusUnsupportedMediaType, "application/sdp"},
		{"not SDP", r.token(k), "application/sdp", "hello", http.StatusBadRequest, "SDP"},
		{"no audio", r.token(k), "application/sdp", noAudio, http.StatusBadRequest, "audio m-lines"},
		{"no data channel", r.token(k), "application/sdp", noData, http.StatusBadRequest, "data channel"},
		{"too large", r.token(k), "application/sdp", good + strings.Repeat("a=x\r\n", 4<<10), http.StatusBadRequest, "over"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := r.post(tc.tok, tc.contentType, tc.body)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.detail) {
				t.Fatalf("got %d %s, want %d with %q", resp.StatusCode, body, tc.status, tc.detail)
			}
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("methods", func(t *testing.T) {
		for _, m := range []string{http.MethodGet, http.MethodPatch} {
			req, _ := http.NewRequestWithContext(t.Context(), m, r.url+"/abc", nil)
			resp, _ := r.do(req)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Accept-Patch") != "" {
				t.Errorf("%s: %d, Accept-Patch %q", m, resp.StatusCode, resp.Header.Get("Accept-Patch"))
			}
		}
	})
	if n := testutil.ToFloat64(r.srv.Metrics().Peers); n != 0 {
		t.Errorf("peers gauge %v after refusals", n)
	}
}

func TestMaxPeers(t *testing.T) {
	r := newRig(t, rtc.Config{MaxPeers: 1})
	k := r.enroll()
	r.connect(r.token(k))
	_, offer := newDevice(t, offerOpts{})
	resp, body := r.post(r.token(k), "application/sdp", offer)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d %s (Retry-After %q), want 503 with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}

// TestSessionAndDelete: events over the data channel, the microphone's packets reach
// voice, DELETE by another device is 404 and by the device ends the session.
func TestSessionAndDelete(t *testing.T) {
	r := newRig(t, rtc.Config{})
	k, other := r.enroll(), r.enroll()
	d := r.connect(r.token(k))
	if !strings.HasPrefix(d.location, rtc.Path+"/") || len(d.location) < len(rtc.Path)+20 {
		t.Fatalf("Location %q", d.location)
	}
	d.hello(&wire.Hello{})

	// Without a recogniser audio.start is refused, and packets outside a stream are
	// counted by voice.
	d.send("a1", &wire.AudioStart{Stream: 1, Codec: "opus", Rate: 48000, Mode: wire.ModeCommand, PTT: true})
	env := d.next(wire.TypeError, nil)
	var we wire.Error
	if err := wire.DecodeBody(env, &we); err != nil || we.Code != wire.CodeSpeechUnavailable || we.Ref != "a1" {
		t.Fatalf("audio.start answered %+v (%v), want speech_unavailable", we, err)
	}
	d.speak(10)
	dropped := r.voice.Metrics().AudioDropped.WithLabelValues("no_stream")
	eventually(t, "10 packets at voice", func() bool { return testutil.ToFloat64(dropped) >= 10 })
	if got := testutil.ToFloat64(r.srv.Metrics().RTPPackets); got < 10 {
		t.Errorf("rtp packets %v", got)
	}

	if got := r.del(d.location, r.token(other)); got != http.StatusNotFound {
		t.Errorf("DELETE by another device: %d, want 404", got)
	}
	if got := r.del(d.location, r.token(k)); got != http.StatusOK {
		t.Errorf("DELETE: %d, want 200", got)
	}
	eventually(t, "peer gone", func() bool { return testutil.ToFloat64(r.srv.Metrics().Peers) == 0 })
	if got := r.del(d.location, r.token(k)); got != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", got)
	}
}

// TestPromptAudio: a prompt is spoken to a device that asked for it, as binary
// frames on the data channel after the confirm.request.
func TestPromptAudio(t *testing.T) {
	r := newRig(t, rtc.Config{})
	k := r.enroll()
	d := r.connect(r.token(k))
	d.hello(&wire.Hello{PromptAudio: true})
	d.send("u1", &wire.Utterance{Text: "a latte", PTT: true})
	var in struct{ Tx string }
	select {
	case i := <-r.agent.intents:
		in.Tx = i.Tx
	case <-time.After(waitFor):
		t.Fatal("no intent")
	}
	if _, err := r.core.RequestPurchase(t.Context(), "agent", session.PurchaseRequest{
		Tx: in.Tx, Merchant: wire.Merchant{ID: "m1", Name: "Cafe"}, Currency: "EUR", Total: 450,
		Items: []wire.Item{{SKU: "latte", Name: "Latte", Qty: 1, UnitAmount: 450}},
	}); err != nil {
		t.Fatal(err)
	}
	d.next(wire.TypeConfirmRequest, nil)
	env := d.next(wire.TypePromptAudio, nil)
	var pa wire.PromptAudio
	if err := wire.DecodeBody(env, &pa); err != nil || pa.Tx != in.Tx || pa.Codec != "pcm" || pa.Rate != 16000 {
		t.Fatalf("prompt.audio %+v (%v)", pa, err)
	}
	var frames [][]byte
	samples := 0
	for {
		for len(frames) == 0 {
			select {
			case m := <-d.msgs:
				if !m.IsString {
					frames = append(frames, m.Data)
				}
			case <-time.After(waitFor):
				t.Fatalf("prompt audio stopped after %d samples", samples)
			}
		}
		h, payload, err := wire.DecodeAudioFrame(frames[0])
		frames = frames[1:]
		if err != nil || h.Stream != pa.Stream || h.Codec != wire.CodecPCM {
			t.Fatalf("frame %+v: %v", h, err)
		}
		samples += len(payload) / 2
		if h.Flags&wire.FlagEnd != 0 {
			break
		}
	}
	if samples != 5600 {
		t.Errorf("%d samples of prompt audio, want 5600", samples)
	}
}

// TestShutdown closes every peer with a final shutdown error and leaves no
// goroutine behind.
func TestShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("session", func(t *testing.T) {
		r := newRig(t, rtc.Config{})
		k := r.enroll()
		d := r.connect(r.token(k))
		d.hello(&wire.Hello{})
		if err := r.srv.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		env := d.next(wire.TypeError, nil)
		var we wire.Error
		if err := wire.DecodeBody(env, &we); err != nil || we.Code != wire.CodeShutdown {
			t.Fatalf("final error %+v (%v), want shutdown", we, err)
		}
		if err := r.srv.Shutdown(t.Context()); err != nil { // idempotent
			t.Fatal(err)
		}
		_, offer := newDevice(t, offerOpts{})
		if resp, _ := r.post(r.token(k), "application/sdp", offer); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("offer after shutdown: %d, want 503", resp.StatusCode)
		}
	})
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after the test, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestHelloTimeout(t *testing.T) {
	r := newRig(t, rtc.Config{HelloTimeout: 2 * time.Second})
	k := r.enroll()
	d := r.connect(r.token(k))
	env := d.next(wire.TypeError, nil)
	var we wire.Error
	if err := wire.DecodeBody(env, &we); err != nil || we.Code != wire.CodeHelloTimeout {
		t.Fatalf("got %+v (%v), want hello_timeout", we, err)
	}
	eventually(t, "peer gone", func() bool { return testutil.ToFloat64(r.srv.Metrics().Peers) == 0 })
}
