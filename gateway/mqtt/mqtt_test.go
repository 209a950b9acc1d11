package mqtt_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/mqtt"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
)

const audience = "earshot:test"

// intentAgent hands every intent to the test.
type intentAgent struct{ intents chan agent.Intent }

func (a *intentAgent) ID() string { return "agent" }
func (a *intentAgent) OnIntent(_ context.Context, in agent.Intent) error {
	a.intents <- in
	return nil
}
func (a *intentAgent) OnMandate(context.Context, agent.Mandate) error { return nil }
func (a *intentAgent) OnOutcome(context.Context, agent.Outcome) error { return nil }

type rig struct {
	t     testing.TB
	reg   *registry.Registry
	core  *session.Core
	agent *intentAgent
	url   string // the broker devices connect to
	m     *mqtt.Metrics
}

// newCore builds a registry and a session core over an in-memory store.
func newCore(t testing.TB) *rig {
	t.Helper()
	st := kv.NewMemory()
	reg, err := registry.New(registry.Config{Store: st, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := authz.GenerateSigningKey(rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := authz.NewKeySet(sk)
	a := &intentAgent{intents: make(chan agent.Intent, 16)}
	core, err := session.New(session.Config{Store: st, Registry: reg, Keys: keys, Agent: a, ConsentTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, reg: reg, core: core, agent: a, m: mqtt.NewMetrics()}
}

// newEmbedded starts an embedded broker on a free port.
func newEmbedded(t *testing.T, tweak func(*mqtt.EmbeddedConfig)) *rig {
	t.Helper()
	r := newCore(t)
	cfg := mqtt.EmbeddedConfig{Core: r.core, Registry: r.reg, Listen: "127.0.0.1:0", Metrics: r.m, Logger: testLogger(t)}
	if tweak != nil {
		tweak(&cfg)
	}
	e, err := mqtt.NewEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.core.Close()
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	r.url = e.URL()
	return r
}

func (r *rig) enroll(kind registry.Kind) *identity.Key {
	r.t.Helper()
	k, _ := identity.GenerateKey()
	p, err := r.reg.CreatePairingCode(r.t.Context(), "alice")
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.reg.Enroll(r.t.Context(), registry.EnrollRequest{
		Code: p.Code, PublicKey: identity.EncodePublic(k.Public()), Proof: k.EnrollProof(p.Code), Kind: kind,
	}); err != nil {
		r.t.Fatal(err)
	}
	return k
}

func token(t testing.TB, k *identity.Key) string {
	t.Helper()
	tok, err := k.Token(audience, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// device is a raw MQTT device: a paho client that collects its downlink.
type device struct {
	t     testing.TB
	id    string
	c     paho.Client
	epoch string
	down  chan wire.Envelope
	raw   chan []byte
}

type devOpts struct {
	clientID string
	password string
	clean    bool
	noSub    bool
}

// connect connects a device and subscribes to its downlink; the error is the
// CONNECT's.
func (r *rig) connect(k *identity.Key, o devOpts) (*device, error) {
	r.t.Helper()
	d := &device{t: r.t, id: k.DeviceID(), down: make(chan wire.Envelope, 64), raw: make(chan []byte, 64)}
	if o.clientID == "" {
		o.clientID = d.id
	}
	if o.password == "" {
		o.password = token(r.t, k)
	}
	d.epoch = fmt.Sprintf("ep%d", time.Now().UnixNano())
	opts := paho.NewClientOptions().AddBroker(r.url).SetClientID(o.clientID).
		SetUsername(d.id).SetPassword(o.password).SetProtocolVersion(4).
		SetCleanSession(o.clean).SetAutoReconnect(false).SetConnectTimeout(5*time.Second).
		SetBinaryWill(wire.StatusTopic(d.id), wire.Presence{State: wire.Offline, Epoch: d.epoch}.Encode(), 1, true)
	d.c = paho.NewClient(opts)
	if tok := d.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect: %w", tok.Error())
	}
	r.t.Cleanup(func() { d.c.Disconnect(0) })
	if !o.noSub {
		if err := d.subscribe(wire.DownlinkTopic(d.id)); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// subscribe subscribes to a filter and returns an error when the broker refuses it.
func (d *device) subscribe(filter string) error {
	tok := d.c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		if m.Topic() != wire.DownlinkTopic(d.id) {
			d.raw <- m.Payload()
			return
		}
		env, err := wire.Decode(m.Payload())
		if err != nil {
			d.t.Errorf("undecodable downlink on %s: %v", m.Topic(), err)
			return
		}
		d.down <- env
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe %s: %v", filter, tok.Error())
	}
	res := tok.(*paho.SubscribeToken).Result()
	q, ok := res[filter]
	if !ok && len(res) == 1 {
		for _, v := range res {
			q = v
		}
	}
	if q > 2 {
		return fmt.Errorf("subscribe %s: %w (0x%x)", filter, errRefused, q)
	}
	return nil
}

var errRefused = errors.New("refused by the broker")

func (d *device) publish(topic string, payload []byte, retain bool) error {
	tok := d.c.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publish %s: %v", topic, tok.Error())
	}
	return nil
}

var idSeq atomic.Int64

func (d *device) send(b wire.Body) string {
	d.t.Helper()
	id := fmt.Sprintf("m%d", idSeq.Add(1))
	d.sendID(id, b)
	return id
}

func (d *device) sendID(id string, b wire.Body) {
	d.t.Helper()
	f, err := wire.Encode(wire.Envelope{ID: id, TS: time.Now().UnixMilli()}, b)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := d.publish(wire.UplinkTopic(d.id), f, false); err != nil {
		d.t.Fatal(err)
	}
}

func (d *device) online() {
	d.t.Helper()
	if err := d.publish(wire.StatusTopic(d.id), wire.Presence{State: wire.Online, Epoch: d.epoch}.Encode(), true); err != nil {
		d.t.Fatal(err)
	}
}

// next returns the next downlink message of type typ, skipping others.
func (d *device) next(typ wire.Type) wire.Envelope {
	d.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case env := <-d.down:
			if env.Type == typ {
				return env
			}
		case <-deadline:
			d.t.Fatalf("no %s within 10s", typ)
		}
	}
}

// quiet fails if a message of type typ arrives within d.
func (d *device) quiet(typ wire.Type, within time.Duration) {
	d.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case env := <-d.down:
			if env.Type == typ {
				d.t.Fatalf("unexpected %s: seq %d", typ, env.Seq)
			}
		case <-deadline:
			return
		}
	}
}

func (d *device) hello(h *wire.Hello) *wire.HelloOK {
	d.t.Helper()
	d.send(h)
	env := d.next(wire.TypeHelloOK)
	ok := new(wire.HelloOK)
	if err := wire.DecodeBody(env, ok); err != nil {
		d.t.Fatal(err)
	}
	return ok
}

func body[T any](t *testing.T, env wire.Envelope) *T {
	t.Helper()
	b := new(T)
	if err := wire.DecodeBody(env, any(b).(wire.Body)); err != nil {
		t.Fatal(err)
	}
	return b
}

func (r *rig) intent() agent.Intent {
	r.t.Helper()
	select {
	case in := <-r.agent.intents:
		return in
	case <-time.After(10 * time.Second):
		r.t.Fatal("no intent within 10s")
		return agent.Intent{}
	}
}

// propose answers an intent with a latte.
func (r *rig) propose(in agent.Intent) *session.Tx {
	r.t.Helper()
	tx, err := r.core.RequestPurchase(r.t.Context(), "agent", session.PurchaseRequest{
		Tx: in.Tx, Merchant: wire.Merchant{ID: "m1", Name: "Cafe"}, Currency: "EUR", Total: 450,
		Items: []wire.Item{{SKU: "latte", Name: "Latte", Qty: 1, UnitAmount: 450}},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return tx
}

func (d *device) ack(seq uint64) { d.send(&wire.Ack{Seq: seq}) }

// TestPurchaseLoopOverMQTT: hello, utterance, prompt, signed confirm, mandate, over the
// embedded broker.
func TestPurchaseLoopOverMQTT(t *testing.T) {
	r := newEmbedded(t, nil)
	k := r.enroll(registry.KindGlasses)
	d, err := r.connect(k, devOpts{})
	if err != nil {
		t.Fatal(err)
	}
	d.online()
	ok := d.hello(&wire.Hello{})
	if ok.Session == "" || ok.Resume == "" {
		t.Fatalf("hello.ok without session: %+v", ok)
	}
	ref := d.send(&wire.Utterance{Text: "a latte", PTT: true})
	in := r.intent()
	r.propose(in)
	env := d.next(wire.TypeConfirmRequest)
	req := body[wire.ConfirmRequest](t, env)
	d.ack(env.Seq)
	conf := &wire.Confirm{Tx: req.Tx, Hash: req.Hash, Decision: wire.DecisionApprove, Method: wire.MethodTap}
	k.SignConfirm(conf)
	d.send(conf)
	for {
		env = d.next(wire.TypeTxResult)
		res := body[wire.TxResult](t, env)
		if res.State == wire.TxMandated {
			if res.Mandate == "" {
				t.Fatal("mandated without a mandate id")
			}
			break
		}
	}
	_ = ref
	if n := testutil.ToFloat64(r.m.Sessions); n != 1 {
		t.Errorf("sessions = %v, want 1", n)
	}
}

// testLogger sends the package's logs to the test output until the test's cleanups
// have run. mochi's Close does not wait for its per-connection goroutines, which may
// log a moment later; those lines are dropped rather than written to a finished test.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop) // registered first, so it runs after every other cleanup
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}
