package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway"
	"github.com/earshot/earshot/gateway/agent"
	esmcp "github.com/earshot/earshot/gateway/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpAgent creates an external agent with the scopes (nil: all), links it to alice
// and returns its id and API key.
func mcpAgent(t *testing.T, g *gw, name string, scopes []string) (id, key string) {
	t.Helper()
	var ag struct {
		Agent  string `json:"agent"`
		APIKey string `json:"api_key"`
	}
	spec := map[string]any{"name": name}
	if scopes != nil {
		spec["scopes"] = scopes
	}
	if st := call(t, "POST", g.srv.URL()+"/admin/v1/agents", g.admin, nil, spec, &ag); st != 201 || ag.APIKey == "" {
		t.Fatalf("create agent: %d %+v", st, ag)
	}
	if st := call(t, "POST", g.srv.URL()+"/admin/v1/users/alice/agents", g.admin, nil, map[string]string{"agent": ag.Agent}, nil); st != 201 {
		t.Fatalf("link alice: %d", st)
	}
	return ag.Agent, ag.APIKey
}

// bearer adds the agent's key to every request of the MCP client.
type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// mcpClient is a real MCP client (the official SDK's) connected to the gateway, that
// keeps every notification and everything the model would read.
type mcpClient struct {
	t        *testing.T
	cs       *sdk.ClientSession
	progress chan *sdk.ProgressNotificationParams
	updated  chan string

	mu   sync.Mutex
	read []string // every tool result and resource read, as JSON
}

func mcpConnect(t *testing.T, g *gw, key string) *mcpClient {
	t.Helper()
	mc := &mcpClient{t: t, progress: make(chan *sdk.ProgressNotificationParams, 64), updated: make(chan string, 16)}
	c := sdk.NewClient(&sdk.Implementation{Name: "test-agent", Version: "v0"}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
			select {
			case mc.progress <- r.Params:
			default:
			}
		},
		ResourceUpdatedHandler: func(_ context.Context, r *sdk.ResourceUpdatedNotificationRequest) {
			select {
			case mc.updated <- r.Params.URI:
			default:
			}
		},
	})
	tr := &sdk.StreamableClientTransport{Endpoint: g.srv.URL() + esmcp.Path, HTTPClient: &http.Client{Transport: bearer{key}}, MaxRetries: -1}
	cs, err := c.Connect(t.Context(), tr, nil)
	if err != nil {
		t.Fatalf("MCP connect: %v", err)
	}
	mc.cs = cs
	t.Cleanup(func() { _ = cs.Close() }) // the gateway may already be gone
	return mc
}

func (mc *mcpClient) keep(v any) {
	b, _ := json.Marshal(v)
	mc.mu.Lock()
	mc.read = append(mc.read, string(b))
	mc.mu.Unlock()
}

// tool calls a tool (with a progress token) and returns its result.
func (mc *mcpClient) tool(ctx context.Context, name string, args any) (*sdk.CallToolResult, error) {
	res, err := mc.cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args, Meta: sdk.Meta{"progressToken": name}})
	if err == nil {
		mc.keep(res)
	}
	return res, err
}

// ok calls a tool that must succeed and decodes its structured result into out.
func (mc *mcpClient) ok(name string, args, out any) {
	mc.t.Helper()
	res, err := mc.tool(mc.t.Context(), name, args)
	if err != nil {
		mc.t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		mc.t.Fatalf("%s: tool error %s", name, text(res))
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, out); err != nil {
		mc.t.Fatalf("%s: structured result %s: %v", name, b, err)
	}
}

// refused calls a tool that must fail with a tool error of the code.
func (mc *mcpClient) refused(name string, args any, code string) string {
	mc.t.Helper()
	res, err := mc.tool(mc.t.Context(), name, args)
	if err != nil {
		mc.t.Fatalf("%s: a protocol error %v, want a tool error %s", name, err, code)
	}
	if !res.IsError || !strings.HasPrefix(text(res), code+":") {
		mc.t.Fatalf("%s: %s (isError %v), want a tool error %s", name, text(res), res.IsError, code)
	}
	return text(res)
}

