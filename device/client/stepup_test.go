package client_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// stepUp is a fake gateway where a purchase over USD 20.00 needs the phone (glasses)
// or the PIN (kiosk), as the gateway's default risk rules say.
var stepUp = clienttest.Config{StepUpAbove: 2000}

// SetPIN sends pin.set from a phone; the sequenced pin.set.ok names it. Any other
// device kind is refused, and a PIN that is not 4 to 12 digits is not sent.
func TestSetPIN(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		key, en := enroll(t, e.g, "alice", "phone")
		phone := dial(t, e, key, en, nil)
		id, err := phone.SetPIN(ctxT(t), "1234")
		if err != nil {
			t.Fatal(err)
		}
		ev, _ := nextMessage(t, phone)
		if ev.Type != wire.TypePINSetOK || ev.PINSetOK == nil || ev.PINSetOK.Ref != id || ev.Seq == 0 {
			t.Fatalf("got %s %+v, want pin.set.ok for %s", ev.Type, ev, id)
		}
		waitAcked(t, e.g, en.Device, ev.Seq)
		p, ok := e.g.UserPIN("alice")
		if !ok {
			t.Fatal("the gateway has no PIN for alice")
		}
		k, err := identity.PINKey("1234", p.Salt)
		if err != nil || identity.EncodePublic(k.Public().(ed25519.PublicKey)) != p.Pub {
			t.Fatalf("stored %+v is not the key of 1234 (%v)", p, err)
		}

		if _, err := phone.SetPIN(ctxT(t), "12a4"); !errors.Is(err, identity.ErrBadPIN) {
			t.Fatalf("SetPIN(12a4) = %v, want ErrBadPIN", err)
		}
		gk, gen := enroll(t, e.g, "alice", "glasses")
		glasses := dial(t, e, gk, gen, nil)
		id, err = glasses.SetPIN(ctxT(t), "9999")
		if err != nil {
			t.Fatal(err)
		}
		if ev, _ := nextMessage(t, glasses); ev.Error == nil || ev.Error.Code != wire.CodeBadRequest || ev.Error.Ref != id {
			t.Fatalf("glasses' pin.set answered %s %+v", ev.Type, ev.Error)
		}
		if st, _ := e.g.Device(en.Device); st.Uplinks[wire.TypePINSet] != 1 {
			t.Fatalf("the phone sent %d pin.set, want 1 (the bad PIN is not sent)", st.Uplinks[wire.TypePINSet])
		}
	})
}

// twoDevices enrols a device of kind and a phone for alice and connects both.
func twoDevices(t *testing.T, e *env, kind string) (dev, phone *client.Client) {
	t.Helper()
	pk, pen := enroll(t, e.g, "alice", "phone")
	phone = dial(t, e, pk, pen, nil)
	dk, den := enroll(t, e.g, "alice", kind)
	return dial(t, e, dk, den, nil), phone
}

// nextPrompt returns the next confirm.request c gets.
func nextPrompt(t *testing.T, c *client.Client) *wire.ConfirmRequest {
	t.Helper()
	ev, _ := nextMessage(t, c)
	if ev.ConfirmRequest == nil {
		t.Fatalf("got %s %+v, want confirm.request", ev.Type, ev)
	}
	return ev.ConfirmRequest
}

// expectStates reads tx.results of tx in order.
func expectStates(t *testing.T, c *client.Client, tx string, states ...wire.TxState) *wire.TxResult {
	t.Helper()
	var r *wire.TxResult
	for _, want := range states {
		ev, _ := nextMessage(t, c)
		if r = ev.TxResult; r == nil || r.Tx != tx || r.State != want {
			t.Fatalf("got %s %+v (error %+v), want tx.result %s", ev.Type, r, ev.Error, want)
		}
	}
	return r
}

// roundTrip proves the gateway has read everything c sent before: tx.status of an
// unknown transaction is answered with unknown_tx.
func roundTrip(t *testing.T, c *client.Client) {
	t.Helper()
	if err := c.Status(ctxT(t), "tx_none"); err != nil {
		t.Fatal(err)
	}
	if ev, _ := nextMessage(t, c); ev.Error == nil || ev.Error.Code != wire.CodeUnknownTx {
		t.Fatalf("status answered %s %+v", ev.Type, ev)
	}
}

