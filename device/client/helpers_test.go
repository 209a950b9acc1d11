package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

const waitFor = 5 * time.Second

// transports are the transports every behaviour is tested over.
var transports = []string{"ws", "mqtt", "webrtc"}

// mosquittoConf is what the tests' brokers run with: no authentication (the fake
// gateway refuses unknown devices at hello), and no Nagle delays.
const mosquittoConf = "allow_anonymous true\nset_tcp_nodelay true"

// env is a fake gateway serving devices over one transport. Over MQTT it serves them
// through a real Mosquitto, and devices reach the broker through a proxy that can cut
// their connections.
type env struct {
	transport string
	g         *clienttest.Gateway
	m         *clienttest.Mosquitto // MQTT only
	p         *clienttest.Proxy     // MQTT only
}

func newEnv(t testing.TB, transport string, cfg clienttest.Config) *env {
	t.Helper()
	e := &env{transport: transport, g: clienttest.New(cfg)}
	t.Cleanup(e.g.Close)
	if transport == "mqtt" {
		e.m = clienttest.StartMosquitto(t, mosquittoConf)
		if err := e.g.ServeMQTT(e.m.URL); err != nil {
			t.Fatal(err)
		}
		e.p = clienttest.StartProxy(t, e.m.Addr)
	}
	return e
}

// url is where devices connect.
func (e *env) url() string {
	switch e.transport {
	case "mqtt":
		return "mqtt://" + e.p.Addr
	case "webrtc":
		return e.g.WHIPURL()
	}
	return e.g.DeviceURL()
}

// cut breaks the device's connection without a goodbye.
func (e *env) cut(t testing.TB, device string) {
	t.Helper()
	if e.transport == "mqtt" {
		e.p.Drop()
		return
	}
	if !e.g.Disconnect(device, wire.CodeUnknown) {
		t.Fatal("not connected")
	}
}

// eachTransport runs f as a subtest per transport.
func eachTransport(t *testing.T, f func(t *testing.T, transport string)) {
	t.Helper()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { f(t, tr) })
	}
}

// enroll makes a key and enrols it as a device of kind for user.
func enroll(t testing.TB, g *clienttest.Gateway, user, kind string) (*identity.Key, client.Enrollment) {
	t.Helper()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return key, enrollKey(t, g, key, user, kind)
}

// enrollKey enrols an existing key.
func enrollKey(t testing.TB, g *clienttest.Gateway, key *identity.Key, user, kind string) client.Enrollment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	en, err := client.Enroll(ctx, g.URL(), key, g.PairingCode(user), kind, "test "+kind)
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	return en
}

// dial connects a client, applies mutate to its config first, and reads the first
// event, which must be hello.ok.
func dial(t testing.TB, e *env, key *identity.Key, en client.Enrollment, mutate func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{URL: e.url(), Key: key, Audience: en.Audience, Client: wire.ClientInfo{Name: "test", Version: "0"},
		WebRTC: client.WebRTCSettings{Loopback: true}}
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() }) // Close always returns nil
	if ev := next(t, c); ev.Type != wire.TypeHelloOK {
		t.Fatalf("first event %s, want hello.ok", ev.Type)
	}
	return c
}

// next returns the next event, failing the test after a while.
func next(t testing.TB, c *client.Client) client.Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-time.After(waitFor):
		t.Fatal("no event")
	}
	return client.Event{}
}

// nextMessage returns the next event that is not about the connection, and the
// connection events before it.
func nextMessage(t testing.TB, c *client.Client) (client.Event, []client.Event) {
	t.Helper()
	var conn []client.Event
	for {
		ev := next(t, c)
		if ev.Type != wire.TypeHelloOK && ev.Type != client.EventDisconnected {
			return ev, conn
		}
		if ev.Disconnected != nil && !ev.Disconnected.Reconnecting {
			t.Fatalf("stopped: %+v", ev.Disconnected)
		}
		conn = append(conn, ev)
	}
}

// noEvent checks that no event arrives for a short while.
func noEvent(t testing.TB, c *client.Client) {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if ok {
			t.Fatalf("unexpected event %s seq %d", ev.Type, ev.Seq)
		}
	case <-time.After(100 * time.Millisecond):
	}
}

// prompt says text and returns the confirm.request that answers it.
func prompt(t testing.TB, c *client.Client, text string) *wire.ConfirmRequest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := c.Say(ctx, text); err != nil {
		t.Fatalf("Say: %v", err)
	}
	ev := next(t, c)
	if ev.Type != wire.TypeConfirmRequest || ev.ConfirmRequest == nil {
		t.Fatalf("got %s (%+v), want confirm.request", ev.Type, ev)
	}
	return ev.ConfirmRequest
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds, failing the test after a while.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitAcked(t testing.TB, g *clienttest.Gateway, device string, seq uint64) {
	t.Helper()
	eventually(t, "ack", func() bool {
		st, _ := g.Device(device)
		return st.Acked == seq
	})
}
