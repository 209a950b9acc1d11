package authz

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

const day = 24 * time.Hour

// pay redeems amount under a recurring mandate with a fresh idempotency key.
func (f *fixture) pay(t *testing.T, tok string, c Claims, key string, amount wire.Amount) (*Redemption, error) {
	t.Helper()
	req := request(tok, c, key)
	req.Amount = amount
	red, _, err := f.ledger.Redeem(context.Background(), req)
	return red, err
}

func (f *fixture) entry(t *testing.T, jti string) *Entry {
	t.Helper()
	e, err := f.ledger.Get(context.Background(), jti)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A weekly subscription of at most 950 a payment, 1900 a week, 5 payments: payments
// are counted per week from nbf, the entry stays issued until the last one, and every
// payment has a receipt and an OnRedeem but no OnTransition.
func TestRecurringPayments(t *testing.T) {
	var redeemed, transitions []string
	f := newFixture(t, func(cfg *LedgerConfig) {
		cfg.CancelWindow = time.Minute
		cfg.OnRedeem = func(_ kv.Txn, e *Entry) error {
			redeemed = append(redeemed, fmt.Sprintf("%s:%d", e.State, e.Redemption.Amount))
			return nil
		}
		cfg.OnTransition = func(_ kv.Txn, e *Entry, from State) error {
			transitions = append(transitions, fmt.Sprintf("%s>%s", from, e.State))
			return nil
		}
	})
	tok, c := f.issueWith(t, testAgent, 0, recurring(wire.PeriodWeek, 5, 1900, t0.Add(60*day)), nil)
	at := func(d time.Duration) { f.clock.Set(t0.Add(d)) }

	steps := []struct {
		at     time.Duration
		amount wire.Amount
		code   ErrorCode // CodeUnknown: paid
	}{
		{0, 950, CodeUnknown},
		{day, 951, CodeOverCap},                          // over one payment
		{2 * day, 950, CodeUnknown},                      // 1900 this week
		{7*day - time.Millisecond, 1, CodeOverPeriodCap}, // still the first week
		{7 * day, 950, CodeUnknown},                      // the second week starts at nbf + 7 days
		{13 * day, 951, CodeOverCap},
		{13 * day, 950, CodeUnknown},             // 1900 in the second week
		{14 * day, 1, CodeUnknown},               // the fifth payment, the last
		{14*day + time.Second, 1, CodeExhausted}, // redeemed: nothing remains
		{30 * day, 950, CodeExhausted},           // in a later week too
	}
	var paid []*Redemption
	for i, s := range steps {
		at(s.at)
		red, err := f.pay(t, tok, c, fmt.Sprintf("pay-%d", i), s.amount)
		if s.code != CodeUnknown {
			wantCode(t, err, s.code)
			continue
		}
		if err != nil {
			t.Fatalf("step %d (%s, %d): %v", i, s.at, s.amount, err)
		}
		paid = append(paid, red)
	}

	e := f.entry(t, c.ID)
	if e.State != StateRedeemed || len(e.Payments) != 5 || *e.Redemption != *paid[4] ||
		e.SettleAfter != t0.Add(14*day+time.Minute).UnixMilli() {
		t.Fatalf("entry: state %s, %d payments, redemption %+v, settle after %d", e.State, len(e.Payments),
			e.Redemption, e.SettleAfter)
	}
	for i, p := range e.Payments {
		if p != *paid[i] {
			t.Fatalf("payment %d: %+v, want %+v", i, p, *paid[i])
		}
	}
	rs := receipts(t, f.keys, e)
	if got := states(rs); got != "unknown>issued issued>issued issued>issued issued>issued issued>issued issued>redeemed " {
		t.Fatalf("receipts %s", got)
	}
	for i, r := range rs[1:] {
		if r.Amount != paid[i].Amount || r.Redemption != paid[i].ID {
			t.Fatalf("receipt of payment %d: %+v, want %+v", i, r, paid[i])
		}
	}
	if fmt.Sprint(redeemed) != "[issued:950 issued:950 issued:950 issued:950 redeemed:1]" {
		t.Fatalf("OnRedeem saw %v", redeemed)
	}
	if fmt.Sprint(transitions) != "[unknown>issued issued>redeemed]" {
		t.Fatalf("OnTransition saw %v", transitions)
	}

	// A payment's retry gets that payment again and pays nothing more.
	at(30 * day)
	req := request(tok, c, "pay-0")
	again, replayed, err := f.ledger.Redeem(context.Background(), req)
	if err != nil || !replayed || *again != *paid[0] {
		t.Fatalf("replay: %+v replayed %v, %v", again, replayed, err)
	}

	// The last payment settles like a one-off.
	due, err := f.ledger.SettleDue(context.Background(), 0)
	if err != nil || len(due) != 1 || due[0] != c.ID {
		t.Fatalf("SettleDue: %v %v", due, err)
	}
	_, err = f.pay(t, tok, c, "after-settle", 1)
	wantCode(t, err, CodeExhausted)
}

// A subscription lapses at its consent's Until, keeping the payments made.
func TestRecurringExpiry(t *testing.T) {
	f := newFixture(t, nil)
	until := t0.Add(10 * day)
	tok, c := f.issueWith(t, testAgent, 0, recurring(wire.PeriodDay, 0, 950, until), nil)
	if c.Expiry != until.Unix() {
		t.Fatalf("exp %d, want %d", c.Expiry, until.Unix())
	}
	f.clock.Set(until.Add(-time.Second))
	if _, err := f.pay(t, tok, c, "last-second", 950); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(until)
	_, err := f.pay(t, tok, c, "at-until", 950)
	wantCode(t, err, CodeMandateExpired)
	if e := f.entry(t, c.ID); e.State != StateExpired || len(e.Payments) != 1 {
		t.Fatalf("entry in state %s with %d payments", e.State, len(e.Payments))
	}
}

// Monthly periods are calendar months in UTC from nbf.
func TestRecurringMonthly(t *testing.T) {
	f := newFixture(t, nil)
	tok, c := f.issueWith(t, testAgent, 0, recurring(wire.PeriodMonth, 0, 950, t0.Add(80*day)), nil)
	july := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC) // t0 is 1 June, 12:00
	for i, s := range []struct {
		at   time.Time
		code ErrorCode
	}{
		{t0.Add(29 * day), CodeUnknown},
		{july.Add(-time.Second), CodeOverPeriodCap},
		{july, CodeUnknown},
		{july.Add(30*day + time.Hour), CodeOverPeriodCap}, // 31 July 13:00: July has 31 days
		{july.AddDate(0, 1, 0), CodeUnknown},
	} {
		f.clock.Set(s.at)
		_, err := f.pay(t, tok, c, fmt.Sprintf("month-%d", i), 950)
		wantCode(t, err, s.code)
	}
}

