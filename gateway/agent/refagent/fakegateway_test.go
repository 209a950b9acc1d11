package refagent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/earshot/earshot/device/wire"
)

// fakeGateway implements the three REST endpoints the agent uses, checking what it
// is sent the way gateway/api will: bearer key, strict JSON bodies, integer amounts,
// items adding up, Idempotency-Key on redemptions with ACP replay semantics.
type fakeGateway struct {
	t   testing.TB
	key string
	srv *httptest.Server

	mu        sync.Mutex
	purchases map[string]purchaseBody // by tx
	rejects   map[string]rejectBody   // by tx
	redeemed  map[string]string       // idempotency key -> answer body
	keyBody   map[string]string       // idempotency key -> request body
	byMandate map[string]string       // mandate id -> idempotency key that redeemed it
	calls     []call
	fail      map[string]int // path -> how many 503s to answer before succeeding
	mandates  map[string]fakeMandate
}

type call struct {
	method, path, key string
	status            int
}

type fakeMandate struct {
	id, tx, payee, currency string
	cap                     wire.Amount
}

type purchaseBody struct {
	Tx       string        `json:"tx"`
	Merchant wire.Merchant `json:"merchant"`
	Items    []wire.Item   `json:"items"`
	Total    wire.Amount   `json:"total"`
	Currency string        `json:"currency"`
	Kind     wire.Kind     `json:"kind"`
	Summary  string        `json:"summary"`
}

type rejectBody struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

type redeemBody struct {
	Mandate  string      `json:"mandate"`
	Amount   wire.Amount `json:"amount"`
	Currency string      `json:"currency"`
	Payee    string      `json:"payee"`
}

func newFakeGateway(t testing.TB, key string) *fakeGateway {
	t.Helper()
	g := &fakeGateway{
		t: t, key: key,
		purchases: map[string]purchaseBody{}, rejects: map[string]rejectBody{},
		redeemed: map[string]string{}, keyBody: map[string]string{}, byMandate: map[string]string{},
		fail: map[string]int{}, mandates: map[string]fakeMandate{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/purchase-requests", g.purchase)
	mux.HandleFunc("POST /v1/transactions/{tx}/reject", g.reject)
	mux.HandleFunc("POST /v1/redemptions", g.redeem)
	g.srv = httptest.NewServer(g.middleware(mux))
	t.Cleanup(g.srv.Close)
	return g
}

// mandate registers a mandate the fake gateway issued and returns its token.
func (g *fakeGateway) mandate(m fakeMandate) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	token := "eyJhbGciOiJFUzI1NiJ9." + m.id + ".sig"
	g.mandates[token] = m
	return token
}

func (g *fakeGateway) failNext(path string, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail[path] = n
}

func (g *fakeGateway) snapshot() (calls []call, purchases map[string]purchaseBody, rejects map[string]rejectBody) {
	g.mu.Lock()
	defer g.mu.Unlock()
	purchases, rejects = map[string]purchaseBody{}, map[string]rejectBody{}
	for k, v := range g.purchases {
		purchases[k] = v
	}
	for k, v := range g.rejects {
		rejects[k] = v
	}
	return append([]call(nil), g.calls...), purchases, rejects
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(s int) { r.status = s; r.ResponseWriter.WriteHeader(s) }

func (g *fakeGateway) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			g.mu.Lock()
			g.calls = append(g.calls, call{r.Method, r.URL.Path, r.Header.Get("Idempotency-Key"), rec.status})
			g.mu.Unlock()
		}()
		if r.Header.Get("Authorization") != "Bearer "+g.key {
			problem(rec, http.StatusUnauthorized, "unauthorized")
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			g.t.Errorf("%s: Content-Type %q", r.URL.Path, ct)
		}
		g.mu.Lock()
		fail := g.fail[r.URL.Path]
		if fail > 0 {
			g.fail[r.URL.Path] = fail - 1
		}
		g.mu.Unlock()
		if fail > 0 {
			problem(rec, http.StatusServiceUnavailable, "unavailable")
			return
		}
		next.ServeHTTP(rec, r)
	})
}

func problem(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"about:blank","title":%q,"status":%d,"code":%q}`, http.StatusText(status), status, code)
}

// decode reads a JSON body strictly (unknown fields and non-integer amounts are
// refused) and returns it raw.
func decode(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad_request")
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		problem(w, http.StatusBadRequest, "bad_request")
		return nil, false
	}
	return raw, true
}

func (g *fakeGateway) purchase(w http.ResponseWriter, r *http.Request) {
	var b purchaseBody
	if _, ok := decode(w, r, &b); !ok {
		g.t.Errorf("purchase request body does not decode")
		return
	}
	var sum wire.Amount
	for _, it := range b.Items {
		sum += it.UnitAmount * wire.Amount(it.Qty)
	}
	if b.Tx == "" || b.Merchant.ID == "" || b.Merchant.Name == "" || len(b.Items) == 0 || sum != b.Total ||
		wire.ValidCurrency(b.Currency) != nil || b.Kind != wire.KindOneOff || b.Summary == "" {
		g.t.Errorf("bad purchase request %+v", b)
		problem(w, http.StatusUnprocessableEntity, "bad_request")
		return
	}
	g.mu.Lock()
	_, dup := g.purchases[b.Tx]
	if !dup {
		g.purchases[b.Tx] = b
	}
	g.mu.Unlock()
	if dup {
		problem(w, http.StatusConflict, "already_requested")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"tx":%q,"state":"prompted","consent_hash":"h4sh","expires_at":1760000000000}`, b.Tx)
}

func (g *fakeGateway) reject(w http.ResponseWriter, r *http.Request) {
	var b rejectBody
	if _, ok := decode(w, r, &b); !ok {
		g.t.Errorf("reject body does not decode")
		return
	}
	if b.Code != "not_understood" || b.Reason == "" {
		g.t.Errorf("bad reject %+v", b)
	}
	g.mu.Lock()
	g.rejects[r.PathValue("tx")] = b
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"tx":%q,"state":"rejected"}`, r.PathValue("tx"))
}

func (g *fakeGateway) redeem(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	var b redeemBody
	raw, ok := decode(w, r, &b)
	if !ok {
		g.t.Errorf("redemption body does not decode")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.mandates[b.Mandate]
	if !ok {
		problem(w, http.StatusUnprocessableEntity, "bad_mandate")
		return
	}
	if key != "redeem-"+m.id {
		g.t.Errorf("Idempotency-Key = %q, want redeem-%s", key, m.id)
	}
	if prev, ok := g.keyBody[key]; ok {
		if prev != string(raw) {
			problem(w, http.StatusUnprocessableEntity, "idempotency_key_reused")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK) // a replay: the original answer
		fmt.Fprint(w, g.redeemed[key])
		return
	}
	switch {
	case g.byMandate[m.id] != "":
		problem(w, http.StatusConflict, "already_redeemed")
		return
	case b.Amount > m.cap:
		problem(w, http.StatusUnprocessableEntity, "over_cap")
		return
	case b.Payee != m.payee || b.Currency != m.currency:
		problem(w, http.StatusUnprocessableEntity, "mismatch")
		return
	}
	answer := fmt.Sprintf(`{"redemption":"rdm_%s","mandate":%q,"tx":%q,"amount":%d,"currency":%q,"payee":%q,"redeemed_at":1760000000000}`,
		m.id, m.id, m.tx, b.Amount, b.Currency, b.Payee)
	g.keyBody[key], g.redeemed[key], g.byMandate[m.id] = string(raw), answer, key
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprint(w, answer)
}
