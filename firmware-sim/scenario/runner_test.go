package scenario_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/firmware-sim/scenario"
	"github.com/earshot/earshot/firmware-sim/sim"
)

// runner returns a Runner against a fake gateway whose prompts expire after ttl.
func runner(t *testing.T, ttl time.Duration) *scenario.Runner {
	t.Helper()
	return runnerOver(t, sim.TransportWS, ttl)
}

// runnerOver returns a Runner whose devices connect over tr; over MQTT the fake
// gateway serves them through a real Mosquitto.
func runnerOver(t *testing.T, tr sim.Transport, ttl time.Duration) *scenario.Runner {
	t.Helper()
	return scenario.NewRunner(runnerConfig(t, tr, clienttest.Config{PromptTTL: ttl}))
}

// stepUpTTL is how long prompts that need the phone or the PIN live at the fake: long
// enough for three PIN derivations (scrypt) under -race on a loaded machine.
const stepUpTTL = 30 * time.Second

// stepUpRunner returns a Runner against a fake gateway that steps up above USD 20.00
// as the gateway's default risk rules do: the phone on glasses, the PIN on a kiosk;
// other prompts expire after ttl.
func stepUpRunner(t *testing.T, tr sim.Transport, ttl time.Duration) *scenario.Runner {
	t.Helper()
	return scenario.NewRunner(runnerConfig(t, tr, clienttest.Config{PromptTTL: ttl, StepUpAbove: 2000, StepUpTTL: stepUpTTL}))
}

// runnerConfig is the configuration of a Runner against a fake gateway made with gc.
func runnerConfig(t *testing.T, tr sim.Transport, gc clienttest.Config) scenario.Config {
	t.Helper()
	g := clienttest.New(gc)
	t.Cleanup(g.Close)
	if tr == sim.TransportMQTT {
		m := clienttest.StartMosquitto(t, "allow_anonymous true\nset_tcp_nodelay true")
		if err := g.ServeMQTT(m.URL); err != nil {
			t.Fatal(err)
		}
	}
	data := t.TempDir()
	if err := g.WriteAdminToken(data); err != nil {
		t.Fatal(err)
	}
	return scenario.Config{
		Device: sim.Config{Gateway: g.URL(), DataDir: data, StateDir: t.TempDir(), MinBackoff: 10 * time.Millisecond,
			Transport: tr},
		StepTimeout: 3 * time.Second,
	}
}

var transports = []sim.Transport{sim.TransportWS, sim.TransportMQTT}

func parse(t *testing.T, y string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestShippedScenariosPass(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ss, err := scenario.LoadFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	ss = slices.DeleteFunc(ss, needsTheGateway) // run in TestShippedScenariosAgainstTheGateway
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			shippedPass(t, tr, stepUpRunner(t, tr, 300*time.Millisecond), ss)
		})
	}
}

// needsTheGateway reports whether s needs what only the real gateway's embedded agent
// has: a catalogue whose prices change (price) and consents that outlive their
// prompt, such as the tip allowed with an order (expect_no_prompt). The fake has
// neither.
func needsTheGateway(s *scenario.Scenario) bool {
	return slices.ContainsFunc(s.Steps, func(st scenario.Step) bool {
		return st.Kind == scenario.StepPrice || st.Kind == scenario.StepExpectNoPrompt
	})
}

// shippedPass runs ss with r and checks that each passed, or was skipped when it
// speaks (the fake recognises no speech).
func shippedPass(t *testing.T, tr sim.Transport, r *scenario.Runner, ss []*scenario.Scenario) {
	t.Helper()
	var out strings.Builder
	results := r.RunAll(context.Background(), &out, ss)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(results) != len(ss) || len(lines) != len(ss) {
		t.Fatalf("%d results, %d lines for %d scenarios:\n%s", len(results), len(lines), len(ss), out.String())
	}
	for i, res := range results {
		if ss[i].Device.Audio { // the fake gateway recognises no speech
			skip := "SKIP " + res.Name + ": skipped: audio needs a speech recogniser; the gateway has none"
			if tr == sim.TransportMQTT {
				skip = "SKIP " + res.Name + ": skipped: audio needs ws or webrtc"
			}
			if !res.Skipped() || lines[i] != skip {
				t.Errorf("%s: %v\n%s, want %s", res.Name, res.Err, lines[i], skip)
			}
			continue
		}
		if !res.Passed() || !strings.HasPrefix(lines[i], "PASS "+res.Name+" (") {
			t.Errorf("%s: %v\n%s", res.Name, res.Err, lines[i])
		}
	}
}

