package voice_test

import (
	"context"
	"crypto/rand"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
	"github.com/earshot/earshot/gateway/voice"
	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/asr"
	"github.com/earshot/earshot/speech/grammar"
)

// intents records what reached the agent.
type intents struct {
	mu   sync.Mutex
	got  []agent.Intent
	seen chan struct{}
}

func (a *intents) ID() string                                     { return "agent" }
func (a *intents) OnMandate(context.Context, agent.Mandate) error { return nil }
func (a *intents) OnOutcome(context.Context, agent.Outcome) error { return nil }
func (a *intents) OnIntent(_ context.Context, in agent.Intent) error {
	a.mu.Lock()
	a.got = append(a.got, in)
	a.mu.Unlock()
	a.seen <- struct{}{}
	return nil
}

// heard is a recogniser that hears a fixed transcript in any audio that reaches it and
// judges it by the grammar: the protocol around recognition is what these tests check;
// recognition itself is tested with PocketSphinx in speech/asr and end to end.
type heard struct {
	g    *grammar.Grammar
	text string
}

func (h *heard) Name() string { return "heard" }
func (h *heard) Close() error { return nil }
func (h *heard) Recognize(_ context.Context, r asr.Request) (asr.Result, error) {
	res := asr.Result{Text: h.text, Accepted: true}
	if r.Mode == wire.ModeConfirm {
		_, _, err := grammar.ParseAnswer(h.text)
		res.Accepted = err == nil
	} else if _, err := h.g.Parse(h.text); err != nil {
		res.Accepted = false
	}
	return res, nil
}

// pipe is a transport that hands the test every frame.
type pipe struct {
	events chan wire.Envelope
	audio  chan []byte
	closed chan wire.Code
}

func (p *pipe) Kind() string { return "test" }
func (p *pipe) Send(frame []byte) error {
	e, err := wire.Decode(frame)
	if err != nil {
		return err
	}
	p.events <- e
	return nil
}
func (p *pipe) SendBinary(_ context.Context, frame []byte) error { p.audio <- frame; return nil }
func (p *pipe) Close(code wire.Code, _ string)                   { p.closed <- code }

type rig struct {
	t      *testing.T
	conn   *voice.Conn
	p      *pipe
	agent  *intents
	rec    *heard
	stream uint32
}

