package refagent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// fakeGateway implements the three REST endpoints the agent uses, checking what it
// is sent the way gateway/api will: bearer key, strict JSON bodies, integer amounts,
// terms that validate for their kind (wire.Terms.Validate: items adding up,
// conditions the kind takes), Idempotency-Key on redemptions with the ledger's replay
// semantics (a refusal is final for its key too). Recurring mandates are paid once
// per redemption under a period cap and a count, the period moved on by the test
// (nextPeriod); a tip is answered "mandated" when its parent's tip cap covers it.
// A purchase the agent starts itself (no tx, a user) needs an Idempotency-Key; the
// fake picks its tx ("tx_started_<n>") and replays its answer for the same key and
// body, as gateway/api does.
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
	refused   map[string]string       // idempotency key -> the problem code it was refused with
	calls     []call
	fail      map[string]int // path -> how many 503s to answer before succeeding
	mandates  map[string]fakeMandate
	period    int                      // the current period of recurring mandates
	payments  map[string][]fakePayment // mandate id -> its payments
	tipped    map[string]wire.Amount   // parent tx -> tips granted under its tip cap
	started   map[string]startedAnswer // Idempotency-Key -> a purchase the agent started
	// lose is how many answers to purchases the agent starts are lost after the
	// purchase was made: answered 503, as a proxy would when the gateway's answer
	// did not reach it.
	lose int
	// hold, when set, holds the answers to purchases the agent starts until it is
	// closed (the purchase is made first).
	hold chan struct{}
}

// startedAnswer is the answer to a purchase the agent started, replayed for its
// Idempotency-Key.
type startedAnswer struct {
	body, answer string
}

type fakePayment struct {
	period int
	amount wire.Amount
}

type call struct {
	method, path, key string
	status            int
}

type fakeMandate struct {
	id, tx, payee, currency string
	cap                     wire.Amount
	kind                    wire.Kind   // "": one_off
	periodCap               wire.Amount // recurring
	times                   int         // recurring: 0 no count
}

type purchaseBody struct {
	Tx         string           `json:"tx"`
	Merchant   wire.Merchant    `json:"merchant"`
	Items      []wire.Item      `json:"items"`
	Total      wire.Amount      `json:"total"`
	Currency   string           `json:"currency"`
	Kind       wire.Kind        `json:"kind"`
	Conditions *wire.Conditions `json:"conditions,omitempty"`
	Summary    string           `json:"summary"`
	User       string           `json:"user,omitempty"`
	Device     string           `json:"device,omitempty"`
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
		refused: map[string]string{}, fail: map[string]int{}, mandates: map[string]fakeMandate{},
		payments: map[string][]fakePayment{}, tipped: map[string]wire.Amount{}, started: map[string]startedAnswer{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/purchase-requests", g.purchase)
	mux.HandleFunc("POST /v1/transactions/{tx}/reject", g.reject)
	mux.HandleFunc("POST /v1/redemptions", g.redeem)
	mux.HandleFunc("POST /v1/transactions/{tx}/cancellation", g.cancellation)
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

// nextPeriod starts the next period of every recurring mandate.
func (g *fakeGateway) nextPeriod() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.period++
}

// paymentsOf returns the amounts paid under a recurring mandate.
func (g *fakeGateway) paymentsOf(mandate string) []wire.Amount {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []wire.Amount
	for _, p := range g.payments[mandate] {
		out = append(out, p.amount)
	}
	return out
}

// redeemedAmount returns the amount redeemed under an Idempotency-Key, or -1.
func (g *fakeGateway) redeemedAmount(key string) wire.Amount {
	g.mu.Lock()
	defer g.mu.Unlock()
	var r redemptionAnswer
	if json.Unmarshal([]byte(g.redeemed[key]), &r) != nil {
		return -1
	}
	return r.Amount
}

type redemptionAnswer struct {
	Amount wire.Amount `json:"amount"`
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

// refusalStatus is the HTTP status of a ledger refusal (authz.ErrorCode.HTTPStatus).
func refusalStatus(code string) int {
	switch code {
	case "already_redeemed":
		return http.StatusConflict
	case "exhausted":
		return http.StatusGone
	}
	return http.StatusUnprocessableEntity
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

// startedTx returns the tx the fake picked for the purchase the agent started with
// Idempotency-Key key, or "".
func (g *fakeGateway) startedTx(key string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var a struct {
		Tx string `json:"tx"`
	}
	if json.Unmarshal([]byte(g.started[key].answer), &a) != nil {
		return ""
	}
	return a.Tx
}

func (g *fakeGateway) purchase(w http.ResponseWriter, r *http.Request) {
	var b purchaseBody
	raw, ok := decode(w, r, &b)
	if !ok {
		g.t.Errorf("purchase request body does not decode")
		return
	}
	if b.Tx == "" {
		g.start(w, r, b, string(raw))
		return
	}
	if b.User != "" || b.Device != "" {
		g.t.Errorf("purchase request for %s names a user or device", b.Tx)
		problem(w, http.StatusBadRequest, "bad_request")
		return
	}
	g.propose(w, b)
}

// start makes a purchase the agent starts itself: the fake picks the tx, and the
// same Idempotency-Key with the same body replays the first answer.
func (g *fakeGateway) start(w http.ResponseWriter, r *http.Request, b purchaseBody, raw string) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" || b.User == "" {
		g.t.Errorf("a purchase the agent starts without an Idempotency-Key (%q) or user (%q)", key, b.User)
		problem(w, http.StatusBadRequest, "idempotency_key_required")
		return
	}
	g.mu.Lock()
	prev, replay := g.started[key]
	if !replay {
		b.Tx = fmt.Sprintf("tx_started_%d", len(g.started)+1)
	}
	g.mu.Unlock()
	if replay {
		if prev.body != raw {
			problem(w, http.StatusUnprocessableEntity, "idempotency_key_reused")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, prev.answer)
		return
	}
	rec := httptest.NewRecorder()
	g.propose(rec, b)
	g.mu.Lock()
	if rec.Code == http.StatusCreated {
		g.started[key] = startedAnswer{body: raw, answer: rec.Body.String()}
	}
	lose, hold := g.lose > 0, g.hold
	if lose {
		g.lose--
	}
	g.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done(): // the agent stopped: the test is over
		}
	}
	if lose {
		problem(w, http.StatusServiceUnavailable, "unavailable")
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes()) // a test server's write to the agent; a failure shows in the agent
}

