package main_test

import (
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/identity"
)

// TestConnect proves who the shipped configuration lets in, through a real
// Mosquitto, the plugin and a gateway that verifies the tokens it minted.
func TestConnect(t *testing.T) {
	e := newEnv(t)
	addr := e.broker.Addr
	devA, devB := e.gw.enroll(t), e.gw.enroll(t)
	revoked := e.gw.enroll(t)
	e.gw.set(func(g *fakeGateway) { g.revoked[revoked.DeviceID()] = true })
	stranger, err := identity.GenerateKey() // not enrolled
	if err != nil {
		t.Fatal(err)
	}
	a, b := devA.DeviceID(), devB.DeviceID()
	now := time.Now()
	used := e.token(t, devA, now)
	mustConnect(t, addr, a, used, a) // used below for the replay

	tampered := tamper(e.token(t, devA, now))

	tests := []struct {
		name               string
		user, pass, client string
		ok                 bool
		asks               bool   // the gateway is asked
		logs               string // in the broker log
	}{
		{"device", b, e.token(t, devB, now), b, true, true, "mqtt connect allowed"},
		{"device with a suffixed client id", b, e.token(t, devB, now), b + "-sub", true, true, "client_id=" + b + "-sub"},
		{"gateway user with the secret", gatewayUser, e.secret, "earshot-gateway", true, false, "username=earshot-gateway"},
		{"bad signature", a, tampered, a, false, true, "code=invalid_token"},
		{"token of another device", a, e.token(t, devB, now), a, false, true, "code=invalid_token"},
		{"expired token", a, e.token(t, devA, now.Add(-time.Hour)), a, false, true, "code=token_expired"},
		{"replayed token", a, used, a + "-again", false, true, "code=token_replayed"},
		{"unknown device", stranger.DeviceID(), e.token(t, stranger, now), stranger.DeviceID(), false, true, "code=unknown_device"},
		{"revoked device", revoked.DeviceID(), e.token(t, revoked, now), revoked.DeviceID(), false, true, "code=device_revoked"},
		{"client id of another device", a, e.token(t, devA, now), b, false, false, "client id does not belong"},
		{"client id with a different suffix separator", a, e.token(t, devA, now), a + "_x", false, false, "client id does not belong"},
		{"gateway user, wrong secret", gatewayUser, e.secret + "x", "earshot-gateway", false, false, "wrong broker secret"},
		{"gateway user, a device token", gatewayUser, e.token(t, devA, now), "earshot-gateway", false, false, "wrong broker secret"},
		{"no password", a, "", a, false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := e.gw.callCount()
			_, err := mqttClient(t, addr, tt.user, tt.pass, tt.client)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tt.ok && err == nil:
				t.Fatal("accepted")
			case !tt.ok && !refused(err):
				t.Fatalf("err = %v, want a CONNACK refusal", err)
			}
			if asked := e.gw.callCount() > calls; asked != tt.asks {
				t.Errorf("gateway asked = %v, want %v", asked, tt.asks)
			}
			waitFor(t, "the broker to log "+tt.logs, func() bool { return strings.Contains(e.broker.Log(), tt.logs) })
		})
	}

	t.Run("wrong secret on the broker", func(t *testing.T) {
		e.gw.set(func(g *fakeGateway) { g.secret = "rotated" })
		defer e.gw.set(func(g *fakeGateway) { g.secret = e.secret })
		if _, err := mqttClient(t, addr, a, e.token(t, devA, time.Now()), a); !refused(err) {
			t.Fatalf("err = %v, want a CONNACK refusal", err)
		}
		waitFor(t, "the broker to log the wrong secret", func() bool {
			return strings.Contains(e.broker.Log(), "does not accept the broker secret")
		})
	})
	t.Run("gateway unavailable", func(t *testing.T) {
		e.gw.set(func(g *fakeGateway) { g.down = true })
		defer e.gw.set(func(g *fakeGateway) { g.down = false })
		if _, err := mqttClient(t, addr, a, e.token(t, devA, time.Now()), a); err == nil || refused(err) {
			t.Fatalf("err = %v, want the connection dropped without a CONNACK refusal", err)
		}
		waitFor(t, "the broker to log the unavailable gateway", func() bool {
			return strings.Contains(e.broker.Log(), "gateway unavailable: status 503")
		})
	})
	t.Run("device after the gateway came back", func(t *testing.T) {
		mustConnect(t, addr, a, e.token(t, devA, time.Now()), a)
	})
}

// TestConnectGatewayDown: with nothing listening at plugin_opt_url, devices are
// not let in (fail closed) but not refused either: the connection is dropped
// without a CONNACK, so they retry; the gateway user still connects.
func TestConnectGatewayDown(t *testing.T) {
	requirePlugin(t)
	secret := "down-secret"
	g := startGateway(t, secret)
	dev := g.enroll(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/v1/mqtt/auth"
	l.Close()
	files := newBrokerFiles(t, secret)
	m := clienttest.StartMosquitto(t, brokerConf(t, files, url))
	if _, err := mqttClient(t, m.Addr, dev.DeviceID(), token(t, dev, time.Now()), dev.DeviceID()); err == nil || refused(err) {
		t.Fatalf("device: err = %v, want the connection dropped without a CONNACK refusal", err)
	}
	waitFor(t, "the broker to log the cause", func() bool { return strings.Contains(m.Log(), "connect: connection refused") })
	mustConnect(t, m.Addr, gatewayUser, secret, "earshot-gateway")
}

// TestReloadReadsSecret: SIGHUP makes Mosquitto reload, and the plugin reads the
// secret file again (Mosquitto 2.0.11 passes no options with the reload event).
func TestReloadReadsSecret(t *testing.T) {
	requirePlugin(t)
	g := startGateway(t, "first")
	files := newBrokerFiles(t, "first")
	p := runMosquitto(t, files, brokerConf(t, files, g.URL+"/v1/mqtt/auth"))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
	waitFor(t, "the broker", func() bool { return strings.Contains(p.out.String(), "running") })
	mustConnect(t, addr, gatewayUser, "first", "gw-1")

	// Rewrite in place, as the owner-only file it is.
	if err := rewrite(files.secretFile, "second\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := mqttClient(t, addr, gatewayUser, "second", "gw-2"); !refused(err) {
		t.Fatalf("the new secret before the reload: err = %v, want a refusal", err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload", func() bool { return strings.Contains(p.out.String(), "secret file read again") })
	mustConnect(t, addr, gatewayUser, "second", "gw-3")
	if _, err := mqttClient(t, addr, gatewayUser, "first", "gw-4"); !refused(err) {
		t.Fatalf("the old secret after the reload: err = %v, want a refusal", err)
	}
}

// TestBadOptionsStopTheBroker: a plugin that cannot start (here: no secret file)
// stops Mosquitto at start-up with a reason, instead of letting everyone in or out.
func TestBadOptionsStopTheBroker(t *testing.T) {
	requirePlugin(t)
	files := newBrokerFiles(t, "x")
	conf := strings.Replace(brokerConf(t, files, "http://127.0.0.1:1/v1/mqtt/auth"),
		"plugin_opt_secret_file "+files.secretFile, "plugin_opt_secret_file "+files.secretFile+".missing", 1)
	p := runMosquitto(t, files, conf)
	select {
	case <-p.done:
		if p.err == nil {
			t.Fatal("mosquitto exited 0")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mosquitto is running without its plugin")
	}
	if s := p.out.String(); !strings.Contains(s, "plugin not started") || !strings.Contains(s, "secret file") {
		t.Errorf("the log does not say why:\n%s", s)
	}
}
