package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/llmagent"
)

// chatServer is a fake OpenAI-compatible chat-completions server. It answers by what
// the user said and how many assistant turns the conversation has had, so that
// conversations of several intents are each scripted on their own. It records every
// request body.
type chatServer struct {
	srv    *httptest.Server
	script map[string][]string // the user's words -> tool-call answers, turn by turn

	mu     sync.Mutex
	bodies []string
}

// toolAnswer is a chat-completions answer calling one tool.
func toolAnswer(name string, args any) string {
	a, _ := json.Marshal(args)
	b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "finish_reason": "tool_calls",
		"message": map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
			"id": "call_" + name, "type": "function", "function": map[string]any{"name": name, "arguments": string(a)}}}}}}})
	return string(b)
}

func newChatServer(t *testing.T, script map[string][]string) *chatServer {
	t.Helper()
	cs := &chatServer{script: script}
	cs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		cs.mu.Lock()
		cs.bodies = append(cs.bodies, string(raw))
		cs.mu.Unlock()
		var req struct {
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
		}
		if r.URL.Path != "/v1/chat/completions" || json.Unmarshal(raw, &req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		user, turn := "", 0
		for _, m := range req.Messages {
			switch m.Role {
			case "user":
				user = m.Content
			case "assistant":
				turn++
			}
		}
		answers := cs.script[user]
		if turn >= len(answers) {
			http.Error(w, fmt.Sprintf("no answer scripted for %q turn %d", user, turn), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answers[turn])
	}))
	t.Cleanup(cs.srv.Close)
	return cs
}

func (cs *chatServer) requests() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return slices.Clone(cs.bodies)
}

// llmTap wraps the LLM agent and keeps every mandate the gateway hands it.
type llmTap struct {
	*llmagent.Agent
	mu       sync.Mutex
	mandates []agent.Mandate
}

func (a *llmTap) OnMandate(ctx context.Context, m agent.Mandate) error {
	a.mu.Lock()
	a.mandates = append(a.mandates, m)
	a.mu.Unlock()
	return a.Agent.OnMandate(ctx, m)
}

func (a *llmTap) handed() []agent.Mandate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.mandates)
}

