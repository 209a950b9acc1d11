package registry_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func newRegistry(t *testing.T, maxNonces int) (*registry.Registry, *clock) {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	r, err := registry.New(registry.Config{Store: kv.NewMemory(), Audience: "earshot:t", Now: c.Now, MaxNonces: maxNonces})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

func enrollReq(k *identity.Key, code string) registry.EnrollRequest {
	return registry.EnrollRequest{Code: code, PublicKey: identity.EncodePublic(k.Public()), Proof: k.EnrollProof(code), Kind: registry.KindGlasses}
}

func TestPairingCodes(t *testing.T) {
	r, clk := newRegistry(t, 0)
	k, _ := identity.GenerateKey()

	if _, err := r.CreatePairingCode(t.Context(), "Not A Handle!"); !errors.Is(err, registry.ErrBadUser) {
		t.Fatalf("bad handle: %v", err)
	}
	p, err := r.CreatePairingCode(t.Context(), "alice")
	if err != nil || len(p.Code) != 9 || p.Code[4] != '-' || p.User != "usr_alice" {
		t.Fatalf("code %+v, %v", p, err)
	}
	// Typed in lower case without the dash, the code still works — once.
	typed := strings.ToLower(strings.ReplaceAll(p.Code, "-", ""))
	req := enrollReq(k, p.Code)
	req.Code = typed
	d, err := r.Enroll(t.Context(), req)
	if err != nil || d.ID != k.DeviceID() || d.User != "usr_alice" {
		t.Fatalf("enrol: %+v, %v", d, err)
	}
	k2, _ := identity.GenerateKey()
	if _, err := r.Enroll(t.Context(), enrollReq(k2, p.Code)); !errors.Is(err, registry.ErrBadPairingCode) {
		t.Fatalf("second use: %v", err)
	}

	p2, _ := r.CreatePairingCode(t.Context(), "bob")
	clk.Advance(11 * time.Minute)
	if _, err := r.Enroll(t.Context(), enrollReq(k2, p2.Code)); !errors.Is(err, registry.ErrBadPairingCode) {
		t.Fatalf("expired code: %v", err)
	}

	p3, _ := r.CreatePairingCode(t.Context(), "bob")
	stolen := enrollReq(k2, p3.Code)
	other, _ := identity.GenerateKey()
	stolen.Proof = other.EnrollProof(p3.Code) // a proof made with a key other than the one enrolled
	if _, err := r.Enroll(t.Context(), stolen); err == nil {
		t.Fatal("enrolled a key without proof of possession")
	}
	if _, err := r.Enroll(t.Context(), enrollReq(k2, p3.Code)); err != nil {
		t.Fatalf("a failed proof must not burn the code: %v", err)
	}
}

func wireCode(err error) wire.Code {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code
	}
	return wire.CodeUnknown
}

