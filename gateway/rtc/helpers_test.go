package rtc_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/rtc"
	"github.com/earshot/earshot/gateway/session"
	"github.com/earshot/earshot/gateway/voice"
)

const waitFor = 10 * time.Second

type intentAgent struct{ intents chan agent.Intent }

func (a *intentAgent) ID() string { return "agent" }
func (a *intentAgent) OnIntent(_ context.Context, in agent.Intent) error {
	select {
	case a.intents <- in:
	default:
	}
	return nil
}
func (a *intentAgent) OnMandate(context.Context, agent.Mandate) error { return nil }
func (a *intentAgent) OnOutcome(context.Context, agent.Outcome) error { return nil }

// tone is a Speaker that says every prompt as a 440 Hz tone of 0.35 s.
type tone struct{}

func (tone) Say(context.Context, string) ([]int16, error) {
	pcm := make([]int16, 5600)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/16000))
	}
	return pcm, nil
}

type rig struct {
	t     testing.TB
	reg   *registry.Registry
	core  *session.Core
	voice *voice.Service
	srv   *rtc.Server
	agent *intentAgent
	url   string
}

func newRig(t testing.TB, cfg rtc.Config) *rig {
	t.Helper()
	st := kv.NewMemory()
	reg, err := registry.New(registry.Config{Store: st, Audience: "earshot:test"})
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := authz.GenerateSigningKey(rand.Reader, time.Now())
	keys, _ := authz.NewKeySet(sk)
	ag := &intentAgent{intents: make(chan agent.Intent, 16)}
	core, err := session.New(session.Config{Store: st, Registry: reg, Keys: keys, Agent: ag})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Start(t.Context()); err != nil { // hands intents to the agent
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	vs, err := voice.New(voice.Config{Core: core, Speaker: tone{}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Voice, cfg.Registry, cfg.Loopback = vs, reg, true
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	srv, err := rtc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(rtc.Path, srv)
	mux.Handle(rtc.Path+"/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		hs.Close()
		core.Close()
	})
	return &rig{t: t, reg: reg, core: core, voice: vs, srv: srv, agent: ag, url: hs.URL + rtc.Path}
}

func (r *rig) enroll() *identity.Key {
	r.t.Helper()
	k, _ := identity.GenerateKey()
	p, err := r.reg.CreatePairingCode(r.t.Context(), "alice")
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.reg.Enroll(r.t.Context(), registry.EnrollRequest{
		Code: p.Code, PublicKey: identity.EncodePublic(k.Public()), Proof: k.EnrollProof(p.Code), Kind: registry.KindGlasses,
	}); err != nil {
		r.t.Fatal(err)
	}
	return k
}

func (r *rig) token(k *identity.Key) string {
	r.t.Helper()
	tok, err := k.Token("earshot:test", time.Now(), 0)
	if err != nil {
		r.t.Fatal(err)
	}
	return tok
}

// post sends an offer and returns the response with its body read.
func (r *rig) post(tok, contentType, body string) (*http.Response, string) {
	r.t.Helper()
	req, _ := http.NewRequestWithContext(r.t.Context(), http.MethodPost, r.url, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return r.do(req)
}

func (r *rig) do(req *http.Request) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// del sends DELETE to a session's Location.
func (r *rig) del(location, tok string) int {
	r.t.Helper()
	req, _ := http.NewRequestWithContext(r.t.Context(), http.MethodDelete, strings.TrimSuffix(r.url, rtc.Path)+location, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, _ := r.do(req)
	return resp.StatusCode
}

// device is a minimal WebRTC device: an Opus track and the "earshot" data channel.
type device struct {
	t        testing.TB
	pc       *webrtc.PeerConnection
	dc       *webrtc.DataChannel
	track    *webrtc.TrackLocalStaticSample
	msgs     chan webrtc.DataChannelMessage
	open     chan struct{}
	location string
}

type offerOpts struct {
	noAudio, noData bool
	label           string
}

func newDevice(t testing.TB, o offerOpts) (*device, string) {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	d := &device{t: t, pc: pc, msgs: make(chan webrtc.DataChannelMessage, 256), open: make(chan struct{})}
	t.Cleanup(func() { _ = pc.GracefulClose() })
	if !o.noAudio {
		d.track, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "dev")
		if _, err := pc.AddTransceiverFromTrack(d.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	if !o.noData {
		label := o.label
		if label == "" {
			label = rtc.Label
		}
		d.dc, err = pc.CreateDataChannel(label, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.dc.OnOpen(func() { close(d.open) })
		d.dc.OnMessage(func(m webrtc.DataChannelMessage) { d.msgs <- m })
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return d, pc.LocalDescription().SDP
}

// connect makes a device and completes the WHIP exchange.
func (r *rig) connect(tok string) *device {
	r.t.Helper()
	d, offer := newDevice(r.t, offerOpts{})
	resp, body := r.post(tok, "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated {
		r.t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	d.location = resp.Header.Get("Location")
	if err := d.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		r.t.Fatal(err)
	}
	select {
	case <-d.open:
	case <-time.After(waitFor):
		r.t.Fatal("data channel did not open")
	}
	return d
}

func (d *device) send(id string, b wire.Body) {
	d.t.Helper()
	f, err := wire.Encode(wire.Envelope{ID: id, TS: time.Now().UnixMilli()}, b)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := d.dc.SendText(string(f)); err != nil {
		d.t.Fatal(err)
	}
}

// next returns the next event of type typ, skipping others; binary messages are
// returned through frames when it is not nil.
func (d *device) next(typ wire.Type, frames *[][]byte) wire.Envelope {
	d.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-d.msgs:
			if !m.IsString {
				if frames != nil {
					*frames = append(*frames, m.Data)
				}
				continue
			}
			env, err := wire.Decode(m.Data)
			if err != nil {
				d.t.Fatal(err)
			}
			if env.Seq > 0 {
				d.send("", &wire.Ack{Seq: env.Seq})
			}
			if env.Type == typ {
				return env
			}
		case <-deadline:
			d.t.Fatalf("no %s within %s", typ, waitFor)
		}
	}
}

func (d *device) hello(h *wire.Hello) {
	d.t.Helper()
	d.send("h", h)
	d.next(wire.TypeHelloOK, nil)
}

// speak writes n Opus packets on the track, 20 ms of audio each.
func (d *device) speak(n int) {
	d.t.Helper()
	// A valid Opus packet: TOC of a 20 ms SILK wideband mono frame, then silence.
	pkt := []byte{0x48, 0xff, 0xfe}
	for range n {
		if err := d.track.WriteSample(media.Sample{Data: pkt, Duration: 20 * time.Millisecond}); err != nil {
			d.t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // keep loopback UDP from dropping a burst
	}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
