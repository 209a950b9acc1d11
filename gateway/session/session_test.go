package session_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/device/wire/wiretest"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
)

// fakeTransport records what the core sends to a device.
type fakeTransport struct {
	mu     sync.Mutex
	frames [][]byte
	closed wire.Code
	full   bool // refuse sends, as a transport with an overflowing queue does
}

func (f *fakeTransport) Send(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return errors.New("queue full")
	}
	f.frames = append(f.frames, b)
	return nil
}
func (f *fakeTransport) Close(code wire.Code, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed == 0 {
		f.closed = code
	}
}
func (f *fakeTransport) Kind() string { return "fake" }

// take returns and forgets the frames received so far, decoded.
func (f *fakeTransport) take(t *testing.T) []wire.Envelope {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []wire.Envelope
	for _, b := range f.frames {
		e, err := wire.Decode(b)
		if err != nil {
			t.Fatalf("the core sent an undecodable frame: %v", err)
		}
		out = append(out, e)
	}
	f.frames = nil
	return out
}

// fakeAgent records what the core hands the agent.
type fakeAgent struct {
	mu       sync.Mutex
	intents  []agent.Intent
	mandates []agent.Mandate
	outcomes []agent.Outcome
}

func (a *fakeAgent) ID() string { return "agent-1" }

// waitFor waits until cond holds over what the agent was handed (the core hands
// events over from its log, asynchronously).
func (a *fakeAgent) waitFor(t *testing.T, what string, cond func(a *fakeAgent) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		ok := cond(a)
		a.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			a.mu.Lock()
			defer a.mu.Unlock()
			t.Fatalf("the agent never got %s: intents %v mandates %v outcomes %v", what, a.intents, a.mandates, a.outcomes)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
func (a *fakeAgent) OnIntent(_ context.Context, in agent.Intent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.intents = append(a.intents, in)
	return nil
}
func (a *fakeAgent) OnMandate(_ context.Context, m agent.Mandate) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mandates = append(a.mandates, m)
	return nil
}
func (a *fakeAgent) OnOutcome(_ context.Context, o agent.Outcome) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.outcomes = append(a.outcomes, o)
	return nil
}

type rig struct {
	t     *testing.T
	store *kv.Memory
	reg   *registry.Registry
	core  *session.Core
	agent *fakeAgent
}

