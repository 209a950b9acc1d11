package refagent_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/refagent"
)

const apiKey = "sk_test_refagent"

// harness is a running agent against a fake gateway.
type harness struct {
	g    *fakeGateway
	a    *refagent.Agent
	done chan struct{} // one value per finished job
}

// start runs an agent against g until the test ends, and checks that Run returns.
func start(t *testing.T, g *fakeGateway, cfg refagent.Config) *harness {
	t.Helper()
	if cfg.BaseURL == "" {
		cfg.BaseURL = g.srv.URL + "/"
	}
	if cfg.APIKey == "" {
		cfg.APIKey = apiKey
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	a, err := refagent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{g: g, a: a, done: make(chan struct{}, 64)}
	refagent.SetJobDone(a, func() { h.done <- struct{}{} })
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

// wait waits for n jobs to finish.
func (h *harness) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("a job did not finish; stats %+v", h.a.Stats())
		}
	}
}

func (h *harness) intent(t *testing.T, tx, text string) {
	t.Helper()
	if err := h.a.OnIntent(t.Context(), agent.Intent{Tx: tx, Device: "dev_1", User: "usr_1", Text: text, At: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	h.wait(t, 1)
}

func (h *harness) mandate(t *testing.T, m agent.Mandate) {
	t.Helper()
	if err := h.a.OnMandate(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	h.wait(t, 1)
}

// issue registers a mandate with the fake gateway and returns it as the agent gets it.
func (h *harness) issue(id, tx, payee, currency string, cap wire.Amount) agent.Mandate {
	tok := h.g.mandate(fakeMandate{id: id, tx: tx, payee: payee, currency: currency, cap: cap})
	return agent.Mandate{Tx: tx, ID: id, Token: tok, User: "usr_1", Payee: payee, AmountCap: cap, Currency: currency,
		ExpiresAt: time.Unix(2, 0)}
}

func callsTo(calls []call, path string) []call {
	var out []call
	for _, c := range calls {
		if c.path == path {
			out = append(out, c)
		}
	}
	return out
}

func TestAgentProposesAndRedeems(t *testing.T) {
	h := start(t, newFakeGateway(t, apiKey), refagent.Config{Workers: 2})
	h.intent(t, "tx_1", "two oat lattes and a large americano please")

	_, purchases, _ := h.g.snapshot()
	want := purchaseBody{
		Tx:       "tx_1",
		Merchant: wire.Merchant{ID: "earshot-coffee", Name: "Earshot Coffee"},
		Items: []wire.Item{
			{SKU: "latte-oat", Name: "Oat latte", Qty: 2, UnitAmount: 550, Options: []string{"regular"}},
			{SKU: "americano", Name: "Americano", Qty: 1, UnitAmount: 450, Options: []string{"large"}},
		},
		Total: 1550, Currency: "USD", Kind: wire.KindOneOff, Summary: "2 oat lattes, 1 large americano",
		Conditions: &wire.Conditions{TipCap: 500}, // Earshot Coffee's tip cap (catalog.yaml)
	}
	if got := purchases["tx_1"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("purchase request =\n%+v\nwant\n%+v", got, want)
	}

	// The first redemption attempt meets a 503 and is retried with the same key.
	h.g.failNext("/v1/redemptions", 1)
	m := h.issue("mnd_1", "tx_1", "earshot-coffee", "USD", 1550)
	h.mandate(t, m)
	calls, _, _ := h.g.snapshot()
	red := callsTo(calls, "/v1/redemptions")
	if len(red) != 2 || red[0].status != http.StatusServiceUnavailable || red[1].status != http.StatusCreated {
		t.Fatalf("redemption calls = %+v, want a 503 then a 201", red)
	}
	for _, c := range red {
		if c.key != "redeem-mnd_1" {
			t.Errorf("Idempotency-Key = %q", c.key)
		}
	}

	// The gateway hands the mandate over again (at least once): a replay, counted once.
	h.mandate(t, m)
	calls, _, _ = h.g.snapshot()
	red = callsTo(calls, "/v1/redemptions")
	if len(red) != 3 || red[2].status != http.StatusOK || red[2].key != "redeem-mnd_1" {
		t.Fatalf("redelivered mandate: calls = %+v, want a 200 replay", red)
	}
	want2 := refagent.Stats{Intents: 1, Proposals: 1, Redemptions: 1}
	if got := h.a.Stats(); got != want2 {
		t.Errorf("stats = %+v, want %+v", got, want2)
	}

	// An intent delivered twice: the gateway answers 409, which is not a failure.
	h.intent(t, "tx_1", "two oat lattes and a large americano please")
	if got := h.a.Stats(); got.Failures != 0 || got.Proposals != 1 {
		t.Errorf("stats after a duplicate intent = %+v", got)
	}
	// The cap above the total: the merchant still takes exactly the proposed total.
	h.intent(t, "tx_2", "an espresso")
	h.mandate(t, h.issue("mnd_2", "tx_2", "earshot-coffee", "USD", 5000))
	if got := h.a.Stats(); got.Redemptions != 2 || got.Failures != 0 {
		t.Errorf("stats = %+v", got)
	}
	h.g.mu.Lock()
	answer := h.g.redeemed["redeem-mnd_2"]
	h.g.mu.Unlock()
	if !strings.Contains(answer, `"amount":300`) {
		t.Errorf("redeemed %s, want amount 300", answer)
	}
}

func TestAgentRejects(t *testing.T) {
	h := start(t, newFakeGateway(t, apiKey), refagent.Config{})
	tests := []struct{ tx, text, reason string }{
		{"tx_music", "play some music", "only take orders"},
		{"tx_turtles", "I like turtles", "only take orders"},
		{"tx_mixed", "a latte and a pair of leggings", "one shop at a time"},
		{"tx_many", "40 croissants", "1 to 20"},
		{"tx/odd:id", "the weather", "only take orders"},
	}
	for _, tt := range tests {
		h.intent(t, tt.tx, tt.text)
	}
	_, purchases, rejects := h.g.snapshot()
	if len(purchases) != 0 {
		t.Errorf("purchases = %+v", purchases)
	}
	for _, tt := range tests {
		r, ok := rejects[tt.tx]
		if !ok {
			t.Errorf("%s: no rejection", tt.tx)
			continue
		}
		if r.Code != wire.CodeNotUnderstood.String() || !strings.Contains(r.Reason, tt.reason) {
			t.Errorf("%s: rejection %+v, want not_understood and %q", tt.tx, r, tt.reason)
		}
	}
	if got := h.a.Stats(); got.Rejections != uint64(len(tests)) || got.Failures != 0 || got.Intents != uint64(len(tests)) {
		t.Errorf("stats = %+v", got)
	}
}

func TestAgentMandateChecks(t *testing.T) {
	tests := []struct {
		name   string
		forget bool // an outcome arrives before the mandate
		tx     string
		payee  string
		cur    string
		cap    wire.Amount
	}{
		{name: "unknown tx, not our merchant", tx: "tx_other", payee: "someone-else", cur: "USD", cap: 1100},
		{name: "unknown tx, our merchant in another currency", tx: "tx_other", payee: "earshot-coffee", cur: "EUR", cap: 1100},
		{name: "other payee", tx: "tx_1", payee: "earshot-outfitters", cur: "USD", cap: 1100},
		{name: "other currency", tx: "tx_1", payee: "earshot-coffee", cur: "EUR", cap: 1100},
		{name: "cap below total", tx: "tx_1", payee: "earshot-coffee", cur: "USD", cap: 1099},
		{name: "forgotten after outcome, not our merchant", forget: true, tx: "tx_1", payee: "someone-else", cur: "USD", cap: 1100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, newFakeGateway(t, apiKey), refagent.Config{})
			h.intent(t, "tx_1", "buy two oat lattes")
			if tt.forget {
				if err := h.a.OnOutcome(t.Context(), agent.Outcome{Tx: "tx_1", State: wire.TxDeclined}); err != nil {
					t.Fatal(err)
				}
			}
			h.mandate(t, h.issue("mnd_1", tt.tx, tt.payee, tt.cur, tt.cap))
			calls, _, _ := h.g.snapshot()
			if red := callsTo(calls, "/v1/redemptions"); len(red) != 0 {
				t.Errorf("redeemed anyway: %+v", red)
			}
			if got := h.a.Stats(); got.Failures != 1 || got.Redemptions != 0 {
				t.Errorf("stats = %+v", got)
			}
		})
	}
}

func TestAgentCallFailures(t *testing.T) {
	t.Run("503 until retries run out", func(t *testing.T) {
		h := start(t, newFakeGateway(t, apiKey), refagent.Config{Retries: 2})
		h.g.failNext("/v1/purchase-requests", 100)
		h.intent(t, "tx_1", "a latte")
		calls, _, _ := h.g.snapshot()
		if n := len(callsTo(calls, "/v1/purchase-requests")); n != 3 {
			t.Errorf("%d attempts, want 3", n)
		}
		if got := h.a.Stats(); got.Failures != 1 || got.Proposals != 0 {
			t.Errorf("stats = %+v", got)
		}
	})
	t.Run("wrong key is not retried", func(t *testing.T) {
		h := start(t, newFakeGateway(t, apiKey), refagent.Config{APIKey: "sk_wrong"})
		h.intent(t, "tx_1", "a latte")
		calls, _, _ := h.g.snapshot()
		if len(calls) != 1 || calls[0].status != http.StatusUnauthorized {
			t.Errorf("calls = %+v, want one 401", calls)
		}
		if got := h.a.Stats(); got.Failures != 1 {
			t.Errorf("stats = %+v", got)
		}
	})
	t.Run("over cap is not retried", func(t *testing.T) {
		h := start(t, newFakeGateway(t, apiKey), refagent.Config{})
		h.intent(t, "tx_1", "a latte")
		m := h.issue("mnd_1", "tx_1", "earshot-coffee", "USD", 400) // the gateway's cap
		m.AmountCap = 500                                           // what the agent is told
		h.mandate(t, m)
		calls, _, _ := h.g.snapshot()
		if red := callsTo(calls, "/v1/redemptions"); len(red) != 1 || red[0].status != http.StatusUnprocessableEntity {
			t.Errorf("redemption calls = %+v, want one 422", red)
		}
		if got := h.a.Stats(); got.Failures != 1 || got.Redemptions != 0 {
			t.Errorf("stats = %+v", got)
		}
	})
	t.Run("network error is retried", func(t *testing.T) {
		g := newFakeGateway(t, apiKey)
		flaky := &flakyTransport{fails: 1, path: "/v1/redemptions"}
		h := start(t, g, refagent.Config{HTTPClient: &http.Client{Transport: flaky}})
		h.intent(t, "tx_1", "a latte")
		h.mandate(t, h.issue("mnd_1", "tx_1", "earshot-coffee", "USD", 500))
		if flaky.failed.Load() != 1 {
			t.Errorf("the transport failed %d times", flaky.failed.Load())
		}
		if got := h.a.Stats(); got.Redemptions != 1 || got.Failures != 0 {
			t.Errorf("stats = %+v", got)
		}
	})
}

// flakyTransport fails the first requests to path with a network error.
type flakyTransport struct {
	path   string
	fails  int32
	failed atomic.Int32
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == f.path && f.failed.Load() < f.fails {
		f.failed.Add(1)
		if r.Body != nil {
			_ = r.Body.Close() // RoundTrip must close the body, even on error
		}
		return nil, errors.New("connection reset by peer")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestAgentQueue(t *testing.T) {
	a, err := refagent.New(refagent.Config{BaseURL: "http://127.0.0.1:1", APIKey: apiKey, QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != "refagent" {
		t.Errorf("ID = %q", a.ID())
	}
	ctx := t.Context()
	if err := a.OnIntent(ctx, agent.Intent{Tx: "tx_1", Text: "a latte"}); err != nil {
		t.Fatal(err)
	}
	if err := a.OnIntent(ctx, agent.Intent{Tx: "tx_2", Text: "a latte"}); !errors.Is(err, refagent.ErrBusy) {
		t.Errorf("second intent: %v, want ErrBusy", err)
	}
	if err := a.OnMandate(ctx, agent.Mandate{Tx: "tx_1", ID: "mnd_1", Token: "t"}); !errors.Is(err, refagent.ErrBusy) {
		t.Errorf("mandate: %v, want ErrBusy", err)
	}
	if got, want := a.Stats(), (refagent.Stats{Intents: 1, QueueDrops: 2}); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"intent without tx", a.OnIntent(ctx, agent.Intent{Text: "a latte"})},
		{"intent with a newline in tx", a.OnIntent(ctx, agent.Intent{Tx: "tx\n1", Text: "a latte"})},
		{"mandate without token", a.OnMandate(ctx, agent.Mandate{Tx: "tx_1", ID: "mnd_1"})},
		{"mandate without id", a.OnMandate(ctx, agent.Mandate{Tx: "tx_1", Token: "t"})},
	} {
		if !errors.Is(tt.err, refagent.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tt.name, tt.err)
		}
	}
}

func TestAgentRunStops(t *testing.T) {
	a, err := refagent.New(refagent.Config{BaseURL: "http://127.0.0.1:1", APIKey: apiKey, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 2)
	go func() { ran <- a.Run(ctx) }()
	go func() { ran <- a.Run(ctx) }()
	// One of the two runs until cancel; the other is refused at once.
	if err := <-ran; !errors.Is(err, refagent.ErrRunning) {
		t.Fatalf("concurrent Run = %v, want ErrRunning", err)
	}
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := a.OnIntent(t.Context(), agent.Intent{Tx: "tx_1", Text: "a latte"}); !errors.Is(err, refagent.ErrClosed) {
		t.Errorf("OnIntent after Run = %v, want ErrClosed", err)
	}
	if err := a.OnOutcome(t.Context(), agent.Outcome{Tx: "tx_1"}); !errors.Is(err, refagent.ErrClosed) {
		t.Errorf("OnOutcome after Run = %v, want ErrClosed", err)
	}
	if err := a.Run(t.Context()); !errors.Is(err, refagent.ErrClosed) {
		t.Errorf("Run again = %v, want ErrClosed", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  refagent.Config
	}{
		{"no base url", refagent.Config{APIKey: apiKey}},
		{"relative base url", refagent.Config{BaseURL: "/v1", APIKey: apiKey}},
		{"ftp base url", refagent.Config{BaseURL: "ftp://gw", APIKey: apiKey}},
		{"no api key", refagent.Config{BaseURL: "http://127.0.0.1:8080"}},
		{"negative workers", refagent.Config{BaseURL: "http://127.0.0.1:8080", APIKey: apiKey, Workers: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := refagent.New(tt.cfg); !errors.Is(err, refagent.ErrConfig) {
				t.Errorf("New = %v, want ErrConfig", err)
			}
		})
	}
	a, err := refagent.New(refagent.Config{BaseURL: "https://gw.example", APIKey: apiKey, ID: "shop-agent"})
	if err != nil || a.ID() != "shop-agent" {
		t.Errorf("New = %v, %v", a, err)
	}
}

func BenchmarkAgentIntent(b *testing.B) {
	g := newFakeGateway(b, apiKey)
	a, err := refagent.New(refagent.Config{BaseURL: g.srv.URL, APIKey: apiKey})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{}, 1)
	refagent.SetJobDone(a, func() { done <- struct{}{} })
	ctx, cancel := context.WithCancel(b.Context())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	i := 0
	for b.Loop() {
		i++
		if err := a.OnIntent(ctx, agent.Intent{Tx: "tx_" + strconv.Itoa(i), Text: "two oat lattes"}); err != nil {
			b.Fatal(err)
		}
		<-done
	}
}

// A mandate for a transaction the agent no longer remembers (it restarted, or the
// proposal was evicted) is redeemed from the terms the user approved, when the payee is
// one of the catalogue's merchants.
func TestAgentRecallsForgottenProposal(t *testing.T) {
	h := start(t, newFakeGateway(t, apiKey), refagent.Config{MaxTracked: 1})
	h.intent(t, "tx_1", "a latte")
	h.intent(t, "tx_2", "an espresso")
	h.mandate(t, h.issue("mnd_1", "tx_1", "earshot-coffee", "USD", 500)) // tx_1 was evicted
	h.mandate(t, h.issue("mnd_2", "tx_2", "earshot-coffee", "USD", 300))
	if got := h.a.Stats(); got.Failures != 0 || got.Redemptions != 2 {
		t.Errorf("stats = %+v, want both redeemed", got)
	}
	h.mandate(t, h.issue("mnd_3", "tx_9", "earshot-coffee", "USD", 777))
	calls, _, _ := h.g.snapshot()
	if red := callsTo(calls, "/v1/redemptions"); len(red) != 3 || red[2].key != "redeem-mnd_3" {
		t.Fatalf("redemptions %+v", red)
	}
}
