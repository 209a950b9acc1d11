package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/refagent"
	"github.com/go-jose/go-jose/v4"
)

// gw is a gateway running on loopback for one test.
type gw struct {
	t     *testing.T
	srv   *gateway.Server
	dir   string
	admin string
	stop  func()
}

func start(t *testing.T, cfg gateway.Config) *gw {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
		cfg.InMemory = true
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("gateway Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, gateway.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	g := &gw{t: t, srv: srv, dir: cfg.DataDir, admin: strings.TrimSpace(string(tok)), stop: stop}
	g.waitHealthy()
	return g
}

func (g *gw) waitHealthy() {
	g.t.Helper()
	for range 100 {
		if resp, err := http.Get(g.srv.URL() + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatal("gateway never became healthy")
}

// call makes a JSON request and decodes the answer into out (if non-nil).
func call(t *testing.T, method, url, bearer string, hdr map[string]string, in, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		if s, ok := in.(string); ok {
			b = []byte(s)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decoding %d answer: %v", method, url, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// device enrols a new device for alice and connects it.
func (g *gw) device(kind string, reconnect bool) *client.Client {
	g.t.Helper()
	var p struct{ Code string }
	if st := call(g.t, "POST", g.srv.URL()+"/admin/v1/pairing-codes", g.admin, nil, map[string]string{"user": "alice"}, &p); st != 201 {
		g.t.Fatalf("pairing code: %d", st)
	}
	k, err := identity.GenerateKey()
	if err != nil {
		g.t.Fatal(err)
	}
	en, err := client.Enroll(g.t.Context(), g.srv.URL(), k, p.Code, kind, "test "+kind)
	if err != nil {
		g.t.Fatal(err)
	}
	u, _ := client.DeviceURL(g.srv.URL())
	c, err := client.Dial(g.t.Context(), client.Config{URL: u, Key: k, Audience: en.Audience, Reconnect: reconnect, MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { c.Close() })
	return c
}

// next waits for the next event of the type, skipping others.
func next(t *testing.T, c *client.Client, typ wire.Type) client.Event {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("client stopped while waiting for %s", typ)
			}
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s within 15s", typ)
		}
	}
}

// result waits for a tx.result in a final state (or the given state).
func result(t *testing.T, c *client.Client, want wire.TxState) *wire.TxResult {
	t.Helper()
	for {
		r := next(t, c, wire.TypeTxResult).TxResult
		if r.State == want || r.State.Final() {
			return r
		}
	}
}

// tapAgent wraps the reference agent and keeps every mandate it is handed.
type tapAgent struct {
	*refagent.Agent
	mu       sync.Mutex
	mandates []agent.Mandate
}

func (a *tapAgent) OnMandate(ctx context.Context, m agent.Mandate) error {
	a.mu.Lock()
	a.mandates = append(a.mandates, m)
	a.mu.Unlock()
	return a.Agent.OnMandate(ctx, m)
}

func TestPurchaseOverWebSocket(t *testing.T) {
	var tap *tapAgent
	g := start(t, gateway.Config{NewAgent: func(base, key string) (gateway.Agent, error) {
		ra, err := refagent.New(refagent.Config{BaseURL: base, APIKey: key})
		tap = &tapAgent{Agent: ra}
		return tap, err
	}})
	c := g.device("glasses", false)
	if _, err := c.Say(t.Context(), "buy two oat lattes"); err != nil {
		t.Fatal(err)
	}
	cr := next(t, c, wire.TypeConfirmRequest).ConfirmRequest
	if cr.Terms.Total != 1100 || cr.Terms.Currency != "USD" || cr.Terms.Merchant.ID != "earshot-coffee" ||
		len(cr.Terms.Items) != 1 || cr.Terms.Items[0].Qty != 2 {
		t.Fatalf("prompt terms = %+v", cr.Terms)
	}
	if !strings.Contains(cr.Text, "USD 11.00") {
		t.Fatalf("prompt text %q does not read back the total", cr.Text)
	}
	if err := c.Confirm(t.Context(), cr, wire.DecisionApprove, wire.MethodVoice); err != nil {
		t.Fatal(err)
	}
	res := result(t, c, wire.TxRedeemed)
	if res.State != wire.TxRedeemed || res.Amount != 1100 || res.Mandate == "" {
		t.Fatalf("final result %+v", res)
	}

	// The mandate verifies against the served JWKS alone, as any verifier would.
	tap.mu.Lock()
	m := tap.mandates[0]
	tap.mu.Unlock()
	var set jose.JSONWebKeySet
	if st := call(t, "GET", g.srv.URL()+"/.well-known/jwks.json", "", nil, nil, &set); st != 200 {
		t.Fatalf("jwks: %d", st)
	}
	jws, err := jose.ParseSigned(m.Token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["jti"] != res.Mandate || claims["amount_cap"] != float64(1100) || claims["payee"] != "earshot-coffee" || claims["device"] != c.DeviceID() {
		t.Fatalf("claims = %v", claims)
	}
}

func TestNotUnderstoodMakesNoPurchase(t *testing.T) {
	g := start(t, gateway.Config{})
	c := g.device("glasses", false)
	if _, err := c.Say(t.Context(), "play some music"); err != nil {
		t.Fatal(err)
	}
	res := result(t, c, wire.TxRejected)
	if res.State != wire.TxRejected || res.Code != wire.CodeNotUnderstood {
		t.Fatalf("result %+v", res)
	}
}

func TestKioskDeclineAndExpiry(t *testing.T) {
	g := start(t, gateway.Config{ConsentTTL: 1500 * time.Millisecond})
	c := g.device("kiosk", false)
	if _, err := c.Say(t.Context(), "a large americano"); err != nil {
		t.Fatal(err)
	}
	cr := next(t, c, wire.TypeConfirmRequest).ConfirmRequest
	if cr.Terms.Total != 450 {
		t.Fatalf("large americano costs %d", cr.Terms.Total)
	}
	if err := c.Confirm(t.Context(), cr, wire.DecisionDecline, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	if res := result(t, c, wire.TxDeclined); res.State != wire.TxDeclined {
		t.Fatalf("result %+v", res)
	}

	if _, err := c.Say(t.Context(), "an espresso"); err != nil {
		t.Fatal(err)
	}
	cr = next(t, c, wire.TypeConfirmRequest).ConfirmRequest
	res := result(t, c, wire.TxExpired)
	if res.State != wire.TxExpired || res.Code != wire.CodeChallengeExpired {
		t.Fatalf("result %+v", res)
	}
	// Confirming after the expiry is refused with a clear code.
	if err := c.Confirm(t.Context(), cr, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	if e := next(t, c, wire.TypeError).Error; e.Code != wire.CodeChallengeExpired {
		t.Fatalf("late confirm: %+v", e)
	}
}

// holdAgent proposes two oat lattes for every intent and keeps the mandates without
// redeeming them, so the test can redeem as a merchant would.
type holdAgent struct {
	base, key string
	mandates  chan agent.Mandate
}

func (a *holdAgent) ID() string                    { return "hold" }
func (a *holdAgent) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (a *holdAgent) OnOutcome(context.Context, agent.Outcome) error {
	return nil
}
func (a *holdAgent) OnMandate(_ context.Context, m agent.Mandate) error {
	a.mandates <- m
	return nil
}
func (a *holdAgent) OnIntent(_ context.Context, in agent.Intent) error {
	go func() {
		body := map[string]any{
			"tx": in.Tx, "merchant": map[string]string{"id": "earshot-coffee", "name": "Earshot Coffee"},
			"items": []map[string]any{{"sku": "latte-oat", "name": "Oat latte", "qty": 2, "unit_amount": 550}},
			"total": 1100, "currency": "USD", "kind": "one_off",
		}
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", a.base+"/v1/purchase-requests", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+a.key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	return nil
}

func startHold(t *testing.T, cfg gateway.Config) (*gw, *holdAgent) {
	t.Helper()
	ha := &holdAgent{mandates: make(chan agent.Mandate, 16)}
	if cfg.Risk == nil {
		cfg.Risk = testRisk(t) // many purchases from one new device
	}
	cfg.NewAgent = func(base, key string) (gateway.Agent, error) {
		ha.base, ha.key = base, key
		return ha, nil
	}
	return start(t, cfg), ha
}

// approve runs one purchase to an issued mandate.
func approve(t *testing.T, c *client.Client, ha *holdAgent) agent.Mandate {
	t.Helper()
	if _, err := c.Say(t.Context(), "buy two oat lattes"); err != nil {
		t.Fatal(err)
	}
	cr := next(t, c, wire.TypeConfirmRequest).ConfirmRequest
	if err := c.Confirm(t.Context(), cr, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ha.mandates:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no mandate")
	}
	return agent.Mandate{}
}

type redemption struct {
	Redemption string      `json:"redemption"`
	Mandate    string      `json:"mandate"`
	Amount     wire.Amount `json:"amount"`
	Code       string      `json:"code"`
}

func redeem(t *testing.T, g *gw, key, idem string, body any) (int, redemption) {
	t.Helper()
	var out redemption
	st := call(t, "POST", g.srv.URL()+"/v1/redemptions", key, map[string]string{"Idempotency-Key": idem}, body, &out)
	return st, out
}

func TestExactlyOnceRedemption(t *testing.T) {
	g, ha := startHold(t, gateway.Config{})
	c := g.device("glasses", false)
	m := approve(t, c, ha)
	body := map[string]any{"mandate": m.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}

	const n = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out redemption
			st := callNoFatal(g.srv.URL()+"/v1/redemptions", ha.key, fmt.Sprintf("race-%d", i), body, &out)
			mu.Lock()
			statuses[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[201] != 1 || statuses[409] != n-1 {
		t.Fatalf("statuses %v, want one 201 and %d 409", statuses, n-1)
	}
	if res := result(t, c, wire.TxRedeemed); res.State != wire.TxRedeemed {
		t.Fatalf("device saw %+v", res)
	}

	// A replay with a winning key returns the original answer; find it by replaying all.
	var orig redemption
	for i := range n {
		st, out := redeem(t, g, ha.key, fmt.Sprintf("race-%d", i), body)
		if st == 200 {
			orig = out
		}
	}
	if orig.Redemption == "" || orig.Amount != 1100 {
		t.Fatalf("no replay answered with the original redemption: %+v", orig)
	}
	// The same key with a different body is refused.
	changed := map[string]any{"mandate": m.Token, "amount": 1000, "currency": "USD", "payee": "earshot-coffee"}
	for i := range n {
		st, out := redeem(t, g, ha.key, fmt.Sprintf("race-%d", i), changed)
		if st == 422 && out.Code == "idempotency_conflict" {
			return
		}
	}
	t.Fatal("a changed body under a used key was not refused with idempotency_conflict")
}

func callNoFatal(url, key, idem string, body, out any) int {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Idempotency-Key", idem)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(out)
	return resp.StatusCode
}

func TestRedemptionRefusals(t *testing.T) {
	g, ha := startHold(t, gateway.Config{MandateTTL: 2 * time.Second})
	c := g.device("glasses", false)
	m := approve(t, c, ha)
	ok := func(mut func(map[string]any)) map[string]any {
		b := map[string]any{"mandate": m.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}
		mut(b)
		return b
	}
	for _, tc := range []struct {
		name   string
		key    string
		body   any
		status int
		code   string
	}{
		{"over cap", ha.key, ok(func(b map[string]any) { b["amount"] = 1101 }), 422, "over_cap"},
		{"wrong payee", ha.key, ok(func(b map[string]any) { b["payee"] = "earshot-outfitters" }), 422, "payee_mismatch"},
		{"wrong currency", ha.key, ok(func(b map[string]any) { b["currency"] = "EUR" }), 422, "currency_mismatch"},
		{"float amount", ha.key, `{"mandate":"` + m.Token + `","amount":11.00,"currency":"USD","payee":"earshot-coffee"}`, 422, "bad_amount"},
		{"tampered mandate", ha.key, ok(func(b map[string]any) { b["mandate"] = m.Token[:len(m.Token)-3] + "AAA" }), 401, "mandate_invalid"},
		{"no api key", "", ok(func(map[string]any) {}), 401, "unauthorized"},
		{"unknown field", ha.key, ok(func(b map[string]any) { b["tip"] = 5 }), 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, out := redeem(t, g, tc.key, "refusal-"+tc.name, tc.body)
			if st != tc.status || out.Code != tc.code {
				t.Fatalf("got %d %q, want %d %q", st, out.Code, tc.status, tc.code)
			}
		})
	}
	t.Run("after expiry", func(t *testing.T) {
		time.Sleep(time.Until(m.ExpiresAt) + 1100*time.Millisecond)
		st, out := redeem(t, g, ha.key, "late", ok(func(map[string]any) {}))
		if st != 410 || out.Code != "mandate_expired" {
			t.Fatalf("got %d %q", st, out.Code)
		}
	})
}

func TestRevokedDeviceIsRefused(t *testing.T) {
	g := start(t, gateway.Config{})
	c := g.device("kiosk", false)
	var out struct{ Revoked bool }
	if st := call(t, "POST", g.srv.URL()+"/admin/v1/devices/"+c.DeviceID()+"/revoke", g.admin, nil, nil, &out); st != 200 || !out.Revoked {
		t.Fatalf("revoke: %d", st)
	}
	ev := next(t, c, client.EventDisconnected)
	if ev.Disconnected.Code != wire.CodeDeviceRevoked || ev.Disconnected.Reconnecting {
		t.Fatalf("disconnect %+v", ev.Disconnected)
	}
	if st := call(t, "POST", g.srv.URL()+"/admin/v1/devices/"+c.DeviceID()+"/revoke", "wrong-token", nil, nil, nil); st != 401 {
		t.Fatalf("revoke without the admin token: %d", st)
	}
}

func TestEnrolmentRefusals(t *testing.T) {
	g := start(t, gateway.Config{})
	k, _ := identity.GenerateKey()
	_, err := client.Enroll(t.Context(), g.srv.URL(), k, "ABCD-EFGH", "glasses", "x")
	if err == nil || !strings.Contains(err.Error(), "invalid_pairing_code") {
		t.Fatalf("unknown code: %v", err)
	}
	var p struct{ Code string }
	call(t, "POST", g.srv.URL()+"/admin/v1/pairing-codes", g.admin, nil, map[string]string{"user": "alice"}, &p)
	if _, err := client.Enroll(t.Context(), g.srv.URL(), k, p.Code, "glasses", "x"); err != nil {
		t.Fatal(err)
	}
	k2, _ := identity.GenerateKey()
	if _, err := client.Enroll(t.Context(), g.srv.URL(), k2, p.Code, "glasses", "x"); err == nil {
		t.Fatal("a pairing code worked twice")
	}
}

// Mandates issued before a restart verify and redeem exactly once after it: the
// signing keys and the ledger live in the store.
func TestMandateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	g, ha := startHold(t, gateway.Config{DataDir: dir})
	c := g.device("glasses", false)
	m := approve(t, c, ha)
	c.Close()
	g.stop()

	g2, ha2 := startHold(t, gateway.Config{DataDir: dir})
	body := map[string]any{"mandate": m.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}
	// The restarted gateway's agent is bound by id ("hold"), so its new key redeems.
	if st, out := redeem(t, g2, ha2.key, "after-restart", body); st != 201 || out.Mandate != m.ID {
		t.Fatalf("redeem after restart: %d %+v", st, out)
	}
	if st, out := redeem(t, g2, ha2.key, "again", body); st != 409 || out.Code != "already_redeemed" {
		t.Fatalf("second redeem: %d %+v", st, out)
	}
}

// A mandate signed before a key rotation and one signed after it both verify and
// redeem exactly once; the JWKS publishes both keys, and a restart keeps them.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	g, ha := startHold(t, gateway.Config{DataDir: dir})
	c := g.device("glasses", false)
	before := approve(t, c, ha)
	var rotated struct {
		KID    string `json:"kid"`
		Active bool   `json:"active"`
	}
	if st := call(t, "POST", g.srv.URL()+"/admin/v1/keys/rotate", g.admin, nil, nil, &rotated); st != 201 || !rotated.Active {
		t.Fatalf("rotate: %d %+v", st, rotated)
	}
	if st := call(t, "POST", g.srv.URL()+"/admin/v1/keys/rotate", "wrong-token", nil, nil, nil); st != 401 {
		t.Fatalf("rotate without the admin token: %d", st)
	}
	after := approve(t, c, ha)
	if kidOf(t, after.Token) != rotated.KID || kidOf(t, before.Token) == rotated.KID {
		t.Fatalf("kids: before %s, after %s, rotated to %s", kidOf(t, before.Token), kidOf(t, after.Token), rotated.KID)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if st := call(t, "GET", g.srv.URL()+"/.well-known/jwks.json", "", nil, nil, &set); st != 200 || len(set.Keys) != 2 ||
		set.Keys[0].KID != rotated.KID || set.Keys[1].KID != kidOf(t, before.Token) {
		t.Fatalf("jwks: %d %+v", st, set)
	}
	c.Close()
	g.stop()

	g2, ha2 := startHold(t, gateway.Config{DataDir: dir})
	var keys struct {
		Keys []struct {
			KID    string `json:"kid"`
			Active bool   `json:"active"`
		} `json:"keys"`
	}
	if st := call(t, "GET", g2.srv.URL()+"/admin/v1/keys", g2.admin, nil, nil, &keys); st != 200 || len(keys.Keys) != 2 ||
		keys.Keys[0].KID != rotated.KID || !keys.Keys[0].Active || keys.Keys[1].Active {
		t.Fatalf("keys after restart: %d %+v", st, keys)
	}
	for _, m := range []agent.Mandate{before, after} {
		body := map[string]any{"mandate": m.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}
		if st, out := redeem(t, g2, ha2.key, "once-"+m.ID, body); st != 201 || out.Mandate != m.ID {
			t.Fatalf("redeem %s: %d %+v", m.ID, st, out)
		}
		if st, out := redeem(t, g2, ha2.key, "twice-"+m.ID, body); st != 409 || out.Code != "already_redeemed" {
			t.Fatalf("second redeem of %s: %d %+v", m.ID, st, out)
		}
	}
}

// kidOf returns the kid header of a compact JWS.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}
