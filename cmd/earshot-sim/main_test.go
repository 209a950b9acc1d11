package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/firmware-sim/scenario"
)

func TestCLI(t *testing.T) {
	// Purchases over USD 20.00 need the phone or the PIN, as at the gateway; their
	// prompts live long enough for three PIN derivations (scrypt) under -race.
	g := clienttest.New(clienttest.Config{PromptTTL: 300 * time.Millisecond, StepUpAbove: 2000, StepUpTTL: 30 * time.Second})
	t.Cleanup(g.Close)
	m := clienttest.StartMosquitto(t, "allow_anonymous true\nset_tcp_nodelay true")
	if err := g.ServeMQTT(m.URL); err != nil {
		t.Fatal(err)
	}
	wsOnly := clienttest.New(clienttest.Config{}) // no MQTT; prompts live 30 s, long enough for a spoken answer
	t.Cleanup(wsOnly.Close)
	state := t.TempDir()
	data := t.TempDir()
	if err := g.WriteAdminToken(data); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad-total.yaml")
	if err := os.WriteFile(bad, []byte("name: bad-total\nsteps:\n  - say: buy two oat lattes\n  - expect_prompt: {total: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	scenarios := fakeScenarios(t)
	flags := []string{"--gateway", g.URL(), "--data-dir", data, "--timeout", "3s"}
	tests := []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"say confirm", append([]string{"say", "buy two oat lattes", "--confirm"}, flags...), 0,
			[]string{"Earshot Coffee asks you to approve", "2 x Oat latte", "Total USD 11.00", "redeemed (final), mandate mnd_", "amount USD 11.00"}},
		{"say decline on a kiosk", append([]string{"say", "--decline", "a large americano", "--kind", "kiosk"}, flags...), 0,
			[]string{"kiosk dev_", "declined (final)"}},
		{"say not understood", append([]string{"say", "play some music", "--confirm"}, flags...), 1,
			[]string{"rejected (final), code not_understood"}},
		{"run shipped scenarios", append(append([]string{"run"}, flags...), scenarios...), 0,
			[]string{"PASS glasses-buy-coffee (", "PASS kiosk-order-declined (", "PASS prompt-expires (", "PASS not-understood (",
				"PASS glasses-phone-approves (", "PASS kiosk-pin-locked (", "PASS glasses-cancel-after-redemption (", "7 passed, 0 failed, 2 skipped\n"}},
		{"run a failing scenario", append([]string{"run", bad}, flags...), 1,
			[]string{"FAIL bad-total (", "total 1100 (USD 11.00), want 1", "0 passed, 1 failed"}},
		{"say over mqtt", append([]string{"say", "buy two oat lattes", "--confirm", "--transport", "mqtt"}, flags...), 0,
			[]string{"over mqtt (" + m.URL + ")", "Total USD 11.00", "redeemed (final), mandate mnd_"}},
		{"say over mqtt to a given broker", append([]string{"say", "a large americano", "--decline", "--transport", "mqtt", "--mqtt", m.URL}, flags...), 0,
			[]string{"over mqtt (" + m.URL + ")", "declined (final)"}},
		{"run shipped scenarios over mqtt", append(append([]string{"run", "--transport", "mqtt"}, flags...), scenarios...), 0,
			[]string{"PASS glasses-buy-coffee (", "PASS kiosk-order-declined (", "PASS prompt-expires (", "PASS not-understood (",
				"PASS glasses-phone-approves (", "SKIP glasses-voice-purchase: skipped: audio needs ws or webrtc", "7 passed, 0 failed, 2 skipped\n"}},
		{"run by voice without a recogniser", append(append([]string{"run", "--audio"}, flags...), scenarios...), 0,
			[]string{"SKIP glasses-buy-coffee: skipped: audio needs a speech recogniser; the gateway has none", "0 passed, 0 failed, 9 skipped\n"}},
		{"say by voice over mqtt", append([]string{"say", "hi", "--confirm", "--audio", "--transport", "mqtt"}, flags...), 2,
			[]string{"stderr:--audio needs --transport ws or webrtc, not mqtt"}},
		{"whip url without webrtc", append([]string{"say", "hi", "--confirm", "--whip", "whip://127.0.0.1:1/v1/whip"}, flags...), 2, nil},
		{"say over webrtc", append([]string{"say", "buy two oat lattes", "--confirm", "--transport", "webrtc"}, flags...), 0,
			[]string{"over webrtc (whip://", "Total USD 11.00", "redeemed (final), mandate mnd_"}},
		{"say by voice over webrtc", []string{"say", "--audio", "buy two oat lattes", "--confirm", "--transport", "webrtc", "--gateway", wsOnly.URL(), "--pairing-code", wsOnly.PairingCode("alice")}, 0,
			[]string{"(spoken: en-us, 160 wpm)", `heard "buy two oat lattes" (accepted)`, "< approve (voice)", `heard "yes" (approve)`, "redeemed (final)"}},
		{"token", append([]string{"token", "--state", state, "--count", "2"}, flags...), 0,
			[]string{"DEVICE=dev_", "TOKEN=ey", "TOKEN2=ey"}},
		{"mqtt without a broker", []string{"say", "hi", "--confirm", "--transport", "mqtt", "--gateway", wsOnly.URL(), "--pairing-code", wsOnly.PairingCode("alice")}, 1,
			[]string{"stderr:the gateway has no MQTT broker"}},
		{"mqtt url without mqtt", append([]string{"say", "hi", "--confirm", "--mqtt", m.URL}, flags...), 2, nil},
		{"unknown transport", append([]string{"say", "hi", "--confirm", "--transport", "pigeon"}, flags...), 2, nil},
		{"token with positional arguments", append([]string{"token", "extra"}, flags...), 2, nil},
		{"say and cancel", append([]string{"say", "buy a large americano", "--confirm", "--cancel"}, flags...), 0,
			[]string{"redeemed (final)", `< cancel "cancel my order"`, ": cancelling", ": cancelled (final)"}},
		{"cancel a declined purchase", append([]string{"say", "a large americano", "--decline", "--cancel"}, flags...), 2, nil},
		{"glasses without a phone", append([]string{"say", "buy the black leggings", "--confirm", "--user", "nophone"}, flags...), 1,
			[]string{"rejected (final), code no_phone"}},
		{"phone of another kind", append([]string{"phone", "--kind", "kiosk"}, flags...), 2, nil},
		{"phone with positional arguments", append([]string{"phone", "extra"}, flags...), 2, nil},
		{"help", []string{"help"}, 0, []string{"earshot-sim say TEXT", "-pairing-code", "earshot-sim token", "-transport", "-mqtt",
			"-audio", "-voice", "-speed", "-noise-snr", "-whip", "ws, mqtt or webrtc", "earshot-sim phone [--decline] [--set-pin PIN] [--count N]",
			"-set-pin", "-pin", "-cancel", "glasses, kiosk or phone"}},
		{"say without a decision", []string{"say", "hi"}, 2, nil},
		{"run without files", []string{"run"}, 2, nil},
		{"unknown command", []string{"fly"}, 2, nil},
		{"unknown kind", append([]string{"say", "hi", "--confirm", "--kind", "toaster"}, flags...), 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if code := run(ctx, tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, s := range tt.out {
				out, name := stdout.String(), "stdout"
				if rest, ok := strings.CutPrefix(s, "stderr:"); ok {
					s, out, name = rest, stderr.String(), "stderr"
				}
				if !strings.Contains(out, s) {
					t.Errorf("%s lacks %q:\n%s", name, s, out)
				}
			}
		})
	}
}