// With no Times the ledger still stops at wire.MaxTimes payments, the most a consent
// may allow, which bounds the entry.
func TestRecurringMaxTimes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	tok, c := f.issueWith(t, testAgent, 0, recurring(wire.PeriodDay, 0, 950, t0.Add(80*day)), nil)
	// Pretend wire.MaxTimes-1 payments were made long ago (outside every period).
	err := f.mem.Update(ctx, func(txn kv.Txn) error {
		e, err := getEntry(txn, c.ID)
		if err != nil {
			return err
		}
		e.Payments = make([]Redemption, wire.MaxTimes-1)
		return putEntry(txn, e)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.pay(t, tok, c, "last", 1); err != nil {
		t.Fatal(err)
	}
	if e := f.entry(t, c.ID); e.State != StateRedeemed || len(e.Payments) != wire.MaxTimes {
		t.Fatalf("entry in state %s with %d payments", e.State, len(e.Payments))
	}
	f.clock.Set(t0.Add(2 * day))
	_, err = f.pay(t, tok, c, "one more", 1)
	wantCode(t, err, CodeExhausted)
}

// Cancelling a subscription revokes it: the payments made stand, the rest never come.
func TestRecurringCancel(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	tok, c := f.issueWith(t, testAgent, 0, recurring(wire.PeriodDay, 10, 950, t0.Add(30*day)), nil)
	red, err := f.pay(t, tok, c, "first", 500)
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.ledger.Cancel(ctx, c.ID, "stop my coffee")
	if err != nil || e.State != StateRevoked || len(e.Payments) != 1 || e.Payments[0] != *red {
		t.Fatalf("cancel: %v %+v", err, e)
	}
	// The revocation's receipt shows the cap, not the earlier payment.
	if last := receipts(t, f.keys, e)[2]; last.State != StateRevoked || last.Amount != c.AmountCap || last.Redemption != "" {
		t.Fatalf("revocation receipt %+v", last)
	}
	f.clock.Set(t0.Add(2 * day))
	_, err = f.pay(t, tok, c, "second", 500)
	wantCode(t, err, CodeRevoked)
}

// Two payments of one subscription at the same moment, each under the payment cap and
// together over the period cap: exactly one is paid, every time.
func TestRecurringPeriodCapRace(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	wins := [2]int{}
	for i := range 200 {
		tok, c := f.issueWith(t, testAgent, 0, recurring(wire.PeriodWeek, 0, 1500, t0.Add(30*day)), nil)
		var (
			wg   sync.WaitGroup
			errs [2]error
		)
		for j := range 2 {
			wg.Go(func() {
				req := request(tok, c, fmt.Sprintf("race-%d-%d", i, j))
				req.Amount = 800
				_, _, errs[j] = f.ledger.Redeem(ctx, req)
			})
		}
		wg.Wait()
		e, err := f.ledger.Get(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case errs[0] == nil && CodeOf(errs[1]) == CodeOverPeriodCap:
			wins[0]++
		case errs[1] == nil && CodeOf(errs[0]) == CodeOverPeriodCap:
			wins[1]++
		default:
			t.Fatalf("iteration %d: %v, %v", i, errs[0], errs[1])
		}
		if e.State != StateIssued || len(e.Payments) != 1 || e.Payments[0].Amount != 800 {
			t.Fatalf("iteration %d: state %s, payments %+v", i, e.State, e.Payments)
		}
	}
	t.Logf("wins %v", wins)
}

// A price target is redeemed once, like a one-off, until its Until, its cap against the
// amount charged.
func TestPriceTarget(t *testing.T) {
	f := newFixture(t, nil)
	until := t0.Add(20 * day)
	target := func(t *wire.Terms) {
		t.Kind, t.Conditions = wire.KindPriceTarget, &wire.Conditions{Until: until.UnixMilli()}
	}
	tok, c := f.issueWith(t, testAgent, 0, target, nil)
	f.clock.Set(t0.Add(10 * day)) // long after a one-off's ttl
	_, err := f.pay(t, tok, c, "over", 951)
	wantCode(t, err, CodeOverCap)
	if _, err := f.pay(t, tok, c, "met", 900); err != nil {
		t.Fatal(err)
	}
	_, err = f.pay(t, tok, c, "again", 1)
	wantCode(t, err, CodeAlreadyRedeemed)

	tok, c = f.issueWith(t, testAgent, 0, target, nil)
	f.clock.Set(until)
	_, err = f.pay(t, tok, c, "late", 900)
	wantCode(t, err, CodeMandateExpired)
}
