package main_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/wire"
)

var (
	pluginOnce sync.Once
	pluginPath string
	pluginErr  error
)

// plugin builds the Mosquitto auth plugin once per test binary, as `make build` does.
func plugin(t *testing.T) string {
	t.Helper()
	pluginOnce.Do(func() {
		dir := binaries(t)
		pluginPath = filepath.Join(dir, "earshot-mosquitto-auth.so")
		out, err := exec.Command("go", "build", "-tags", "mosquitto", "-buildmode=c-shared", "-o", pluginPath,
			"github.com/earshot/earshot/cmd/earshot-mosquitto-auth").CombinedOutput()
		if err != nil {
			pluginErr = &buildFailure{err: err, out: string(out)}
		}
	})
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	return pluginPath
}

// earshotMosquitto starts a real Mosquitto configured with the shipped
// docs/mosquitto/earshot.conf and earshot.acl, rewritten only for this test's paths
// and ports, for a gateway that will listen on gwAddr with data dir dir. The broker
// secret is created here, where the gateway will find it.
func earshotMosquitto(t *testing.T, dir, gwAddr string) *clienttest.Mosquitto {
	t.Helper()
	conf, err := os.ReadFile("../../docs/mosquitto/earshot.conf")
	if err != nil {
		t.Fatal(err)
	}
	acl, err := os.ReadFile("../../docs/mosquitto/earshot.acl")
	if err != nil {
		t.Fatal(err)
	}
	etc := t.TempDir()
	aclPath := filepath.Join(etc, "earshot.acl")
	if err := os.WriteFile(aclPath, acl, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	secretPath := filepath.Join(dir, "mqtt.secret")
	if err := os.WriteFile(secretPath, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(conf), "\n") {
		key, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch key {
		case "listener", "persistence", "persistence_location": // the harness's own
			continue
		case "plugin":
			line = "plugin " + plugin(t)
		case "plugin_opt_url":
			line = "plugin_opt_url http://" + gwAddr + "/v1/mqtt/auth"
		case "plugin_opt_secret_file":
			line = "plugin_opt_secret_file " + secretPath
		case "acl_file":
			line = "acl_file " + aclPath
		}
		out = append(out, line)
	}
	// Run as root, Mosquitto drops to the mosquitto user, which cannot read this
	// test's private temp dirs; deploy-mqtt.md covers file ownership in production.
	out = append(out, "user root")
	return clienttest.StartMosquitto(t, strings.Join(out, "\n"))
}

// mqttGateway is `earshot serve --mqtt-broker` behind a Mosquitto configured as
// docs/deploy-mqtt.md says.
func mqttGateway(t *testing.T) (*daemon, *clienttest.Mosquitto) {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	m := earshotMosquitto(t, dir, addr)
	d := serve(t, dir, addr, "--mqtt-broker", m.URL, "--consent-ttl", "3s")
	return d, m
}

// Every shipped scenario passes over MQTT through a real Mosquitto.
func TestScenariosOverMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon and Mosquitto")
	}
	d, m := mqttGateway(t) // --consent-ttl 3s: the prompt-expires scenario waits it out
	scenarios, _ := filepath.Glob("../../firmware-sim/scenarios/*.yaml")
	if len(scenarios) == 0 {
		t.Fatal("no scenarios")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	args := append([]string{"run", "--transport", "mqtt", "--mqtt", m.URL, "--gateway", d.url(),
		"--data-dir", d.dir, "--state", t.TempDir()}, scenarios...)
	out, err := exec.CommandContext(ctx, filepath.Join(binaries(t), "earshot-sim"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("earshot-sim run: %v\n%s\ngateway log:\n%s\nmosquitto log:\n%s", err, out, d.log, m.Log())
	}
	if want := mqttSummary(scenarios); !strings.Contains(string(out), want) {
		t.Fatalf("want %q:\n%s", want, out)
	}
}

// A broker restart in external mode loses nothing the gateway acknowledged: the
// prompt it sent before the broker died reaches the kiosk after both reconnect, and
// an utterance said while the broker is down goes through once it is back.
func TestMosquittoRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon and Mosquitto")
	}
	d, m := mqttGateway(t)
	k, en := d.enroll("kiosk")
	c, err := client.Dial(t.Context(), client.Config{URL: m.URL, Key: k, Audience: en.Audience, Reconnect: true,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("dial: %v\ngateway log:\n%s\nmosquitto log:\n%s", err, d.log, m.Log())
	}
	t.Cleanup(func() { c.Close() })
	next(t, c, wire.TypeHelloOK)

	if _, err := c.Say(t.Context(), "a large americano"); err != nil {
		t.Fatal(err)
	}
	req := next(t, c, wire.TypeConfirmRequest).ConfirmRequest
	m.Restart() // SIGKILL, then the same port: every broker-side session is gone
	next(t, c, client.EventDisconnected)
	next(t, c, wire.TypeHelloOK)
	if err := c.Confirm(t.Context(), req, wire.DecisionApprove, wire.MethodButton); err != nil {
		t.Fatal(err)
	}
	if r := final(t, c, req.Tx); r.State != wire.TxRedeemed {
		t.Fatalf("first purchase ended %s", r.State)
	}

	m.Kill()
	said := make(chan error, 1)
	go func() { // Say waits for the connection
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
		defer cancel()
		_, err := c.Say(ctx, "an espresso")
		said <- err
	}()
	time.Sleep(300 * time.Millisecond)
	m.Restart()
	if err := <-said; err != nil {
		t.Fatal(err)
	}
	req2 := next(t, c, wire.TypeConfirmRequest).ConfirmRequest
	if err := c.Confirm(t.Context(), req2, wire.DecisionApprove, wire.MethodButton); err != nil {
		t.Fatal(err)
	}
	if r := final(t, c, req2.Tx); r.State != wire.TxRedeemed {
		t.Fatalf("second purchase ended %s", r.State)
	}
	d.kill(syscall.SIGTERM)
	if strings.Contains(d.log.String(), "level=ERROR") {
		t.Errorf("the gateway logged errors:\n%s", d.log)
	}
}