func TestRunnerFails(t *testing.T) {
	const say = "name: %s\nsteps:\n  - say: \"buy two oat lattes\"\n"
	tests := []struct {
		name, steps, reason string
	}{
		{"wrong-total", "  - expect_prompt: {total: 1200}\n",
			"step 2 (expect_prompt, line 4): total 1100 (USD 11.00), want 1200"},
		{"wrong-merchant", "  - expect_prompt: {merchant: Starbucks}\n",
			`merchant "Earshot Coffee", want "Starbucks"`},
		{"wrong-items", "  - expect_prompt: {items: [{sku: latte-oat, qty: 3}]}\n",
			"items[0] (latte-oat): qty 2, want 3"},
		{"wrong-state", "  - confirm: decline\n  - expect_result: {state: redeemed}\n",
			"step 3 (expect_result, line 5): state declined, want redeemed"},
		{"no-expiry-in-time", "  - wait_expiry: {timeout: 200ms}\n",
			"step 2 (wait_expiry, line 4): no tx.result expired within 200ms"},
		{"prompt-instead-of-rejection", "  - expect_result: {state: rejected, code: not_understood, timeout: 200ms}\n",
			"within 200ms"},
	}
	r := runner(t, 5*time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := parse(t, strings.Replace(say, "%s", tt.name, 1)+tt.steps)
			res := r.Run(context.Background(), s)
			if res.Passed() || !strings.Contains(res.Err.Error(), tt.reason) {
				t.Fatalf("result %v, want a failure with %q", res.Err, tt.reason)
			}
			if line := res.String(); !strings.HasPrefix(line, "FAIL "+tt.name+" (") || !strings.Contains(line, "s): ") {
				t.Fatalf("line %q", line)
			}
		})
	}
}

func TestRunnerNoPrompt(t *testing.T) {
	r := runner(t, time.Second)
	res := r.Run(context.Background(), parse(t, "name: x\nsteps:\n  - say: \"play some music\"\n  - expect_prompt: {}\n"))
	if res.Passed() || !strings.Contains(res.Err.Error(), "no prompt: the transaction ended rejected (not_understood)") {
		t.Fatalf("got %v", res.Err)
	}
}

func TestRunnerStatusAndVoice(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			r := runnerOver(t, tr, time.Second)
			res := r.Run(context.Background(), parse(t, `
name: status-and-voice
device: {kind: glasses, user: carol}
steps:
  - say: "buy the black leggings"
  - status: {state: prompted}
  - expect_prompt: {merchant: "Earshot Outfitters", total: 8900}
  - confirm: {decision: approve, method: voice}
  - expect_result: {state: redeemed, amount: 8900, mandate: true}
  - status: {state: redeemed}
`))
			if !res.Passed() {
				t.Fatal(res)
			}
		})
	}
}

// Speaking scenarios are skipped, not failed, where speech cannot go: over MQTT, and to
// a gateway without a recogniser. Text scenarios run as before.
func TestRunnerSkipsAudio(t *testing.T) {
	const text = "name: text\nsteps:\n  - say: \"buy two oat lattes\"\n  - expect_prompt: {total: 1100}\n"
	const voice = "name: voice\ndevice: {audio: true}\nsteps:\n  - say: \"play some music\"\n  - expect_speech: {outcome: not_understood}\n"
	tests := []struct {
		name    string
		tr      sim.Transport
		audio   bool // the runner makes every scenario speak
		lines   []string
		summary string
	}{
		{"ws", sim.TransportWS, false, []string{"PASS text (", "SKIP voice: skipped: audio needs a speech recogniser; the gateway has none"}, "1 passed, 0 failed, 1 skipped"},
		{"mqtt", sim.TransportMQTT, false, []string{"PASS text (", "SKIP voice: skipped: audio needs ws or webrtc"}, "1 passed, 0 failed, 1 skipped"},
		{"ws, all spoken", sim.TransportWS, true, []string{"SKIP text: skipped: audio needs a speech", "SKIP voice: skipped: audio needs a speech"}, "0 passed, 0 failed, 2 skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := runnerConfig(t, tt.tr, clienttest.Config{PromptTTL: time.Second})
			cfg.Device.Audio = tt.audio
			r := scenario.NewRunner(cfg)
			var out strings.Builder
			results := r.RunAll(context.Background(), &out, []*scenario.Scenario{parse(t, text), parse(t, voice)})
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			for i, want := range tt.lines {
				if i >= len(lines) || !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d of\n%s\nwant %q", i, out.String(), want)
				}
			}
			if got := scenario.Summary(results); got != tt.summary {
				t.Errorf("summary %q, want %q", got, tt.summary)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	pass, fail, skip := scenario.Result{Name: "a"}, scenario.Result{Name: "b", Err: errors.New("no")}, scenario.Result{Name: "c", Skip: "why"}
	tests := []struct {
		results []scenario.Result
		want    string
	}{
		{nil, "0 passed, 0 failed"},
		{[]scenario.Result{pass, fail, pass}, "2 passed, 1 failed"},
		{[]scenario.Result{pass, skip, fail, skip}, "1 passed, 1 failed, 2 skipped"},
	}
	for _, tt := range tests {
		if got := scenario.Summary(tt.results); got != tt.want {
			t.Errorf("Summary = %q, want %q", got, tt.want)
		}
	}
	if skip.String() != "SKIP c: skipped: why" || skip.Passed() || !skip.Skipped() || fail.Skipped() {
		t.Errorf("skipped result %q passed %v", skip, skip.Passed())
	}
}
