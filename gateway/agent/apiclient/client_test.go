package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent/apiclient"
)

const key = "esk_test_key"

// seen is one request the test server received.
type seen struct {
	method, path, auth, idem, body string
}

// server answers each request with the next of its scripted answers (status, body)
// and records what it received.
type server struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers []answer
	got     []seen
}

type answer struct {
	status int
	body   string
}

func newServer(t *testing.T, answers ...answer) *server {
	t.Helper()
	s := &server{answers: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key"), string(b)})
		a := answer{500, `{"code":"script_exhausted"}`}
		if len(s.answers) > 0 {
			a, s.answers = s.answers[0], s.answers[1:]
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.got...)
}

func client(t *testing.T, s *server, retries int) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(apiclient.Config{BaseURL: s.srv.URL + "/", APIKey: key, Retries: retries, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []apiclient.Config{
		{APIKey: key},
		{BaseURL: "ftp://x", APIKey: key},
		{BaseURL: "http://", APIKey: key},
		{BaseURL: "http://127.0.0.1:1"},
		{BaseURL: "http://127.0.0.1:1", APIKey: key, Backoff: -1},
	} {
		if _, err := apiclient.New(cfg); !errors.Is(err, apiclient.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

// A purchase request is sent with the key, and a transient failure is retried.
func TestRequestPurchaseRetriesTransient(t *testing.T) {
	s := newServer(t,
		answer{503, `{"code":"unavailable","title":"busy"}`},
		answer{429, ``},
		answer{201, `{"tx":"tx_1","state":"prompted","consent_hash":"h","expires_at":"2030-01-01T00:00:00Z"}`})
	pr := apiclient.PurchaseRequest{Tx: "tx_1", Merchant: wire.Merchant{ID: "m", Name: "M"},
		Items: []wire.Item{{SKU: "a", Name: "A", Qty: 2, UnitAmount: 550}}, Total: 1100, Currency: "USD", Kind: wire.KindOneOff}
	tx, err := client(t, s, 3).RequestPurchase(t.Context(), pr)
	if err != nil || tx.State != wire.TxPrompted || tx.ConsentHash != "h" {
		t.Fatalf("RequestPurchase = %+v, %v", tx, err)
	}
	got := s.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	var body apiclient.PurchaseRequest
	if err := json.Unmarshal([]byte(got[2].body), &body); err != nil || body.Total != 1100 || body.Items[0].UnitAmount != 550 {
		t.Fatalf("body %s: %v", got[2].body, err)
	}
	if got[2].path != "/v1/purchase-requests" || got[2].auth != "Bearer "+key || strings.Contains(got[2].body, "supersedes") {
		t.Fatalf("request %+v", got[2])
	}
}

// A purchase the agent starts: no tx, the user and device, the Idempotency-Key on
// every try; the gateway's tx is answered. Without a key, with a tx, without a user,
// or answered without a tx, it fails.
func TestStartPurchase(t *testing.T) {
	pr := apiclient.PurchaseRequest{Merchant: wire.Merchant{ID: "m", Name: "M"}, User: "usr_ann", Device: "dev_1",
		Items: []wire.Item{{SKU: "tip", Name: "Tip", Qty: 1, UnitAmount: 200}}, Total: 200, Currency: "USD",
		Kind: wire.KindTip, Conditions: &wire.Conditions{Parent: "tx_1"}}
	s := newServer(t, answer{503, `{"code":"unavailable"}`}, answer{201, `{"tx":"tx_9","state":"mandated"}`})
	tx, err := client(t, s, 2).StartPurchase(t.Context(), pr, "tip-tx_1")
	if err != nil || tx.Tx != "tx_9" || tx.State != wire.TxMandated {
		t.Fatalf("StartPurchase = %+v, %v", tx, err)
	}
	got := s.requests()
	if len(got) != 2 || got[0].idem != "tip-tx_1" || got[1].idem != "tip-tx_1" || got[1].path != "/v1/purchase-requests" {
		t.Fatalf("requests %+v", got)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(got[1].body), &body); err != nil || body["tx"] != "" || body["user"] != "usr_ann" || body["device"] != "dev_1" {
		t.Fatalf("body %s: %v", got[1].body, err)
	}

	for _, tc := range []struct {
		name   string
		pr     apiclient.PurchaseRequest
		key    string
		answer string
		want   error
	}{
		{"no key", pr, "", "", apiclient.ErrNoIdempotencyKey},
		{"a tx", apiclient.PurchaseRequest{Tx: "tx_2", User: "usr_ann"}, "k", "", apiclient.ErrInvalidRequest},
		{"no user", apiclient.PurchaseRequest{}, "k", "", apiclient.ErrInvalidRequest},
		{"no tx answered", pr, "k", `{"state":"prompted"}`, apiclient.ErrBadAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var answers []answer
			if tc.answer != "" {
				answers = append(answers, answer{201, tc.answer})
			}
			s := newServer(t, answers...)
			if _, err := client(t, s, 0).StartPurchase(t.Context(), tc.pr, tc.key); !errors.Is(err, tc.want) {
				t.Fatalf("StartPurchase = %v, want %v", err, tc.want)
			}
			if n := len(s.requests()); n != len(answers) {
				t.Fatalf("%d requests sent, want %d", n, len(answers))
			}
		})
	}
}

// A refusal is final: not retried, its problem code readable with Code.
func TestRefusalIsNotRetried(t *testing.T) {
	s := newServer(t, answer{409, `{"type":"about:blank","title":"Conflict","status":409,"code":"already_answered","detail":"tx has an answer"}`})
	_, err := client(t, s, 3).Reject(t.Context(), "tx 1", apiclient.RejectRequest{Code: "not_understood", Reason: "Sorry."})
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 409 || apiclient.Code(err) != "already_answered" || ae.Transient() {
		t.Fatalf("Reject = %v", err)
	}
	if !strings.Contains(err.Error(), "409 already_answered: tx has an answer") {
		t.Fatalf("error text %q", err)
	}
	if got := s.requests(); len(got) != 1 || got[0].path != "/v1/transactions/tx%201/reject" {
		t.Fatalf("requests %+v", got)
	}
	if apiclient.Code(nil) != "" || apiclient.Code(errors.New("x")) != "" {
		t.Fatal("Code of a non-refusal")
	}
}

// Retries stop at Retries; 409 in_flight is transient.
func TestRetriesAreBounded(t *testing.T) {
	in := answer{409, `{"code":"in_flight"}`}
	s := newServer(t, in, in, in, in)
	_, _, err := client(t, s, 2).Redeem(t.Context(), apiclient.RedeemRequest{Mandate: "tok", Amount: 1, Currency: "USD", Payee: "m"}, "redeem-m1")
	if apiclient.Code(err) != "in_flight" {
		t.Fatalf("Redeem = %v", err)
	}
	got := s.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 1 + 2 retries", len(got))
	}
	for _, r := range got {
		if r.idem != "redeem-m1" {
			t.Fatalf("Idempotency-Key %q on a retry", r.idem)
		}
	}
}

func TestRedeemChecksTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       error
	}{
		{"matches", `{"redemption":"r1","amount":1100,"currency":"USD"}`, nil},
		{"other amount", `{"redemption":"r1","amount":1000,"currency":"USD"}`, apiclient.ErrBadAnswer},
		{"no id", `{"amount":1100,"currency":"USD"}`, apiclient.ErrBadAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, answer{201, tc.body})
			r, status, err := client(t, s, 0).Redeem(t.Context(), apiclient.RedeemRequest{Mandate: "tok", Amount: 1100, Currency: "USD", Payee: "m"}, "k")
			if !errors.Is(err, tc.want) || status != 201 || (tc.want == nil && r.Redemption != "r1") {
				t.Fatalf("Redeem = %+v, %d, %v", r, status, err)
			}
		})
	}
}

// An answer over MaxResponseBytes is cut there and fails to decode, not read whole.
func TestAnswerIsBounded(t *testing.T) {
	huge := `{"tx":"` + strings.Repeat("x", apiclient.MaxResponseBytes) + `"}`
	s := newServer(t, answer{201, huge})
	_, err := client(t, s, 0).RequestPurchase(t.Context(), apiclient.PurchaseRequest{Tx: "t"})
	if err == nil || !strings.Contains(err.Error(), "decode answer") {
		t.Fatalf("RequestPurchase = %v", err)
	}
}

// A cancelled context stops the retries.
func TestContextStopsRetries(t *testing.T) {
	first := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		once.Do(func() { close(first) })
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	c, err := apiclient.New(apiclient.Config{BaseURL: srv.URL, APIKey: key, Retries: 5, Backoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := c.Do(ctx, http.MethodPost, "/v1/x", "", map[string]int{}, nil); done <- err }()
	<-first
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
}
