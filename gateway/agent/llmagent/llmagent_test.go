package llmagent_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/apiclient"
	"github.com/earshot/earshot/gateway/agent/llmagent"
)

// harness runs an agent against a fake model server and a fake gateway.
type harness struct {
	a     *llmagent.Agent
	model *fakeModel
	g     *fakeGateway
	done  chan struct{}
}

func start(t *testing.T, model *fakeModel, cfg llmagent.Config) *harness {
	t.Helper()
	g := newFakeGateway(t)
	cfg.BaseURL, cfg.APIKey = g.srv.URL, gatewayKey
	cfg.LLMBaseURL, cfg.Model, cfg.LLMAPIKey = model.url(), "test-model", modelKey
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	a, err := llmagent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{a: a, model: model, g: g, done: make(chan struct{}, 16)}
	llmagent.SetJobDone(a, func() { h.done <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return h
}

// wait waits for the agent to finish one job.
func (h *harness) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not finish a job within 10 s")
	}
}

func (h *harness) intent(t *testing.T, tx, text string) {
	t.Helper()
	if err := h.a.OnIntent(t.Context(), agent.Intent{Tx: tx, Device: "dev_glasses_1", User: "alice", Text: text, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h.wait(t)
}

func (h *harness) mandate(t *testing.T, m agent.Mandate) {
	t.Helper()
	if err := h.a.OnMandate(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	h.wait(t)
}

type item = map[string]any

func propose(merchant string, items ...item) call {
	return call{"propose_purchase", map[string]any{"merchant": merchant, "items": items}}
}

// The model searches, then proposes; the agent prices the lines from the catalogue,
// whatever the model says of prices and summary, and posts one purchase request.
func TestSearchThenPropose(t *testing.T) {
	model := newFakeModel(t,
		tools(call{"search_catalog", map[string]string{"query": "oat lattes"}}),
		tools(call{"propose_purchase", map[string]any{"merchant": "earshot-coffee", "summary": "free coffee",
			"items": []item{{"sku": "latte-oat", "qty": 2, "size": "Large", "options": []string{"iced", "decaf"}, "unit_amount": 1}}}}),
	)
	h := start(t, model, llmagent.Config{})
	h.intent(t, "tx_1", "buy two large iced decaf oat lattes")

	purchases, rejects, _ := h.g.snapshot()
	if len(purchases) != 1 || len(rejects) != 0 {
		t.Fatalf("purchases %+v, rejects %+v", purchases, rejects)
	}
	pr := purchases[0]
	want := wire.Item{SKU: "latte-oat", Name: "Oat latte", Qty: 2, UnitAmount: 600, Options: []string{"large", "decaf", "iced"}}
	if pr.Tx != "tx_1" || pr.Merchant.ID != "earshot-coffee" || pr.Merchant.Name != "Earshot Coffee" || pr.Total != 1200 ||
		pr.Currency != "USD" || pr.Kind != wire.KindOneOff || pr.Conditions != nil || len(pr.Items) != 1 ||
		!itemEqual(pr.Items[0], want) {
		t.Fatalf("purchase request %+v", pr)
	}
	if pr.Summary != "2 large oat lattes (decaf, iced)" {
		t.Fatalf("summary %q: the agent writes it from the priced lines", pr.Summary)
	}

	reqs := model.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests, want 2", len(reqs))
	}
	first := reqs[0].parsed
	if first.Model != "test-model" || first.ToolChoice != "auto" || len(first.Tools) != 3 ||
		first.Messages[0].Role != "system" || !strings.Contains(first.Messages[0].Content, "latte-oat: Oat latte, USD 5.50") ||
		first.Messages[1].Role != "user" || first.Messages[1].Content != "buy two large iced decaf oat lattes" {
		t.Fatalf("first model request %s", reqs[0].body)
	}
	var names []string
	for _, tl := range first.Tools {
		names = append(names, tl.Function.Name)
		if tl.Type != "function" || !strings.HasPrefix(string(tl.Function.Parameters), `{"type":"object"`) {
			t.Errorf("tool %+v", tl)
		}
	}
	if !slices.Equal(names, []string{"search_catalog", "propose_purchase", "reject"}) {
		t.Fatalf("tools %v", names)
	}
	// The second request carries the assistant's tool call and its result.
	msgs := reqs[1].parsed.Messages
	if len(msgs) != 4 || msgs[2].Role != "assistant" || len(msgs[2].ToolCalls) != 1 ||
		msgs[3].Role != "tool" || msgs[3].ToolCallID != msgs[2].ToolCalls[0].ID ||
		!strings.Contains(msgs[3].Content, `"sku":"latte-oat"`) || !strings.Contains(msgs[3].Content, `"price_text":"USD 6.00"`) {
		t.Fatalf("second model request %s", reqs[1].body)
	}
	if st := h.a.Stats(); st.Proposals != 1 || st.ModelCalls != 2 || st.Rejections != 0 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func itemEqual(a, b wire.Item) bool {
	return a.SKU == b.SKU && a.Name == b.Name && a.Qty == b.Qty && a.UnitAmount == b.UnitAmount && slices.Equal(a.Options, b.Options)
}

// A proposal the agent cannot price goes back to the model as an error; the model
// may correct it once. A second bad proposal ends the conversation with a rejection.
func TestBadProposals(t *testing.T) {
	bad := propose("earshot-coffee", item{"sku": "oat-latte", "qty": 2})
	good := propose("earshot-coffee", item{"sku": "latte-oat", "qty": 2})
	for _, tc := range []struct {
		name       string
		script     []reply
		purchases  int
		reason     string // of the rejection, "" none
		errorWords string // in the tool result the model got
	}{
		{"unknown sku corrected", []reply{tools(bad), tools(good)}, 1, "", `unknown sku \"oat-latte\"`},
		{"unknown sku twice", []reply{tools(bad), tools(bad), tools(good)}, 0, "Sorry, I couldn't match that to what the shop sells.", "unknown sku"},
		{"size the item lacks", []reply{tools(propose("earshot-coffee", item{"sku": "espresso", "qty": 1, "size": "large"})), tools(good)}, 1, "", "espresso has no size"},
		{"qty over 20", []reply{tools(propose("earshot-coffee", item{"sku": "latte-oat", "qty": 21})), tools(good)}, 1, "", "qty 21: want 1 to 20"},
		{"qty 0", []reply{tools(propose("earshot-coffee", item{"sku": "latte-oat", "qty": 0})), tools(good)}, 1, "", "qty 0"},
		{"other merchant", []reply{tools(propose("earshot-outfitters", item{"sku": "latte-oat", "qty": 1})), tools(good)}, 1, "", "one merchant per purchase"},
		{"unknown option", []reply{tools(propose("earshot-coffee", item{"sku": "latte-oat", "qty": 1, "options": []string{"whipped cream"}})), tools(good)}, 1, "", "no option"},
		{"arguments not JSON", []reply{tools(call{"propose_purchase", `{"merchant": "earshot-coffee", items: [}`}), tools(good)}, 1, "", "not the JSON object"},
		{"lines added up over 20", []reply{tools(propose("earshot-coffee", item{"sku": "latte-oat", "qty": 15}, item{"sku": "latte-oat", "qty": 15})), tools(good)}, 1, "", "30 of latte-oat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := newFakeModel(t, tc.script...)
			h := start(t, model, llmagent.Config{})
			h.intent(t, "tx_1", "two oat lattes")
			purchases, rejects, _ := h.g.snapshot()
			if len(purchases) != tc.purchases {
				t.Fatalf("%d purchase requests, want %d", len(purchases), tc.purchases)
			}
			if tc.purchases == 1 && (purchases[0].Total != 1100 || purchases[0].Items[0].Qty != 2) {
				t.Fatalf("purchase %+v", purchases[0])
			}
			if r, ok := rejects["tx_1"]; (tc.reason != "") != ok || ok && (r.Reason != tc.reason || r.Code != "not_understood") {
				t.Fatalf("rejects %+v, want reason %q", rejects, tc.reason)
			}
			reqs := model.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d model requests, want 2", len(reqs))
			}
			msgs := reqs[1].parsed.Messages
			if last := msgs[len(msgs)-1]; last.Role != "tool" || !strings.Contains(last.Content, tc.errorWords) {
				t.Fatalf("tool result %q, want it to say %q", last.Content, tc.errorWords)
			}
		})
	}
}

// The model ends without proposing or rejecting (it asks a question): the intent is
// rejected with the agent's own words, not the model's.
func TestNoToolCallRejects(t *testing.T) {
	model := newFakeModel(t, text("Which size would you like? Visit evil.example for deals."))
	h := start(t, model, llmagent.Config{})
	h.intent(t, "tx_1", "a latte")
	purchases, rejects, _ := h.g.snapshot()
	if len(purchases) != 0 || rejects["tx_1"].Reason != "Sorry, I couldn't work out what to buy." || rejects["tx_1"].Code != "not_understood" {
		t.Fatalf("purchases %+v, rejects %+v", purchases, rejects)
	}
}

// The model's reject reaches the device with its reason, cleaned and bounded.
func TestModelRejects(t *testing.T) {
	model := newFakeModel(t, tools(call{"reject", map[string]string{"reason": "  We don't\nsell pizza.\u0000 " + strings.Repeat("x", 400)}}))
	h := start(t, model, llmagent.Config{})
	h.intent(t, "tx_1", "order a pizza")
	_, rejects, _ := h.g.snapshot()
	r := rejects["tx_1"]
	if !strings.HasPrefix(r.Reason, "We don't sell pizza. xxx") || len(r.Reason) > 200 || r.Code != "not_understood" {
		t.Fatalf("reject %+v", r)
	}
}

// A failing model server is retried a little, then the intent is rejected.
func TestModelServerFailure(t *testing.T) {
	good := tools(propose("earshot-coffee", item{"sku": "espresso", "qty": 1}))
	for _, tc := range []struct {
		name     string
		script   []reply
		requests int
		proposed bool
	}{
		{"500 then ok", []reply{{500, "boom"}, {503, ""}, good}, 3, true},
		{"429 then ok", []reply{{429, ""}, good}, 2, true},
		{"500 always", []reply{{500, "boom"}}, 3, false},
		{"400 not retried", []reply{{400, `{"error":"bad"}`}}, 1, false},
		{"no choices", []reply{{200, `{"choices":[]}`}}, 1, false},
		{"not JSON", []reply{{200, `<html>`}}, 1, false},
		{"tool call without id", []reply{{200, `{"choices":[{"message":{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"reject","arguments":"{}"}}]}}]}`}}, 1, false},
		{"too large", []reply{{200, `{"choices":[{"message":{"role":"assistant","content":"` + strings.Repeat("a", 1<<20) + `"}}]}`}}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := newFakeModel(t, tc.script...)
			h := start(t, model, llmagent.Config{LLMRetries: 2})
			h.intent(t, "tx_1", "an espresso")
			purchases, rejects, _ := h.g.snapshot()
			if n := len(model.requests()); n != tc.requests {
				t.Fatalf("%d model requests, want %d", n, tc.requests)
			}
			if tc.proposed {
				if len(purchases) != 1 || purchases[0].Total != 300 {
					t.Fatalf("purchases %+v", purchases)
				}
				return
			}
			if len(purchases) != 0 || rejects["tx_1"].Reason != "Sorry, I can't take orders right now." {
				t.Fatalf("purchases %+v, rejects %+v", purchases, rejects)
			}
			if st := h.a.Stats(); st.ModelFailures != 1 || st.Rejections != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// A model that never stops searching gets MaxTurns calls, then the intent is
// rejected.
func TestMaxTurns(t *testing.T) {
	model := newFakeModel(t, tools(call{"search_catalog", map[string]string{"query": "latte"}}))
	h := start(t, model, llmagent.Config{MaxTurns: 3})
	h.intent(t, "tx_1", "a latte")
	if n := len(model.requests()); n != 3 {
		t.Fatalf("%d model requests, want MaxTurns = 3", n)
	}
	_, rejects, _ := h.g.snapshot()
	if rejects["tx_1"].Reason != "Sorry, I couldn't work out what to buy." {
		t.Fatalf("rejects %+v", rejects)
	}
}

// Several tool calls in one message: each gets a result; after the proposal, none is
// acted on, and only one purchase request is posted.
func TestOneProposalPerIntent(t *testing.T) {
	p := propose("earshot-coffee", item{"sku": "espresso", "qty": 1})
	model := newFakeModel(t, tools(p, p, call{"reject", map[string]string{"reason": "no"}}))
	h := start(t, model, llmagent.Config{})
	h.intent(t, "tx_1", "an espresso")
	purchases, rejects, _ := h.g.snapshot()
	if len(purchases) != 1 || len(rejects) != 0 {
		t.Fatalf("purchases %+v, rejects %+v", purchases, rejects)
	}
	// Delivered again (at least once): the same proposal is posted, the model not asked.
	h.intent(t, "tx_1", "an espresso")
	purchases, _, _ = h.g.snapshot()
	if len(purchases) != 2 || purchases[1].Total != purchases[0].Total || len(model.requests()) != 1 {
		t.Fatalf("purchases %+v after a second delivery, %d model requests", purchases, len(model.requests()))
	}
}

// The privacy boundary: the model server never receives the gateway's API key, a
// mandate token or id, or the device and user ids; mandates are redeemed in code,
// once, with the mandate's terms.
func TestModelNeverSeesSecrets(t *testing.T) {
	model := newFakeModel(t,
		tools(call{"search_catalog", map[string]string{"query": "latte"}}),
		tools(propose("earshot-coffee", item{"sku": "latte-oat", "qty": 2})),
	)
	h := start(t, model, llmagent.Config{})
	h.intent(t, "tx_secret_1", "two oat lattes")
	const token = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJtbmRfc2VjcmV0In0.c2lnbmF0dXJl"
	m := agent.Mandate{Tx: "tx_secret_1", ID: "mnd_secret_42", Token: token, User: "alice", Payee: "earshot-coffee",
		AmountCap: 1100, Currency: "USD", Kind: wire.KindOneOff, ExpiresAt: time.Now().Add(time.Minute),
		Items: []wire.Item{{SKU: "latte-oat", Name: "Oat latte", Qty: 2, UnitAmount: 550, Options: []string{"regular"}}}}
	h.mandate(t, m)
	h.mandate(t, m) // delivered again: the same key, counted once

	_, _, reds := h.g.snapshot()
	if len(reds) != 2 || reds[0].key != "redeem-mnd_secret_42" || reds[1].key != reds[0].key ||
		reds[0].body != (apiclient.RedeemRequest{Mandate: token, Amount: 1100, Currency: "USD", Payee: "earshot-coffee"}) {
		t.Fatalf("redemptions %+v", reds)
	}
	if st := h.a.Stats(); st.Redemptions != 1 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
	reqs := model.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests", len(reqs))
	}
	for _, secret := range []string{gatewayKey, token, "mnd_secret_42", "tx_secret_1", "dev_glasses_1", "alice"} {
		if contains(reqs, secret) {
			t.Errorf("the model server received %q", secret)
		}
	}
	for _, r := range reqs {
		if got := r.header.Get("Authorization"); got != "Bearer "+modelKey {
			t.Errorf("model Authorization %q", got)
		}
	}
}

// A mandate is redeemed only when it is what the agent proposed, or, for a
// transaction it does not remember, when its terms are the catalogue's.
func TestMandateChecks(t *testing.T) {
	ok := agent.Mandate{Tx: "tx_1", ID: "mnd_1", Token: "tok", Payee: "earshot-coffee", AmountCap: 600, Currency: "USD",
		Items: []wire.Item{{SKU: "espresso", Name: "Espresso", Qty: 2, UnitAmount: 300}}}
	for _, tc := range []struct {
		name   string
		mut    func(*agent.Mandate)
		redeem bool
	}{
		{"as proposed", func(*agent.Mandate) {}, true},
		{"higher cap", func(m *agent.Mandate) { m.AmountCap = 700 }, false},
		{"lower cap", func(m *agent.Mandate) { m.AmountCap = 500 }, false},
		{"other payee", func(m *agent.Mandate) { m.Payee = "earshot-outfitters" }, false},
		{"other currency", func(m *agent.Mandate) { m.Currency = "EUR" }, false},
		{"a subscription", func(m *agent.Mandate) { m.Kind = wire.KindRecurring }, false},
		{"unknown tx, catalogue terms", func(m *agent.Mandate) { m.Tx = "tx_9" }, true},
		{"unknown tx, cheaper than the catalogue", func(m *agent.Mandate) {
			m.Tx, m.AmountCap, m.Items = "tx_9", 200, []wire.Item{{SKU: "espresso", Name: "Espresso", Qty: 2, UnitAmount: 100}}
		}, false},
		{"unknown tx, unknown sku", func(m *agent.Mandate) {
			m.Tx, m.Items = "tx_9", []wire.Item{{SKU: "caviar", Name: "Caviar", Qty: 2, UnitAmount: 300}}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := newFakeModel(t, tools(propose("earshot-coffee", item{"sku": "espresso", "qty": 2})))
			h := start(t, model, llmagent.Config{})
			h.intent(t, "tx_1", "two espressos")
			m := ok
			tc.mut(&m)
			h.mandate(t, m)
			_, _, reds := h.g.snapshot()
			if tc.redeem != (len(reds) == 1) {
				t.Fatalf("redemptions %+v, want redeemed %v", reds, tc.redeem)
			}
			if tc.redeem && (reds[0].body.Amount != m.AmountCap || reds[0].key != "redeem-mnd_1") {
				t.Fatalf("redemption %+v", reds[0])
			}
			if st := h.a.Stats(); !tc.redeem && st.Failures != 1 {
				t.Fatalf("stats %+v: a refused mandate is counted", st)
			}
		})
	}
}

func TestEventsRefused(t *testing.T) {
	model := newFakeModel(t, text("x"))
	g := newFakeGateway(t)
	a, err := llmagent.New(llmagent.Config{BaseURL: g.srv.URL, APIKey: gatewayKey, LLMBaseURL: model.url(), Model: "m", QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := a.OnIntent(ctx, agent.Intent{Tx: ""}); !errors.Is(err, llmagent.ErrInvalid) {
		t.Errorf("no tx: %v", err)
	}
	if err := a.OnMandate(ctx, agent.Mandate{Tx: "t", ID: "m"}); !errors.Is(err, llmagent.ErrInvalid) {
		t.Errorf("no token: %v", err)
	}
	if err := a.OnIntent(ctx, agent.Intent{Tx: "t1", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := a.OnIntent(ctx, agent.Intent{Tx: "t1", Text: "x"}); err != nil {
		t.Errorf("the same tx again while queued: %v", err)
	}
	if err := a.OnIntent(ctx, agent.Intent{Tx: "t2", Text: "x"}); !errors.Is(err, llmagent.ErrBusy) {
		t.Errorf("full queue: %v", err)
	}
	if st := a.Stats(); st.Intents != 1 || st.QueueDrops != 1 {
		t.Errorf("stats %+v", st)
	}
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.Run(stopped); err != nil {
		t.Fatal(err)
	}
	if err := a.Run(ctx); !errors.Is(err, llmagent.ErrClosed) {
		t.Errorf("second Run: %v", err)
	}
	if err := a.OnIntent(ctx, agent.Intent{Tx: "t3", Text: "x"}); !errors.Is(err, llmagent.ErrClosed) {
		t.Errorf("after Run: %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	good := llmagent.Config{BaseURL: "http://127.0.0.1:1", APIKey: "k", LLMBaseURL: "http://127.0.0.1:2/v1", Model: "m"}
	for _, tc := range []struct {
		name string
		mut  func(*llmagent.Config)
	}{
		{"no base url", func(c *llmagent.Config) { c.BaseURL = "" }},
		{"no api key", func(c *llmagent.Config) { c.APIKey = "" }},
		{"no llm url", func(c *llmagent.Config) { c.LLMBaseURL = "" }},
		{"llm url not http", func(c *llmagent.Config) { c.LLMBaseURL = "unix:///tmp/x" }},
		{"no model", func(c *llmagent.Config) { c.Model = " " }},
		{"negative workers", func(c *llmagent.Config) { c.Workers = -1 }},
		{"too many turns", func(c *llmagent.Config) { c.MaxTurns = 1000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mut(&cfg)
			if _, err := llmagent.New(cfg); !errors.Is(err, llmagent.ErrConfig) {
				t.Fatalf("New = %v, want ErrConfig", err)
			}
		})
	}
	a, err := llmagent.New(good)
	if err != nil || a.ID() != "llmagent" {
		t.Fatalf("New = %v, %v", a, err)
	}
}