func text(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// intents reads earshot://intents.
func (mc *mcpClient) intents() esmcp.Intents {
	mc.t.Helper()
	rr, err := mc.cs.ReadResource(mc.t.Context(), &sdk.ReadResourceParams{URI: esmcp.IntentsURI})
	if err != nil {
		mc.t.Fatalf("read intents: %v", err)
	}
	mc.keep(rr)
	var in esmcp.Intents
	if len(rr.Contents) != 1 || rr.Contents[0].MIMEType != "application/json" || json.Unmarshal([]byte(rr.Contents[0].Text), &in) != nil {
		mc.t.Fatalf("intents resource %+v", rr.Contents)
	}
	return in
}

// waitProgress waits for a progress notification whose message contains want.
func (mc *mcpClient) waitProgress(want string) {
	mc.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p := <-mc.progress:
			if strings.Contains(p.Message, want) {
				return
			}
		case <-timeout:
			mc.t.Fatalf("no progress notification with %q within 10s", want)
		}
	}
}

// noSecrets asserts that nothing the model read holds a mandate token: no compact
// JWS at all (they start with the base64 of `{"`), and not the given tokens.
func (mc *mcpClient) noSecrets(tokens ...string) {
	mc.t.Helper()
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if len(mc.read) == 0 {
		mc.t.Fatal("nothing was read")
	}
	for _, r := range mc.read {
		if strings.Contains(r, "eyJ") {
			mc.t.Fatalf("a JWS reached the model: %s", r)
		}
		for _, tok := range tokens {
			if tok != "" && strings.Contains(r, tok) {
				mc.t.Fatalf("the mandate token reached the model: %s", r)
			}
		}
	}
}

// mandateToken reads the agent's mandate for tx from its event stream, as a REST agent
// would get it: the test's proof of what must never reach the model.
func mandateToken(t *testing.T, g *gw, key, tx string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", g.srv.URL()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev agent.Event
		var te agent.TxEvent
		if json.Unmarshal([]byte(data), &ev) == nil && ev.Type == "transaction.mandated" && json.Unmarshal(ev.Data, &te) == nil &&
			te.Tx == tx && te.Mandate != nil {
			return te.Mandate.Token
		}
	}
	t.Fatalf("no mandate for %s in the event stream", tx)
	return ""
}

type mcpAnswer struct {
	res *sdk.CallToolResult
	err error
}

// purchaseAsync calls request_purchase in the background.
func (mc *mcpClient) purchaseAsync(args map[string]any) <-chan mcpAnswer {
	done := make(chan mcpAnswer, 1)
	go func() {
		res, err := mc.tool(mc.t.Context(), "request_purchase", args)
		done <- mcpAnswer{res, err}
	}()
	return done
}

