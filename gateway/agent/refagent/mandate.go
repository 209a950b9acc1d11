package refagent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/apiclient"
)

// errBadAnswer reports a 2xx redemption answer that is not for what was asked.
var errBadAnswer = apiclient.ErrBadAnswer

// handleMandate acts as the merchant: it checks the mandate against the proposal for
// its tx, then redeems it as its kind says: exactly the proposed total, once (one_off,
// tip); the current total once the price is at most the cap (price_target, see
// watch.go); one payment now and one per Charge (recurring, see subscribe.go).
func (a *Agent) handleMandate(ctx context.Context, m agent.Mandate) {
	log := a.log.With("tx", m.Tx, "mandate", m.ID)
	kind := kindOf(m)
	p, ok := a.lookup(m.Tx)
	if !ok {
		// The agent restarted since it proposed (the gateway hands unfinished mandates
		// back after its own restart), or the mandate of a tip it started came before
		// the gateway's answer naming the tip's tx (a tip inside the order's tip cap
		// is mandated at once). The mandate carries the terms the user approved; as
		// the merchant, redeem them if they are ours.
		p, ok = a.recall(m)
	}
	var refuse string
	switch {
	case !ok:
		refuse = "no proposal for this transaction, and the payee or currency is not ours"
	case p.redeemedBy != "" && p.redeemedBy != m.ID:
		refuse = "transaction already redeemed with another mandate"
	case m.Payee != p.payee:
		refuse = "payee is not the proposed merchant"
	case m.Currency != p.currency:
		refuse = "currency is not the proposed currency"
	case kind != p.kind:
		refuse = "kind is not the proposed kind"
	case m.AmountCap < p.total:
		refuse = "amount cap is below the proposed total"
	}
	if refuse != "" {
		a.stats.failures.Add(1)
		log.Warn("mandate refused", "why", refuse, "kind", string(kind))
		return
	}
	switch kind {
	case wire.KindOneOff, wire.KindTip:
		a.redeemOnce(ctx, log, m, p)
	case wire.KindPriceTarget:
		a.watchTarget(ctx, log, m, p)
	case wire.KindRecurring:
		a.subscribe(ctx, log, m, p)
	default:
		a.stats.failures.Add(1)
		log.Warn("mandate refused", "why", "unknown kind", "kind", string(kind))
	}
}

// redeemOnce redeems exactly the proposed total, with Idempotency-Key
// redeem-<mandate id>. A paid one-off order becomes its device's last order, and a
// tip said with it is requested, once: a mandate handed over again asks for it only
// if the gateway never answered the first request (requestTip).
func (a *Agent) redeemOnce(ctx context.Context, log *slog.Logger, m agent.Mandate, p proposal) {
	body := redeemRequest{Mandate: m.Token, Amount: p.total, Currency: p.currency, Payee: p.payee}
	r, status, err := a.redeem(ctx, body, "redeem-"+m.ID)
	if err != nil {
		a.redeemFailed(log, err)
		return
	}
	first := a.markRedeemed(m.Tx, m.ID)
	log.Info("redeemed", "kind", string(p.kind), "redemption", r.Redemption, "replay", status == http.StatusOK)
	if first {
		a.stats.redemptions.Add(1)
		a.paid(p)
	}
	if p.kind == wire.KindOneOff && p.tip > 0 {
		if p.user == "" {
			p.user = m.User
		}
		a.requestTip(ctx, log, p)
	}
}

// redeem presents a mandate at POST /v1/redemptions and checks the answer. It returns
// the final status: 201 for a new redemption, 200 for a replay of one.
func (a *Agent) redeem(ctx context.Context, body redeemRequest, key string) (redemption, int, error) {
	return a.api.Redeem(ctx, body, key)
}

// redeemFailed counts and logs a redemption that failed for good.
func (a *Agent) redeemFailed(log *slog.Logger, err error) {
	a.stats.failures.Add(1)
	if errors.Is(err, errBadAnswer) {
		log.Error("redemption answer does not match the request")
		return
	}
	log.Warn("redemption failed", "err", err)
}
