package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

func TestNewLedgerConfig(t *testing.T) {
	ks := newKeySet(t, genKey(t))
	for name, cfg := range map[string]LedgerConfig{
		"no store":  {Keys: ks, Issuer: testIssuer},
		"no keys":   {Store: kv.NewMemory(), Issuer: testIssuer},
		"no issuer": {Store: kv.NewMemory(), Keys: ks},
	} {
		if _, err := NewLedger(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestRecord(t *testing.T) {
	f := newFixture(t, nil)
	_, c := f.issue(t, testAgent, 0)
	e, err := f.ledger.Get(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != StateIssued || !reflect.DeepEqual(e.Claims, c) || e.UpdatedAt != t0.UnixMilli() {
		t.Fatalf("entry %+v", e)
	}
	err = f.mem.Update(context.Background(), func(txn kv.Txn) error { return f.ledger.Record(txn, c) })
	if !errors.Is(err, ErrMandateExists) {
		t.Fatalf("second record: %v, want ErrMandateExists", err)
	}
	other := c
	other.ID, other.Issuer = "mnd_other", "https://elsewhere.test"
	err = f.mem.Update(context.Background(), func(txn kv.Txn) error { return f.ledger.Record(txn, other) })
	if !errors.Is(err, ErrInvalidClaims) {
		t.Fatalf("foreign issuer: %v, want ErrInvalidClaims", err)
	}
	_, err = f.ledger.Get(context.Background(), "mnd_nope")
	wantCode(t, err, CodeNotFound)
}

func TestRedeemOnce(t *testing.T) {
	f := newFixture(t, nil)
	tok, c := f.issue(t, testAgent, 0)

	const n = 50
	type result struct {
		red *Redemption
		err error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			red, _, err := f.ledger.Redeem(context.Background(), request(tok, c, fmt.Sprintf("key-%d", i)))
			results <- result{red, err}
		})
	}
	wg.Wait()
	close(results)
	var won []*Redemption
	refused := 0
	for r := range results {
		switch {
		case r.err == nil:
			won = append(won, r.red)
		case CodeOf(r.err) == CodeAlreadyRedeemed:
			refused++
		default:
			t.Errorf("unexpected error: %v", r.err)
		}
	}
	if len(won) != 1 || refused != n-1 {
		t.Fatalf("%d successes and %d already_redeemed, want 1 and %d", len(won), refused, n-1)
	}
	red := won[0]
	if !strings.HasPrefix(red.ID, "rdm_") || red.Mandate != c.ID || red.Amount != 950 || red.Agent != testAgent ||
		red.Tx != c.Tx || red.RedeemedAt != t0.UnixMilli() {
		t.Fatalf("redemption %+v", red)
	}
	e, err := f.ledger.Get(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != StateRedeemed || !reflect.DeepEqual(e.Redemption, red) {
		t.Fatalf("entry %+v", e)
	}
}

func TestRedeemIdempotency(t *testing.T) {
	f := newFixture(t, nil)
	tok, c := f.issue(t, testAgent, 5*time.Minute)
	req := request(tok, c, "order-42")
	req.Amount = 900

	first, replayed, err := f.ledger.Redeem(context.Background(), req)
	if err != nil || replayed {
		t.Fatalf("first: replayed %v, %v", replayed, err)
	}
	// A replay, even after the mandate expired, gets the same answer.
	f.clock.Set(t0.Add(time.Hour))
	again, replayed, err := f.ledger.Redeem(context.Background(), req)
	if err != nil || !replayed || !reflect.DeepEqual(again, first) {
		t.Fatalf("replay: %+v replayed %v, %v; want %+v", again, replayed, err, first)
	}

	conflict := req
	conflict.Amount = 901
	_, _, err = f.ledger.Redeem(context.Background(), conflict)
	wantCode(t, err, CodeIdempotencyConflict)

	// The same key of another agent is another key.
	other := req
	other.Agent = "agent_other"
	_, replayed, err = f.ledger.Redeem(context.Background(), other)
	wantCode(t, err, CodeWrongAgent)
	if replayed {
		t.Fatal("another agent's key was replayed")
	}
}

// gate is a kv.Store whose first Update blocks until released, holding a request
// inside the ledger.
type gate struct {
	kv.Store
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Update(ctx context.Context, fn func(kv.Txn) error) error {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Store.Update(ctx, fn)
}

func TestRedeemInFlight(t *testing.T) {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	f := newFixture(t, func(cfg *LedgerConfig) { g.Store = cfg.Store; cfg.Store = g })
	tok, c := f.issue(t, testAgent, 0)
	req := request(tok, c, "dup")

	release := sync.OnceFunc(func() { close(g.release) })
	defer release() // never leave the first request blocked, even on failure
	done := make(chan error, 1)
	go func() {
		_, _, err := f.ledger.Redeem(context.Background(), req)
		done <- err
	}()
	<-g.entered
	_, _, err := f.ledger.Redeem(context.Background(), req)
	wantCode(t, err, CodeInFlight)
	if !CodeInFlight.Retryable() {
		t.Fatal("in_flight is not retryable")
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("first request: %v", err)
	}
	// Released: the duplicate now gets the first one's answer.
	_, replayed, err := f.ledger.Redeem(context.Background(), req)
	if err != nil || !replayed {
		t.Fatalf("after the first finished: replayed %v, %v", replayed, err)
	}
}

func TestRedeemRefusals(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, f *fixture, r *RedeemRequest)
		code   ErrorCode
		final  bool // recorded: a replay gets the same refusal
		state  State
	}{
		{"over cap", func(_ *testing.T, _ *fixture, r *RedeemRequest) { r.Amount = 951 }, CodeOverCap, true, StateIssued},
		{"wrong payee", func(_ *testing.T, _ *fixture, r *RedeemRequest) { r.Payee = "m_other" }, CodePayeeMismatch, true, StateIssued},
		{"wrong currency", func(_ *testing.T, _ *fixture, r *RedeemRequest) { r.Currency = "EUR" }, CodeCurrencyMismatch, true, StateIssued},
		{"wrong agent", func(_ *testing.T, _ *fixture, r *RedeemRequest) { r.Agent = "agent_thief" }, CodeWrongAgent, true, StateIssued},
		{"after expiry", func(_ *testing.T, f *fixture, _ *RedeemRequest) { f.clock.Set(t0.Add(10 * time.Minute)) },
			CodeMandateExpired, true, StateExpired},
		{"revoked", func(t *testing.T, f *fixture, r *RedeemRequest) {
			if err := f.ledger.Revoke(context.Background(), claimsOf(t, r.Token).ID, "user said cancel"); err != nil {
				t.Fatal(err)
			}
		}, CodeRevoked, true, StateRevoked},
		{"zero amount", func(_ *testing.T, _ *fixture, r *RedeemRequest) { r.Amount = 0 }, CodeBadRequest, false, StateIssued},
		{"no idempotency key", func(_ *testing.T, _ *fixture, r *RedeemRequest) { r.IdempotencyKey = "" }, CodeBadRequest, false, StateIssued},
		{"long idempotency key", func(_ *testing.T, _ *fixture, r *RedeemRequest) { r.IdempotencyKey = strings.Repeat("k", 256) },
			CodeBadRequest, false, StateIssued},
		{"control character in key", func(_ *testing.T, _ *fixture, r *RedeemRequest) { r.IdempotencyKey = "a\nb" }, CodeBadRequest, false, StateIssued},
		{"bad currency", func(_ *testing.T, _ *fixture, r *RedeemRequest) { r.Currency = "usd" }, CodeBadRequest, false, StateIssued},
		{"garbage token", func(_ *testing.T, _ *fixture, r *RedeemRequest) { r.Token = "a.b.c" }, CodeMandateInvalid, false, StateIssued},
		{"token from another gateway", func(t *testing.T, _ *fixture, r *RedeemRequest) {
			var err error
			if r.Token, err = newKeySet(t, genKey(t)).Sign(claimsOf(t, r.Token)); err != nil {
				t.Fatal(err)
			}
		}, CodeMandateInvalid, false, StateIssued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			tok, c := f.issue(t, testAgent, 10*time.Minute)
			req := request(tok, c, "k1")
			tt.mutate(t, f, &req)
			_, replayed, err := f.ledger.Redeem(context.Background(), req)
			wantCode(t, err, tt.code)
			if replayed {
				t.Fatal("first answer marked replayed")
			}
			_, replayed, err = f.ledger.Redeem(context.Background(), req)
			wantCode(t, err, tt.code)
			if replayed != tt.final {
				t.Fatalf("second answer replayed %v, want %v", replayed, tt.final)
			}
			e, err := f.ledger.Get(context.Background(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if e.State != tt.state || e.Redemption != nil {
				t.Fatalf("entry state %s redemption %+v, want %s and none", e.State, e.Redemption, tt.state)
			}
			if tt.state != StateIssued {
				return
			}
			// The refusal consumed nothing: a correct request with a new key succeeds.
			f.clock.Set(t0)
			if _, _, err := f.ledger.Redeem(context.Background(), request(tok, c, "k2")); err != nil {
				t.Fatalf("correct request after the refusal: %v", err)
			}
		})
	}
}

func TestRedeemUnknownMandate(t *testing.T) {
	f := newFixture(t, nil)
	c := testClaims(t)
	tok, err := f.keys.Sign(c) // signed, never recorded
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.ledger.Redeem(context.Background(), request(tok, c, "k"))
	wantCode(t, err, CodeNotFound)
}

func TestRedeemPartialAmount(t *testing.T) {
	f := newFixture(t, nil)
	tok, c := f.issue(t, testAgent, 0)
	req := request(tok, c, "k")
	req.Amount = 1
	red, _, err := f.ledger.Redeem(context.Background(), req)
	if err != nil || red.Amount != 1 {
		t.Fatalf("redemption %+v, %v", red, err)
	}
}

func TestOnRedeem(t *testing.T) {
	fail := true
	f := newFixture(t, func(cfg *LedgerConfig) {
		cfg.OnRedeem = func(txn kv.Txn, e *Entry) error {
			if e.State != StateRedeemed || e.Redemption == nil {
				return fmt.Errorf("entry in state %s", e.State)
			}
			if err := txn.Set([]byte("tx/"+e.Claims.Tx), []byte(wire.TxRedeemed)); err != nil {
				return err
			}
			if fail {
				return errors.New("outbox full")
			}
			return nil
		}
	})
	tok, c := f.issue(t, testAgent, 0)
	req := request(tok, c, "k")

	_, _, err := f.ledger.Redeem(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "outbox full") || CodeOf(err) != CodeUnknown {
		t.Fatalf("failing hook: %v", err)
	}
	e, err := f.ledger.Get(context.Background(), c.ID)
	if err != nil || e.State != StateIssued {
		t.Fatalf("after the failed hook: %+v, %v", e, err)
	}
	if got := f.read(t, "tx/"+c.Tx); got != nil {
		t.Fatalf("hook's write survived the abort: %q", got)
	}
	if got := f.read(t, string(IdemKey(testAgent, "k"))); got != nil {
		t.Fatalf("idempotency record survived the abort: %s", got)
	}

	fail = false
	if _, replayed, err := f.ledger.Redeem(context.Background(), req); err != nil || replayed {
		t.Fatalf("retry with the same key: replayed %v, %v", replayed, err)
	}
	if got := f.read(t, "tx/"+c.Tx); string(got) != string(wire.TxRedeemed) {
		t.Fatalf("hook's write: %q", got)
	}
	var rec IdemRecord
	if err := json.Unmarshal(f.read(t, string(IdemKey(testAgent, "k"))), &rec); err != nil || rec.Redemption == nil {
		t.Fatalf("idempotency record %+v, %v", rec, err)
	}
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	_, c := f.issue(t, testAgent, 0)
	if err := f.ledger.Revoke(ctx, c.ID, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	e, _ := f.ledger.Get(ctx, c.ID)
	if e.State != StateRevoked || e.RevokedReason != "changed my mind" {
		t.Fatalf("entry %+v", e)
	}
	wantCode(t, f.ledger.Revoke(ctx, c.ID, "again"), CodeRevoked)
	wantCode(t, f.ledger.Revoke(ctx, "mnd_nope", ""), CodeNotFound)

	tok, c2 := f.issue(t, testAgent, 0)
	if _, _, err := f.ledger.Redeem(ctx, request(tok, c2, "k")); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.ledger.Revoke(ctx, c2.ID, ""), CodeAlreadyRedeemed)

	_, c3 := f.issue(t, testAgent, time.Minute)
	f.clock.Set(t0.Add(time.Minute))
	wantCode(t, f.ledger.Revoke(ctx, c3.ID, ""), CodeMandateExpired)
	if e, _ := f.ledger.Get(ctx, c3.ID); e.State != StateExpired {
		t.Fatalf("expired mandate in state %s", e.State)
	}
}

func TestStateText(t *testing.T) {
	for s := StateUnknown; s <= StateSuperseded; s++ {
		b, _ := s.MarshalText()
		var back State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Fatalf("%s: %v %v", s, back, err)
		}
	}
	if State(42).String() != "state_42" {
		t.Fatal(State(42).String())
	}
}

func (f *fixture) read(t *testing.T, key string) []byte {
	t.Helper()
	var v []byte
	err := f.mem.View(context.Background(), func(txn kv.Txn) error {
		var err error
		v, err = txn.Get([]byte(key))
		return err
	})
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func claimsOf(t *testing.T, tok string) Claims {
	t.Helper()
	var c Claims
	b, _ := json.Marshal(decodeSegment(t, tok, 1))
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
