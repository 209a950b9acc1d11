package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/mcp"
	"github.com/earshot/earshot/gateway/problem"
	"github.com/earshot/earshot/gateway/registry"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The fakes stand for the gateway at the package's edges: the registry's keys, the
// REST API (recording what it was asked) and the session core's event logs.

const (
	keyA = "esk_agent-a"
	keyB = "esk_agent-b"
	keyN = "esk_no-intents"
	// token is the mandate the fake core holds; it must never reach a client.
	token = "eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJl"
)

type fakeRegistry map[string]registry.Agent

func (f fakeRegistry) Authorize(_ context.Context, key string) (registry.Agent, error) {
	if a, ok := f[key]; ok {
		return a, nil
	}
	return registry.Agent{}, registry.ErrBadAPIKey
}

var agents = fakeRegistry{
	keyA: {ID: "agt_a", Scopes: registry.AllScopes},
	keyB: {ID: "agt_b", Scopes: registry.AllScopes},
	keyN: {ID: "agt_n", Scopes: []registry.Scope{registry.ScopePurchase}},
}

type seen struct {
	Method, Path, Query, Auth, Idem, Body string
}

// fakeAPI answers the routes the tools use.
type fakeAPI struct {
	mu    sync.Mutex
	reqs  []seen
	polls chan string // a long-poll started: the tx
}

func (f *fakeAPI) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key"), string(b)})
	f.mu.Unlock()
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer esk_") {
		problem.Write(w, 401, "unauthorized", "no key")
		return
	}
	switch route := r.Method + " " + r.URL.Path; {
	case route == "GET /v1/users":
		reply(w, 200, map[string]any{"users": []map[string]any{{"user": "usr_alice", "linked_at": time.Unix(0, 0).UTC()}}})
	case route == "POST /v1/purchase-requests":
		var pr struct{ Tx, User, Summary string }
		_ = json.Unmarshal(b, &pr)
		switch {
		case pr.Summary == "slow":
			reply(w, 201, map[string]any{"tx": "tx_slow", "state": "prompted"})
		case pr.User == "usr_bob" || pr.User == "bob":
			problem.Write(w, 404, "not_found", "no such user")
		case pr.Tx == "tx_mandated":
			reply(w, 201, map[string]any{"tx": "tx_mandated", "state": "mandated", "mandate": "mnd_1"})
		default:
			reply(w, 201, map[string]any{"tx": "tx_wait", "state": "prompted"})
		}
	case route == "GET /v1/transactions/tx_wait":
		if r.URL.Query().Get("wait") != "" {
			f.polls <- "tx_wait"
			<-r.Context().Done() // the user never decides
		}
		reply(w, 200, map[string]any{"tx": "tx_wait", "state": "prompted"})
	case route == "GET /v1/transactions/tx_slow":
		// As the API does: wait the seconds asked for; the user never decides.
		var secs int
		_, _ = fmt.Sscan(r.URL.Query().Get("wait"), &secs)
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-r.Context().Done():
		}
		reply(w, 200, map[string]any{"tx": "tx_slow", "state": "prompted"})
	case route == "GET /v1/transactions/tx_mandated":
		reply(w, 200, map[string]any{"tx": "tx_mandated", "state": "mandated", "mandate": "mnd_1"})
	case strings.HasPrefix(route, "GET /v1/transactions/tx_"):
		tx := strings.TrimPrefix(r.URL.Path, "/v1/transactions/")
		if state := map[string]string{"tx_1": "received", "tx_2": "redeemed", "tx_4": "received"}[tx]; state == "" {
			problem.Write(w, 404, "unknown_tx", "no such transaction")
		} else {
			reply(w, 200, map[string]any{"tx": tx, "state": state})
		}
	case route == "GET /v1/mandates/mnd_1":
		reply(w, 200, map[string]any{"mandate": "mnd_1", "tx": "tx_mandated", "state": "issued", "payee": "shop",
			"amount_cap": 500, "currency": "USD", "expires_at": 2000000000})
	case route == "POST /v1/redemptions":
		var rr struct{ Mandate string }
		_ = json.Unmarshal(b, &rr)
		// A detail that quotes the token: the tool must not pass it on.
		problem.Write(w, 422, "over_cap", "the amount is over the cap of "+rr.Mandate)
	default:
		problem.Write(w, 404, "not_found", "no route "+route)
	}
}

// fakeCore holds the agents' event logs.
type fakeCore struct {
	mu     sync.Mutex
	events map[string][]agent.Event
	wake   chan struct{}
}

func newCore() *fakeCore {
	return &fakeCore{events: make(map[string][]agent.Event), wake: make(chan struct{})}
}

func (c *fakeCore) intent(agentID, tx, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, _ := json.Marshal(agent.Intent{Tx: tx, User: "usr_alice", Device: "dev_1", Text: text})
	seq := uint64(len(c.events[agentID]) + 1)
	c.events[agentID] = append(c.events[agentID], agent.Event{ID: fmt.Sprint("evt_", seq), Seq: seq, Type: agent.EventIntent, Data: data})
	close(c.wake)
	c.wake = make(chan struct{})
}

func (c *fakeCore) Events(_ context.Context, agentID string, after uint64, limit int) ([]agent.Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []agent.Event
	for _, ev := range c.events[agentID] {
		if ev.Seq > after && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (c *fakeCore) LastEvent(_ context.Context, agentID string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return uint64(len(c.events[agentID])), nil
}

func (c *fakeCore) Wake(string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wake
}

func (c *fakeCore) MandateToken(_ context.Context, _, tx string) (agent.Mandate, error) {
	return agent.Mandate{Tx: tx, ID: "mnd_1", Token: token, Payee: "shop", AmountCap: wire.Amount(500), Currency: "USD"}, nil
}

type env struct {
	t    *testing.T
	srv  *mcp.Server
	api  *fakeAPI
	core *fakeCore
	url  string
}

func newEnv(t *testing.T, cfg mcp.Config) *env {
	t.Helper()
	e := &env{t: t, api: &fakeAPI{polls: make(chan string, 4)}, core: newCore()}
	cfg.API, cfg.Core, cfg.Registry = e.api, e.core, agents
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := mcp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	e.url = hs.URL + mcp.Path
	return e
}

type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// client connects an SDK client with the key; updates receives its resource updates.
func (e *env) client(key string, updates chan<- string) (*sdk.ClientSession, error) {
	opts := &sdk.ClientOptions{}
	if updates != nil {
		opts.ResourceUpdatedHandler = func(_ context.Context, r *sdk.ResourceUpdatedNotificationRequest) { updates <- r.Params.URI }
	}
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, opts)
	cs, err := c.Connect(e.t.Context(), &sdk.StreamableClientTransport{Endpoint: e.url, HTTPClient: &http.Client{Transport: bearer{key}}, MaxRetries: -1}, nil)
	if err == nil {
		e.t.Cleanup(func() { _ = cs.Close() }) // may already be closed
	}
	return cs, err
}

func (e *env) mustClient(key string, updates chan<- string) *sdk.ClientSession {
	e.t.Helper()
	cs, err := e.client(key, updates)
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

func toolText(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}