// Glasses buy something large: the prompt needs the phone. The glasses show the
// binding code and cannot approve; the phone gets the same prompt, checks the code and
// approves with its own key; the glasses get the results, the phone a copy.
func TestPhoneApproves(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, stepUp)
		glasses, phone := twoDevices(t, e, "glasses")
		req := prompt(t, glasses, "buy the black leggings")
		if len(req.Methods) != 1 || req.Methods[0] != wire.MethodPhone || req.Binding != wire.BindingCode(req.Hash) ||
			req.Terms.Device != glasses.DeviceID() {
			t.Fatalf("glasses' prompt %+v", req)
		}
		preq := nextPrompt(t, phone)
		if preq.Tx != req.Tx || preq.Hash != req.Hash || preq.Binding != req.Binding || preq.Terms.Device != glasses.DeviceID() {
			t.Fatalf("phone's prompt %+v, glasses' %+v", preq, req)
		}
		if err := glasses.Confirm(ctxT(t), req, wire.DecisionApprove, wire.MethodTap); !errors.Is(err, client.ErrMethodNotOffered) {
			t.Fatalf("glasses Confirm(tap) = %v, want ErrMethodNotOffered", err)
		}
		if err := glasses.Confirm(ctxT(t), req, wire.DecisionApprove, wire.MethodPhone); !errors.Is(err, client.ErrStepUpMethod) {
			t.Fatalf("glasses Confirm(phone) = %v, want ErrStepUpMethod", err)
		}
		if err := phone.Confirm(ctxT(t), preq, wire.DecisionApprove, wire.MethodTap); !errors.Is(err, client.ErrBadPrompt) {
			t.Fatalf("phone Confirm = %v, want ErrBadPrompt (terms of another device)", err)
		}
		if err := phone.Approve(ctxT(t), preq, wire.DecisionApprove); err != nil {
			t.Fatal(err)
		}
		if r := expectStates(t, glasses, req.Tx, wire.TxMandated, wire.TxRedeemed); r.Amount != 8900 {
			t.Fatalf("redeemed %+v", r)
		}
		ev, _ := nextMessage(t, phone)
		if ev.TxResult == nil || ev.TxResult.Tx != req.Tx || ev.TxResult.State != wire.TxRedeemed || ev.Seq != 0 {
			t.Fatalf("phone got %s %+v, want the unsequenced copy of the result", ev.Type, ev.TxResult)
		}
		st, _ := e.g.Device(phone.DeviceID())
		if len(st.Confirms) != 1 || st.Confirms[0].Method != wire.MethodPhone || st.Confirms[0].Decision != wire.DecisionApprove {
			t.Fatalf("gateway verified %+v from the phone", st.Confirms)
		}
	})
}

// A phone declines: the glasses' purchase ends declined.
func TestPhoneDeclines(t *testing.T) {
	e := newEnv(t, "ws", stepUp)
	glasses, phone := twoDevices(t, e, "glasses")
	req := prompt(t, glasses, "buy the black leggings")
	if err := phone.Approve(ctxT(t), nextPrompt(t, phone), wire.DecisionDecline); err != nil {
		t.Fatal(err)
	}
	expectStates(t, glasses, req.Tx, wire.TxDeclined)
}

// Approve refuses, without signing or sending, a prompt whose binding code is not the
// code of its hash, that does not offer the phone, or whose terms do not hash to it.
func TestApproveRefusesBadPrompt(t *testing.T) {
	tests := []struct {
		name   string
		change func(*wire.ConfirmRequest)
		want   error
	}{
		{"wrong binding", func(r *wire.ConfirmRequest) {
			r.Binding = "0000"
			if wire.BindingCode(r.Hash) == "0000" {
				r.Binding = "0001"
			}
		}, client.ErrBindingMismatch},
		{"no binding", func(r *wire.ConfirmRequest) { r.Binding = "" }, client.ErrBindingMismatch},
		{"phone not offered", func(r *wire.ConfirmRequest) { r.Methods = []wire.Method{wire.MethodTap} }, client.ErrMethodNotOffered},
		{"terms changed", func(r *wire.ConfirmRequest) { r.Terms.Items[0].Name = "Gold leggings" }, client.ErrHashMismatch},
		{"terms for another tx", func(r *wire.ConfirmRequest) {
			r.Terms.Tx = "tx_other"
			r.Hash, _ = r.Terms.Hash()
			r.Binding = wire.BindingCode(r.Hash)
		}, client.ErrBadPrompt},
		{"no prompt", nil, client.ErrBadPrompt},
	}
	e := newEnv(t, "ws", stepUp)
	glasses, phone := twoDevices(t, e, "glasses")
	prompt(t, glasses, "buy the black leggings")
	good := nextPrompt(t, phone)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req *wire.ConfirmRequest
			if tt.change != nil {
				r := *good
				r.Terms.Items = append([]wire.Item(nil), good.Terms.Items...)
				tt.change(&r)
				req = &r
			}
			if err := phone.Approve(ctxT(t), req, wire.DecisionApprove); !errors.Is(err, tt.want) {
				t.Fatalf("Approve = %v, want %v", err, tt.want)
			}
			roundTrip(t, phone)
			if st, _ := e.g.Device(phone.DeviceID()); st.Uplinks[wire.TypeConfirm] != 0 {
				t.Fatalf("gateway received %d confirm frames", st.Uplinks[wire.TypeConfirm])
			}
		})
	}
}