// startLLM runs a gateway whose embedded agent is the LLM agent, talking to cs, under
// the test risk rules (said_mismatch: step_up; glasses step up to the phone).
func startLLM(t *testing.T, cs *chatServer) (*gw, *llmTap, *string) {
	t.Helper()
	tap := &llmTap{}
	var apiKey string
	g := start(t, gateway.Config{Risk: testRisk(t), NewAgent: func(base, key string) (gateway.Agent, error) {
		apiKey = key
		a, err := llmagent.New(llmagent.Config{BaseURL: base, APIKey: key, LLMBaseURL: cs.srv.URL + "/v1", Model: "test-model",
			Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
		tap.Agent = a
		return tap, err
	}})
	return g, tap, &apiKey
}

var (
	searchOat  = toolAnswer("search_catalog", map[string]string{"query": "oat latte"})
	proposeOat = func(qty int) string {
		return toolAnswer("propose_purchase", map[string]any{"merchant": "earshot-coffee",
			"items": []any{map[string]any{"sku": "latte-oat", "qty": qty}}})
	}
)

// The LLM agent in a real gateway: the model searches and proposes what was said, the
// glasses get the prompt, the user approves, and the agent redeems the mandate. The
// model server never sees the API key or the mandate.
func TestLLMAgentPurchase(t *testing.T) {
	cs := newChatServer(t, map[string][]string{"buy two oat lattes": {searchOat, proposeOat(2)}})
	g, tap, apiKey := startLLM(t, cs)
	c := g.device("glasses", false)

	req := say(t, c, "buy two oat lattes")
	if req.Terms.Total != 1100 || req.Terms.Merchant.ID != "earshot-coffee" || len(req.Terms.Items) != 1 ||
		req.Terms.Items[0].SKU != "latte-oat" || req.Terms.Items[0].Qty != 2 || req.Terms.Items[0].UnitAmount != 550 {
		t.Fatalf("prompt terms %+v", req.Terms)
	}
	if !slices.Equal(req.Methods, []wire.Method{wire.MethodTap, wire.MethodVoice, wire.MethodButton}) {
		t.Fatalf("said and proposed agree: methods %v, want the glasses' own", req.Methods)
	}
	if err := c.Confirm(t.Context(), req, wire.DecisionApprove, wire.MethodVoice); err != nil {
		t.Fatal(err)
	}
	res := exactly(t, c, req.Tx, wire.TxRedeemed)
	if res.Amount != 1100 || res.Mandate == "" {
		t.Fatalf("result %+v", res)
	}
	ms := tap.handed()
	if len(ms) == 0 || ms[0].ID != res.Mandate {
		t.Fatalf("mandates handed %+v", ms)
	}
	reqs := cs.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests, want 2", len(reqs))
	}
	for _, body := range reqs {
		for _, secret := range []string{*apiKey, ms[0].Token, ms[0].ID, req.Tx, c.DeviceID()} {
			if strings.Contains(body, secret) {
				t.Fatalf("the model server received %q", secret)
			}
		}
	}
}

// The model proposes more than the user said, or another item. The gateway's risk
// rules compare the proposal with what was said (said_mismatch: step_up): without a
// paired phone it is refused; with one, the glasses cannot approve it, only the
// phone can. Nothing is mandated or paid without that approval.
func TestLLMAgentOverreachIsStoppedByTheGateway(t *testing.T) {
	const (
		overPrice = "buy an oat latte when it drops under five dollars"
		otherItem = "buy one oat latte"
	)
	cs := newChatServer(t, map[string][]string{
		overPrice: {searchOat, proposeOat(3)}, // 3 oat lattes, USD 16.50: more, and over the price said
		otherItem: {toolAnswer("propose_purchase", map[string]any{"merchant": "earshot-coffee",
			"items": []any{map[string]any{"sku": "americano", "qty": 1, "size": "large"}}})},
	})
	g, tap, _ := startLLM(t, cs)
	glasses := g.device("glasses", false)

	// No phone yet: the step-up has nowhere to go, so the gateway refuses.
	if _, err := glasses.Say(t.Context(), overPrice); err != nil {
		t.Fatal(err)
	}
	if r := result(t, glasses, wire.TxRejected); r.State != wire.TxRejected || r.Code != wire.CodeNoPhone {
		t.Fatalf("over-proposal without a phone: %+v", r)
	}

	// With a phone: the prompt shows what the model proposed and asks for the phone.
	phone := g.device("phone", false)
	for _, tc := range []struct {
		said  string
		total wire.Amount
	}{{overPrice, 1650}, {otherItem, 450}} {
		req := say(t, glasses, tc.said)
		if req.Terms.Total != tc.total || !slices.Equal(req.Methods, []wire.Method{wire.MethodPhone}) {
			t.Fatalf("%q: terms %+v, methods %v: want the proposal stepped up to the phone", tc.said, req.Terms, req.Methods)
		}
		// The glasses approving by voice anyway is refused.
		forged := *req
		forged.Methods = []wire.Method{wire.MethodVoice}
		if err := glasses.Confirm(t.Context(), &forged, wire.DecisionApprove, wire.MethodVoice); err != nil {
			t.Fatal(err)
		}
		refusedWith(t, glasses, wire.CodeMethodNotAllowed)
		// The user sees the phone's prompt and declines.
		ask := next(t, phone, wire.TypeConfirmRequest).ConfirmRequest
		if ask.Tx != req.Tx {
			t.Fatalf("phone prompt for %s, want %s", ask.Tx, req.Tx)
		}
		if err := phone.Approve(t.Context(), ask, wire.DecisionDecline); err != nil {
			t.Fatal(err)
		}
		if r := exactly(t, glasses, req.Tx, wire.TxDeclined); r.Mandate != "" || r.Amount != 0 {
			t.Fatalf("declined %+v", r)
		}
	}
	if ms := tap.handed(); len(ms) != 0 {
		t.Fatalf("mandates issued without the user's approval: %+v", ms)
	}
	if st := tap.Stats(); st.Redemptions != 0 || st.Proposals != 3 {
		t.Fatalf("agent stats %+v", st)
	}
	metrics := scrape(t, g)
	for _, want := range []string{`earshot_risk_reasons_total{reason="said_mismatch_amount"} 2`, `earshot_risk_reasons_total{reason="said_mismatch_item"} 3`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
