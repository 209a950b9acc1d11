package mqtt_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/mqtt"
	"github.com/earshot/earshot/gateway/registry"
)

// anonymousBroker is a Mosquitto that lets anyone in: these tests are about the
// bridge; the authenticated configuration is tested with the plugin
// (cmd/earshot-mosquitto-auth) and end to end in the gateway's tests.
const anonymousBroker = "allow_anonymous true\nset_tcp_nodelay true\nmax_inflight_messages 0\nmax_queued_messages 10000\n"

func (r *rig) external(t *testing.T, m *clienttest.Mosquitto) *mqtt.External {
	t.Helper()
	x, err := mqtt.NewExternal(mqtt.ExternalConfig{
		Core: r.core, Registry: r.reg, Broker: m.URL, Password: "secret", Metrics: r.m,
		Logger: testLogger(t), MaxReconnectInterval: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Close() })
	return x
}

// gatewayEpochs subscribes d to the gateway's status and returns the epochs seen.
func (d *device) gatewayEpochs(t *testing.T) <-chan string {
	t.Helper()
	ch := make(chan string, 16)
	tok := d.c.Subscribe(wire.GatewayStatusTopic, 1, func(_ paho.Client, m paho.Message) {
		if p, err := wire.DecodePresence(m.Payload()); err == nil && p.State == wire.Online {
			ch <- p.Epoch
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	return ch
}

func nextEpoch(t *testing.T, ch <-chan string, not string) string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e := <-ch:
			if e != not {
				return e
			}
		case <-deadline:
			t.Fatal("no new gateway epoch")
			return ""
		}
	}
}

// TestExternalBrokerRestart: the broker dies after the gateway sent a prompt it
// had acknowledged to the agent; after the restart the gateway reconnects with a new
// epoch, the device says hello again and gets the prompt, and the purchase completes.
func TestExternalBrokerRestart(t *testing.T) {
	m := clienttest.StartMosquitto(t, anonymousBroker)
	r := newCore(t)
	t.Cleanup(r.core.Close)
	r.url = m.URL
	r.external(t, m)
	k := r.enroll(registry.KindKiosk)
	d, err := r.connect(k, devOpts{})
	if err != nil {
		t.Fatal(err)
	}
	epoch := nextEpoch(t, d.gatewayEpochs(t), "")
	d.online()
	ok := d.hello(&wire.Hello{})
	d.send(&wire.Utterance{Text: "a latte", PTT: true})
	in := r.intent()

	m.Kill()
	tx := r.propose(in) // durable in the outbox; the broker is gone
	if tx.State != wire.TxPrompted {
		t.Fatalf("tx state %s, want prompted", tx.State)
	}
	m.Restart()

	d2, err := r.connect(k, devOpts{}) // the broker lost every session
	if err != nil {
		t.Fatal(err)
	}
	nextEpoch(t, d2.gatewayEpochs(t), epoch) // the gateway is back
	d2.online()
	ok2 := d2.hello(&wire.Hello{Resume: ok.Resume, LastAck: ok.LastSeq})
	if !ok2.Resumed {
		t.Fatal("session not resumed")
	}
	env := d2.next(wire.TypeConfirmRequest)
	req := body[wire.ConfirmRequest](t, env)
	d2.ack(env.Seq)
	conf := &wire.Confirm{Tx: req.Tx, Hash: req.Hash, Decision: wire.DecisionApprove, Method: wire.MethodButton}
	k.SignConfirm(conf)
	d2.send(conf)
	for {
		if res := body[wire.TxResult](t, d2.next(wire.TypeTxResult)); res.State == wire.TxMandated {
			break
		}
	}
}

// TestExternalQueuesUplinkWhileGatewayAway: the gateway's persistent session keeps
// what devices publish while it is down, and it is handled when it comes back.
func TestExternalQueuesUplinkWhileGatewayAway(t *testing.T) {
	m := clienttest.StartMosquitto(t, anonymousBroker)
	r := newCore(t)
	t.Cleanup(r.core.Close)
	r.url = m.URL
	x := r.external(t, m)
	k := r.enroll(registry.KindKiosk)
	d, err := r.connect(k, devOpts{})
	if err != nil {
		t.Fatal(err)
	}
	epochs := d.gatewayEpochs(t)
	first := nextEpoch(t, epochs, "")
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	d.send(&wire.Hello{}) // nobody is listening: the broker queues it for the gateway
	r.external(t, m)
	nextEpoch(t, epochs, first)
	ok := body[wire.HelloOK](t, d.next(wire.TypeHelloOK))
	if ok.Session == "" {
		t.Fatal("no session")
	}
}
