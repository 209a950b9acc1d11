package sim_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/firmware-sim/internal/gatewayproc"
	"github.com/earshot/earshot/firmware-sim/sim"
)

// peer is a gateway the step-up and cancel tests run against.
type peer struct {
	url, data string
	real      bool
}

// eachPeer runs f against the fake gateway, whose purchases over USD 20.00 need the
// phone or the PIN, as the gateway's default risk rules say; and against the real
// gateway (earshot serve, default risk rules).
func eachPeer(t *testing.T, f func(t *testing.T, gw peer)) {
	t.Helper()
	t.Run("fake", func(t *testing.T) {
		g, data := gateway(t, clienttest.Config{StepUpAbove: 2000})
		f(t, peer{url: g.URL(), data: data})
	})
	t.Run("gateway", func(t *testing.T) {
		url, data := gatewayproc.Start(t)
		f(t, peer{url: url, data: data, real: true})
	})
}

// stepUpWired fails the test when the prompt does not offer method, or skips it
// against a real gateway that does not step up yet.
func stepUpWired(t *testing.T, gw peer, req *wire.ConfirmRequest, m wire.Method) {
	t.Helper()
	switch {
	case req != nil && slices.Contains(req.Methods, m):
	case gw.real:
		t.Skip("gateway step-up not wired yet")
	case req == nil:
		t.Fatal("no prompt")
	default:
		t.Fatalf("prompt offers %v, want %s", req.Methods, m)
	}
}

func (gw peer) config(kind sim.Kind, user string) sim.Config {
	return sim.Config{Gateway: gw.url, DataDir: gw.data, Kind: kind, User: user, MinBackoff: 10 * time.Millisecond}
}

// syncBuffer is an output written by a phone's loop and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// phoneLoop is a phone's approval loop running on a goroutine the test owns.
type phoneLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
	n      int
	err    error
}

// servePhone runs phone's approval loop on a goroutine until it returns by itself, the
// test ends or stop is called.
func servePhone(t *testing.T, phone *sim.Device, cfg sim.PhoneConfig) *phoneLoop {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &phoneLoop{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.n, l.err = phone.ServePhone(ctx, cfg)
	}()
	t.Cleanup(func() { _, _ = l.stop() }) // before the phone closes; the test checked what it needed
	return l
}

// stop ends the loop and returns what ServePhone returned.
func (l *phoneLoop) stop() (int, error) {
	l.cancel()
	<-l.done
	return l.n, l.err
}

// wait waits for the loop to return by itself.
func (l *phoneLoop) wait(t *testing.T) (int, error) {
	t.Helper()
	select {
	case <-l.done:
		return l.n, l.err
	case <-time.After(10 * time.Second):
		t.Fatal("the phone's loop did not return")
	}
	return 0, nil
}

// Glasses buy something large: the prompt needs the phone. The glasses show the
// binding code and sign nothing; the phone shows the same code and approves; the
// glasses get the redemption.
func TestPhoneApprovesGlassesPurchase(t *testing.T) {
	eachPeer(t, func(t *testing.T, gw peer) {
		phone := start(t, gw.config(sim.KindPhone, "dana"))
		var shown syncBuffer
		loop := servePhone(t, phone, sim.PhoneConfig{Out: &shown})
		glasses := start(t, gw.config(sim.KindGlasses, "dana"))
		var out strings.Builder
		p, err := glasses.Buy(ctxT(t), &out, "buy the black leggings", wire.DecisionApprove, "", 5*time.Second)
		if p != nil && p.Turn != nil {
			stepUpWired(t, gw, p.Turn.Prompt, wire.MethodPhone)
		}
		if err != nil {
			t.Fatalf("Buy: %v\n%s", err, out.String())
		}
		req := p.Turn.Prompt
		if !p.OK() || p.Final.Amount != 8900 || req.Binding != wire.BindingCode(req.Hash) {
			t.Fatalf("final %+v, prompt %+v\n%s", p.Final, req, out.String())
		}
		for _, s := range []string{"Code " + req.Binding + ": the same on your phone", "< approve on your phone (code " + req.Binding + ")",
			"redeemed (final)"} {
			if !strings.Contains(out.String(), s) {
				t.Errorf("glasses output lacks %q:\n%s", s, out.String())
			}
		}
		n, err := loop.stop()
		if err != nil || n != 1 {
			t.Fatalf("ServePhone = %d, %v", n, err)
		}
		for _, s := range []string{"Approve on this phone? Device " + glasses.ID() + " asks, code " + req.Binding, "Total USD 89.00",
			"< approve (phone, code " + req.Binding + ")"} {
			if !strings.Contains(shown.String(), s) {
				t.Errorf("phone output lacks %q:\n%s", s, shown.String())
			}
		}
	})
}