// propose checks a purchase request for b.Tx and answers it.
func (g *fakeGateway) propose(w http.ResponseWriter, b purchaseBody) {
	// The terms the gateway builds from the request must validate: a prompt that
	// expires in five minutes, from the real clock as the agent's own.
	terms := wire.Terms{Tx: b.Tx, Device: "dev_1", Session: "ses_1", Merchant: b.Merchant, Items: b.Items,
		Total: b.Total, Currency: b.Currency, Kind: b.Kind, Conditions: b.Conditions,
		ExpiresAt: time.Now().Add(5 * time.Minute).UnixMilli(), Nonce: "n0nce"}
	if err := terms.Validate(); err != nil || b.Summary == "" || len(b.Summary) > wire.MaxTextBytes/2 {
		g.t.Errorf("bad purchase request %+v: %v", b, err)
		problem(w, http.StatusUnprocessableEntity, "bad_request")
		return
	}
	g.mu.Lock()
	_, dup := g.purchases[b.Tx]
	state := "prompted"
	if !dup {
		g.purchases[b.Tx] = b
		if b.Kind == wire.KindTip {
			parent, ok := g.purchases[b.Conditions.Parent]
			if ok && parent.Conditions != nil && g.tipped[parent.Tx]+b.Total <= parent.Conditions.TipCap {
				g.tipped[parent.Tx] += b.Total
				state = "mandated"
			}
		}
	}
	g.mu.Unlock()
	if dup {
		problem(w, http.StatusConflict, "already_requested")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"tx":%q,"state":%q,"consent_hash":"h4sh","expires_at":1760000000000}`, b.Tx, state)
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
	recurring := m.kind == wire.KindRecurring
	if recurring && !strings.HasPrefix(key, "redeem-"+m.id+":") || !recurring && key != "redeem-"+m.id {
		g.t.Errorf("Idempotency-Key = %q for a %s mandate %s", key, m.kind, m.id)
	}
	if prev, ok := g.keyBody[key]; ok {
		switch {
		case prev != string(raw):
			problem(w, http.StatusUnprocessableEntity, "idempotency_conflict")
		case g.refused[key] != "": // a refusal is final for its key
			problem(w, refusalStatus(g.refused[key]), g.refused[key])
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK) // a replay: the original answer
			fmt.Fprint(w, g.redeemed[key])
		}
		return
	}
	refuse := func(code string) {
		g.keyBody[key], g.refused[key] = string(raw), code
		problem(w, refusalStatus(code), code)
	}
	var inPeriod wire.Amount
	for _, p := range g.payments[m.id] {
		if p.period == g.period {
			inPeriod += p.amount
		}
	}
	switch {
	case !recurring && g.byMandate[m.id] != "":
		refuse("already_redeemed")
		return
	case b.Amount > m.cap:
		refuse("over_cap")
		return
	case b.Payee != m.payee || b.Currency != m.currency:
		refuse("mismatch")
		return
	case recurring && m.times > 0 && len(g.payments[m.id]) >= m.times:
		refuse("exhausted")
		return
	case recurring && inPeriod+b.Amount > m.periodCap:
		refuse("over_period_cap")
		return
	}
	answer := fmt.Sprintf(`{"redemption":"rdm_%s_%d","mandate":%q,"tx":%q,"amount":%d,"currency":%q,"payee":%q,"redeemed_at":1760000000000}`,
		m.id, len(g.payments[m.id]), m.id, m.tx, b.Amount, b.Currency, b.Payee)
	g.keyBody[key], g.redeemed[key], g.byMandate[m.id] = string(raw), answer, key
	g.payments[m.id] = append(g.payments[m.id], fakePayment{period: g.period, amount: b.Amount})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprint(w, answer)
}

// cancellation accepts the merchant's answer to a cancellation.
func (g *fakeGateway) cancellation(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Accept bool `json:"accept"`
	}
	if _, ok := decode(w, r, &b); !ok || !b.Accept {
		g.t.Errorf("cancellation body does not decode or does not accept")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"tx":%q,"state":"cancelled"}`, r.PathValue("tx"))
}
