package mcp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/gateway/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func post(t *testing.T, url, key, session, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// Every request authenticates, and a session stays bound to the agent that opened it.
func TestMCPSessionIsBoundToItsAgent(t *testing.T) {
	e := newEnv(t, mcp.Config{})
	cs := e.mustClient(keyA, nil)
	const list = `{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}`
	for _, tc := range []struct {
		name, key string
		want      int
	}{
		{"the agent's own key", keyA, 200},
		{"another agent's key", keyB, 403},
		{"an unknown key", "esk_unknown", 401},
		{"no key", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, e.url, tc.key, cs.ID(), list)
			if resp.StatusCode != tc.want {
				t.Fatalf("%d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 401 && resp.Header.Get("WWW-Authenticate") != `Bearer realm="earshot"` {
				t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// The session still works for its agent.
	if _, err := cs.ListTools(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
}

// Arguments that cannot be translated are refused as tool errors before any API call.
func TestMCPArgumentValidation(t *testing.T) {
	e := newEnv(t, mcp.Config{})
	cs := e.mustClient(keyA, nil)
	order := func(extra map[string]any) map[string]any {
		m := map[string]any{"merchant": map[string]string{"id": "shop", "name": "Shop"},
			"items": []map[string]any{{"sku": "a", "name": "A", "qty": 1, "unit_amount": 100}}, "total": 100, "currency": "USD"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name, tool string
		args       map[string]any
		want       string
	}{
		{"neither tx nor user", "request_purchase", order(nil), "bad_request: give tx"},
		{"both tx and user", "request_purchase", order(map[string]any{"tx": "tx_1", "user": "alice"}), "bad_request: user and device"},
		{"device with tx", "request_purchase", order(map[string]any{"tx": "tx_1", "device": "dev_1"}), "bad_request: user and device"},
		{"wait over the maximum", "request_purchase", order(map[string]any{"user": "alice", "wait_seconds": 121}), "bad_request: wait_seconds"},
		{"negative wait", "check_consent", map[string]any{"tx": "tx_1", "wait_seconds": -1}, "bad_request: wait_seconds"},
		{"a float amount", "request_purchase", order(map[string]any{"user": "alice", "total": 1.5}), "validating"},
		{"an unknown argument", "request_purchase", order(map[string]any{"user": "alice", "tip": 100}), "validating"},
		{"no merchant", "request_purchase", map[string]any{"user": "alice", "items": []any{}, "total": 1, "currency": "USD"}, "validating"},
		{"no tx", "redeem", map[string]any{}, "validating"},
		{"an empty tx", "cancel", map[string]any{"tx": "", "reason": "x"}, "bad_request: tx is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tc.tool, Arguments: tc.args})
			if err != nil {
				t.Fatalf("protocol error %v, want a tool error", err)
			}
			if !res.IsError || !strings.Contains(toolText(res), tc.want) {
				t.Fatalf("%s (isError %v), want a tool error with %q", toolText(res), res.IsError, tc.want)
			}
		})
	}
	if reqs := e.api.requests(); len(reqs) != 0 {
		t.Fatalf("the API was called: %+v", reqs)
	}
}

// Tools call the API with the caller's own key and map its problems to tool errors;
// the mandate token goes to the API and never back to the client.
func TestMCPToolsSpeakTheAPI(t *testing.T) {
	e := newEnv(t, mcp.Config{})
	cs := e.mustClient(keyA, nil)
	call := func(name string, args any) *sdk.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(toolText(res), token) {
			t.Fatalf("%s: the mandate token reached the client: %s", name, toolText(res))
		}
		return res
	}

	var users mcp.Users
	res := call("list_users", map[string]any{})
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &users); err != nil || len(users.Users) != 1 || users.Users[0].User != "usr_alice" {
		t.Fatalf("list_users %s", b)
	}

	if res := call("request_purchase", map[string]any{"user": "bob", "merchant": map[string]string{"id": "s", "name": "S"},
		"items": []any{}, "total": 1, "currency": "USD"}); !res.IsError || toolText(res) != "not_found: no such user" {
		t.Fatalf("unlinked user: %s", toolText(res))
	}

	// An immediate mandate comes back with its terms, without waiting.
	res = call("request_purchase", map[string]any{"tx": "tx_mandated", "merchant": map[string]string{"id": "shop", "name": "Shop"},
		"items": []any{}, "total": 500, "currency": "USD"})
	var c mcp.Consent
	b, _ = json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &c); err != nil || c.State != "mandated" || c.Mandate != "mnd_1" || c.AmountCap != 500 || c.Payee != "shop" {
		t.Fatalf("consent %s", b)
	}

	if res := call("redeem", map[string]any{"tx": "tx_mandated", "amount": 600}); !res.IsError || !strings.HasPrefix(toolText(res), "over_cap:") {
		t.Fatalf("redeem over the cap: %s", toolText(res))
	}

	var purchases, redemptions []string
	for _, r := range e.api.requests() {
		if r.Auth != "Bearer "+keyA {
			t.Errorf("%s %s with %q, want the caller's key", r.Method, r.Path, r.Auth)
		}
		switch r.Method + " " + r.Path {
		case "POST /v1/purchase-requests":
			purchases = append(purchases, r.Idem)
		case "POST /v1/redemptions":
			redemptions = append(redemptions, r.Idem)
			if !strings.Contains(r.Body, token) || !strings.Contains(r.Body, `"amount":600`) {
				t.Errorf("redemption body %s", r.Body)
			}
		}
	}
	if len(purchases) != 2 || purchases[0] == "" || purchases[0] == purchases[1] || len(redemptions) != 1 || redemptions[0] == "" {
		t.Fatalf("idempotency keys: purchases %q, redemptions %q", purchases, redemptions)
	}
}

// The intents resource lists only unanswered intents; each agent hears only of its
// own, and only while subscribed; a key without the intents scope is refused.
func TestMCPIntentsResource(t *testing.T) {
	e := newEnv(t, mcp.Config{})
	e.core.intent("agt_a", "tx_1", "buy a latte")
	e.core.intent("agt_a", "tx_2", "buy a mocha")     // answered and paid
	e.core.intent("agt_a", "tx_3", "buy an espresso") // gone, or its user unlinked

	updA, updB := make(chan string, 8), make(chan string, 8)
	a := e.mustClient(keyA, updA)
	b := e.mustClient(keyB, updB)
	rr, err := a.ReadResource(t.Context(), &sdk.ReadResourceParams{URI: mcp.IntentsURI})
	if err != nil {
		t.Fatal(err)
	}
	var in mcp.Intents
	if err := json.Unmarshal([]byte(rr.Contents[0].Text), &in); err != nil || len(in.Intents) != 1 || in.Intents[0].Tx != "tx_1" {
		t.Fatalf("intents %s", rr.Contents[0].Text)
	}

	for _, cs := range []*sdk.ClientSession{a, b} {
		if err := cs.Subscribe(t.Context(), &sdk.SubscribeParams{URI: mcp.IntentsURI}); err != nil {
			t.Fatal(err)
		}
	}
	if ag, ss := e.srv.Watching(); ag != 2 || ss != 2 {
		t.Fatalf("watching %d agents, %d sessions", ag, ss)
	}
	e.core.intent("agt_a", "tx_4", "buy a flat white")
	waitUpdate(t, updA)
	e.core.intent("agt_b", "tx_5", "buy a cortado")
	waitUpdate(t, updB)
	if len(updB) != 0 {
		t.Fatal("agent b heard of agent a's intent")
	}

	if err := b.Unsubscribe(t.Context(), &sdk.UnsubscribeParams{URI: mcp.IntentsURI}); err != nil {
		t.Fatal(err)
	}
	if ag, _ := e.srv.Watching(); ag != 1 {
		t.Fatalf("after b unsubscribed: watching %d agents", ag)
	}
	// A session that ends takes its subscription and its waiter with it.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ag, ss := e.srv.Watching(); ag != 0 || ss != 1; ag, ss = e.srv.Watching() {
		if time.Now().After(deadline) {
			t.Fatalf("after a's session ended: watching %d agents, %d sessions", ag, ss)
		}
		time.Sleep(10 * time.Millisecond) // the session ends on the server after the DELETE is answered
	}

	n := e.mustClient(keyN, nil)
	if _, err := n.ReadResource(t.Context(), &sdk.ReadResourceParams{URI: mcp.IntentsURI}); err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
		t.Fatalf("read without the intents scope: %v", err)
	}
	if err := n.Subscribe(t.Context(), &sdk.SubscribeParams{URI: mcp.IntentsURI}); err == nil {
		t.Fatal("subscribed without the intents scope")
	}
}

