package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/webhook"
)

// waitFor bounds every wait of these tests.
const waitFor = 15 * time.Second

// binary is the example agent, built once by TestMain: the tests run it as the
// separate process an external agent is.
var binary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "webhook-agent-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "webhook-agent")
		if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// The whole loop: alice says "buy two croissants" to her glasses, the bakery proposes
// them, she approves with a tap, the bakery redeems the mandate and tells her the order
// is ready. The first redemption fails on the way (a 503 from a proxy in front of the
// gateway), so the bakery answers that webhook 500 and redeems when the gateway sends
// the event again. A delivery repeated with the same webhook-id is taken once.
func TestPurchaseLoop(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.glasses(t)
	e.proxy.failRedemptions.Store(1)

	if _, err := c.Say(t.Context(), "buy two croissants"); err != nil {
		t.Fatal(err)
	}
	cr := next(t, c, wire.TypeConfirmRequest).ConfirmRequest
	want := []wire.Item{{SKU: "croissant", Name: "Croissant", Qty: 2, UnitAmount: 350}}
	if got := cr.Terms; got.Total != 700 || got.Currency != "USD" ||
		got.Merchant != (wire.Merchant{ID: "corner-bakery", Name: "Corner Bakery"}) ||
		len(got.Items) != 1 || got.Items[0].SKU != want[0].SKU || got.Items[0].Qty != 2 || got.Items[0].UnitAmount != 350 {
		t.Fatalf("prompt terms = %+v, want %+v for 700 USD from the bakery", got, want)
	}
	if err := c.Confirm(t.Context(), cr, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	if res := result(t, c, wire.TxRedeemed); res.State != wire.TxRedeemed || res.Amount != 700 || res.Currency != "USD" {
		t.Fatalf("result %+v, want redeemed 700 USD", res)
	}
	n := next(t, c, wire.TypeNotice).Notice
	if n.Text != "Your 2 croissants are ready at the counter." || n.Agent != "Corner Bakery" || n.Tx != cr.Terms.Tx {
		t.Fatalf("notice %+v", n)
	}
	if got := e.proxy.count("POST /v1/redemptions"); got != 2 {
		t.Fatalf("%d redemption requests, want 2 (one refused with 503, one retried)", got)
	}
	if got := e.proxy.count("POST /v1/notifications"); got != 1 {
		t.Fatalf("%d notification requests, want 1", got)
	}
	if toks := e.proxy.redeemed(); len(toks) != 2 || toks[0] != toks[1] || !strings.HasPrefix(toks[0], "eyJ") {
		t.Fatalf("redeemed %d tokens, want the mandate's JWS twice", len(toks))
	}

	// The same delivery twice (a gateway that stopped before recording the first
	// 2xx sends it again): the bakery notifies once. The first notification's answer
	// comes first: a repeat while it is in flight would rightly get 409.
	e.proxy.waitAnswered(t, "POST /v1/notifications", 1)
	ev := agent.Event{ID: "evt_test_repeat", Type: "transaction.redeemed", At: time.Now(),
		Data: json.RawMessage(fmt.Sprintf(`{"tx":%q,"device":%q,"user":"usr_alice","state":"redeemed"}`, cr.Terms.Tx, c.DeviceID()))}
	for i := range 2 {
		if st := e.deliver(t, ev, e.secret, time.Now()); st != http.StatusNoContent {
			t.Fatalf("delivery %d: %d", i+1, st)
		}
	}
	if got := e.proxy.count("POST /v1/notifications"); got != 2 {
		t.Fatalf("%d notification requests after a repeated delivery, want 2", got)
	}
}

// An utterance the bakery does not sell is rejected with its reason, which the device
// shows; nothing is proposed.
func TestNotUnderstood(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.glasses(t)
	if _, err := c.Say(t.Context(), "buy two pizzas"); err != nil {
		t.Fatal(err)
	}
	res := result(t, c, wire.TxRejected)
	if res.State != wire.TxRejected || res.Code != wire.CodeNotUnderstood || res.Reason != notUnderstood {
		t.Fatalf("result %+v, want rejected not_understood %q", res, notUnderstood)
	}
	if got := e.proxy.count("POST /v1/transactions/" + res.Tx + "/reject"); got != 1 {
		t.Fatalf("%d reject requests, want 1", got)
	}
	if got := e.proxy.count("POST /v1/purchase-requests"); got != 0 {
		t.Fatalf("%d purchase requests, want none", got)
	}
}

// Webhooks not signed with the agent's secret, or signed too long ago, are refused
// with 401 and make no REST call; a well-signed one is taken.
func TestForgedWebhook(t *testing.T) {
	t.Parallel()
	e := setup(t)
	other, err := webhook.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ev := agent.Event{ID: "evt_test_forged", Type: agent.EventIntent, At: time.Now(),
		Data: json.RawMessage(`{"tx":"tx_forged","device":"dev_x","user":"usr_alice","text":"buy twelve baguettes"}`)}
	for _, tc := range []struct {
		name   string
		secret string
		at     time.Time
	}{
		{"another secret", other, time.Now()},
		{"replayed after ten minutes", e.secret, time.Now().Add(-10 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st := e.deliver(t, ev, tc.secret, tc.at); st != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", st)
			}
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		body, err := webhook.Payload(ev)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := oneShot.Post(e.agent.url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
	if n := e.proxy.total(); n != 0 {
		t.Fatalf("forged webhooks made %d REST calls", n)
	}
	// The control: the same event well signed is taken. Its tx is unknown, so the
	// gateway refuses the proposal for good (404) and the bakery answers 204.
	if st := e.deliver(t, ev, e.secret, time.Now()); st != http.StatusNoContent {
		t.Fatalf("well-signed delivery: %d", st)
	}
	if got := e.proxy.count("POST /v1/purchase-requests"); got != 1 {
		t.Fatalf("%d purchase requests for the well-signed delivery, want 1", got)
	}
}

// env is one test's world: a gateway, a proxy in front of it, the bakery process and
// alice, who linked it.
type env struct {
	gw     *gateway.Server
	admin  string
	proxy  *proxy
	agent  *agentProc
	secret string
}

func setup(t *testing.T) *env {
	t.Helper()
	e := &env{}
	e.gw, e.admin = startGateway(t)
	e.proxy = newProxy(t, e.gw.URL())

	// The order: the gateway makes the webhook secret when the agent is created with
	// a webhook URL, and the process needs the secret to start; its port is known only
	// once it runs (port 0). So create the agent with a placeholder URL, start the
	// process with its key and secret, then set the real URL, which keeps the secret.
	// Nothing goes to the placeholder: alice links the agent only after that, and an
	// agent hears no one before.
	var created struct {
		Agent         string `json:"agent"`
		APIKey        string `json:"api_key"`
		WebhookSecret string `json:"webhook_secret"`
	}
	if st := e.call(t, "POST", "/admin/v1/agents", e.admin, map[string]string{
		"name": "Corner Bakery", "webhook_url": "http://127.0.0.1:9/webhook",
	}, &created); st != 201 || created.APIKey == "" || created.WebhookSecret == "" {
		t.Fatalf("create agent: %d %+v", st, created.Agent)
	}
	e.secret = created.WebhookSecret
	e.agent = startAgent(t, e.proxy, created.APIKey, created.WebhookSecret)

	var set struct {
		WebhookURL    string `json:"webhook_url"`
		WebhookSecret string `json:"webhook_secret"`
	}
	if st := e.call(t, "PUT", "/admin/v1/agents/"+created.Agent+"/webhook", e.admin,
		map[string]string{"url": e.agent.url}, &set); st != 200 || set.WebhookURL != e.agent.url {
		t.Fatalf("set webhook: %d %q", st, set.WebhookURL)
	}
	if set.WebhookSecret != "" {
		t.Fatal("setting the webhook URL made a new secret; the agent holds the old one")
	}
	if st := e.call(t, "POST", "/admin/v1/users/alice/agents", e.admin, map[string]string{"agent": created.Agent}, nil); st != 201 {
		t.Fatalf("link alice: %d", st)
	}
	return e
}

// startGateway runs an in-memory gateway for the test and returns it with its admin
// token.
func startGateway(t *testing.T) (*gateway.Server, string) {
	t.Helper()
	cfg := gateway.Config{
		DataDir: t.TempDir(), InMemory: true, Listen: "127.0.0.1:0",
		WebhookMaxBackoff: 200 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		MQTT:              gateway.MQTTConfig{Disabled: true},
		WebRTC:            gateway.WebRTCConfig{Disabled: true},
		Speech:            gateway.SpeechConfig{Recognizer: "none", NoTTS: true},
	}
	srv, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway Run: %v", err)
		}
	})
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, gateway.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	// New listens already: this request waits in the backlog until Run serves it.
	resp, err := (&http.Client{Timeout: waitFor}).Get(srv.URL() + "/healthz")
	if err != nil {
		t.Fatalf("gateway health: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("gateway health: %d", resp.StatusCode)
	}
	return srv, strings.TrimSpace(string(tok))
}

// call makes a JSON request to the gateway and decodes the answer into out.
func (e *env) call(t *testing.T, method, path, bearer string, in, out any) int {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.gw.URL()+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %d: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// oneShot makes the test's deliveries, each on a connection of its own: a pooled
// connection dialled for a request that then went on another one would sit unused at
// the agent, whose graceful shutdown waits 5 seconds for such connections.
var oneShot = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// deliver POSTs ev to the agent's webhook as the gateway would, signed with secret
// at the time at, and returns the status.
func (e *env) deliver(t *testing.T, ev agent.Event, secret string, at time.Time) int {
	t.Helper()
	body, err := webhook.Payload(ev)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := webhook.Sign(secret, ev.ID, at, body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.agent.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderID, ev.ID)
	req.Header.Set(webhook.HeaderTimestamp, fmt.Sprint(at.Unix()))
	req.Header.Set(webhook.HeaderSignature, sig)
	resp, err := oneShot.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// glasses enrols a pair of glasses for alice and connects them.
func (e *env) glasses(t *testing.T) *client.Client {
	t.Helper()
	var p struct{ Code string }
	if st := e.call(t, "POST", "/admin/v1/pairing-codes", e.admin, map[string]string{"user": "alice"}, &p); st != 201 {
		t.Fatalf("pairing code: %d", st)
	}
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	en, err := client.Enroll(t.Context(), e.gw.URL(), k, p.Code, "glasses", "alice's glasses")
	if err != nil {
		t.Fatal(err)
	}
	u, err := client.DeviceURL(e.gw.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(t.Context(), client.Config{URL: u, Key: k, Audience: en.Audience})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next waits for the device's next event of the type, skipping others.
func next(t *testing.T, c *client.Client, typ wire.Type) client.Event {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("the device stopped while waiting for %s", typ)
			}
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s within %s", typ, waitFor)
		}
	}
}

// result waits for a tx.result in the state, or a final one.
func result(t *testing.T, c *client.Client, want wire.TxState) *wire.TxResult {
	t.Helper()
	for {
		r := next(t, c, wire.TypeTxResult).TxResult
		if r.State == want || r.State.Final() {
			return r
		}
	}
}

// proxy stands between the agent and the gateway: it counts the agent's REST calls,
// keeps the mandate tokens it redeems, and can fail redemptions, as a gateway in
// trouble would.
type proxy struct {
	srv             *httptest.Server
	failRedemptions atomic.Int32 // answer this many redemptions 503 before passing them on
	mu              sync.Mutex
	calls           map[string]int // "POST /v1/redemptions" -> how many
	answered        map[string]int // the same, counted once the gateway has answered
	tokens          []string
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{calls: map[string]int{}, answered: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var redemption struct{ Mandate string }
		if r.URL.Path == "/v1/redemptions" {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if err := json.Unmarshal(body, &redemption); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		p.mu.Lock()
		p.calls[r.Method+" "+r.URL.Path]++
		if redemption.Mandate != "" {
			p.tokens = append(p.tokens, redemption.Mandate)
		}
		p.mu.Unlock()
		if r.URL.Path == "/v1/redemptions" && p.failRedemptions.Add(-1) >= 0 {
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
		p.mu.Lock()
		p.answered[r.Method+" "+r.URL.Path]++
		p.mu.Unlock()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// waitAnswered waits until the gateway has answered n calls (the device may hear of a
// call's effect before its answer is written).
func (p *proxy) waitAnswered(t *testing.T, call string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		got := p.answered[call]
		p.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d answers to %s within 10s, want %d", got, call, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *proxy) count(call string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[call]
}

// redeemed are the mandate tokens the agent presented.
func (p *proxy) redeemed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.tokens)
}

func (p *proxy) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		n += c
	}
	return n
}

// agentProc is the bakery running as its own process.
type agentProc struct {
	url  string // its webhook URL
	mu   sync.Mutex
	logs bytes.Buffer
}

func (a *agentProc) log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.logs.String()
}

// startAgent starts the bakery on a free port, talking to the gateway through p, and
// waits until it listens. At the end of the test it is stopped with SIGTERM and must
// exit 0, having logged neither its key, nor its secret, nor a mandate token.
func startAgent(t *testing.T, p *proxy, key, secret string) *agentProc {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "agent.addr")
	cmd := exec.Command(binary, "--gateway", p.srv.URL, "--listen", "127.0.0.1:0", "--addr-file", addrFile)
	// The key and the secret go in the environment, where ps does not show them.
	cmd.Env = append(os.Environ(), "EARSHOT_API_KEY="+key, "EARSHOT_WEBHOOK_SECRET="+secret)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agentProc{}
	listening := make(chan struct{})
	logged := make(chan struct{}) // stderr reached EOF: the process is ending
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			a.mu.Lock()
			a.logs.Write(sc.Bytes())
			a.logs.WriteByte('\n')
			a.mu.Unlock()
			if strings.Contains(sc.Text(), "msg=listening") { // written after the address file
				once.Do(func() { close(listening) })
			}
		}
		// Drain what a too-long line left, so the process never blocks on stderr.
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("stopping the agent: %v", err)
		}
		select {
		case <-logged:
		case <-time.After(waitFor):
			t.Errorf("the agent did not stop within %s after SIGTERM; killing it", waitFor)
			_ = cmd.Process.Kill() // Wait reports how it ended
			<-logged
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("the agent exited with %v, want a graceful exit 0", err)
		}
		logs := a.log()
		for what, s := range map[string]string{"API key": key, "webhook secret": secret} {
			if strings.Contains(logs, s) {
				t.Errorf("the agent logged its %s", what)
			}
		}
		for _, tok := range p.redeemed() {
			if strings.Contains(logs, tok) {
				t.Error("the agent logged a mandate token")
			}
		}
		if !strings.Contains(logs, "msg=stopped") {
			t.Error("the agent did not log its graceful stop")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs)
		}
	})
	select {
	case <-listening:
	case <-logged:
		t.Fatalf("the agent exited at start:\n%s", a.log())
	case <-time.After(waitFor):
		t.Fatalf("the agent did not listen within %s:\n%s", waitFor, a.log())
	}
	addr, err := os.ReadFile(addrFile)
	if err != nil {
		t.Fatal(err)
	}
	a.url = "http://" + strings.TrimSpace(string(addr)) + "/webhook"
	return a
}