func TestAuthenticate(t *testing.T) {
	r, clk := newRegistry(t, 2)
	k, _ := identity.GenerateKey()
	p, _ := r.CreatePairingCode(t.Context(), "alice")
	if _, err := r.Enroll(t.Context(), enrollReq(k, p.Code)); err != nil {
		t.Fatal(err)
	}
	tok := func() string {
		s, err := k.Token("earshot:t", clk.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := tok()
	if _, err := r.Authenticate(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if c := wireCode(mustErr(r.Authenticate(t.Context(), first))); c != wire.CodeTokenReplayed {
		t.Fatalf("replay: %s", c)
	}
	if _, err := r.Authenticate(t.Context(), tok()); err != nil {
		t.Fatal(err)
	}
	// The nonce memory is full (2): fail closed until the remembered tokens expire.
	if c := wireCode(mustErr(r.Authenticate(t.Context(), tok()))); c != wire.CodeTokenReplayed {
		t.Fatalf("full nonce memory: %s", c)
	}
	clk.Advance(2 * time.Minute)
	if _, err := r.Authenticate(t.Context(), tok()); err != nil {
		t.Fatalf("after the old tokens expired: %v", err)
	}
	stale := tok()
	clk.Advance(2 * time.Minute)
	if c := wireCode(mustErr(r.Authenticate(t.Context(), stale))); c != wire.CodeTokenExpired {
		t.Fatalf("expired: %s", c)
	}
	if _, err := r.Revoke(t.Context(), k.DeviceID()); err != nil {
		t.Fatal(err)
	}
	if c := wireCode(mustErr(r.Authenticate(t.Context(), tok()))); c != wire.CodeDeviceRevoked {
		t.Fatalf("revoked: %s", c)
	}
}

func mustErr(_ registry.Device, err error) error { return err }

func TestAPIKeys(t *testing.T) {
	r, _ := newRegistry(t, 0)
	k1, _ := r.NewAPIKey()
	k2, _ := r.NewAPIKey()
	if !strings.HasPrefix(k1, "esk_") || k1 == k2 {
		t.Fatalf("keys %q %q", k1, k2)
	}
	if _, err := r.EnsureAgent(t.Context(), "agent-a", "A", k1); err != nil {
		t.Fatal(err)
	}
	if a, err := r.Authorize(t.Context(), k1); err != nil || a.ID != "agent-a" || !a.Embedded || !a.Can(registry.ScopeRedeem) {
		t.Fatalf("%+v %v", a, err)
	}
	if _, err := r.EnsureAgent(t.Context(), "agent-a", "A", k2); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authorize(t.Context(), k1); !errors.Is(err, registry.ErrBadAPIKey) {
		t.Fatalf("the replaced key still works: %v", err)
	}
	if a, err := r.Authorize(t.Context(), k2); err != nil || a.ID != "agent-a" {
		t.Fatalf("%+v %v", a, err)
	}
}

func TestExternalAgents(t *testing.T) {
	r, _ := newRegistry(t, 0)
	ctx := t.Context()
	if _, _, err := r.CreateAgent(ctx, registry.AgentSpec{Name: ""}); !errors.Is(err, registry.ErrBadAgent) {
		t.Fatalf("no name: %v", err)
	}
	if _, _, err := r.CreateAgent(ctx, registry.AgentSpec{Name: "x", WebhookURL: "ftp://x"}); !errors.Is(err, registry.ErrBadAgent) {
		t.Fatalf("ftp webhook: %v", err)
	}
	if _, err := registry.ParseScopes("intents,fly"); !errors.Is(err, registry.ErrBadAgent) {
		t.Fatalf("unknown scope: %v", err)
	}
	scopes, _ := registry.ParseScopes("purchase, redeem")
	a, key, err := r.CreateAgent(ctx, registry.AgentSpec{Name: "Shop bot", Scopes: scopes, WebhookURL: "https://shop.example/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.ID, "agt_") || !strings.HasPrefix(a.WebhookSecret, "whsec_") || a.Can(registry.ScopeIntents) || !a.Can(registry.ScopeRedeem) {
		t.Fatalf("created %+v", a)
	}
	if got, err := r.Authorize(ctx, key); err != nil || got.ID != a.ID {
		t.Fatalf("authorize: %+v %v", got, err)
	}

	// Only linked users; the embedded agent acts for everyone.
	if ok, _ := r.MayActFor(ctx, a, "usr_alice"); ok {
		t.Fatal("an unlinked agent may act for alice")
	}
	emb, _ := r.EnsureAgent(ctx, "refagent", "Reference", "esk_embedded")
	if ok, _ := r.MayActFor(ctx, emb, "usr_alice"); !ok {
		t.Fatal("the embedded agent may not act for alice")
	}
	if _, err := r.LinkAgent(ctx, "alice", a.ID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.MayActFor(ctx, a, "usr_alice"); !ok {
		t.Fatal("a linked agent may not act for alice")
	}
	// Without the intents scope it does not hear alice's speech.
	if id, err := r.IntentAgent(ctx, "usr_alice"); err != nil || id != "" {
		t.Fatalf("intent agent %q %v", id, err)
	}
	b, _, err := r.CreateAgent(ctx, registry.AgentSpec{Name: "Listener"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LinkAgent(ctx, "alice", b.ID); err != nil {
		t.Fatal(err)
	}
	if id, _ := r.IntentAgent(ctx, "usr_alice"); id != b.ID {
		t.Fatalf("intent agent %q, want %q", id, b.ID)
	}

	// Rotating the key, then revoking the agent.
	key2, err := r.RotateAgentKey(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authorize(ctx, key); !errors.Is(err, registry.ErrBadAPIKey) {
		t.Fatalf("old key after rotation: %v", err)
	}
	if _, err := r.RevokeAgent(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if id, _ := r.IntentAgent(ctx, "usr_alice"); id != "" {
		t.Fatalf("a revoked agent still hears alice: %q", id)
	}
	if _, err := r.RevokeAgent(ctx, "refagent"); !errors.Is(err, registry.ErrBadAgent) {
		t.Fatalf("revoking the embedded agent: %v", err)
	}
	if _, err := r.Authorize(ctx, key2); err != nil {
		t.Fatalf("a's rotated key: %v", err)
	}
	if err := r.UnlinkAgent(ctx, "alice", a.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.UnlinkAgent(ctx, "alice", a.ID); !errors.Is(err, registry.ErrNotLinked) {
		t.Fatalf("unlinking twice: %v", err)
	}
	if ok, _ := r.MayActFor(ctx, a, "usr_alice"); ok {
		t.Fatal("an unlinked agent may still act for alice")
	}
	all, err := r.Agents(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("agents %d %v", len(all), err)
	}
	// Webhooks: set, keep the secret, rotate it, remove.
	w1, err := r.SetWebhook(ctx, b.ID, "http://127.0.0.1:9/h", false)
	if err != nil || w1.WebhookSecret == "" {
		t.Fatalf("%+v %v", w1, err)
	}
	w2, _ := r.SetWebhook(ctx, b.ID, "http://127.0.0.1:9/h2", false)
	w3, _ := r.SetWebhook(ctx, b.ID, "http://127.0.0.1:9/h2", true)
	if w2.WebhookSecret != w1.WebhookSecret || w3.WebhookSecret == w1.WebhookSecret {
		t.Fatal("the webhook secret is kept unless rotated")
	}
	if w4, _ := r.SetWebhook(ctx, b.ID, "", false); w4.WebhookURL != "" || w4.WebhookSecret != "" {
		t.Fatalf("removed webhook: %+v", w4)
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc": "abc", "bearer  abc ": "abc", "BEARER x.y.z": "x.y.z",
		"Basic abc": "", "Bearer": "", "": "", "Bearerabc": "",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if got := registry.BearerToken(r); got != want {
			t.Errorf("%q: %q, want %q", h, got, want)
		}
	}
}
