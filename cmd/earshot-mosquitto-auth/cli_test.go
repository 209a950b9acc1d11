package main_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
)

const protocolDoc = "../../docs/protocol.md"

// documentedCLI returns the mosquitto_sub and mosquitto_pub command lines of
// docs/protocol.md §2 (MQTT), continuation lines joined.
func documentedCLI(t testing.TB) (sub, pub string) {
	t.Helper()
	raw, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "### MQTT 3.1.1")
	end := strings.Index(doc[max(start, 0):], "\n### ")
	if start < 0 || end < 0 {
		t.Fatalf("%s has no MQTT section", protocolDoc)
	}
	section := strings.ReplaceAll(doc[start:start+end], "\\\n", "")
	for _, line := range strings.Split(section, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		switch {
		case strings.HasPrefix(line, "mosquitto_sub "):
			sub = line
		case strings.HasPrefix(line, "mosquitto_pub "):
			pub = line
		}
	}
	if sub == "" || pub == "" {
		t.Fatalf("%s §2 has no mosquitto_sub and mosquitto_pub lines", protocolDoc)
	}
	return sub, pub
}

// TestDocumentedCLI runs the Mosquitto command-line clients exactly as
// docs/protocol.md shows them (only the port is the test broker's) against the
// shipped configuration: the listener gets what the gateway sends to the device's
// down topic, and the gateway gets the hello.
func TestDocumentedCLI(t *testing.T) {
	for _, bin := range []string{"/usr/bin/mosquitto_sub", "/usr/bin/mosquitto_pub"} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s is missing (Debian package mosquitto-clients): run `make deps`", bin)
		}
	}
	sub, pub := documentedCLI(t)
	e := newEnv(t)
	key := e.gw.enroll(t)
	dev := key.DeviceID()
	port := e.broker.Addr[strings.LastIndexByte(e.broker.Addr, ':')+1:]
	for _, cmd := range []*string{&sub, &pub} {
		if !strings.Contains(*cmd, " -p 1883 ") {
			t.Fatalf("%q does not use -p 1883", *cmd)
		}
		*cmd = strings.Replace(*cmd, " -p 1883 ", " -p "+port+" ", 1)
	}
	shell := func(line string) *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", "exec "+line)
		cmd.Env = append(os.Environ(), "DEV="+dev,
			"TOKEN="+e.token(t, key, time.Now()), "TOKEN2="+e.token(t, key, time.Now()))
		return cmd
	}

	gw := mustConnect(t, e.broker.Addr, gatewayUser, e.secret, "earshot-gateway")
	_, uplink := collect(t, gw, wire.UplinkFilter)

	listener := shell(sub)
	out, err := listener.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	listener.Stderr = &stderr
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	got := lines(bufio.NewScanner(out))
	t.Cleanup(func() {
		_ = listener.Process.Kill() // it runs until killed
		for range got {             // drain until the pipe closes
		}
		_ = listener.Wait() // killed: the status says so
		if t.Failed() {
			t.Logf("mosquitto_sub: %s", stderr.String())
		}
	})

	// The subscription exists once a message published after it arrives.
	received := ""
	for i := 0; received == "" && i < 50; i++ {
		payload := "probe " + strconv.Itoa(i)
		publish(t, gw, wire.DownlinkTopic(dev), payload, false)
		select {
		case line, ok := <-got:
			if !ok {
				t.Fatalf("mosquitto_sub ended: %s", stderr.String())
			}
			received = line
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !strings.HasPrefix(received, "probe ") {
		t.Fatalf("mosquitto_sub printed %q, want a probe", received)
	}

	if b, err := shell(pub).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, b)
	}
	want := `{"v":1,"type":"hello","id":"m1","ts":1767225600000,"body":{}}`
	if m := next(t, uplink); m.topic != wire.UplinkTopic(dev) || m.payload != want {
		t.Errorf("the gateway got %+v, want %s on %s", m, want, wire.UplinkTopic(dev))
	}
	if env, err := wire.Decode([]byte(want)); err != nil || env.Type != wire.TypeHello {
		t.Errorf("the documented hello does not decode as a hello: %+v, %v", env, err)
	}
}
