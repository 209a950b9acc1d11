package llmagent_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent/apiclient"
)

const (
	gatewayKey = "esk_gateway_secret_key"
	modelKey   = "sk-model-server-key"
)

// modelRequest is one request the fake model server received.
type modelRequest struct {
	header http.Header
	body   string
	parsed struct {
		Model    string `json:"model"`
		Messages []struct {
			Role      string `json:"role"`
			Content   string `json:"content"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
			ToolCallID string `json:"tool_call_id"`
		} `json:"messages"`
		Tools []struct {
			Type     string `json:"type"`
			Function struct {
				Name       string          `json:"name"`
				Parameters json.RawMessage `json:"parameters"`
			} `json:"function"`
		} `json:"tools"`
		ToolChoice string `json:"tool_choice"`
	}
}

// reply is one scripted answer of the fake model server.
type reply struct {
	status int
	body   string
}

// fakeModel is a chat-completions server answering with its script, one reply per
// request; past the end of the script it repeats the last reply.
type fakeModel struct {
	srv *httptest.Server

	mu     sync.Mutex
	script []reply
	got    []modelRequest
}

func newFakeModel(t *testing.T, script ...reply) *fakeModel {
	t.Helper()
	f := &fakeModel{script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var mr modelRequest
		mr.header, mr.body = r.Header.Clone(), string(b)
		if err := json.Unmarshal(b, &mr.parsed); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		n := len(f.got)
		f.got = append(f.got, mr)
		rep := reply{500, "script empty"}
		if len(f.script) > 0 {
			rep = f.script[min(n, len(f.script)-1)]
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeModel) url() string { return f.srv.URL + "/v1" }

func (f *fakeModel) requests() []modelRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]modelRequest(nil), f.got...)
}

// call is one scripted tool call.
type call struct {
	name string
	args any // encoded to the arguments string; a string is used as is
}

// tools answers with the tool calls.
func tools(calls ...call) reply {
	type fn struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
	type tc struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function fn     `json:"function"`
	}
	var tcs []tc
	for i, c := range calls {
		args, ok := c.args.(string)
		if !ok {
			b, _ := json.Marshal(c.args)
			args = string(b)
		}
		tcs = append(tcs, tc{ID: fmt.Sprintf("call_%d_%s", i, c.name), Type: "function", Function: fn{c.name, args}})
	}
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "tool_calls",
			"message": map[string]any{"role": "assistant", "content": nil, "tool_calls": tcs}}},
	})
	return reply{200, string(b)}
}

// text answers with a plain assistant message.
func text(s string) reply {
	b, _ := json.Marshal(map[string]any{
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": s}}},
	})
	return reply{200, string(b)}
}

// fakeGateway stands in for the gateway's agent API: the three routes the agent
// uses, and cancellation. It checks the bearer key, decodes bodies strictly, checks
// that a purchase request's items add up, and records everything.
type fakeGateway struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	purchases   []apiclient.PurchaseRequest
	rejects     map[string]apiclient.RejectRequest
	redemptions []redemptionSeen
	answered    map[string]bool // tx -> a proposal or rejection was made
	byKey       map[string]apiclient.RedeemRequest
}

type redemptionSeen struct {
	key  string
	body apiclient.RedeemRequest
}

func newFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	g := &fakeGateway{t: t, rejects: map[string]apiclient.RejectRequest{}, answered: map[string]bool{},
		byKey: map[string]apiclient.RedeemRequest{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/purchase-requests", g.purchase)
	mux.HandleFunc("POST /v1/transactions/{tx}/reject", g.reject)
	mux.HandleFunc("POST /v1/redemptions", g.redeem)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+gatewayKey {
			problem(w, 401, "unauthorized")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func problem(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"status":%d,"code":%q}`, status, code)
}

func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func (g *fakeGateway) purchase(w http.ResponseWriter, r *http.Request) {
	var pr apiclient.PurchaseRequest
	if err := decodeStrict(r, &pr); err != nil {
		problem(w, 400, "bad_request")
		return
	}
	var sum wire.Amount
	for _, it := range pr.Items {
		sum += it.UnitAmount * wire.Amount(it.Qty)
	}
	if sum != pr.Total || pr.Kind != wire.KindOneOff || pr.Tx == "" {
		problem(w, 422, "bad_terms")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.purchases = append(g.purchases, pr)
	g.answered[pr.Tx] = true
	w.WriteHeader(201)
	fmt.Fprintf(w, `{"tx":%q,"state":"prompted","consent_hash":"h","expires_at":"2030-01-01T00:00:00Z"}`, pr.Tx)
}

func (g *fakeGateway) reject(w http.ResponseWriter, r *http.Request) {
	var rr apiclient.RejectRequest
	if err := decodeStrict(r, &rr); err != nil {
		problem(w, 400, "bad_request")
		return
	}
	tx := r.PathValue("tx")
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.answered[tx] {
		problem(w, 409, "already_answered")
		return
	}
	g.answered[tx] = true
	g.rejects[tx] = rr
	fmt.Fprintf(w, `{"tx":%q,"state":"rejected","code":%q}`, tx, rr.Code)
}

func (g *fakeGateway) redeem(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	var rr apiclient.RedeemRequest
	if err := decodeStrict(r, &rr); err != nil || key == "" {
		problem(w, 400, "bad_request")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	status := 201
	if _, replay := g.byKey[key]; replay {
		status = 200
	}
	g.byKey[key] = rr
	g.redemptions = append(g.redemptions, redemptionSeen{key, rr})
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"redemption":"red_%s","amount":%d,"currency":%q,"payee":%q}`, key, rr.Amount, rr.Currency, rr.Payee)
}

func (g *fakeGateway) snapshot() ([]apiclient.PurchaseRequest, map[string]apiclient.RejectRequest, []redemptionSeen) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rejects := map[string]apiclient.RejectRequest{}
	for k, v := range g.rejects {
		rejects[k] = v
	}
	return append([]apiclient.PurchaseRequest(nil), g.purchases...), rejects, append([]redemptionSeen(nil), g.redemptions...)
}

// contains reports whether any of the model requests' bodies or headers holds s.
func contains(reqs []modelRequest, s string) bool {
	for _, r := range reqs {
		if strings.Contains(r.body, s) {
			return true
		}
		for _, vs := range r.header {
			for _, v := range vs {
				if strings.Contains(v, s) {
					return true
				}
			}
		}
	}
	return false
}
