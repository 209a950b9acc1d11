package keyring_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/gateway/keyring"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const validity = 10 * time.Minute

var quiet = slog.New(slog.DiscardHandler)

func open(t *testing.T, st kv.Store, c *clock) *keyring.Ring {
	t.Helper()
	r, err := keyring.Open(context.Background(), keyring.Config{Store: st, MaxValidity: validity, Now: c.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sign(t *testing.T, ks *authz.KeySet, jti string, now time.Time) string {
	t.Helper()
	tok, err := ks.Sign(authz.Claims{ID: jti, Issuer: "earshot:test", User: "usr_a", Agent: "agt_a",
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(validity - authz.Leeway).Unix(),
		Payee: "earshot-coffee", AmountCap: 1100, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func kids(t *testing.T, ks *authz.KeySet) []string {
	t.Helper()
	b, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KID)
	}
	return out
}

func TestRotateAndRetire(t *testing.T) {
	st := kv.NewMemory()
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	r := open(t, st, c)
	first := r.Keys().ActiveKID()
	before := sign(t, r.Keys(), "mnd_before", c.Now())

	c.add(time.Minute)
	in, err := r.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !in.Active || in.KID == first || r.Keys().ActiveKID() != in.KID {
		t.Fatalf("rotate: %+v, active %s", in, r.Keys().ActiveKID())
	}
	after := sign(t, r.Keys(), "mnd_after", c.Now())
	if got := kids(t, r.Keys()); !slices.Equal(got, []string{in.KID, first}) {
		t.Fatalf("JWKS kids %v, want the new key then the old one", got)
	}
	list := r.List()
	if len(list) != 2 || list[0].KID != in.KID || list[1].KID != first || list[1].Active ||
		!list[1].RetireAfter.Equal(c.Now().Add(validity)) {
		t.Fatalf("list %+v", list)
	}
	for _, tok := range []string{before, after} {
		if _, err := r.Keys().Verify(tok, "earshot:test", c.Now()); err != nil {
			t.Fatalf("verify after rotation: %v", err)
		}
	}

	// A restart keeps both keys and the active one.
	r2 := open(t, st, c)
	if r2.Keys().ActiveKID() != in.KID || !slices.Equal(kids(t, r2.Keys()), []string{in.KID, first}) {
		t.Fatalf("after reopen: active %s, kids %v", r2.Keys().ActiveKID(), kids(t, r2.Keys()))
	}

	// Not before the last mandate the old key signed has expired.
	c.add(validity - time.Second)
	if got, err := r2.RetireExpired(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("retired %v, %v before its time", got, err)
	}
	c.add(time.Second)
	if got, err := r2.RetireExpired(context.Background()); err != nil || !slices.Equal(got, []string{first}) {
		t.Fatalf("retired %v, %v; want %s", got, err, first)
	}
	if got := kids(t, r2.Keys()); !slices.Equal(got, []string{in.KID}) {
		t.Fatalf("JWKS kids after retirement %v", got)
	}
	if _, err := r2.Keys().Verify(after, "earshot:test", c.Now().Add(-validity+time.Minute)); err != nil {
		t.Fatalf("the new key's mandate: %v", err)
	}
	// The private key is gone from the store, and a restart does not bring it back.
	err = st.View(context.Background(), func(txn kv.Txn) error {
		_, err := txn.Get([]byte("keys/mandate/" + first))
		return err
	})
	if err != kv.ErrNotFound {
		t.Fatalf("retired key still stored: %v", err)
	}
	if got := kids(t, open(t, st, c).Keys()); !slices.Equal(got, []string{in.KID}) {
		t.Fatalf("after reopen: %v", got)
	}
}

// A key whose time passed while the gateway was down is retired at start.
func TestRetireAtOpen(t *testing.T) {
	st := kv.NewMemory()
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	r := open(t, st, c)
	if _, err := r.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.add(validity + time.Hour)
	if got := open(t, st, c).List(); len(got) != 1 || !got[0].Active {
		t.Fatalf("keys after a long stop: %+v", got)
	}
}

func TestRunStops(t *testing.T) {
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	r, err := keyring.Open(context.Background(), keyring.Config{Store: kv.NewMemory(), MaxValidity: time.Second,
		CheckEvery: time.Millisecond, Now: c.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.List()) != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil || len(r.List()) != 1 {
		t.Fatalf("Run: %v, keys %+v", err, r.List())
	}
}

func TestConfig(t *testing.T) {
	if _, err := keyring.Open(context.Background(), keyring.Config{Store: kv.NewMemory()}); err == nil {
		t.Fatal("no MaxValidity accepted")
	}
}

// What a retired key signed still verifies for the audit trail.
func TestAllPublicKeepsRetiredKeys(t *testing.T) {
	st := kv.NewMemory()
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	r := open(t, st, c)
	tok, err := r.Keys().SignPayload([]byte(`{"seq":1}`), "earshot-audit-checkpoint+jwt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.add(validity)
	if got, err := r.RetireExpired(context.Background()); err != nil || len(got) != 1 {
		t.Fatalf("retired %v %v", got, err)
	}
	if _, err := r.Keys().VerifyPayload(tok, "earshot-audit-checkpoint+jwt"); err == nil {
		t.Fatal("the JWKS still verifies a retired key")
	}
	pk, err := open(t, st, c).AllPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pk.VerifyPayload(tok, "earshot-audit-checkpoint+jwt"); err != nil {
		t.Fatalf("a retired key's signature: %v", err)
	}
}
