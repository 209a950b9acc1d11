package authz

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

// paidParent issues a one-off with tipCap (0: none) and redeems it in full.
func (f *fixture) paidParent(t *testing.T, tipCap wire.Amount) Claims {
	t.Helper()
	tok, c := f.issueWith(t, testAgent, 0, func(tt *wire.Terms) {
		if tipCap > 0 {
			tt.Conditions = &wire.Conditions{TipCap: tipCap}
		}
	}, nil)
	if _, _, err := f.ledger.Redeem(context.Background(), request(tok, c, "parent-"+c.ID)); err != nil {
		t.Fatal(err)
	}
	return c
}

// tip builds a tip of amount on parent with TipClaims, lets mutate change it, records
// it with RecordTip and returns its token and claims.
func (f *fixture) tip(t *testing.T, parent Claims, amount wire.Amount, underCap bool, mutate func(*Claims)) (string, Claims, error) {
	t.Helper()
	f.n++
	c, err := TipClaims(parent, fmt.Sprintf("tx_tip%d", f.n), amount, testIssuer, f.clock.Now(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&c)
	}
	tok, err := f.keys.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok, c, f.mem.Update(context.Background(), func(txn kv.Txn) error { return f.ledger.RecordTip(txn, c, underCap) })
}

func (f *fixture) allowance(t *testing.T, parent string) wire.Amount {
	t.Helper()
	var left wire.Amount
	err := f.mem.View(context.Background(), func(txn kv.Txn) error {
		var err error
		left, err = f.ledger.TipAllowance(txn, parent)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

func TestTipClaims(t *testing.T) {
	f := newFixture(t, nil)
	parent := f.paidParent(t, 300)
	c, err := TipClaims(parent, "tx_tip", 200, testIssuer, t0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := ItemsDigest([]wire.Item{{SKU: "tip", Name: "Tip", Qty: 1, UnitAmount: 200}})
	want := Claims{ID: c.ID, Issuer: testIssuer, User: parent.User, Agent: parent.Agent,
		IssuedAt: t0.Unix(), NotBefore: t0.Unix(), Expiry: t0.Add(DefaultMandateTTL).Unix(),
		Device: parent.Device, Tx: "tx_tip", Payee: parent.Payee, AmountCap: 200, Currency: parent.Currency,
		ItemsDigest: digest, Kind: wire.KindTip, Constraints: &Constraints{Parent: parent.ID},
		ConsentHash: parent.ConsentHash}
	if !reflect.DeepEqual(c, want) || c.ID == parent.ID {
		t.Fatalf("claims\n%+v\nwant\n%+v", c, want)
	}
	if _, err := TipClaims(parent, "tx_tip", 0, testIssuer, t0, 0, nil); !errors.Is(err, ErrInvalidClaims) {
		t.Fatalf("zero tip: %v, want ErrInvalidClaims", err)
	}
}

// Tips under the parent's cap: they use it up, and nothing gives it back.
func TestTipUnderCap(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	parent := f.paidParent(t, 300)
	if got := f.allowance(t, parent.ID); got != 300 {
		t.Fatalf("allowance %d, want 300", got)
	}

	tok, first, err := f.tip(t, parent, 200, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.allowance(t, parent.ID); got != 100 {
		t.Fatalf("allowance after a tip of 200: %d, want 100", got)
	}
	if e := f.entry(t, first.ID); e.State != StateIssued || e.Claims.Constraints.Parent != parent.ID {
		t.Fatalf("tip entry %+v", e)
	}
	if p := f.entry(t, parent.ID); p.Tipped != 200 || p.State != StateRedeemed {
		t.Fatalf("parent: tipped %d, state %s", p.Tipped, p.State)
	}
	if red, _, err := f.ledger.Redeem(ctx, request(tok, first, "tip-1")); err != nil || red.Amount != 200 {
		t.Fatalf("redeem the tip: %+v, %v", red, err)
	}

	_, second, err := f.tip(t, parent, 100, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.allowance(t, parent.ID); got != 0 {
		t.Fatalf("allowance after two tips: %d, want 0", got)
	}
	_, third, err := f.tip(t, parent, 1, true, nil)
	wantCode(t, err, CodeOverTipCap)
	if CodeOverTipCap.HTTPStatus() != 422 {
		t.Fatal("over_tip_cap is not 422")
	}
	if _, err := f.ledger.Get(ctx, third.ID); CodeOf(err) != CodeNotFound {
		t.Fatalf("a refused tip was recorded: %v", err)
	}

	// Revoking a tip does not give its amount back.
	if err := f.ledger.Revoke(ctx, second.ID, "no tip after all"); err != nil {
		t.Fatal(err)
	}
	if got := f.allowance(t, parent.ID); got != 0 {
		t.Fatalf("allowance after revoking a tip: %d, want 0", got)
	}
	_, _, err = f.tip(t, parent, 100, true, nil)
	wantCode(t, err, CodeOverTipCap)
}

func TestTipOverCap(t *testing.T) {
	f := newFixture(t, nil)
	parent := f.paidParent(t, 300)
	_, _, err := f.tip(t, parent, 301, true, nil)
	wantCode(t, err, CodeOverTipCap)
	if got := f.allowance(t, parent.ID); got != 300 {
		t.Fatalf("allowance after a refused tip: %d, want 300", got)
	}
	// Without the cap (a fresh consent) the same tip is recorded and uses no allowance.
	if _, _, err := f.tip(t, parent, 301, false, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.allowance(t, parent.ID); got != 300 {
		t.Fatalf("allowance after a consented tip: %d, want 300", got)
	}

	noCap := f.paidParent(t, 0)
	_, _, err = f.tip(t, noCap, 1, true, nil)
	wantCode(t, err, CodeOverTipCap)
	err = f.mem.View(context.Background(), func(txn kv.Txn) error {
		_, err := f.ledger.TipAllowance(txn, "mnd_nope")
		return err
	})
	wantCode(t, err, CodeNotFound)
}

func TestTipParent(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		parent func(t *testing.T, f *fixture) Claims
		mutate func(*Claims)
		code   ErrorCode // CodeUnknown: recorded
	}{
		{"redeemed", func(t *testing.T, f *fixture) Claims { return f.paidParent(t, 300) }, nil, CodeUnknown},
		{"settled", func(t *testing.T, f *fixture) Claims {
			c := f.paidParent(t, 300)
			f.clock.Set(t0.Add(DefaultCancelWindow))
			if _, err := f.ledger.Settle(ctx, c.ID, testAgent); err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, CodeUnknown},
		{"issued", func(t *testing.T, f *fixture) Claims {
			_, c := f.issueWith(t, testAgent, 0, func(tt *wire.Terms) { tt.Conditions = &wire.Conditions{TipCap: 300} }, nil)
			return c
		}, nil, CodeParentNotPaid},
		{"cancelling", func(t *testing.T, f *fixture) Claims {
			c := f.paidParent(t, 300)
			if _, err := f.ledger.Cancel(ctx, c.ID, "wrong order"); err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, CodeParentNotPaid},
		{"cancelled", func(t *testing.T, f *fixture) Claims {
			c := f.paidParent(t, 300)
			if _, err := f.ledger.Cancel(ctx, c.ID, "wrong order"); err != nil {
				t.Fatal(err)
			}
			if _, err := f.ledger.ResolveCancel(ctx, c.ID, testAgent, true, ""); err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, CodeParentNotPaid},
		{"unknown", func(t *testing.T, f *fixture) Claims {
			c := f.paidParent(t, 300)
			c.ID = "mnd_never_recorded"
			return c
		}, nil, CodeNotFound},
		{"wrong payee", func(t *testing.T, f *fixture) Claims { return f.paidParent(t, 300) },
			func(c *Claims) { c.Payee = "m_other" }, CodePayeeMismatch},
		{"wrong agent", func(t *testing.T, f *fixture) Claims { return f.paidParent(t, 300) },
			func(c *Claims) { c.Agent = "agent_other" }, CodeWrongAgent},
		{"wrong currency", func(t *testing.T, f *fixture) Claims { return f.paidParent(t, 300) },
			func(c *Claims) { c.Currency = "EUR" }, CodeCurrencyMismatch},
	}
	for _, tt := range tests {
		for _, underCap := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, under cap %v", tt.name, underCap), func(t *testing.T) {
				f := newFixture(t, nil)
				parent := tt.parent(t, f)
				_, c, err := f.tip(t, parent, 100, underCap, tt.mutate)
				if tt.code == CodeUnknown {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				wantCode(t, err, tt.code)
				if _, err := f.ledger.Get(ctx, c.ID); CodeOf(err) != CodeNotFound {
					t.Fatalf("a refused tip was recorded: %v", err)
				}
				if tt.code != CodeNotFound {
					if p := f.entry(t, parent.ID); p.Tipped != 0 {
						t.Fatalf("a refused tip used %d of the allowance", p.Tipped)
					}
				}
			})
		}
	}

	t.Run("under the cap only with the parent's consent", func(t *testing.T) {
		f := newFixture(t, nil)
		parent := f.paidParent(t, 300)
		_, _, err := f.tip(t, parent, 100, true, func(c *Claims) { c.ConsentHash = "another-consent" })
		if !errors.Is(err, ErrInvalidClaims) {
			t.Fatalf("%v, want ErrInvalidClaims", err)
		}
	})
}

// A tip from a fresh consent goes through Record, which checks the parent like
// RecordTip without the cap.
func TestRecordTipConsented(t *testing.T) {
	f := newFixture(t, nil)
	parent := f.paidParent(t, 300)
	tipTerms := func(tt *wire.Terms) {
		tt.Kind, tt.Conditions = wire.KindTip, &wire.Conditions{Parent: parent.Tx}
	}
	setParent := func(c *Claims) { c.Constraints.Parent = parent.ID }
	tok, c := f.issueWith(t, testAgent, 0, tipTerms, setParent)
	if _, _, err := f.ledger.Redeem(context.Background(), request(tok, c, "tip")); err != nil {
		t.Fatal(err)
	}
	if got := f.allowance(t, parent.ID); got != 300 {
		t.Fatalf("allowance %d, want 300", got)
	}

	_, unpaid := f.issueWith(t, testAgent, 0, nil, nil)
	terms := testTerms(f.device.DeviceID(), "tx_tip_unpaid")
	tipTerms(&terms)
	c, err := ClaimsFor(newChallenge(t, terms), testUser, testAgent, testIssuer, t0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Constraints.Parent = unpaid.ID
	err = f.mem.Update(context.Background(), func(txn kv.Txn) error { return f.ledger.Record(txn, c) })
	wantCode(t, err, CodeParentNotPaid)
	c.Constraints.Parent = ""
	err = f.mem.Update(context.Background(), func(txn kv.Txn) error { return f.ledger.Record(txn, c) })
	if !errors.Is(err, ErrInvalidClaims) {
		t.Fatalf("tip without a parent: %v, want ErrInvalidClaims", err)
	}
	// Nor may a tip slip in as a modification.
	c.Constraints.Parent = parent.ID
	err = f.mem.Update(context.Background(), func(txn kv.Txn) error { return f.ledger.Supersede(txn, unpaid.ID, c) })
	if !errors.Is(err, ErrInvalidClaims) {
		t.Fatalf("tip superseding: %v, want ErrInvalidClaims", err)
	}
}

// A tip is redeemed only while its parent is paid; the refusal is not final, as a
// declined cancellation pays the parent again.
func TestTipRedeemParentNotPaid(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	parent := f.paidParent(t, 300)
	tok, c, err := f.tip(t, parent, 150, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.Cancel(ctx, parent.ID, "wrong order"); err != nil {
		t.Fatal(err)
	}
	req := request(tok, c, "tip")
	_, _, err = f.ledger.Redeem(ctx, req)
	wantCode(t, err, CodeParentNotPaid)
	if CodeParentNotPaid.HTTPStatus() != 409 {
		t.Fatal("parent_not_paid is not 409")
	}
	if e := f.entry(t, c.ID); e.State != StateIssued {
		t.Fatalf("tip in state %s", e.State)
	}
	if _, err := f.ledger.ResolveCancel(ctx, parent.ID, testAgent, false, "already made"); err != nil {
		t.Fatal(err)
	}
	red, replayed, err := f.ledger.Redeem(ctx, req)
	if err != nil || replayed || red.Amount != 150 {
		t.Fatalf("after the decline: %+v replayed %v, %v", red, replayed, err)
	}

	// Once the parent is cancelled, a new tip's redemption is refused too.
	parent2 := f.paidParent(t, 300)
	tok, c, err = f.tip(t, parent2, 150, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(time.Second))
	if _, err := f.ledger.Cancel(ctx, parent2.ID, "wrong order"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.ResolveCancel(ctx, parent2.ID, testAgent, true, ""); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.ledger.Redeem(ctx, request(tok, c, "tip-2"))
	wantCode(t, err, CodeParentNotPaid)
}