// The phone: it sets bob's PIN, then approves the glasses' large purchase; the kiosk
// pays with the PIN, and a wrong PIN is refused.
func TestPhone(t *testing.T) {
	g := clienttest.New(clienttest.Config{StepUpAbove: 2000})
	t.Cleanup(g.Close)
	data := t.TempDir()
	if err := g.WriteAdminToken(data); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--gateway", g.URL(), "--data-dir", data, "--timeout", "5s", "--user", "bob"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var phoneOut, phoneErr strings.Builder
	phoneDone := make(chan int, 1)
	go func() {
		phoneDone <- run(ctx, append([]string{"phone", "--set-pin", "2468", "--count", "1"}, flags...), &phoneOut, &phoneErr)
	}()
	for { // the phone is enrolled and connected once bob has a PIN
		if _, ok := g.UserPIN("bob"); ok {
			break
		}
		select {
		case code := <-phoneDone:
			t.Fatalf("phone exited %d:\n%s", code, phoneErr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	var out, errOut strings.Builder
	if code := run(ctx, append([]string{"say", "buy the black leggings", "--confirm"}, flags...), &out, &errOut); code != 0 {
		t.Fatalf("say exited %d\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, s := range []string{"Confirm with: phone", "< approve on your phone (code ", "redeemed (final)", "amount USD 89.00"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("say output lacks %q:\n%s", s, out.String())
		}
	}
	if code := <-phoneDone; code != 0 {
		t.Fatalf("phone exited %d: %s", code, phoneErr.String())
	}
	for _, s := range []string{"phone dev_", "(user usr_bob)", "PIN set", "Approve on this phone? Device dev_", "< approve (phone, code ", "1 answered"} {
		if !strings.Contains(phoneOut.String(), s) {
			t.Errorf("phone output lacks %q:\n%s", s, phoneOut.String())
		}
	}
	if strings.Contains(phoneOut.String()+phoneErr.String(), "2468") {
		t.Error("the phone showed the PIN")
	}

	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"kiosk with the PIN", []string{"say", "buy the black leggings", "--confirm", "--kind", "kiosk", "--pin", "2468"}, 0, "< approve (pin)"},
		{"kiosk with a wrong PIN", []string{"say", "buy the black leggings", "--confirm", "--kind", "kiosk", "--pin", "1357"}, 1, "bad_pin"},
		{"kiosk without a PIN", []string{"say", "buy the black leggings", "--confirm", "--kind", "kiosk"}, 1, "asks for a PIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if code := run(ctx, append(tt.args, flags...), &out, &errOut); code != tt.code || !strings.Contains(out.String()+errOut.String(), tt.out) {
				t.Fatalf("exit %d, want %d with %q\n%s\n%s", code, tt.code, tt.out, out.String(), errOut.String())
			}
		})
	}
}