// setPIN sets alice's PIN from the phone and waits for pin.set.ok.
func setPIN(t *testing.T, phone *client.Client, pin string) {
	t.Helper()
	id, err := phone.SetPIN(ctxT(t), pin)
	if err != nil {
		t.Fatal(err)
	}
	if ev, _ := nextMessage(t, phone); ev.PINSetOK == nil || ev.PINSetOK.Ref != id {
		t.Fatalf("pin.set answered %s %+v", ev.Type, ev)
	}
}

// A kiosk purchase over the step-up amount needs the PIN: a wrong one is refused with
// bad_pin and the prompt stays open; the right one approves.
func TestConfirmPIN(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, stepUp)
		kiosk, phone := twoDevices(t, e, "kiosk")
		setPIN(t, phone, "1234")
		req := prompt(t, kiosk, "buy the black leggings")
		if p, _ := e.g.UserPIN("alice"); len(req.Methods) != 1 || req.Methods[0] != wire.MethodPIN || req.PINSalt != p.Salt || req.Binding != "" {
			t.Fatalf("kiosk prompt %+v", req)
		}
		if err := kiosk.Confirm(ctxT(t), req, wire.DecisionApprove, wire.MethodPIN); !errors.Is(err, client.ErrStepUpMethod) {
			t.Fatalf("Confirm(pin) = %v, want ErrStepUpMethod", err)
		}
		if err := kiosk.ConfirmPIN(ctxT(t), req, wire.DecisionApprove, "4321"); err != nil {
			t.Fatal(err)
		}
		ev, _ := nextMessage(t, kiosk)
		if ev.Error == nil || ev.Error.Code != wire.CodeBadPIN || ev.Error.Tx != req.Tx || !strings.Contains(ev.Error.Message, "2 tries left") {
			t.Fatalf("wrong PIN answered %s %+v", ev.Type, ev.Error)
		}
		if err := kiosk.ConfirmPIN(ctxT(t), req, wire.DecisionApprove, "1234"); err != nil {
			t.Fatal(err)
		}
		expectStates(t, kiosk, req.Tx, wire.TxMandated, wire.TxRedeemed)
		st, _ := e.g.Device(kiosk.DeviceID())
		if len(st.Confirms) != 1 || st.Confirms[0].Method != wire.MethodPIN || st.Confirms[0].PINSig == "" {
			t.Fatalf("gateway verified %+v", st.Confirms)
		}
	})
}

// The third wrong PIN closes the transaction: rejected with pin_locked.
func TestPINLocked(t *testing.T) {
	e := newEnv(t, "ws", stepUp)
	kiosk, phone := twoDevices(t, e, "kiosk")
	setPIN(t, phone, "1234")
	req := prompt(t, kiosk, "buy the black leggings")
	for _, left := range []string{"2 tries left", "1 try left"} {
		if err := kiosk.ConfirmPIN(ctxT(t), req, wire.DecisionApprove, "0000"); err != nil {
			t.Fatal(err)
		}
		if ev, _ := nextMessage(t, kiosk); ev.Error == nil || ev.Error.Code != wire.CodeBadPIN || !strings.Contains(ev.Error.Message, left) {
			t.Fatalf("wrong PIN answered %s %+v, want bad_pin, %s", ev.Type, ev.Error, left)
		}
	}
	if err := kiosk.ConfirmPIN(ctxT(t), req, wire.DecisionApprove, "0000"); err != nil {
		t.Fatal(err)
	}
	var locked, rejected bool
	for !locked || !rejected {
		ev, _ := nextMessage(t, kiosk)
		switch {
		case ev.Error != nil && ev.Error.Code == wire.CodePINLocked && ev.Error.Tx == req.Tx:
			locked = true
		case ev.TxResult != nil && ev.TxResult.State == wire.TxRejected && ev.TxResult.Code == wire.CodePINLocked:
			rejected = true
		default:
			t.Fatalf("third wrong PIN answered %s %+v", ev.Type, ev)
		}
	}
	if e.g.TxState(req.Tx) != wire.TxRejected {
		t.Fatalf("tx %s", e.g.TxState(req.Tx))
	}
}