// Every shipped scenario passes over MQTT through the embedded broker that
// `earshot serve` starts by default.
func TestScenariosOverEmbeddedMQTT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	d := serve(t, dir, "127.0.0.1:0", "--consent-ttl", "3s") // the prompt-expires scenario waits it out
	scenarios, _ := filepath.Glob("../../firmware-sim/scenarios/*.yaml")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	args := append([]string{"run", "--transport", "mqtt", "--gateway", d.url(), "--data-dir", dir, "--state", t.TempDir()}, scenarios...)
	out, err := exec.CommandContext(ctx, filepath.Join(binaries(t), "earshot-sim"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("earshot-sim run: %v\n%s\ngateway log:\n%s", err, out, d.log)
	}
	if want := mqttSummary(scenarios); !strings.Contains(string(out), want) {
		t.Fatalf("want %q:\n%s", want, out)
	}
}

// The Mosquitto command-line clients, with tokens from `earshot-sim token`, speak
// the documented topics to the embedded broker: a hello published with mosquitto_pub
// is answered with hello.ok on the downlink mosquitto_sub listens to.
func TestMosquittoClientsOnEmbeddedBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	for _, bin := range []string{"/usr/bin/mosquitto_pub", "/usr/bin/mosquitto_sub"} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s is missing (%v): run `make deps`", bin, err)
		}
	}
	dir := t.TempDir()
	d := serve(t, dir, "127.0.0.1:0")
	state := t.TempDir()
	token := func() (dev, tok string) {
		out, err := exec.Command(filepath.Join(binaries(t), "earshot-sim"), "token", "--gateway", d.url(),
			"--data-dir", dir, "--state", state).CombinedOutput()
		if err != nil {
			t.Fatalf("earshot-sim token: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "DEVICE="); ok {
				dev = v
			}
			if v, ok := strings.CutPrefix(line, "TOKEN="); ok {
				tok = v
			}
		}
		if dev == "" || tok == "" {
			t.Fatalf("earshot-sim token printed no DEVICE= and TOKEN= lines:\n%s", out)
		}
		return dev, tok
	}
	mqttURL := transportsMQTT(t, d)
	host, port, _ := strings.Cut(strings.TrimPrefix(mqttURL, "tcp://"), ":")
	dev, tok := token()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// The documented lines (docs/protocol.md, MQTT section), with this test's port.
	sub := exec.CommandContext(ctx, "mosquitto_sub", "-V", "mqttv311", "-h", host, "-p", port, "-i", dev+"-sub",
		"-u", dev, "-P", tok, "-c", "-q", "1", "-t", "earshot/v1/dev/"+dev+"/down", "-C", "1", "-W", "15")
	var subOut syncBuffer
	sub.Stdout, sub.Stderr = &subOut, &subOut
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let the subscription land
	_, tok2 := token()
	pub := exec.CommandContext(ctx, "mosquitto_pub", "-V", "mqttv311", "-h", host, "-p", port, "-i", dev,
		"-u", dev, "-P", tok2, "-q", "1", "-t", "earshot/v1/dev/"+dev+"/up",
		"-m", `{"v":1,"type":"hello","id":"m1","ts":1767225600000,"body":{}}`)
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	if err := sub.Wait(); err != nil {
		t.Fatalf("mosquitto_sub: %v\n%s\ngateway log:\n%s", err, subOut.String(), d.log)
	}
	if !strings.Contains(subOut.String(), `"type":"hello.ok"`) {
		t.Fatalf("mosquitto_sub got %q, want a hello.ok", subOut.String())
	}
}

// transportsMQTT asks the gateway where its broker is, as devices do.
func transportsMQTT(t *testing.T, d *daemon) string {
	t.Helper()
	resp, err := http.Get(d.url() + "/v1/transports")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct{ WS, MQTT string }
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || !strings.HasPrefix(tr.MQTT, "tcp://") {
		t.Fatalf("GET /v1/transports: %+v %v", tr, err)
	}
	return tr.MQTT
}

// mqttSummary is the runner's summary for the scenarios over MQTT: the spoken ones are
// skipped, since MQTT carries no audio in protocol v1.
func mqttSummary(scenarios []string) string {
	voice := 0
	for _, s := range scenarios {
		if strings.Contains(filepath.Base(s), "-voice-") {
			voice++
		}
	}
	if voice == 0 {
		return fmt.Sprintf("%d passed, 0 failed\n", len(scenarios))
	}
	return fmt.Sprintf("%d passed, 0 failed, %d skipped", len(scenarios)-voice, voice)
}