func waitUpdate(t *testing.T, ch <-chan string) {
	t.Helper()
	select {
	case uri := <-ch:
		if uri != mcp.IntentsURI {
			t.Fatalf("updated %q", uri)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no resource update")
	}
}

// Close ends a tool call waiting for the user, the watchers and the sessions, and
// refuses what comes after.
func TestMCPCloseEndsWaits(t *testing.T) {
	e := newEnv(t, mcp.Config{})
	cs := e.mustClient(keyA, nil)
	if err := cs.Subscribe(t.Context(), &sdk.SubscribeParams{URI: mcp.IntentsURI}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "request_purchase", Arguments: map[string]any{
			"user": "alice", "merchant": map[string]string{"id": "shop", "name": "Shop"}, "items": []any{}, "total": 1, "currency": "USD",
			"wait_seconds": 120}})
		if err == nil && !res.IsError {
			err = errNotEnded
		}
		done <- err
	}()
	select {
	case <-e.api.polls:
	case <-time.After(5 * time.Second):
		t.Fatal("the tool never waited")
	}
	start := time.Now()
	e.srv.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %v", took)
	}
	if err := <-done; err == errNotEnded {
		t.Fatal("the waiting call answered as if it had ended normally")
	}
	if ag, ss := e.srv.Watching(); ag != 0 || ss != 0 {
		t.Fatalf("after Close: watching %d agents, %d sessions", ag, ss)
	}
	if resp := post(t, e.url, keyA, "", `{}`); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d", resp.StatusCode)
	}
	e.srv.Close() // idempotent
}