// ConfirmPIN refuses, without deriving, signing or sending, a prompt that does not
// offer the PIN or has no salt, terms of another device, and a PIN that is not 4 to 12
// digits.
func TestConfirmPINRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(*wire.ConfirmRequest)
		pin    string
		want   error
	}{
		{"pin not offered", func(r *wire.ConfirmRequest) { r.Methods = []wire.Method{wire.MethodTap} }, "1234", client.ErrMethodNotOffered},
		{"no salt", func(r *wire.ConfirmRequest) { r.PINSalt = "" }, "1234", client.ErrBadPrompt},
		{"terms for another device", func(r *wire.ConfirmRequest) {
			r.Terms.Device = "dev_someoneelse"
			r.Hash, _ = r.Terms.Hash()
		}, "1234", client.ErrBadPrompt},
		{"terms changed", func(r *wire.ConfirmRequest) { r.Terms.Merchant.Name = "Evil Outfitters" }, "1234", client.ErrHashMismatch},
		{"short PIN", func(*wire.ConfirmRequest) {}, "12", identity.ErrBadPIN},
		{"not digits", func(*wire.ConfirmRequest) {}, "12ab", identity.ErrBadPIN},
	}
	e := newEnv(t, "ws", stepUp)
	kiosk, phone := twoDevices(t, e, "kiosk")
	setPIN(t, phone, "1234")
	good := prompt(t, kiosk, "buy the black leggings")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := *good
			tt.change(&r)
			if err := kiosk.ConfirmPIN(ctxT(t), &r, wire.DecisionApprove, tt.pin); !errors.Is(err, tt.want) {
				t.Fatalf("ConfirmPIN = %v, want %v", err, tt.want)
			}
			roundTrip(t, kiosk)
			if st, _ := e.g.Device(kiosk.DeviceID()); st.Uplinks[wire.TypeConfirm] != 0 {
				t.Fatalf("gateway received %d confirm frames", st.Uplinks[wire.TypeConfirm])
			}
		})
	}
}

// A step-up the user has not set up ends the transaction before any prompt: no_phone
// on glasses without a phone, no_pin on a kiosk without a PIN.
func TestStepUpNotSetUp(t *testing.T) {
	e := newEnv(t, "ws", stepUp)
	for _, tt := range []struct {
		kind string
		code wire.Code
	}{{"glasses", wire.CodeNoPhone}, {"kiosk", wire.CodeNoPIN}} {
		t.Run(tt.kind, func(t *testing.T) {
			key, en := enroll(t, e.g, "bob", tt.kind)
			c := dial(t, e, key, en, nil)
			if _, err := c.Say(ctxT(t), "buy the black leggings"); err != nil {
				t.Fatal(err)
			}
			if ev, _ := nextMessage(t, c); ev.TxResult == nil || ev.TxResult.State != wire.TxRejected || ev.TxResult.Code != tt.code {
				t.Fatalf("got %s %+v, want rejected %s", ev.Type, ev.TxResult, tt.code)
			}
		})
	}
}

// Cancel after the redemption: cancelling, then cancelled when the merchant confirms.
// A prompt still open cannot be cancelled (decline it).
func TestCancelAfterRedemption(t *testing.T) {
	e := newEnv(t, "ws", clienttest.Config{})
	key, en := enroll(t, e.g, "alice", "glasses")
	c := dial(t, e, key, en, nil)
	req := prompt(t, c, "buy two oat lattes")
	if err := c.Cancel(ctxT(t), req.Tx, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	if ev, _ := nextMessage(t, c); ev.Error == nil || ev.Error.Code != wire.CodeNotCancellable || ev.Error.Tx != req.Tx {
		t.Fatalf("cancel of an open prompt answered %s %+v", ev.Type, ev.Error)
	}
	if err := c.Confirm(ctxT(t), req, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	expectStates(t, c, req.Tx, wire.TxMandated, wire.TxRedeemed)
	if err := c.Cancel(ctxT(t), req.Tx, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	expectStates(t, c, req.Tx, wire.TxCancelling, wire.TxCancelled)
}

// The glasses cannot approve a prompt that needs the phone, but may decline it with
// any method.
func TestGlassesDeclinePhonePrompt(t *testing.T) {
	e := newEnv(t, "ws", stepUp)
	glasses, _ := twoDevices(t, e, "glasses")
	req := prompt(t, glasses, "buy the black leggings")
	if err := glasses.Confirm(ctxT(t), req, wire.DecisionDecline, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	expectStates(t, glasses, req.Tx, wire.TxDeclined)
}