// The user declines on the phone; a phone with a Count stops after its answer and the
// gateway's reply.
func TestPhoneDeclines(t *testing.T) {
	eachPeer(t, func(t *testing.T, gw peer) {
		phone := start(t, gw.config(sim.KindPhone, "erin"))
		var shown syncBuffer
		loop := servePhone(t, phone, sim.PhoneConfig{Decision: wire.DecisionDecline, Count: 1, Out: &shown})
		glasses := start(t, gw.config(sim.KindGlasses, "erin"))
		var out strings.Builder
		p, err := glasses.Buy(ctxT(t), &out, "buy the black leggings", wire.DecisionApprove, "", 5*time.Second)
		if p != nil && p.Turn != nil {
			stepUpWired(t, gw, p.Turn.Prompt, wire.MethodPhone)
		}
		if err != nil || p.OK() || p.Final.State != wire.TxDeclined {
			t.Fatalf("Buy = %+v, %v\n%s", p.Final, err, out.String())
		}
		if n, err := loop.wait(t); err != nil || n != 1 {
			t.Fatalf("ServePhone = %d, %v\n%s", n, err, shown.String())
		}
		if s := shown.String(); !strings.Contains(s, "< decline (phone") || !strings.Contains(s, "declined (final)") {
			t.Errorf("phone output:\n%s", s)
		}
	})
}

// A kiosk purchase over the limit needs the user's PIN, set on the phone: the right
// PIN pays, a wrong one is refused with bad_pin.
func TestKioskPIN(t *testing.T) {
	eachPeer(t, func(t *testing.T, gw peer) {
		phone := start(t, gw.config(sim.KindPhone, "frank"))
		if err := phone.SetPIN(ctxT(t), "2468"); err != nil {
			t.Fatal(err)
		}
		cfg := gw.config(sim.KindKiosk, "frank")
		cfg.PIN = "2468"
		kiosk := start(t, cfg)
		var out strings.Builder
		p, err := kiosk.Buy(ctxT(t), &out, "buy the black leggings", wire.DecisionApprove, "", 5*time.Second)
		if p != nil && p.Turn != nil {
			stepUpWired(t, gw, p.Turn.Prompt, wire.MethodPIN)
		}
		if err != nil || !p.OK() || p.Turn.Prompt.PINSalt == "" || !strings.Contains(out.String(), "< approve (pin)") {
			t.Fatalf("Buy = %+v, %v\n%s", p.Final, err, out.String())
		}

		cfg.PIN = "1357"
		wrong := start(t, cfg)
		out.Reset()
		_, err = wrong.Buy(ctxT(t), &out, "buy the black leggings", wire.DecisionApprove, "", 5*time.Second)
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeBadPIN || !strings.Contains(we.Message, "2 tries left") {
			t.Fatalf("Buy with a wrong PIN = %v\n%s", err, out.String())
		}
	})
}

// Three wrong PINs close the transaction: bad_pin twice, then pin_locked, and the
// transaction ends rejected.
func TestPINLocked(t *testing.T) {
	eachPeer(t, func(t *testing.T, gw peer) {
		phone := start(t, gw.config(sim.KindPhone, "gina"))
		if err := phone.SetPIN(ctxT(t), "2468"); err != nil {
			t.Fatal(err)
		}
		kiosk := start(t, gw.config(sim.KindKiosk, "gina"))
		turn, err := kiosk.Say(ctxT(t), "buy the black leggings")
		if err != nil {
			t.Fatal(err)
		}
		req, err := turn.AwaitPrompt(ctxT(t))
		stepUpWired(t, gw, req, wire.MethodPIN)
		if err := turn.Confirm(ctxT(t), wire.DecisionApprove, ""); !errors.Is(err, sim.ErrNoPIN) {
			t.Fatalf("Confirm without a PIN = %v, want ErrNoPIN", err)
		}
		for _, want := range []wire.Code{wire.CodeBadPIN, wire.CodeBadPIN, wire.CodePINLocked} {
			if err := turn.ConfirmPIN(ctxT(t), wire.DecisionApprove, "0000"); err != nil {
				t.Fatal(err)
			}
			e, err := turn.AwaitError(ctxT(t))
			if err != nil || e.Code != want || e.Tx != turn.Tx {
				t.Fatalf("AwaitError = %+v, %v, want %s", e, err, want)
			}
		}
		r, err := turn.AwaitResult(ctxT(t), "")
		if err != nil || r.State != wire.TxRejected || r.Code != wire.CodePINLocked {
			t.Fatalf("result %+v, %v, want rejected pin_locked", r, err)
		}
	})
}

