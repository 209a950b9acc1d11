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

func newGateway(t testing.TB, cfg clienttest.Config) *clienttest.Gateway {
	t.Helper()
	g := clienttest.New(cfg)
	t.Cleanup(g.Close)
	return g
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
func dial(t testing.TB, g *clienttest.Gateway, key *identity.Key, en client.Enrollment, mutate func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{URL: g.DeviceURL(), Key: key, Audience: en.Audience, Client: wire.ClientInfo{Name: "test", Version: "0"}}
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