// TestTokenWithMosquittoClients: the lines `earshot-sim token` prints are what the
// Mosquitto command-line clients need (docs/protocol.md, MQTT): the device says hello
// with mosquitto_pub and gets hello.ok on the down topic it listens to with
// mosquitto_sub.
func TestTokenWithMosquittoClients(t *testing.T) {
	for _, bin := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (%v): run `make deps`", bin, err)
		}
	}
	g := clienttest.New(clienttest.Config{})
	t.Cleanup(g.Close)
	m := clienttest.StartMosquitto(t, "allow_anonymous true\nset_tcp_nodelay true")
	if err := g.ServeMQTT(m.URL); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if err := g.WriteAdminToken(data); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	vars := map[string]string{}
	for range 2 { // the same device both times
		var stdout, stderr strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(ctx, []string{"token", "--count", "2", "--gateway", g.URL(), "--data-dir", data, "--state", state}, &stdout, &stderr)
		cancel()
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok || (vars[k] != "" && k == "DEVICE" && vars[k] != v) {
				t.Fatalf("line %q (had %v)", line, vars)
			}
			vars[k] = v
		}
	}
	dev := vars["DEVICE"]
	for _, k := range []string{"TOKEN", "TOKEN2"} {
		claims, err := identity.ParseToken(vars[k])
		if err != nil || claims.Subject != dev || claims.Audience != g.Audience() {
			t.Fatalf("%s: %+v, %v", k, claims, err)
		}
	}
	host, port, err := net.SplitHostPort(m.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub := exec.CommandContext(ctx, "mosquitto_sub", "-V", "mqttv311", "-h", host, "-p", port, "-i", dev+"-sub",
		"-u", dev, "-P", vars["TOKEN"], "-c", "-q", "1", "-t", wire.DownlinkTopic(dev), "-C", "1", "-W", "5")
	var got strings.Builder
	sub.Stdout = &got
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sub.Wait() }() // returns after one message, or -W's 5 s
	var subErr error
hello:
	for i := 0; ; i++ { // until mosquitto_sub has subscribed and got the answer
		pub := exec.CommandContext(ctx, "mosquitto_pub", "-V", "mqttv311", "-h", host, "-p", port, "-i", dev,
			"-u", dev, "-P", vars["TOKEN2"], "-q", "1", "-t", wire.UplinkTopic(dev),
			"-m", fmt.Sprintf(`{"v":1,"type":"hello","id":"m%d","ts":1767225600000,"body":{}}`, i))
		if out, err := pub.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
		select {
		case subErr = <-done:
			break hello
		case <-time.After(100 * time.Millisecond):
		}
	}
	if subErr != nil {
		t.Fatalf("mosquitto_sub: %v (got %q)", subErr, got.String())
	}
	env, err := wire.Decode([]byte(strings.TrimSpace(got.String())))
	if err != nil || env.Type != wire.TypeHelloOK {
		t.Fatalf("mosquitto_sub got %q (%v), want hello.ok", got.String(), err)
	}
}

// fakeScenarios returns the shipped scenario files the fake gateway can serve: not
// those that change a price (price) or expect a consent to outlive its prompt
// (expect_no_prompt), which need the real gateway's embedded agent and run against it
// in firmware-sim/scenario and make demo.
func fakeScenarios(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../firmware-sim/scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal("no scenarios", err)
	}
	var out []string
	for _, f := range files {
		ss, err := scenario.LoadFiles(f)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(ss[0].Steps, func(st scenario.Step) bool {
			return st.Kind == scenario.StepPrice || st.Kind == scenario.StepExpectNoPrompt
		}) {
			out = append(out, f)
		}
	}
	return out
}