func consentOf(t *testing.T, ch <-chan mcpAnswer) esmcp.Consent {
	t.Helper()
	var a mcpAnswer
	select {
	case a = <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("request_purchase did not return")
	}
	if a.err != nil || a.res.IsError {
		t.Fatalf("request_purchase: %v %s", a.err, toolText(a.res))
	}
	var c esmcp.Consent
	b, _ := json.Marshal(a.res.StructuredContent)
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func lattes(extra map[string]any) map[string]any {
	m := map[string]any{
		"merchant": map[string]string{"id": "earshot-coffee", "name": "Earshot Coffee"},
		"items":    []map[string]any{{"sku": "latte-oat", "name": "Oat latte", "qty": 2, "unit_amount": 550}},
		"total":    1100, "currency": "USD",
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// approveOn approves the next prompt on the device and returns it.
func approveOn(t *testing.T, c *client.Client) *wire.ConfirmRequest {
	t.Helper()
	cr := next(t, c, wire.TypeConfirmRequest).ConfirmRequest
	if err := c.Confirm(t.Context(), cr, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	return cr
}

// An MCP agent starts a purchase for alice: the glasses get the prompt while the tool
// reports progress, alice approves, the tool answers mandated, and redeem pays once:
// the same idempotency key replays, a new one is refused.
func TestMCPPurchaseTheAgentStarts(t *testing.T) {
	g := start(t, gateway.Config{Risk: testRisk(t)})
	_, key := mcpAgent(t, g, "shopper", nil)
	glasses := g.device("glasses", false)
	mc := mcpConnect(t, g, key)

	var users esmcp.Users
	mc.ok("list_users", map[string]any{}, &users)
	if len(users.Users) != 1 || users.Users[0].User != "usr_alice" {
		t.Fatalf("list_users %+v", users)
	}

	done := mc.purchaseAsync(lattes(map[string]any{"user": "alice", "summary": "two oat lattes"}))
	cr := next(t, glasses, wire.TypeConfirmRequest).ConfirmRequest
	if cr.Terms.Total != 1100 || cr.Terms.Merchant.ID != "earshot-coffee" || len(cr.Terms.Items) != 1 || cr.Terms.Items[0].Qty != 2 {
		t.Fatalf("prompt terms %+v", cr.Terms)
	}
	// The tool is still waiting, and says so, while alice decides.
	mc.waitProgress("prompted")
	select {
	case a := <-done:
		t.Fatalf("request_purchase returned before the user decided: %v %s", a.err, toolText(a.res))
	default:
	}
	if err := glasses.Confirm(t.Context(), cr, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	c := consentOf(t, done)
	if c.Tx != cr.Tx || c.State != "mandated" || !c.Decided || c.Mandate == "" || c.AmountCap != 1100 || c.Currency != "USD" ||
		c.Payee != "earshot-coffee" || c.ExpiresAt == nil {
		t.Fatalf("consent %+v", c)
	}

	args := map[string]any{"tx": c.Tx, "idempotency_key": "order-1"}
	var r1, r2 esmcp.Redemption
	mc.ok("redeem", args, &r1)
	if r1.Redemption == "" || r1.Mandate != c.Mandate || r1.Amount != 1100 || r1.Replayed {
		t.Fatalf("redemption %+v", r1)
	}
	if res := exactly(t, glasses, c.Tx, wire.TxRedeemed); res.Amount != 1100 {
		t.Fatalf("glasses result %+v", res)
	}
	mc.ok("redeem", args, &r2)
	if r2.Redemption != r1.Redemption || !r2.Replayed {
		t.Fatalf("retry with the same key: %+v, want a replay of %+v", r2, r1)
	}
	mc.refused("redeem", map[string]any{"tx": c.Tx, "idempotency_key": "order-2"}, "already_redeemed")

	var check esmcp.Consent
	mc.ok("check_consent", map[string]any{"tx": c.Tx}, &check)
	if check.State != "redeemed" || check.Mandate != c.Mandate {
		t.Fatalf("check_consent %+v", check)
	}
	mc.noSecrets(mandateToken(t, g, key, c.Tx))
}

// Alice speaks; the linked agent hears the intent through the subscribed resource,
// answers it with request_purchase, and redeems after alice approves.
func TestMCPIntentsSubscription(t *testing.T) {
	g := start(t, gateway.Config{Risk: testRisk(t)})
	_, key := mcpAgent(t, g, "barista", nil)
	glasses := g.device("glasses", false)
	mc := mcpConnect(t, g, key)
	if in := mc.intents(); len(in.Intents) != 0 {
		t.Fatalf("intents before anyone spoke: %+v", in)
	}
	if err := mc.cs.Subscribe(t.Context(), &sdk.SubscribeParams{URI: esmcp.IntentsURI}); err != nil {
		t.Fatal(err)
	}

	if _, err := glasses.Say(t.Context(), "buy two oat lattes"); err != nil {
		t.Fatal(err)
	}
	select {
	case uri := <-mc.updated:
		if uri != esmcp.IntentsURI {
			t.Fatalf("updated %q", uri)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notifications/resources/updated within 10s")
	}
	in := mc.intents()
	if len(in.Intents) != 1 || in.Intents[0].Text != "buy two oat lattes" || in.Intents[0].User != "usr_alice" ||
		in.Intents[0].Device != glasses.DeviceID() || in.Intents[0].State != wire.TxReceived {
		t.Fatalf("intents %+v", in)
	}
	tx := in.Intents[0].Tx

	done := mc.purchaseAsync(lattes(map[string]any{"tx": tx, "wait_seconds": 30}))
	if cr := approveOn(t, glasses); cr.Tx != tx || cr.Terms.Total != 1100 {
		t.Fatalf("prompt %+v", cr)
	}
	c := consentOf(t, done)
	if c.Tx != tx || c.State != "mandated" {
		t.Fatalf("consent %+v", c)
	}
	var r esmcp.Redemption
	mc.ok("redeem", map[string]any{"tx": tx}, &r)
	if r.Amount != 1100 || r.Tx != tx {
		t.Fatalf("redemption %+v", r)
	}
	exactly(t, glasses, tx, wire.TxRedeemed)
	if in := mc.intents(); len(in.Intents) != 0 {
		t.Fatalf("an answered intent is still listed: %+v", in)
	}
	mc.noSecrets(mandateToken(t, g, key, tx))
}

// What the gateway refuses reaches the model as tool errors with the API's codes,
// and a request without a key is refused at the HTTP level.
func TestMCPRefusals(t *testing.T) {
	g := start(t, gateway.Config{Risk: testRisk(t)})
	_, key := mcpAgent(t, g, "shopper", nil)
	_, noRedeem := mcpAgent(t, g, "proposer", []string{"purchase"})
	glasses := g.device("glasses", false)

	// No key, or a wrong one: 401 before any MCP.
	for _, k := range []string{"", "esk_not-a-key"} {
		req, _ := http.NewRequest("POST", g.srv.URL()+esmcp.Path,
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if k != "" {
			req.Header.Set("Authorization", "Bearer "+k)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("key %q: %d, WWW-Authenticate %q", k, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	tr := &sdk.StreamableClientTransport{Endpoint: g.srv.URL() + esmcp.Path, MaxRetries: -1}
	if cs, err := sdk.NewClient(&sdk.Implementation{Name: "anon", Version: "v0"}, nil).Connect(t.Context(), tr, nil); err == nil {
		cs.Close()
		t.Fatal("an MCP client without a key connected")
	}

	mc := mcpConnect(t, g, key)
	mc.refused("request_purchase", lattes(map[string]any{"user": "bob"}), "not_found")
	mc.refused("notify", map[string]any{"user": "bob", "text": "hello"}, "not_found")
	mc.refused("check_consent", map[string]any{"tx": "tx_nope"}, "unknown_tx")
	mc.refused("redeem", map[string]any{"tx": "tx_nope"}, "unknown_tx")

	// A key without the redeem scope proposes, alice approves, and redeeming is refused.
	weak := mcpConnect(t, g, noRedeem)
	done := weak.purchaseAsync(lattes(map[string]any{"user": "alice"}))
	approveOn(t, glasses)
	c := consentOf(t, done)
	if c.State != "mandated" {
		t.Fatalf("consent %+v", c)
	}
	weak.refused("redeem", map[string]any{"tx": c.Tx}, "insufficient_scope")
	// Another agent does not see the transaction at all.
	mc.refused("redeem", map[string]any{"tx": c.Tx}, "unknown_tx")
	// The proposer lacks the intents scope, so it cannot read the event stream: the
	// generic check (no JWS at all) stands for the token.
	weak.noSecrets()
	mc.noSecrets()
}

// toolText is a tool result's text content, for failure messages.
func toolText(res *sdk.CallToolResult) string {
	if res == nil {
		return "<no result>"
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
