package scenario_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/firmware-sim/internal/gatewayproc"
	"github.com/earshot/earshot/firmware-sim/scenario"
	"github.com/earshot/earshot/firmware-sim/sim"
)

func TestMain(m *testing.M) {
	code := m.Run()
	gatewayproc.Cleanup()
	os.Exit(code)
}

// Step-up and cancel scenarios against the fake: the phone beside the glasses
// approves or declines, the kiosk types wrong PINs, the user cancels after paying.
func TestRunnerStepUp(t *testing.T) {
	tests := []struct {
		name, yaml string
		fails      string // empty: passes
	}{
		{"phone declines", `
name: phone-declines
device: {kind: glasses, user: dana}
phone: {answer: decline}
steps:
  - say: "buy the black leggings"
  - expect_prompt: {methods: [phone]}
  - confirm: approve
  - expect_result: {state: declined}
`, ""},
		{"glasses decline themselves", `
name: glasses-decline
device: {kind: glasses, user: erin}
steps:
  - say: "buy the black leggings"
  - expect_result: {state: rejected, code: no_phone}
  - say: "buy two oat lattes"
  - confirm: decline
  - expect_result: {state: declined}
`, ""},
		{"no PIN yet", `
name: no-pin
device: {kind: kiosk, user: frank, pin: "1234"}
steps:
  - say: "buy the black leggings"
  - expect_result: {state: rejected, code: no_pin}
`, ""},
		{"a wrong PIN where the right one was expected", `
name: wrong-pin
device: {kind: kiosk, user: gina, pin: "1234"}
phone: {set_pin: "9876"}
steps:
  - say: "buy the black leggings"
  - confirm: approve
  - expect_result: {state: redeemed}
`, `step 3 (expect_result, line 8): sim: gateway error for "buy the black leggings": bad_pin`},
		{"the wrong error", `
name: wrong-error
device: {kind: kiosk, user: hank}
phone: {set_pin: "9876"}
steps:
  - say: "buy the black leggings"
  - confirm: {decision: approve, pin: "1111"}
  - expect_error: {code: pin_locked}
`, "error bad_pin (\"wrong PIN: 2 tries left\"), want pin_locked"},
		{"a message that differs", `
name: wrong-message
device: {kind: kiosk, user: ivan}
phone: {set_pin: "9876"}
steps:
  - say: "buy the black leggings"
  - confirm: {decision: approve, pin: "1111"}
  - expect_error: {code: bad_pin, message: "9 tries left"}
`, `error bad_pin says "wrong PIN: 2 tries left", want it to say "9 tries left"`},
		{"no error in time", `
name: no-error
device: {kind: glasses, user: jack}
steps:
  - say: "buy two oat lattes"
  - confirm: approve
  - expect_error: {code: bad_pin, timeout: 300ms}
`, "no error bad_pin within 300ms"},
		{"cancel before paying is refused", `
name: cancel-open-prompt
device: {kind: glasses, user: kate}
steps:
  - say: "buy two oat lattes"
  - expect_prompt: {}
  - cancel: ""
  - expect_error: {code: not_cancellable}
  - confirm: approve
  - expect_result: {state: redeemed}
  - cancel: "changed my mind"
  - expect_result: {state: cancelled, amount: 1100}
`, ""},
	}
	r := stepUpRunner(t, sim.TransportWS, 5*time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := scenario.Parse("test.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			res := r.Run(context.Background(), s)
			switch {
			case tt.fails == "" && !res.Passed():
				t.Fatal(res)
			case tt.fails != "" && (res.Passed() || !strings.Contains(res.Err.Error(), tt.fails)):
				t.Fatalf("%v, want a failure with %q", res, tt.fails)
			}
		})
	}
}

// The shipped scenarios that do not speak, against the real gateway (earshot serve with
// the default risk rules and prompt lifetime), over WebSocket and MQTT: the step-up
// ones included. Those that wait for a prompt to expire are left to the fake and to
// make demo (a short prompt lifetime would not leave time for three PINs stretched
// by scrypt under -race).
func TestShippedScenariosAgainstTheGateway(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ss, err := scenario.LoadFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	url, data := gatewayproc.Start(t)
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			r := scenario.NewRunner(scenario.Config{
				Device: sim.Config{Gateway: url, DataDir: data, StateDir: t.TempDir(), MinBackoff: 10 * time.Millisecond, Transport: tr},
			})
			var ran []string
			for _, s := range ss {
				if s.Device.Audio || slices.ContainsFunc(s.Steps, func(st scenario.Step) bool { return st.Kind == scenario.StepWaitExpiry }) {
					continue // the gateway here recognises no speech; prompts live 60 s
				}
				if res := r.Run(context.Background(), s); !res.Passed() {
					t.Error(res)
				}
				ran = append(ran, s.Name)
			}
			for _, name := range []string{"glasses-phone-approves", "glasses-price-target", "kiosk-tip"} {
				if !slices.Contains(ran, name) {
					t.Errorf("%s did not run (ran %v)", name, ran)
				}
			}
		})
	}
	// The new steps fail as they should against the real gateway.
	r := scenario.NewRunner(scenario.Config{
		Device: sim.Config{Gateway: url, DataDir: data, StateDir: t.TempDir(), MinBackoff: 10 * time.Millisecond},
	})
	for _, tt := range []struct{ name, yaml, fails string }{
		{"a prompt where none was expected", `
name: prompted
device: {kind: glasses, user: ivy}
steps:
  - say: "buy two oat lattes"
  - expect_no_prompt: {}
`, "step 2 (expect_no_prompt, line 6): sim: the transaction asked for approval"},
		{"a price the catalogue refuses", `
name: bad-price
device: {kind: glasses, user: ivy}
steps:
  - price: {sku: no-such-thing, amount: 100}
`, "step 1 (price, line 5): sim: gateway answered 422 bad_price"},
		{"a reason that differs", `
name: wrong-reason
device: {kind: glasses, user: jill}
steps:
  - say: "buy a large americano"
  - confirm: approve
  - expect_result: {state: redeemed, reason: "price target was met"}
`, `reason "", want it to say "price target was met"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := r.Run(context.Background(), parse(t, tt.yaml))
			if res.Passed() || !strings.Contains(res.Err.Error(), tt.fails) {
				t.Fatalf("%v, want a failure with %q", res, tt.fails)
			}
		})
	}
}