// A user who does not decide within wait_seconds: the tool reports that it is still
// waiting, then answers the pending state and says how to wait more.
func TestMCPWaitRunsOut(t *testing.T) {
	e := newEnv(t, mcp.Config{ProgressEvery: 100 * time.Millisecond})
	progress := make(chan string, 16)
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
			select {
			case progress <- r.Params.Message:
			default:
			}
		},
	})
	cs, err := c.Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: e.url, HTTPClient: &http.Client{Transport: bearer{keyA}}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "request_purchase", Meta: sdk.Meta{"progressToken": 1}, Arguments: map[string]any{
		"user": "alice", "summary": "slow", "merchant": map[string]string{"id": "shop", "name": "Shop"}, "items": []any{},
		"total": 1, "currency": "USD", "wait_seconds": 1}})
	if err != nil || res.IsError {
		t.Fatalf("%v %v", err, res)
	}
	var got mcp.Consent
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &got); err != nil || got.State != "prompted" || got.Decided || !strings.Contains(got.Next, "check_consent") {
		t.Fatalf("consent %s", b)
	}
	var msgs []string
	for len(msgs) < 2 {
		select {
		case m := <-progress:
			msgs = append(msgs, m)
		case <-time.After(5 * time.Second):
			t.Fatalf("progress %q", msgs)
		}
	}
	if !strings.HasPrefix(msgs[0], "prompted") || !strings.HasPrefix(msgs[1], "still waiting") {
		t.Fatalf("progress %q", msgs)
	}
}

var errNotEnded = &mcp.ToolError{Code: "test", Detail: "not ended"}

// An agent's sessions are bounded; a refused one is counted.
func TestMCPMaxSessions(t *testing.T) {
	e := newEnv(t, mcp.Config{MaxSessions: 1})
	e.mustClient(keyA, nil)
	if _, err := e.client(keyA, nil); err == nil {
		t.Fatal("a second session was accepted")
	}
	if st := e.srv.Stats(); st.SessionsRefused == 0 { // the client may try twice: discovery, then initialize
		t.Fatalf("stats %+v", st)
	}
	e.mustClient(keyB, nil) // another agent has its own bound
}