func newRig(t *testing.T) *rig {
	t.Helper()
	st := kv.NewMemory()
	reg, err := registry.New(registry.Config{Store: st, Audience: "earshot:test"})
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := authz.GenerateSigningKey(rand.Reader, time.Now())
	keys, _ := authz.NewKeySet(sk)
	a := &intents{seen: make(chan struct{}, 8)}
	core, err := session.New(session.Config{Store: st, Registry: reg, Keys: keys, Agent: a})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	if err := core.Start(t.Context()); err != nil { // hands intents to the agent
		t.Fatal(err)
	}
	g, err := grammar.Build(grammar.Source{Items: []grammar.Item{{SKU: "latte-oat", Name: "Oat latte", Aliases: []string{"oat latte"}, Currency: "USD"}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &heard{g: g}
	vs, err := voice.New(voice.Config{Core: core, Recognizer: rec, Grammar: g})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := identity.GenerateKey()
	p, _ := reg.CreatePairingCode(t.Context(), "alice")
	dev, err := reg.Enroll(t.Context(), registry.EnrollRequest{Code: p.Code, PublicKey: identity.EncodePublic(k.Public()), Proof: k.EnrollProof(p.Code), Kind: registry.KindGlasses})
	if err != nil {
		t.Fatal(err)
	}
	pp := &pipe{events: make(chan wire.Envelope, 64), audio: make(chan []byte, 256), closed: make(chan wire.Code, 1)}
	c, err := vs.Attach(dev, pp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Detach)
	r := &rig{t: t, conn: c, p: pp, agent: a, rec: rec}
	r.send("h", &wire.Hello{})
	r.expect(wire.TypeHelloOK)
	return r
}

func (r *rig) send(id string, b wire.Body) {
	r.t.Helper()
	f, err := wire.Encode(wire.Envelope{ID: id}, b)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.conn.Handle(r.t.Context(), f); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) expect(typ wire.Type) wire.Envelope {
	r.t.Helper()
	for {
		select {
		case e := <-r.p.events:
			if e.Type == typ {
				return e
			}
			if e.Type == wire.TypeError {
				var we wire.Error
				_ = wire.DecodeBody(e, &we)
				r.t.Fatalf("error %s while waiting for %s: %s", we.Code, typ, we.Message)
			}
		case <-time.After(10 * time.Second):
			r.t.Fatalf("no %s", typ)
		}
	}
}

func (r *rig) expectError(code wire.Code) wire.Error {
	r.t.Helper()
	var we wire.Error
	if err := wire.DecodeBody(r.expectAny(wire.TypeError), &we); err != nil || we.Code != code {
		r.t.Fatalf("error = %+v (%v), want %s", we, err, code)
	}
	return we
}

func (r *rig) expectAny(typ wire.Type) wire.Envelope {
	r.t.Helper()
	select {
	case e := <-r.p.events:
		if e.Type != typ {
			r.t.Fatalf("got %s, want %s", e.Type, typ)
		}
		return e
	case <-time.After(10 * time.Second):
		r.t.Fatalf("no %s", typ)
	}
	return wire.Envelope{}
}

// speak opens a stream and sends pcm (16 kHz) in 20 ms frames, the last with FlagEnd.
func (r *rig) speak(id string, mode wire.SpeechMode, tx string, pcm []int16) uint32 {
	r.t.Helper()
	r.stream++
	r.send(id, &wire.AudioStart{Stream: r.stream, Codec: "pcm", Rate: 16000, Mode: mode, Tx: tx, PTT: true})
	for seq, off := uint32(0), 0; off < len(pcm); seq++ {
		end := min(off+320, len(pcm))
		h := wire.AudioHeader{Codec: wire.CodecPCM, Rate: 16000, Stream: r.stream, Seq: seq}
		if end == len(pcm) {
			h.Flags = wire.FlagEnd
		}
		f, err := wire.AppendAudioFrame(nil, h, speech.AppendPCM(nil, pcm[off:end]))
		if err != nil {
			r.t.Fatal(err)
		}
		if err := r.conn.HandleAudio(r.t.Context(), f); err != nil {
			r.t.Fatal(err)
		}
		off = end
	}
	return r.stream
}

func result(t *testing.T, e wire.Envelope) wire.SpeechResult {
	t.Helper()
	var sr wire.SpeechResult
	if err := wire.DecodeBody(e, &sr); err != nil {
		t.Fatal(err)
	}
	return sr
}

// voiced is half a second of a loud vowel-like tone between silences: speech enough for
// the endpointer.
func voiced() []int16 {
	tone := make([]int16, 16000)
	for i := range tone {
		tone[i] = int16(8000 * math.Sin(float64(i)*2*math.Pi*220/16000))
	}
	return speech.Pad(tone, 400*time.Millisecond, 900*time.Millisecond)
}

func TestCommandReachesTheAgent(t *testing.T) {
	r := newRig(t)
	r.rec.text = "two oat lattes"
	id := r.speak("u1", wire.ModeCommand, "", voiced())
	sr := result(t, r.expect(wire.TypeSpeechResult))
	if sr.Outcome != wire.SpeechAccepted || sr.Ref != "u1" || sr.Stream != id || sr.Text != "two oat lattes" {
		t.Fatalf("speech.result = %+v", sr)
	}
	<-r.agent.seen
	if in := r.agent.got[0]; in.Text != "two oat lattes" {
		t.Fatalf("intent = %+v", in)
	}
}

func TestOutOfGrammarIsNotUnderstood(t *testing.T) {
	r := newRig(t)
	r.rec.text = "play some music"
	r.speak("u1", wire.ModeCommand, "", voiced())
	if sr := result(t, r.expect(wire.TypeSpeechResult)); sr.Outcome != wire.SpeechNotUnderstood || sr.Reason == "" {
		t.Fatalf("speech.result = %+v", sr)
	}
	r.expect(wire.TypeTurnMetrics)
	select {
	case <-r.agent.seen:
		t.Fatal("out-of-grammar speech reached the agent")
	default:
	}
}

func TestConfirmAnswer(t *testing.T) {
	r := newRig(t)
	r.rec.text = "confirm"
	r.speak("c1", wire.ModeConfirm, "tx_1", voiced())
	sr := result(t, r.expect(wire.TypeSpeechResult))
	if sr.Outcome != wire.SpeechAccepted || sr.Answer != wire.AnswerApprove || sr.Tx != "tx_1" {
		t.Fatalf("speech.result = %+v", sr)
	}
}

func TestStreamErrors(t *testing.T) {
	r := newRig(t)
	t.Run("silence is no speech", func(t *testing.T) {
		r.speak("s1", wire.ModeConfirm, "tx_1", make([]int16, 16000*6))
		if sr := result(t, r.expect(wire.TypeSpeechResult)); sr.Outcome != wire.SpeechNoSpeech {
			t.Fatalf("speech.result = %+v", sr)
		}
	})
	t.Run("second start while open", func(t *testing.T) {
		r.send("s2", &wire.AudioStart{Stream: 50, Codec: "pcm", Rate: 16000, Mode: wire.ModeCommand})
		r.send("s3", &wire.AudioStart{Stream: 51, Codec: "pcm", Rate: 16000, Mode: wire.ModeCommand})
		if we := r.expectError(wire.CodeBadRequest); we.Ref != "s3" {
			t.Fatalf("error answers %q", we.Ref)
		}
		r.send("e1", &wire.AudioEnd{Stream: 50, Reason: wire.EndCancel})
		if sr := result(t, r.expect(wire.TypeSpeechResult)); sr.Outcome != wire.SpeechCancelled || sr.Ref != "s2" {
			t.Fatalf("speech.result = %+v", sr)
		}
	})
	t.Run("end of a stream that is not open", func(t *testing.T) {
		r.send("e2", &wire.AudioEnd{Stream: 77, Reason: wire.EndPTT})
		r.expectError(wire.CodeNoStream)
	})
	t.Run("frame in another format", func(t *testing.T) {
		r.send("s4", &wire.AudioStart{Stream: 60, Codec: "pcm", Rate: 16000, Mode: wire.ModeCommand})
		f, _ := wire.AppendAudioFrame(nil, wire.AudioHeader{Codec: wire.CodecPCM, Rate: 8000, Stream: 60}, make([]byte, 320))
		if err := r.conn.HandleAudio(t.Context(), f); err != nil {
			t.Fatal(err)
		}
		r.expectError(wire.CodeBadRequest)
		r.send("e3", &wire.AudioEnd{Stream: 60, Reason: wire.EndCancel})
		r.expect(wire.TypeSpeechResult)
	})
	t.Run("malformed frame", func(t *testing.T) {
		if err := r.conn.HandleAudio(t.Context(), []byte{9, 9}); err != nil {
			t.Fatal(err)
		}
		r.expectError(wire.CodeBadRequest)
	})
}
