package refagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
)

// Subscriptions. A recurring mandate is one payment now and one each time Charge is
// called ("the period came": the simulator and tests decide when). Each payment is
// one redemption of the proposed total with an Idempotency-Key of its own,
// redeem-<mandate id>:<n>, n counting from 1. n moves on once the gateway has given
// its key a final answer (paid, or refused: a refusal is final for its key), and
// stays after a transient failure, so that trying again cannot pay twice. The gateway
// enforces the period cap, the count and the end (over_period_cap, exhausted,
// mandate_expired); Code reads its refusal from Charge's error.

// subscription is a recurring mandate the agent holds.
type subscription struct {
	mu                 sync.Mutex // held while a payment is made: one at a time
	tx, mandate, token string     // the token is presented, never logged
	payee, currency    string
	amount             wire.Amount // one payment
	next               int         // the n of the next payment's Idempotency-Key
	paid               int         // payments made
}

// subscribe keeps a recurring mandate and makes its first payment. A mandate handed
// over again is harmless: the first payment is made once.
func (a *Agent) subscribe(ctx context.Context, log *slog.Logger, m agent.Mandate, p proposal) {
	a.mu.Lock()
	s, known := a.subs[m.Tx]
	if !known || s.mandate != m.ID {
		if !known && len(a.subs) >= a.maxTracked {
			a.mu.Unlock()
			a.stats.failures.Add(1)
			log.Warn("subscription refused: too many kept", "max", a.maxTracked)
			return
		}
		s = &subscription{tx: m.Tx, mandate: m.ID, token: m.Token, payee: p.payee, currency: p.currency,
			amount: p.total, next: 1}
		a.subs[m.Tx] = s
	}
	a.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paid > 0 {
		log.Info("subscription already started", "payments", s.paid)
		return
	}
	_ = a.pay(ctx, log, s) // counted and logged by pay; the gateway's answer is final for this key
}

// Charge makes the next payment of the subscription tx: the period came. It returns
// nil once paid; ErrNoSubscription when the agent holds no subscription for tx;
// ErrClosed after Run returned; else the failure, whose Code is the gateway's refusal
// ("over_period_cap" when this period's payment was made already, "exhausted" when
// every payment was, "mandate_expired" after its end, "revoked" once the user
// stopped it). Payments of one subscription are made one at a time; Charge makes the
// API call in the caller's goroutine, with ctx.
func (a *Agent) Charge(ctx context.Context, tx string) error {
	if a.state.Load() == stateStopped {
		return ErrClosed
	}
	a.mu.Lock()
	s, ok := a.subs[tx]
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: tx %s", ErrNoSubscription, tx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return a.pay(ctx, a.log.With("tx", tx, "mandate", s.mandate), s)
}

// pay makes s's next payment; s.mu is held.
func (a *Agent) pay(ctx context.Context, log *slog.Logger, s *subscription) error {
	n := s.next
	body := redeemRequest{Mandate: s.token, Amount: s.amount, Currency: s.currency, Payee: s.payee}
	r, status, err := a.redeem(ctx, body, fmt.Sprintf("redeem-%s:%d", s.mandate, n))
	var ae *apiError
	if err == nil || errors.As(err, &ae) && !ae.Transient() {
		s.next++ // this key has its final answer
	}
	if err != nil {
		a.redeemFailed(log.With("payment", n), err)
		return fmt.Errorf("refagent: charge %s: payment %d: %w", s.tx, n, err)
	}
	s.paid++
	a.stats.subPayments.Add(1)
	a.stats.redemptions.Add(1)
	log.Info("subscription payment", "payment", n, "paid", s.paid, "redemption", r.Redemption,
		"replay", status == http.StatusOK)
	return nil
}
