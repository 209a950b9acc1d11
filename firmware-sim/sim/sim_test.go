package sim_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/firmware-sim/sim"
)

// gateway starts a fake gateway and a data directory holding its admin token.
func gateway(t *testing.T, cfg clienttest.Config) (*clienttest.Gateway, string) {
	t.Helper()
	g := clienttest.New(cfg)
	t.Cleanup(g.Close)
	dir := t.TempDir()
	if err := g.WriteAdminToken(dir); err != nil {
		t.Fatal(err)
	}
	return g, dir
}

// transports are the transports the simulated devices are tested over.
var transports = []sim.Transport{sim.TransportWS, sim.TransportMQTT}

// gatewayOver starts a fake gateway that serves devices over tr: over MQTT through
// a real Mosquitto, which the gateway names at GET /v1/transports.
func gatewayOver(t *testing.T, tr sim.Transport, cfg clienttest.Config) (*clienttest.Gateway, string) {
	t.Helper()
	g, dir := gateway(t, cfg)
	if tr == sim.TransportMQTT {
		m := clienttest.StartMosquitto(t, "allow_anonymous true\nset_tcp_nodelay true")
		if err := g.ServeMQTT(m.URL); err != nil {
			t.Fatal(err)
		}
	}
	return g, dir
}

// eachTransport runs f as a subtest per transport.
func eachTransport(t *testing.T, f func(t *testing.T, tr sim.Transport)) {
	t.Helper()
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) { f(t, tr) })
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, cfg sim.Config) *sim.Device {
	t.Helper()
	d, err := sim.Start(ctxT(t), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() }) // always nil
	return d
}

func TestStartEnrollsOnce(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr sim.Transport) {
		g, data := gatewayOver(t, tr, clienttest.Config{})
		state := t.TempDir()
		cfg := sim.Config{Gateway: g.URL(), DataDir: data, StateDir: state, Kind: sim.KindKiosk, User: "bob", Transport: tr}
		d := start(t, cfg)
		id := d.ID()
		if st, ok := g.Device(id); !ok || st.Kind != "kiosk" || st.User != "bob" || st.Transport != tr.String() {
			t.Fatalf("gateway has %+v", st)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		// Enrolled: no pairing code and no admin token needed any more.
		cfg.DataDir = t.TempDir()
		d2 := start(t, cfg)
		if d2.ID() != id {
			t.Fatalf("second start is %s, want %s", d2.ID(), id)
		}
		_ = d2.Close() // always nil

		// The gateway forgot the device: it enrols again, once.
		g.Forget(id)
		cfg.DataDir = data
		d3 := start(t, cfg)
		if _, ok := g.Device(d3.ID()); !ok || d3.ID() != id {
			t.Fatal("not enrolled again")
		}
	})
}

func TestMQTTNeedsABroker(t *testing.T) {
	g, data := gateway(t, clienttest.Config{}) // WebSocket only
	_, err := sim.Start(ctxT(t), sim.Config{Gateway: g.URL(), DataDir: data, Transport: sim.TransportMQTT})
	if !errors.Is(err, sim.ErrNoMQTT) || !strings.Contains(err.Error(), "the gateway has no MQTT broker") {
		t.Fatalf("Start = %v, want ErrNoMQTT", err)
	}
	if _, err := sim.Start(ctxT(t), sim.Config{Gateway: g.URL(), MQTT: "mqtt://127.0.0.1:1"}); err == nil {
		t.Fatal("Start took a broker URL for a WebSocket device")
	}
}

