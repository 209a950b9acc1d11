package authz

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// t0 is the tests' fixed "now".
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	testIssuer  = "https://gw-1.earshot.test"
	testAgent   = "agent_ref"
	testUser    = "usr_1"
	testSession = "ses_1"
	testPayee   = "m_luckin"
)

// testTerms returns valid terms for dev: two oat lattes, USD 9.50, expiring a minute
// after t0.
func testTerms(dev, tx string) wire.Terms {
	return wire.Terms{
		Tx: tx, Device: dev, Session: testSession,
		Merchant: wire.Merchant{ID: testPayee, Name: "Luckin Coffee"},
		Items: []wire.Item{
			{SKU: "latte-oat", Name: "Oat latte", Qty: 2, UnitAmount: 400, Options: []string{"large"}},
			{SKU: "cookie", Name: "Cookie", Qty: 1, UnitAmount: 150},
		},
		Total: 950, Currency: "USD", Kind: wire.KindOneOff,
		ExpiresAt: t0.Add(time.Minute).UnixMilli(), Nonce: "n0nce-" + tx,
	}
}

func newDevice(t testing.TB) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newChallenge(t testing.TB, terms wire.Terms, methods ...wire.Method) *Challenge {
	t.Helper()
	if len(methods) == 0 {
		methods = []wire.Method{wire.MethodTap, wire.MethodPIN}
	}
	ch, err := NewChallenge(terms, methods, t0)
	if err != nil {
		t.Fatal(err)
	}
	return &ch
}

// signedConfirm returns key's confirmation of hash for tx.
func signedConfirm(key *identity.Key, tx, hash string, d wire.Decision, m wire.Method) *wire.Confirm {
	c := &wire.Confirm{Tx: tx, Hash: hash, Decision: d, Method: m}
	key.SignConfirm(c)
	return c
}

func genKey(t testing.TB) *SigningKey {
	t.Helper()
	k, err := GenerateSigningKey(nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKeySet(t testing.TB, active *SigningKey, others ...*SigningKey) *KeySet {
	t.Helper()
	ks, err := NewKeySet(active, others...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// fixture is a ledger over kv.Memory with a settable clock.
type fixture struct {
	store  kv.Store
	mem    *kv.Memory
	keys   *KeySet
	clock  *clock
	ledger *Ledger
	device *identity.Key
	n      int
}

func newFixture(t testing.TB, mutate func(*LedgerConfig)) *fixture {
	t.Helper()
	f := &fixture{mem: kv.NewMemory(), clock: &clock{now: t0}, device: newDevice(t)}
	f.store = f.mem
	f.keys = newKeySet(t, genKey(t))
	cfg := LedgerConfig{Store: f.store, Keys: f.keys, Issuer: testIssuer, Now: f.clock.Now}
	if mutate != nil {
		mutate(&cfg)
	}
	f.store = cfg.Store
	l, err := NewLedger(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.ledger = l
	return f
}

// issue runs the consent path for a fresh transaction and records the mandate, bound
// to agent and valid for ttl.
func (f *fixture) issue(t testing.TB, agent string, ttl time.Duration) (string, Claims) {
	t.Helper()
	return f.issueWith(t, agent, ttl, nil, nil)
}

// issueWith is issue with the terms changed by terms (a kind and its conditions) and
// the claims by claims (a tip's parent) before they are signed and recorded; either
// may be nil.
func (f *fixture) issueWith(t testing.TB, agent string, ttl time.Duration, terms func(*wire.Terms), claims func(*Claims)) (string, Claims) {
	t.Helper()
	f.n++
	tt := testTerms(f.device.DeviceID(), fmt.Sprintf("tx_%d", f.n))
	if terms != nil {
		terms(&tt)
	}
	c, err := ClaimsFor(newChallenge(t, tt), testUser, agent, testIssuer, f.clock.Now(), ttl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if claims != nil {
		claims(&c)
	}
	tok, err := f.keys.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.mem.Update(context.Background(), func(txn kv.Txn) error { return f.ledger.Record(txn, c) }); err != nil {
		t.Fatal(err)
	}
	return tok, c
}

// request is a valid redemption of tok for the full cap.
func request(tok string, c Claims, key string) RedeemRequest {
	return RedeemRequest{Agent: c.Agent, Token: tok, Amount: c.AmountCap, Currency: c.Currency,
		Payee: c.Payee, IdempotencyKey: key}
}

func wantCode(t testing.TB, err error, want ErrorCode) {
	t.Helper()
	if got := CodeOf(err); got != want {
		t.Fatalf("error %v: code %s, want %s", err, got, want)
	}
}
