package scenario_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/firmware-sim/scenario"
	"github.com/earshot/earshot/firmware-sim/sim"
)

func TestParse(t *testing.T) {
	s, err := scenario.Parse("buy.yaml", []byte(`
name: glasses-buy-coffee
device: {kind: kiosk, user: bob}
steps:
  - say: "buy two oat lattes"
  - expect_prompt: {merchant: "Earshot Coffee", total: 1100, currency: USD, items: [{sku: latte-oat, qty: 2}], timeout: 3s}
  - confirm: {decision: approve, method: tap}
  - expect_result: {state: redeemed, amount: 1100}
  - status:
  - say: "hello"
  - wait_expiry: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "glasses-buy-coffee" || s.Device != (scenario.DeviceSpec{Kind: sim.KindKiosk, User: "bob"}) || len(s.Steps) != 7 {
		t.Fatalf("parsed %+v", s)
	}
	kinds := []scenario.StepKind{scenario.StepSay, scenario.StepExpectPrompt, scenario.StepConfirm,
		scenario.StepExpectResult, scenario.StepStatus, scenario.StepSay, scenario.StepWaitExpiry}
	for i, k := range kinds {
		if s.Steps[i].Kind != k {
			t.Errorf("step %d is %s, want %s", i+1, s.Steps[i].Kind, k)
		}
	}
	p := s.Steps[1]
	if p.Line != 6 || p.Timeout != 3*time.Second || *p.Prompt.Total != 1100 || p.Prompt.Items[0].Qty != 2 {
		t.Errorf("expect_prompt %+v %+v", p, p.Prompt)
	}
	if c := s.Steps[2].Confirm; c.Decision != wire.DecisionApprove || c.Method != wire.MethodTap {
		t.Errorf("confirm %+v", c)
	}
	if w := s.Steps[6]; w.Result.State != wire.TxExpired || w.Timeout != scenario.DefaultExpiryTimeout {
		t.Errorf("wait_expiry %+v", w)
	}
}

func TestParseSpeech(t *testing.T) {
	s, err := scenario.Parse("voice.yaml", []byte(`
name: voice
device: {kind: glasses, audio: true, voice: en-gb, speed: 140, noise_snr: 20}
steps:
  - say: "play some music"
  - expect_speech: {outcome: not_understood, text: "get a milk", timeout: 4s}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := scenario.DeviceSpec{Kind: sim.KindGlasses, User: "alice", Audio: true, Voice: "en-gb", Speed: 140, NoiseSNR: 20}
	if s.Device != want {
		t.Fatalf("device %+v, want %+v", s.Device, want)
	}
	st := s.Steps[1]
	if st.Kind != scenario.StepExpectSpeech || st.Speech.Outcome != wire.SpeechNotUnderstood || st.Speech.Text != "get a milk" || st.Timeout != 4*time.Second {
		t.Fatalf("expect_speech %+v %+v", st, st.Speech)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		msg        string
	}{
		{"unknown step", "name: x\nsteps:\n  - say: hi\n  - sya: hi\n", 4, `step 2: unknown step "sya" (want one of say, expect_prompt`},
		{"unknown field", "name: x\nsteps:\n  - say: hi\n  - expect_prompt: {totl: 1100}\n", 4, `step 2 (expect_prompt): unknown field "totl" (known: currency, items, kind, merchant, methods, text, timeout, total)`},
		{"unknown item field", "name: x\nsteps:\n  - say: hi\n  - expect_prompt:\n      items: [{sku: a, quantity: 2}]\n", 5, `items[0]: unknown field "quantity"`},
		{"unknown top-level field", "name: x\nsetps: []\n", 2, `scenario: unknown field "setps"`},
		{"missing name", "steps:\n  - say: hi\n", 1, "name is required"},
		{"missing steps", "name: x\n", 1, "steps: want a list"},
		{"missing state", "name: x\nsteps:\n  - say: hi\n  - expect_result: {code: not_understood}\n", 4, "step 2 (expect_result): state is required"},
		{"missing sku", "name: x\nsteps:\n  - say: hi\n  - expect_prompt: {items: [{qty: 2}]}\n", 4, "items[0]: sku is required"},
		{"missing decision", "name: x\nsteps:\n  - say: hi\n  - confirm: {method: tap}\n", 4, "decision is required"},
		{"bad decision", "name: x\nsteps:\n  - say: hi\n  - confirm: maybe\n", 4, `decision "maybe": want approve or decline`},
		{"method the device lacks", "name: x\ndevice: {kind: kiosk}\nsteps:\n  - say: hi\n  - confirm: {decision: approve, method: voice}\n", 5, `method "voice": a kiosk offers`},
		{"bad kind", "name: x\ndevice: {kind: toaster}\nsteps:\n  - say: hi\n", 2, `kind "toaster": want glasses, kiosk or phone`},
		{"bad state", "name: x\nsteps:\n  - say: hi\n  - expect_result: {state: paid}\n", 4, `state "paid"`},
		{"bad code", "name: x\nsteps:\n  - say: hi\n  - expect_result: {state: rejected, code: nope}\n", 4, `code "nope" is not a wire code name`},
		{"bad timeout", "name: x\nsteps:\n  - say: hi\n  - expect_result: {state: redeemed, timeout: soon}\n", 4, `timeout "soon"`},
		{"fractional amount", "name: x\nsteps:\n  - say: hi\n  - expect_prompt: {total: 11.00}\n", 4, "want an integer amount in minor units"},
		{"string amount", "name: x\nsteps:\n  - say: hi\n  - expect_result: {state: redeemed, amount: \"1100\"}\n", 4, "want an integer amount"},
		{"no say first", "name: x\nsteps:\n  - confirm: approve\n", 3, "needs a say before it"},
		{"confirm after expiry", "name: x\nsteps:\n  - say: hi\n  - wait_expiry:\n  - confirm: approve\n", 5, "already answered or left to expire"},
		{"wait_expiry with a state", "name: x\nsteps:\n  - say: hi\n  - wait_expiry: {state: declined}\n", 4, "only timeout may be given"},
		{"two keys in a step", "name: x\nsteps:\n  - say: hi\n    confirm: approve\n", 3, "want exactly one of"},
		{"empty say", "name: x\nsteps:\n  - say: \"\"\n", 3, "want the text to say"},
		{"not yaml", "name: [x\n", 0, "yaml"},
		{"speech without outcome", "name: x\nsteps:\n  - say: hi\n  - expect_speech: {text: hi}\n", 4, "step 2 (expect_speech): outcome is required"},
		{"bad speech outcome", "name: x\nsteps:\n  - say: hi\n  - expect_speech: {outcome: heard}\n", 4, `outcome "heard": want one of [accepted not_understood no_speech cancelled]`},
		{"speech before say", "name: x\nsteps:\n  - expect_speech: {outcome: accepted}\n", 3, "needs a say before it"},
		{"unknown device field", "name: x\ndevice: {audio: yes-please}\nsteps:\n  - say: hi\n", 2, "device"},
		{"negative speed", "name: x\ndevice: {audio: true, speed: -5}\nsteps:\n  - say: hi\n", 2, "speed -5"},
		{"unquoted pin", "name: x\ndevice: {kind: kiosk, pin: 0123}\nsteps:\n  - say: hi\n", 2, `PIN 0123: want 4 to 12 digits in quotes, like "0000"`},
		{"short pin", "name: x\nphone: {set_pin: \"12\"}\nsteps:\n  - say: hi\n", 2, "PIN 12: want 4 to 12 digits"},
		{"bad phone answer", "name: x\nphone: {answer: maybe}\nsteps:\n  - say: hi\n", 2, `phone: answer "maybe": want approve or decline`},
		{"unknown phone field", "name: x\nphone: {pin: \"1234\"}\nsteps:\n  - say: hi\n", 2, `phone: unknown field "pin" (known: answer, set_pin)`},
		{"phone beside a phone", "name: x\ndevice: {kind: phone}\nphone: {}\nsteps:\n  - say: hi\n", 3, "the device is a phone already"},
		{"pin on glasses", "name: x\nsteps:\n  - say: hi\n  - confirm: {decision: approve, pin: \"1234\"}\n", 4, "a pin needs method pin on a device that has it"},
		{"pin with tap", "name: x\ndevice: {kind: kiosk}\nsteps:\n  - say: hi\n  - confirm: {decision: approve, method: tap, pin: \"1234\"}\n", 5, "a pin needs method pin"},
		{"error without code", "name: x\nsteps:\n  - say: hi\n  - expect_error: {message: wrong}\n", 4, "step 2 (expect_error): code is required"},
		{"bad error code", "name: x\nsteps:\n  - say: hi\n  - expect_error: {code: wrong_pin}\n", 4, `code "wrong_pin" is not a wire code name`},
		{"cancel with a mapping", "name: x\nsteps:\n  - say: hi\n  - cancel: {why: no}\n", 4, "want the reason the user gave"},
		{"bad method", "name: x\nsteps:\n  - say: hi\n  - expect_prompt: {methods: [retina]}\n", 4, `method "retina": want one of [tap voice button pin phone]`},
		{"confirm twice", "name: x\nsteps:\n  - say: hi\n  - confirm: approve\n  - confirm: approve\n", 5, "already answered"},
		{"price without sku", "name: x\nsteps:\n  - price: {amount: 7900}\n", 3, "step 1 (price): sku is required"},
		{"price without amount", "name: x\nsteps:\n  - price: {sku: leggings-black}\n", 3, "step 1 (price): amount is required"},
		{"price of nothing", "name: x\nsteps:\n  - price: {sku: leggings-black, amount: 0}\n", 3, "amount 0: want more than 0"},
		{"price in dollars", "name: x\nsteps:\n  - price: {sku: leggings-black, amount: 79.00}\n", 3, "step 1 (price)"},
		{"price as text", "name: x\nsteps:\n  - price: leggings-black\n", 3, "step 1 (price)"},
		{"unknown price field", "name: x\nsteps:\n  - price: {sku: a, amount: 1, currency: USD}\n", 3, `unknown field "currency" (known: amount, sku)`},
		{"no prompt before a say", "name: x\nsteps:\n  - expect_no_prompt: {}\n", 3, "needs a say before it"},
		{"no prompt, then confirm", "name: x\nsteps:\n  - say: hi\n  - expect_no_prompt:\n  - confirm: approve\n", 5, "already answered"},
		{"no prompt after a confirm", "name: x\nsteps:\n  - say: hi\n  - confirm: approve\n  - expect_no_prompt: {}\n", 5, "already answered"},
		{"unknown no-prompt field", "name: x\nsteps:\n  - say: hi\n  - expect_no_prompt: {state: redeemed}\n", 4, `unknown field "state" (known: timeout)`},
		{"bad no-prompt timeout", "name: x\nsteps:\n  - say: hi\n  - expect_no_prompt: {timeout: soon}\n", 4, `timeout "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scenario.Parse("bad.yaml", []byte(tt.yaml))
			var pe *scenario.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if pe.File != "bad.yaml" || (tt.line != 0 && pe.Line != tt.line) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q (line %d), want line %d and %q", err, pe.Line, tt.line, tt.msg)
			}
		})
	}
}

func TestParseStepUp(t *testing.T) {
	s, err := scenario.Parse("pin.yaml", []byte(`
name: kiosk-pin
device: {kind: kiosk, user: erin, pin: "2468"}
phone: {set_pin: "0007"}
steps:
  - say: "buy the black leggings"
  - expect_prompt: {methods: [pin]}
  - confirm: {decision: approve, pin: "0000"}
  - expect_error: {code: bad_pin, message: "2 tries left", timeout: 2s}
  - confirm: approve
  - expect_result: {state: redeemed}
  - cancel: "cancel my order"
  - expect_result: {state: cancelled}
  - cancel:
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Device.PIN != "2468" || s.Phone == nil || *s.Phone != (scenario.PhoneSpec{Answer: wire.DecisionApprove, SetPIN: "0007"}) {
		t.Fatalf("device %+v, phone %+v", s.Device, s.Phone)
	}
	if p := s.Steps[1].Prompt; len(p.Methods) != 1 || p.Methods[0] != wire.MethodPIN {
		t.Errorf("expect_prompt %+v", p)
	}
	if c := s.Steps[2].Confirm; c.PIN != "0000" || c.Method != "" {
		t.Errorf("confirm %+v", c)
	}
	if e := s.Steps[3]; e.Kind != scenario.StepExpectError || e.Error.Code != "bad_pin" || e.Error.Message != "2 tries left" || e.Timeout != 2*time.Second {
		t.Errorf("expect_error %+v %+v", e, e.Error)
	}
	if c := s.Steps[6]; c.Kind != scenario.StepCancel || c.Cancel != "cancel my order" || s.Steps[8].Cancel != "" {
		t.Errorf("cancel %+v", c)
	}
	if s.Steps[7].Result.State != wire.TxCancelled {
		t.Errorf("expect_result %+v", s.Steps[7].Result)
	}

	s, err = scenario.Parse("phone.yaml", []byte("name: x\nphone:\nsteps:\n  - say: hi\n"))
	if err != nil || s.Phone == nil || s.Phone.Answer != wire.DecisionApprove || s.Phone.SetPIN != "" {
		t.Fatalf("an empty phone: %+v, %v", s, err)
	}
}

// The steps for consents that outlive their prompt: a price change through the admin
// API (anywhere, even before the first say, and without ending the turn), a
// transaction that needs no prompt, and the reasons and prompt texts that say why.
func TestParseConsentKinds(t *testing.T) {
	s, err := scenario.Parse("kinds.yaml", []byte(`
name: kinds
device: {kind: kiosk, user: hank}
phone:
steps:
  - price: {sku: leggings-black, amount: 8900}
  - say: "buy the black leggings when they drop under 85 dollars"
  - expect_prompt: {kind: price_target, text: "drop under"}
  - confirm: approve
  - expect_result: {state: mandated, mandate: true}
  - price: {sku: leggings-black, amount: 7900}
  - expect_result: {state: redeemed, amount: 7900, reason: "price target was met"}
  - say: "add a two dollar tip"
  - expect_no_prompt: {timeout: 3s}
  - expect_result: {state: redeemed, amount: 200}
  - say: "add another"
  - expect_no_prompt:
`))
	if err != nil {
		t.Fatal(err)
	}
	kinds := []scenario.StepKind{scenario.StepPrice, scenario.StepSay, scenario.StepExpectPrompt, scenario.StepConfirm,
		scenario.StepExpectResult, scenario.StepPrice, scenario.StepExpectResult, scenario.StepSay,
		scenario.StepExpectNoPrompt, scenario.StepExpectResult, scenario.StepSay, scenario.StepExpectNoPrompt}
	if len(s.Steps) != len(kinds) {
		t.Fatalf("%d steps, want %d", len(s.Steps), len(kinds))
	}
	for i, k := range kinds {
		if s.Steps[i].Kind != k {
			t.Errorf("step %d is %s, want %s", i+1, s.Steps[i].Kind, k)
		}
	}
	if p := s.Steps[0].Price; p == nil || p.SKU != "leggings-black" || p.Amount == nil || *p.Amount != 8900 || s.Steps[0].Line != 6 {
		t.Errorf("price %+v (line %d)", p, s.Steps[0].Line)
	}
	if p := s.Steps[5].Price; p == nil || *p.Amount != 7900 {
		t.Errorf("price %+v", p)
	}
	if p := s.Steps[2].Prompt; p.Kind != wire.KindPriceTarget || p.Text != "drop under" {
		t.Errorf("expect_prompt %+v", p)
	}
	if r := s.Steps[6].Result; r.State != wire.TxRedeemed || r.Reason != "price target was met" || *r.Amount != 7900 {
		t.Errorf("expect_result %+v", r)
	}
	if st := s.Steps[8]; st.Timeout != 3*time.Second || s.Steps[11].Timeout != 0 {
		t.Errorf("expect_no_prompt timeouts %v, %v", st.Timeout, s.Steps[11].Timeout)
	}
	for _, k := range []scenario.StepKind{scenario.StepPrice, scenario.StepExpectNoPrompt} {
		if k.String() == "unknown" {
			t.Errorf("%d.String() = unknown", int(k))
		}
	}
}

func TestShippedScenariosParse(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("scenario files: %v %v", files, err)
	}
	if _, err := scenario.LoadFiles(files...); err != nil {
		t.Fatal(err)
	}
	if _, err := scenario.LoadFiles("../scenarios/missing.yaml"); err == nil {
		t.Fatal("a missing file loaded")
	}
}

func TestStepKindString(t *testing.T) {
	for k, want := range map[scenario.StepKind]string{scenario.StepUnknown: "unknown", scenario.StepWaitExpiry: "wait_expiry", scenario.StepExpectSpeech: "expect_speech", 99: "unknown"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(k), k.String(), want)
		}
	}
}
