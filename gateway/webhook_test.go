package gateway_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/webhook"
)

// hookReceiver is an external agent's webhook endpoint: it verifies signatures and
// records what it took, and refuses everything while down.
type hookReceiver struct {
	srv      *httptest.Server
	secret   atomic.Pointer[string]
	down     atomic.Bool
	refused  atomic.Int64
	mu       sync.Mutex
	taken    []agent.Event
	refusedN map[string]int // webhook-id -> refused attempts
	arrived  chan struct{}
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{refusedN: map[string]int{}, arrived: make(chan struct{}, 1)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := h.secret.Load()
		if secret == nil {
			http.Error(w, "no secret yet", http.StatusServiceUnavailable)
			return
		}
		webhook.Handler(*secret, 0, func(ev agent.Event) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.down.Load() {
				h.refused.Add(1)
				h.refusedN[ev.ID]++
				return errors.New("down")
			}
			h.taken = append(h.taken, ev)
			select {
			case h.arrived <- struct{}{}:
			default:
			}
			return nil
		}).ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// waitTaken waits until n events were taken.
func (h *hookReceiver) waitTaken(t *testing.T, n int) []agent.Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		h.mu.Lock()
		got := slices.Clone(h.taken)
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-h.arrived:
		case <-deadline:
			t.Fatalf("the webhook took %d events, want %d", len(got), n)
		}
	}
}

// externalAgent creates an agent with every scope and a webhook, linked to alice.
func externalAgent(t *testing.T, g *gw, hookURL string) (id, key, secret string) {
	t.Helper()
	var out struct {
		Agent         string `json:"agent"`
		APIKey        string `json:"api_key"`
		WebhookSecret string `json:"webhook_secret"`
	}
	if st := call(t, "POST", g.srv.URL()+"/admin/v1/agents", g.admin, nil,
		map[string]any{"name": "Corner Shop", "webhook_url": hookURL}, &out); st != 201 || out.WebhookSecret == "" {
		t.Fatalf("create agent: %d %+v", st, out)
	}
	if st := call(t, "POST", g.srv.URL()+"/admin/v1/users/alice/agents", g.admin, nil, map[string]any{"agent": out.Agent}, nil); st != 201 {
		t.Fatalf("link: %d", st)
	}
	return out.Agent, out.APIKey, out.WebhookSecret
}

// enrolled is a device's identity, to connect it to a gateway again after a restart.
type enrolled struct {
	key      *identity.Key
	audience string
}

func enrolDevice(t *testing.T, g *gw, kind string) enrolled {
	t.Helper()
	var p struct{ Code string }
	if st := call(t, "POST", g.srv.URL()+"/admin/v1/pairing-codes", g.admin, nil, map[string]string{"user": "alice"}, &p); st != 201 {
		t.Fatalf("pairing code: %d", st)
	}
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	en, err := client.Enroll(t.Context(), g.srv.URL(), k, p.Code, kind, "test "+kind)
	if err != nil {
		t.Fatal(err)
	}
	return enrolled{key: k, audience: en.Audience}
}

func (e enrolled) dial(t *testing.T, g *gw) *client.Client {
	t.Helper()
	u, _ := client.DeviceURL(g.srv.URL())
	c, err := client.Dial(t.Context(), client.Config{URL: u, Key: e.key, Audience: e.audience})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The outbox: the agent's webhook is down while the devices speak and the gateway
// restarts; once the webhook is back, every event arrives, once per id, in order for
// each device, and every retry carried the id it finally arrived with.
func TestWebhookOutboxAcrossDowntimeAndRestart(t *testing.T) {
	dir := t.TempDir()
	hook := newHookReceiver(t)
	hook.down.Store(true)
	cfg := gateway.Config{DataDir: dir, WebhookMaxBackoff: 100 * time.Millisecond}
	g := start(t, cfg)
	_, key, secret := externalAgent(t, g, hook.srv.URL)
	hook.secret.Store(&secret)
	devs := []enrolled{enrolDevice(t, g, "glasses"), enrolDevice(t, g, "kiosk")}

	// The agent does not hear (its webhook is down) but answers by REST: it turns each
	// intent down, which is an event of its own.
	var want []string // "<device> <type> <tx>", in the order each device's events happened
	speak := func(g *gw, c *client.Client, dev string, n int) {
		for range n {
			msg, err := c.Say(t.Context(), "buy two oat lattes")
			if err != nil {
				t.Fatal(err)
			}
			tx := ""
			for tx == "" { // results of earlier sessions may be sent again first
				if r := next(t, c, wire.TypeTxResult).TxResult; r.Ref == msg {
					tx = r.Tx
				}
			}
			if st := call(t, "POST", g.srv.URL()+"/v1/transactions/"+tx+"/reject", key, nil,
				map[string]string{"code": "not_understood", "reason": "we only sell bread"}, nil); st != 200 {
				t.Fatalf("reject %s: %d", tx, st)
			}
			for {
				r := next(t, c, wire.TypeTxResult).TxResult
				t.Logf("%s: %s %s", dev, r.Tx, r.State)
				if r.Tx == tx && r.State == wire.TxRejected {
					break
				}
			}
			want = append(want, dev+" intent.received "+tx, dev+" transaction.rejected "+tx)
		}
	}
	for _, d := range devs {
		c := d.dial(t, g)
		speak(g, c, d.key.DeviceID(), 3)
		c.Close()
	}
	for hook.refused.Load() < 3 { // the gateway keeps trying
		time.Sleep(20 * time.Millisecond)
	}
	g.stop()

	g = start(t, cfg)
	for _, d := range devs {
		c := d.dial(t, g)
		speak(g, c, d.key.DeviceID(), 2)
	}
	hook.down.Store(false)
	got := hook.waitTaken(t, len(want))
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show up
	hook.mu.Lock()
	got = slices.Clone(hook.taken)
	refused := hook.refusedN
	hook.mu.Unlock()

	seen := map[string]bool{}
	perDevice := map[string][]string{}
	for _, ev := range got {
		if seen[ev.ID] {
			t.Errorf("event %s delivered twice", ev.ID)
		}
		seen[ev.ID] = true
		var d struct{ Tx, Device string }
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		perDevice[d.Device] = append(perDevice[d.Device], d.Device+" "+ev.Type+" "+d.Tx)
	}
	for id := range refused {
		if !seen[id] {
			t.Errorf("event %s was refused, then never arrived under its id", id)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d events arrived, want %d", len(got), len(want))
	}
	for _, d := range devs {
		var wantDev []string
		for _, w := range want {
			if w[:len(d.key.DeviceID())] == d.key.DeviceID() {
				wantDev = append(wantDev, w)
			}
		}
		if !slices.Equal(perDevice[d.key.DeviceID()], wantDev) {
			t.Errorf("device %s: events arrived as\n%v\nwant\n%v", d.key.DeviceID(), perDevice[d.key.DeviceID()], wantDev)
		}
	}
}