func newRig(t *testing.T) *rig {
	t.Helper()
	st := kv.NewMemory()
	reg, err := registry.New(registry.Config{Store: st, Audience: "earshot:test"})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := authz.GenerateSigningKey(rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := authz.NewKeySet(sk)
	if err != nil {
		t.Fatal(err)
	}
	ag := &fakeAgent{}
	core, err := session.New(session.Config{Store: st, Registry: reg, Keys: keys, Agent: ag, ConsentTTL: 30 * time.Second,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	if err := core.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, store: st, reg: reg, core: core, agent: ag}
}

// device enrols a new device key for the user.
func (r *rig) device(user string) (*identity.Key, registry.Device) {
	r.t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		r.t.Fatal(err)
	}
	p, err := r.reg.CreatePairingCode(r.t.Context(), user)
	if err != nil {
		r.t.Fatal(err)
	}
	d, err := r.reg.Enroll(r.t.Context(), registry.EnrollRequest{
		Code: p.Code, PublicKey: identity.EncodePublic(k.Public()), Proof: k.EnrollProof(p.Code), Kind: registry.KindGlasses,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return k, d
}

// connect attaches a transport and says hello.
func (r *rig) connect(d registry.Device, h wire.Hello) (*session.Conn, *fakeTransport, wire.HelloOK) {
	r.t.Helper()
	ft := &fakeTransport{}
	cn, err := r.core.Attach(d, ft)
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(cn, "", &h)
	envs := ft.take(r.t)
	if len(envs) == 0 || envs[0].Type != wire.TypeHelloOK {
		r.t.Fatalf("hello answered with %v", envs)
	}
	var ok wire.HelloOK
	if err := wire.DecodeBody(envs[0], &ok); err != nil {
		r.t.Fatal(err)
	}
	// Frames re-sent after hello go back for the test to read.
	for _, e := range envs[1:] {
		b, _ := json.Marshal(e)
		ft.frames = append(ft.frames, b)
	}
	return cn, ft, ok
}

func (r *rig) send(cn *session.Conn, id string, b wire.Body) {
	r.t.Helper()
	f, err := wire.Encode(wire.Envelope{ID: id}, b)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cn.Handle(r.t.Context(), f); err != nil {
		r.t.Fatalf("Handle(%s): %v", b.Type(), err)
	}
}

func body[T any, P interface {
	*T
	wire.Body
}](t *testing.T, e wire.Envelope) P {
	t.Helper()
	p := P(new(T))
	if err := wire.DecodeBody(e, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// only asserts exactly one frame of the type arrived and returns it.
func only(t *testing.T, envs []wire.Envelope, typ wire.Type) wire.Envelope {
	t.Helper()
	if len(envs) != 1 || envs[0].Type != typ {
		var types []wire.Type
		for _, e := range envs {
			types = append(types, e.Type)
		}
		t.Fatalf("got %v, want one %s", types, typ)
	}
	return envs[0]
}

var oatLattes = []wire.Item{{SKU: "latte-oat", Name: "Oat latte", Qty: 2, UnitAmount: 550}}

// prompt runs utterance -> purchase request and returns the prompt.
func (r *rig) prompt(cn *session.Conn, ft *fakeTransport, msgID string) *wire.ConfirmRequest {
	r.t.Helper()
	r.send(cn, msgID, &wire.Utterance{Text: "buy two oat lattes", PTT: true})
	res := body[wire.TxResult](r.t, only(r.t, ft.take(r.t), wire.TypeTxResult))
	if res.State != wire.TxReceived || res.Ref != msgID {
		r.t.Fatalf("utterance answered with %+v", res)
	}
	_, err := r.core.RequestPurchase(r.t.Context(), "agent-1", session.PurchaseRequest{
		Tx: res.Tx, Merchant: wire.Merchant{ID: "earshot-coffee", Name: "Earshot Coffee"},
		Items: oatLattes, Total: 1100, Currency: "USD",
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return body[wire.ConfirmRequest](r.t, only(r.t, ft.take(r.t), wire.TypeConfirmRequest))
}

func signed(k *identity.Key, cr *wire.ConfirmRequest, d wire.Decision) *wire.Confirm {
	c := &wire.Confirm{Tx: cr.Tx, Hash: cr.Hash, Decision: d, Method: wire.MethodTap}
	k.SignConfirm(c)
	return c
}

func TestPurchaseLoop(t *testing.T) {
	r := newRig(t)
	k, d := r.device("alice")
	cn, ft, ok := r.connect(d, wire.Hello{})
	if ok.Resumed || ok.Session == "" || ok.Resume == "" {
		t.Fatalf("hello.ok = %+v", ok)
	}
	cr := r.prompt(cn, ft, "u1")
	if h, _ := cr.Terms.Hash(); h != cr.Hash {
		t.Fatal("the prompt's hash is not the hash of its terms")
	}
	if cr.Terms.Device != d.ID || cr.Terms.Session != ok.Session || cr.Terms.Total != 1100 {
		t.Fatalf("terms = %+v", cr.Terms)
	}
	r.send(cn, "c1", signed(k, cr, wire.DecisionApprove))
	res := body[wire.TxResult](t, only(t, ft.take(t), wire.TypeTxResult))
	if res.State != wire.TxMandated || res.Mandate == "" {
		t.Fatalf("after approve: %+v", res)
	}
	r.agent.waitFor(t, "the mandate", func(a *fakeAgent) bool { return len(a.mandates) == 1 && a.mandates[0].AmountCap == 1100 })
	m := r.agent.mandates[0]
	red, replayed, err := r.core.Redeem(t.Context(), authz.RedeemRequest{
		Agent: "agent-1", Token: m.Token, Amount: 1100, Currency: "USD", Payee: "earshot-coffee", IdempotencyKey: "k1",
	})
	if err != nil || replayed || red.Amount != 1100 {
		t.Fatalf("redeem = %+v, %v, %v", red, replayed, err)
	}
	res = body[wire.TxResult](t, only(t, ft.take(t), wire.TypeTxResult))
	if res.State != wire.TxRedeemed || res.Amount != 1100 || res.Currency != "USD" {
		t.Fatalf("after redeem: %+v", res)
	}
	tx, err := r.core.Tx(t.Context(), res.Tx)
	if err != nil {
		t.Fatal(err)
	}
	var states []wire.TxState
	for _, h := range tx.History {
		states = append(states, h.State)
	}
	want := []wire.TxState{wire.TxReceived, wire.TxRequested, wire.TxPrompted, wire.TxConfirmed, wire.TxMandated, wire.TxRedeemed}
	if len(states) != len(want) {
		t.Fatalf("history %v, want %v", states, want)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("history %v, want %v", states, want)
		}
	}
}

func TestDecline(t *testing.T) {
	r := newRig(t)
	k, d := r.device("alice")
	cn, ft, _ := r.connect(d, wire.Hello{})
	cr := r.prompt(cn, ft, "u1")
	r.send(cn, "c1", signed(k, cr, wire.DecisionDecline))
	res := body[wire.TxResult](t, only(t, ft.take(t), wire.TypeTxResult))
	if res.State != wire.TxDeclined || res.Mandate != "" {
		t.Fatalf("after decline: %+v", res)
	}
	r.agent.waitFor(t, "the decline", func(a *fakeAgent) bool {
		return len(a.mandates) == 0 && len(a.outcomes) == 1 && a.outcomes[0].State == wire.TxDeclined
	})
	// A second answer is refused.
	r.send(cn, "c2", signed(k, cr, wire.DecisionApprove))
	e := body[wire.Error](t, only(t, ft.take(t), wire.TypeError))
	if e.Code != wire.CodeAlreadyDecided || e.Ref != "c2" || e.Retry {
		t.Fatalf("second answer: %+v", e)
	}
}

func TestConfirmRefusals(t *testing.T) {
	r := newRig(t)
	k, d := r.device("alice")
	other, od := r.device("bob")
	cn, ft, _ := r.connect(d, wire.Hello{})
	ocn, oft, _ := r.connect(od, wire.Hello{})
	cr := r.prompt(cn, ft, "u1")

	tampered := signed(k, cr, wire.DecisionApprove)
	tampered.Sig = tampered.Sig[:len(tampered.Sig)-4] + "AAAA"
	wrongHash := &wire.Confirm{Tx: cr.Tx, Hash: "x" + cr.Hash[1:], Decision: wire.DecisionApprove, Method: wire.MethodTap}
	k.SignConfirm(wrongHash)
	pin := &wire.Confirm{Tx: cr.Tx, Hash: cr.Hash, Decision: wire.DecisionApprove, Method: wire.MethodPIN}
	k.SignConfirm(pin)

	for _, tc := range []struct {
		name string
		cn   *session.Conn
		ft   *fakeTransport
		c    *wire.Confirm
		want wire.Code
	}{
		{"tampered signature", cn, ft, tampered, wire.CodeBadSignature},
		{"hash of other terms", cn, ft, wrongHash, wire.CodeChallengeMismatch},
		{"method not offered", cn, ft, pin, wire.CodeMethodNotAllowed},
		{"another device's challenge", ocn, oft, signed(other, cr, wire.DecisionApprove), wire.CodeWrongDevice},
		{"unknown tx", cn, ft, &wire.Confirm{Tx: "tx_nope", Hash: cr.Hash, Decision: wire.DecisionApprove, Method: wire.MethodTap, Sig: "AA"}, wire.CodeUnknownTx},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.send(tc.cn, "bad", tc.c)
			e := body[wire.Error](t, only(t, tc.ft.take(t), wire.TypeError))
			if e.Code != tc.want {
				t.Fatalf("code %s, want %s", e.Code, tc.want)
			}
		})
	}
	// None of them moved the transaction: the real confirmation still works.
	r.send(cn, "c1", signed(k, cr, wire.DecisionApprove))
	if res := body[wire.TxResult](t, only(t, ft.take(t), wire.TypeTxResult)); res.State != wire.TxMandated {
		t.Fatalf("after the refusals, approve gave %+v", res)
	}
}

func TestResumeResendsUnackedInOrder(t *testing.T) {
	r := newRig(t)
	k, d := r.device("alice")
	cn, ft, ok := r.connect(d, wire.Hello{})
	cr := r.prompt(cn, ft, "u1") // seq 1: received, seq 2: prompt
	r.send(cn, "a1", &wire.Ack{Seq: 1})
	cn.Detach()

	// The device comes back having seen nothing after seq 1.
	cn2, ft2, ok2 := r.connect(d, wire.Hello{Resume: ok.Resume, LastAck: 1})
	if !ok2.Resumed || ok2.Session != ok.Session || ok2.LastSeq != 2 {
		t.Fatalf("resume: %+v", ok2)
	}
	again := only(t, ft2.take(t), wire.TypeConfirmRequest)
	if again.Seq != 2 || body[wire.ConfirmRequest](t, again).Hash != cr.Hash {
		t.Fatalf("re-sent prompt seq %d", again.Seq)
	}
	r.send(cn2, "a2", &wire.Ack{Seq: 2})
	r.send(cn2, "c1", signed(k, cr, wire.DecisionApprove))
	res := only(t, ft2.take(t), wire.TypeTxResult)
	if res.Seq != 3 {
		t.Fatalf("next seq %d, want 3", res.Seq)
	}
	cn2.Detach()

	// Acknowledged frames are gone: a resume with everything acked re-sends nothing.
	_, ft3, _ := r.connect(d, wire.Hello{Resume: ok.Resume, LastAck: 3})
	if envs := ft3.take(t); len(envs) != 0 {
		t.Fatalf("after full ack, resume re-sent %d frames", len(envs))
	}
}

func TestNewSessionRebindsOpenPrompt(t *testing.T) {
	r := newRig(t)
	k, d := r.device("alice")
	cn, ft, _ := r.connect(d, wire.Hello{})
	old := r.prompt(cn, ft, "u1")
	cn.Detach()

	// A device that lost its resume token starts a new session: the open prompt comes
	// back once, bound to the new session, and can be confirmed.
	cn2, ft2, ok2 := r.connect(d, wire.Hello{})
	var prompts []*wire.ConfirmRequest
	for _, e := range ft2.take(t) {
		if e.Type == wire.TypeConfirmRequest {
			prompts = append(prompts, body[wire.ConfirmRequest](t, e))
		}
	}
	if len(prompts) != 1 || prompts[0].Tx != old.Tx || prompts[0].Terms.Session != ok2.Session || prompts[0].Hash == old.Hash {
		t.Fatalf("prompts after a new session: %+v", prompts)
	}
	// The old prompt's signature no longer counts.
	r.send(cn2, "c0", signed(k, old, wire.DecisionApprove))
	if e := body[wire.Error](t, only(t, ft2.take(t), wire.TypeError)); e.Code != wire.CodeChallengeMismatch {
		t.Fatalf("old prompt: %s", e.Code)
	}
	r.send(cn2, "c1", signed(k, prompts[0], wire.DecisionApprove))
	if res := body[wire.TxResult](t, only(t, ft2.take(t), wire.TypeTxResult)); res.State != wire.TxMandated {
		t.Fatalf("after rebind: %+v", res)
	}
}

func TestPromptExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		k, d := r.device("alice")
		cn, ft, _ := r.connect(d, wire.Hello{})
		cr := r.prompt(cn, ft, "u1")
		time.Sleep(31 * time.Second)
		synctest.Wait()
		res := body[wire.TxResult](t, only(t, ft.take(t), wire.TypeTxResult))
		if res.State != wire.TxExpired || res.Code != wire.CodeChallengeExpired {
			t.Fatalf("after the TTL: %+v", res)
		}
		r.send(cn, "late", signed(k, cr, wire.DecisionApprove))
		if e := body[wire.Error](t, only(t, ft.take(t), wire.TypeError)); e.Code != wire.CodeChallengeExpired {
			t.Fatalf("late confirm: %s", e.Code)
		}
		r.core.Close()
	})
}

func TestUtteranceRules(t *testing.T) {
	r := newRig(t)
	_, d := r.device("alice")
	cn, ft, _ := r.connect(d, wire.Hello{})

	t.Run("ambient speech is refused", func(t *testing.T) {
		r.send(cn, "amb", &wire.Utterance{Text: "buy two oat lattes"})
		res := body[wire.TxResult](t, only(t, ft.take(t), wire.TypeTxResult))
		if res.State != wire.TxRejected || res.Code != wire.CodeRefused {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("a repeated utterance is one transaction", func(t *testing.T) {
		r.send(cn, "dup", &wire.Utterance{Text: "a large americano", PTT: true})
		first := body[wire.TxResult](t, only(t, ft.take(t), wire.TypeTxResult))
		r.send(cn, "dup", &wire.Utterance{Text: "a large americano", PTT: true})
		second := body[wire.TxResult](t, only(t, ft.take(t), wire.TypeTxResult))
		// The intent is staged with the transaction; an utterance after the repeat is
		// logged after anything the repeat staged: once it is in the log, count.
		r.send(cn, "after-dup", &wire.Utterance{Text: "an espresso", PTT: true})
		marker := body[wire.TxResult](t, only(t, ft.take(t), wire.TypeTxResult))
		intents := 0
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			evs, err := r.core.Events(t.Context(), r.agent.ID(), 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			intents = 0
			logged := false
			for _, ev := range evs {
				if ev.Type != agent.EventIntent {
					continue
				}
				if strings.Contains(string(ev.Data), first.Tx) {
					intents++
				}
				logged = logged || strings.Contains(string(ev.Data), marker.Tx)
			}
			if logged {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the intents never reached the log")
			}
		}
		if first.Tx != second.Tx || intents != 1 {
			t.Fatalf("two transactions or two intents: %s %s %d", first.Tx, second.Tx, intents)
		}
	})
	t.Run("a float amount is refused with bad_amount", func(t *testing.T) {
		frame := []byte(`{"v":1,"type":"tx.status","id":"f","body":{"tx":"tx_1"}}`)
		if err := cn.Handle(t.Context(), frame); err != nil {
			t.Fatal(err)
		}
		ft.take(t)
		bad := []byte(`{"v":1,"type":"tx.result","id":"f","body":{"tx":"tx_1","state":"redeemed","amount":10.5}}`)
		if err := cn.Handle(t.Context(), bad); err != nil {
			t.Fatal(err)
		}
		if e := body[wire.Error](t, only(t, ft.take(t), wire.TypeError)); e.Code != wire.CodeBadAmount {
			t.Fatalf("code %s", e.Code)
		}
	})
	t.Run("an oversize frame disconnects", func(t *testing.T) {
		big := make([]byte, wire.MaxFrameBytes+1)
		var we *wire.Error
		if err := cn.Handle(t.Context(), big); !errors.As(err, &we) || we.Code != wire.CodeFrameTooLarge {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a malformed frame is answered, not fatal", func(t *testing.T) {
		if err := cn.Handle(t.Context(), []byte(`{"v":1,"type":`)); err != nil {
			t.Fatal(err)
		}
		if e := body[wire.Error](t, only(t, ft.take(t), wire.TypeError)); e.Code != wire.CodeBadRequest {
			t.Fatalf("code %s", e.Code)
		}
	})
	t.Run("another protocol version is answered with unsupported_version", func(t *testing.T) {
		if err := cn.Handle(t.Context(), []byte(`{"v":2,"type":"ping","id":"v2"}`)); err != nil {
			t.Fatal(err)
		}
		if e := body[wire.Error](t, only(t, ft.take(t), wire.TypeError)); e.Code != wire.CodeUnsupportedVersion {
			t.Fatalf("code %s", e.Code)
		}
	})
	t.Run("an oversize field is answered with too_large, not a disconnect", func(t *testing.T) {
		f := []byte(`{"v":1,"type":"utterance","id":"x","body":{"text":"` + strings.Repeat("a", wire.MaxTextBytes+1) + `","ptt":true}}`)
		if err := cn.Handle(t.Context(), f); err != nil {
			t.Fatal(err)
		}
		if e := body[wire.Error](t, only(t, ft.take(t), wire.TypeError)); e.Code != wire.CodeTooLarge {
			t.Fatalf("code %s", e.Code)
		}
	})
	t.Run("unknown types are ignored", func(t *testing.T) {
		if err := cn.Handle(t.Context(), []byte(`{"v":1,"type":"future.thing","body":{}}`)); err != nil {
			t.Fatal(err)
		}
		if envs := ft.take(t); len(envs) != 0 {
			t.Fatalf("answered an unknown type with %v", envs)
		}
	})
}

func TestMessagesBeforeHelloDisconnect(t *testing.T) {
	r := newRig(t)
	_, d := r.device("alice")
	cn, err := r.core.Attach(d, &fakeTransport{})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := wire.Encode(wire.Envelope{ID: "u"}, &wire.Utterance{Text: "hi", PTT: true})
	var we *wire.Error
	if err := cn.Handle(t.Context(), f); !errors.As(err, &we) || we.Code != wire.CodeProtocolViolation {
		t.Fatalf("err = %v", err)
	}
}

func TestBoundedOutbox(t *testing.T) {
	r := newRig(t)
	_, d := r.device("alice")
	cn, ft, _ := r.connect(d, wire.Hello{})
	for i := range 256 {
		r.send(cn, "u"+string(rune('a'+i%26))+string(rune('a'+i/26)), &wire.Utterance{Text: "hello", PTT: true})
	}
	ft.take(t)
	r.send(cn, "one-too-many", &wire.Utterance{Text: "hello", PTT: true})
	e := body[wire.Error](t, only(t, ft.take(t), wire.TypeError))
	if e.Code != wire.CodeRateLimited || !e.Retry {
		t.Fatalf("%+v", e)
	}
}

func TestReplacedConnection(t *testing.T) {
	r := newRig(t)
	_, d := r.device("alice")
	_, ft, _ := r.connect(d, wire.Hello{})
	r.connect(d, wire.Hello{})
	if ft.closed != wire.CodeReplaced {
		t.Fatalf("old connection closed with %v", ft.closed)
	}
}

// TestGoldenUplinks feeds every uplink golden frame of the protocol (the same files the
// device side tests with) to the core: each is understood and answered, none is fatal.
func TestGoldenUplinks(t *testing.T) {
	r := newRig(t)
	k := wiretest.DeviceKey()
	p, err := r.reg.CreatePairingCode(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.reg.Enroll(t.Context(), registry.EnrollRequest{
		Code: p.Code, PublicKey: identity.EncodePublic(k.Public()), Proof: k.EnrollProof(p.Code), Kind: registry.KindGlasses,
	})
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTransport{}
	cn, err := r.core.Attach(d, ft)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ    wire.Type
		answer wire.Type // "" for no answer
		code   wire.Code // for error answers
	}{
		{wire.TypeHello, wire.TypeHelloOK, 0},
		{wire.TypeUtterance, wire.TypeTxResult, 0},
		{wire.TypeTxStatus, wire.TypeError, wire.CodeUnknownTx},
		{wire.TypeConfirm, wire.TypeError, wire.CodeUnknownTx},
		{wire.TypeAck, wire.TypeError, wire.CodeBadRequest}, // acks seq 42 of a fresh session
		{wire.TypePing, wire.TypePong, 0},
		{wire.TypePong, "", 0},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			if err := cn.Handle(t.Context(), wiretest.Golden(tc.typ)); err != nil {
				t.Fatalf("golden %s disconnected: %v", tc.typ, err)
			}
			envs := ft.take(t)
			if tc.answer == "" {
				if len(envs) != 0 {
					t.Fatalf("answered with %d frames", len(envs))
				}
				return
			}
			e := only(t, envs, tc.answer)
			if tc.code != 0 {
				if got := body[wire.Error](t, e); got.Code != tc.code {
					t.Fatalf("error %s, want %s", got.Code, tc.code)
				}
			}
		})
	}
}