func TestEnrollAndToken(t *testing.T) {
	g, data := gatewayOver(t, sim.TransportMQTT, clienttest.Config{})
	state := t.TempDir()
	cfg := sim.Config{Gateway: g.URL(), DataDir: data, StateDir: state, Transport: sim.TransportMQTT}
	id, err := sim.Enroll(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Device(id.Enrollment.Device); !ok || id.Key.DeviceID() != id.Enrollment.Device {
		t.Fatalf("enrolment %+v", id.Enrollment)
	}
	tok, err := id.Token(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	claims, err := identity.VerifyToken(tok, id.Key.Public(), g.Audience(), time.Now())
	if err != nil || claims.Subject != id.Enrollment.Device {
		t.Fatalf("token %+v, %v", claims, err)
	}
	// The same device connects later without enrolling again.
	d := start(t, cfg)
	if d.ID() != id.Enrollment.Device || d.URL() != g.MQTTURL() || d.Transport() != sim.TransportMQTT {
		t.Fatalf("device %s at %s, want %s at %s", d.ID(), d.URL(), id.Enrollment.Device, g.MQTTURL())
	}
}

func TestStartNeedsAPairingCode(t *testing.T) {
	g, _ := gateway(t, clienttest.Config{})
	tests := []struct {
		name string
		cfg  sim.Config
		want func(error) bool
	}{
		{"no admin token", sim.Config{Gateway: g.URL(), DataDir: t.TempDir()}, func(err error) bool { return errors.Is(err, sim.ErrNoAdminToken) }},
		{"bad pairing code", sim.Config{Gateway: g.URL(), PairingCode: "NOPE-NOPE"}, func(err error) bool {
			var ee *client.EnrollError
			return errors.As(err, &ee) && ee.Code == "invalid_pairing_code"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sim.Start(ctxT(t), tt.cfg)
			if !tt.want(err) {
				t.Fatalf("Start = %v", err)
			}
		})
	}
	// A pairing code given directly works without the admin API.
	start(t, sim.Config{Gateway: g.URL(), PairingCode: g.PairingCode("alice")})
}

func TestBuy(t *testing.T) {
	tests := []struct {
		name     string
		kind     sim.Kind
		text     string
		decision wire.Decision
		state    wire.TxState
		ok       bool
		shows    []string
	}{
		{"approve", sim.KindGlasses, "buy two oat lattes", wire.DecisionApprove, wire.TxRedeemed, true,
			[]string{"Earshot Coffee asks you to approve", "2 x Oat latte (latte-oat)", "USD 5.50 each", "Total USD 11.00", "Expires", "mandate mnd_", "redeemed (final), mandate mnd_", "amount USD 11.00"}},
		{"decline", sim.KindKiosk, "a large americano", wire.DecisionDecline, wire.TxDeclined, true,
			[]string{"Americano [large]", "Total USD 4.50", "< decline (tap)", "declined (final)"}},
		{"not understood", sim.KindGlasses, "play some music", wire.DecisionApprove, wire.TxRejected, false,
			[]string{"rejected (final), code not_understood"}},
	}
	eachTransport(t, func(t *testing.T, tr sim.Transport) {
		g, data := gatewayOver(t, tr, clienttest.Config{})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d := start(t, sim.Config{Gateway: g.URL(), DataDir: data, Kind: tt.kind, Transport: tr})
				var out strings.Builder
				p, err := d.Buy(ctxT(t), &out, tt.text, tt.decision, "", 5*time.Second)
				if err != nil {
					t.Fatalf("Buy: %v\n%s", err, out.String())
				}
				if p.Final == nil || p.Final.State != tt.state || p.OK() != tt.ok {
					t.Fatalf("final %+v ok %v, want %s ok %v", p.Final, p.OK(), tt.state, tt.ok)
				}
				for _, s := range tt.shows {
					if !strings.Contains(out.String(), s) {
						t.Errorf("output lacks %q:\n%s", s, out.String())
					}
				}
			})
		}
	})
}

func TestTurnIgnoresPromptsOfEarlierSessions(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr sim.Transport) {
		g, data := gatewayOver(t, tr, clienttest.Config{})
		state := t.TempDir()
		cfg := sim.Config{Gateway: g.URL(), DataDir: data, StateDir: state, Transport: tr}
		d := start(t, cfg)
		t1, err := d.Say(ctxT(t), "buy two oat lattes")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := t1.AwaitPrompt(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		_ = d.Close()         // always nil; the prompt stays unanswered
		g.SetIgnoreAcks(true) // the next connection gets the old prompt again
		d2 := start(t, cfg)
		t2, err := d2.Say(ctxT(t), "a large americano")
		if err != nil {
			t.Fatal(err)
		}
		req, err := t2.AwaitPrompt(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if req.Tx == t1.Tx || req.Terms.Items[0].SKU != "americano" {
			t.Fatalf("turn took %s (%s), the earlier prompt was %s", req.Tx, req.Terms.Items[0].SKU, t1.Tx)
		}
		if err := t2.Confirm(ctxT(t), wire.DecisionApprove, wire.MethodPIN); !errors.Is(err, sim.ErrMethod) {
			t.Fatalf("Confirm with a PIN on glasses = %v, want ErrMethod", err)
		}
		if err := t2.Confirm(ctxT(t), wire.DecisionApprove, wire.MethodVoice); err != nil {
			t.Fatal(err)
		}
		if r, err := t2.AwaitResult(ctxT(t), ""); err != nil || r.State != wire.TxRedeemed {
			t.Fatalf("result %+v, %v", r, err)
		}
		if r, err := t2.Status(ctxT(t)); err != nil || r.State != wire.TxRedeemed || r.Tx != t2.Tx {
			t.Fatalf("status %+v, %v", r, err)
		}
	})
}

func TestParseTransport(t *testing.T) {
	for _, tr := range transports {
		got, err := sim.ParseTransport(tr.String())
		if err != nil || got != tr {
			t.Errorf("ParseTransport(%q) = %v, %v", tr, got, err)
		}
	}
	if _, err := sim.ParseTransport("carrier-pigeon"); err == nil {
		t.Error("ParseTransport accepted a pigeon")
	}
	if sim.TransportUnknown.String() != "unknown" {
		t.Error("TransportUnknown.String()")
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range []sim.Kind{sim.KindGlasses, sim.KindKiosk, sim.KindPhone} {
		got, err := sim.ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k, got, err)
		}
	}
	if _, err := sim.ParseKind("toaster"); err == nil || !strings.Contains(err.Error(), "want glasses, kiosk or phone") {
		t.Errorf("ParseKind(toaster) = %v", err)
	}
	if sim.KindUnknown.String() != "unknown" {
		t.Error("KindUnknown.String()")
	}
}

// Simulated firmware is a device: it never imports the gateway.
func TestNoGatewayImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test",
		"github.com/earshot/earshot/firmware-sim/...", "github.com/earshot/earshot/cmd/earshot-sim",
		"github.com/earshot/earshot/device/client/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/earshot/earshot/gateway") {
			t.Errorf("firmware-sim depends on %s", p)
		}
	}
}
