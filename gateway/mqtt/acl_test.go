package mqtt_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/mqtt"
	"github.com/earshot/earshot/gateway/registry"
)

func TestAllowed(t *testing.T) {
	const a, b = "dev_a", "dev_b"
	cases := []struct {
		topic string
		write bool
		want  bool
	}{
		{wire.UplinkTopic(a), true, true},
		{wire.StatusTopic(a), true, true},
		{wire.DownlinkTopic(a), false, true},
		{wire.GatewayStatusTopic, false, true},
		{wire.DownlinkTopic(a), true, false}, // only the gateway writes downlinks
		{wire.UplinkTopic(a), false, false},
		{wire.GatewayStatusTopic, true, false},
		{wire.UplinkTopic(b), true, false},
		{wire.StatusTopic(b), true, false},
		{wire.DownlinkTopic(b), false, false},
		{"earshot/v1/dev/+/down", false, false},
		{"earshot/v1/dev/#", false, false},
		{"#", false, false},
		{"$share/g/" + wire.DownlinkTopic(a), false, false},
		{"$SYS/#", false, false},
	}
	for _, c := range cases {
		if got := mqtt.Allowed(a, c.topic, c.write); got != c.want {
			t.Errorf("Allowed(%s, %q, write=%v) = %v, want %v", a, c.topic, c.write, got, c.want)
		}
	}
	if mqtt.Allowed("", wire.UplinkTopic(""), true) {
		t.Error("an empty username is allowed")
	}
}

// TestEmbeddedACL: device A cannot publish as B, cannot read B's downlink or any
// wildcard over the devices, and is told so (SUBACK failure, disconnect) and counted.
func TestEmbeddedACL(t *testing.T) {
	r := newEmbedded(t, nil)
	ka, kb := r.enroll(registry.KindKiosk), r.enroll(registry.KindKiosk)
	a, err := r.connect(ka, devOpts{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.connect(kb, devOpts{})
	if err != nil {
		t.Fatal(err)
	}
	b.hello(&wire.Hello{})

	for _, filter := range []string{
		wire.DownlinkTopic(b.id), "earshot/v1/dev/+/down", "earshot/v1/dev/#", "#",
		"$share/g/earshot/v1/dev/+/down", wire.UplinkTopic(b.id),
	} {
		if err := a.subscribe(filter); !errors.Is(err, errRefused) {
			t.Errorf("A subscribing to %q: err = %v, want a refusal", filter, err)
		}
	}
	if err := a.subscribe(wire.GatewayStatusTopic); err != nil {
		t.Errorf("A may read the gateway status: %v", err)
	}
	select {
	case p := <-a.raw:
		if st, err := wire.DecodePresence(p); err != nil || st.State != wire.Online || st.Epoch == "" {
			t.Errorf("gateway status = %s (%v), want online with an epoch", p, err)
		}
	case <-time.After(5 * time.Second):
		t.Error("no retained gateway status")
	}
	if n := testutil.ToFloat64(r.m.ACLDenied.WithLabelValues("subscribe")); n != 6 {
		t.Errorf("subscribe refusals counted = %v, want 6", n)
	}

	// A publishes an utterance into B's uplink: the broker drops it and disconnects A.
	f, _ := wire.Encode(wire.Envelope{ID: "evil"}, &wire.Utterance{Text: "buy everything", PTT: true})
	_ = a.c.Publish(wire.UplinkTopic(b.id), 1, false, f).WaitTimeout(2 * time.Second)
	waitFor(t, "A disconnected", func() bool { return !a.c.IsConnectionOpen() })
	if n := testutil.ToFloat64(r.m.ACLDenied.WithLabelValues("publish")); n != 1 {
		t.Errorf("publish refusals counted = %v, want 1", n)
	}
	select {
	case in := <-r.agent.intents:
		t.Fatalf("the gateway acted on A's message in B's uplink: %+v", in)
	case <-time.After(300 * time.Millisecond):
	}
	// B is unaffected.
	b.send(&wire.Utterance{Text: "a latte", PTT: true})
	if in := r.intent(); in.Device != b.id {
		t.Fatalf("intent from %s, want B", in.Device)
	}
}

// TestEmbeddedAuth: only a fresh token of the username's device, with an allowed
// client id, connects.
func TestEmbeddedAuth(t *testing.T) {
	r := newEmbedded(t, nil)
	ka, kb := r.enroll(registry.KindKiosk), r.enroll(registry.KindKiosk)
	used := token(t, ka)
	if _, err := r.connect(ka, devOpts{password: used}); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	revoked := r.enroll(registry.KindKiosk)
	if _, err := r.reg.Revoke(t.Context(), revoked.DeviceID()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  func() (k string, o devOpts)
	}{
		{"replayed token", func() (string, devOpts) { return "a", devOpts{password: used, clientID: ka.DeviceID() + "-2"} }},
		{"B's token as A", func() (string, devOpts) { return "a", devOpts{password: token(t, kb)} }},
		{"garbage token", func() (string, devOpts) { return "a", devOpts{password: "not.a.token"} }},
		{"foreign client id", func() (string, devOpts) { return "a", devOpts{clientID: kb.DeviceID()} }},
		{"client id prefix without dash", func() (string, devOpts) { return "a", devOpts{clientID: ka.DeviceID() + "x"} }},
		{"revoked device", func() (string, devOpts) { return "r", devOpts{} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			which, o := c.key()
			k := ka
			if which == "r" {
				k = revoked
			}
			_, err := r.connect(k, o)
			if err == nil || !strings.Contains(err.Error(), "not Authorized") && !strings.Contains(err.Error(), "bad user name or password") {
				t.Fatalf("err = %v, want a refused CONNECT", err)
			}
		})
	}
	if n := testutil.CollectAndCount(r.m.Refused); n == 0 {
		t.Error("refusals not counted")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