// A step-up the user has not set up: no phone for glasses, no PIN for a kiosk. The
// purchase ends rejected before any prompt.
func TestStepUpNotSetUp(t *testing.T) {
	eachPeer(t, func(t *testing.T, gw peer) {
		for _, tt := range []struct {
			kind sim.Kind
			code wire.Code
		}{{sim.KindGlasses, wire.CodeNoPhone}, {sim.KindKiosk, wire.CodeNoPIN}} {
			t.Run(tt.kind.String(), func(t *testing.T) {
				d := start(t, gw.config(tt.kind, "hank"))
				var out strings.Builder
				p, err := d.Buy(ctxT(t), &out, "buy the black leggings", wire.DecisionApprove, "", 5*time.Second)
				if err != nil {
					t.Fatalf("Buy: %v\n%s", err, out.String())
				}
				if gw.real && p.Final != nil && p.Final.State == wire.TxRedeemed {
					t.Skip("gateway step-up not wired yet")
				}
				if p.OK() || p.Final.State != wire.TxRejected || p.Final.Code != tt.code {
					t.Fatalf("final %+v, want rejected %s\n%s", p.Final, tt.code, out.String())
				}
			})
		}
	})
}

// Cancel after the redemption: cancelling, then cancelled once the merchant agrees.
func TestCancelAfterRedemption(t *testing.T) {
	eachPeer(t, func(t *testing.T, gw peer) {
		d := start(t, gw.config(sim.KindGlasses, "ivan"))
		var out strings.Builder
		p, err := d.Buy(ctxT(t), &out, "buy a large americano", wire.DecisionApprove, "", 5*time.Second)
		if err != nil || !p.OK() {
			t.Fatalf("Buy = %+v, %v\n%s", p, err, out.String())
		}
		if err := p.Cancel(ctxT(t), &out, "changed my mind", 5*time.Second); err != nil {
			t.Fatalf("Cancel: %v\n%s", err, out.String())
		}
		if !p.OK() || p.Final.State != wire.TxCancelled {
			t.Fatalf("after Cancel: %+v\n%s", p.Final, out.String())
		}
		for _, s := range []string{`< cancel "changed my mind"`, ": cancelling", ": cancelled (final)"} {
			if !strings.Contains(out.String(), s) {
				t.Errorf("output lacks %q:\n%s", s, out.String())
			}
		}
		if err := p.Cancel(ctxT(t), &out, "again", time.Second); err == nil {
			t.Error("a cancelled purchase was cancelled again")
		}
	})
}

// Only a phone sets the PIN and answers for other devices.
func TestPhoneOnly(t *testing.T) {
	g, data := gateway(t, clienttest.Config{})
	glasses := start(t, sim.Config{Gateway: g.URL(), DataDir: data})
	if err := glasses.SetPIN(ctxT(t), "1234"); !errors.Is(err, sim.ErrNotPhone) {
		t.Errorf("SetPIN on glasses = %v, want ErrNotPhone", err)
	}
	if _, err := glasses.ServePhone(ctxT(t), sim.PhoneConfig{}); !errors.Is(err, sim.ErrNotPhone) {
		t.Errorf("ServePhone on glasses = %v, want ErrNotPhone", err)
	}
	phone := start(t, sim.Config{Gateway: g.URL(), DataDir: data, Kind: sim.KindPhone})
	if err := phone.SetPIN(ctxT(t), "12"); err == nil {
		t.Error("SetPIN took a two-digit PIN")
	}
	if _, ok := g.UserPIN("alice"); ok {
		t.Error("a PIN was set")
	}
}

// The glasses cannot approve a prompt that needs the phone, but they may decline it.
func TestGlassesDeclinePhonePrompt(t *testing.T) {
	eachPeer(t, func(t *testing.T, gw peer) {
		start(t, gw.config(sim.KindPhone, "judy")) // connected, answering nothing
		glasses := start(t, gw.config(sim.KindGlasses, "judy"))
		var out strings.Builder
		p, err := glasses.Buy(ctxT(t), &out, "buy the black leggings", wire.DecisionDecline, "", 5*time.Second)
		if p != nil && p.Turn != nil {
			stepUpWired(t, gw, p.Turn.Prompt, wire.MethodPhone)
		}
		if err != nil || !p.OK() || p.Final.State != wire.TxDeclined || !strings.Contains(out.String(), "< decline (tap)") {
			t.Fatalf("Buy = %+v, %v\n%s", p.Final, err, out.String())
		}
	})
}
