package llmagent

import (
	"cmp"
	"context"
	"errors"
	"net/http"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/apiclient"
	"github.com/earshot/earshot/gateway/agent/refagent"
)

// handleMandate acts as the merchant, in code only: the model never sees a mandate.
// It checks the mandate against the proposal for its tx — a one-off purchase, the
// proposed payee and currency, an amount cap equal to the proposed total — and
// redeems exactly that, once, with Idempotency-Key redeem-<mandate id>.
func (a *Agent) handleMandate(ctx context.Context, m agent.Mandate) {
	log := a.log.With("tx", m.Tx, "mandate", m.ID)
	kind := cmp.Or(m.Kind, wire.KindOneOff)
	p, ok := a.lookup(m.Tx)
	if !ok && kind == wire.KindOneOff {
		// The agent restarted since it proposed (the gateway hands unfinished mandates
		// back after its own restart). The mandate carries the terms the user approved:
		// redeem them if they are this catalogue's, at its prices.
		p, ok = a.recall(m)
	}
	var refuse string
	switch {
	case kind != wire.KindOneOff:
		refuse = "not a one-off purchase: this agent proposes no other kind"
	case !ok:
		refuse = "no proposal for this transaction, and the terms are not the catalogue's"
	case p.redeemedBy != "" && p.redeemedBy != m.ID:
		refuse = "transaction already redeemed with another mandate"
	case m.Payee != p.pr.Merchant.ID:
		refuse = "payee is not the proposed merchant"
	case m.Currency != p.pr.Currency:
		refuse = "currency is not the proposed currency"
	case m.AmountCap != p.pr.Total:
		refuse = "amount cap is not the proposed total"
	}
	if refuse != "" {
		a.stats.failures.Add(1)
		log.Warn("mandate refused", "why", refuse, "kind", string(kind))
		return
	}
	body := apiclient.RedeemRequest{Mandate: m.Token, Amount: m.AmountCap, Currency: m.Currency, Payee: m.Payee}
	r, status, err := a.api.Redeem(ctx, body, "redeem-"+m.ID)
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: the gateway hands the mandate over again
		}
		a.stats.failures.Add(1)
		if errors.Is(err, apiclient.ErrBadAnswer) {
			log.Error("redemption answer does not match the request")
			return
		}
		log.Warn("redemption failed", "code", apiclient.Code(err), "err", err)
		return
	}
	first := a.markRedeemed(m.Tx, m.ID)
	log.Info("redeemed", "redemption", r.Redemption, "amount", int64(r.Amount), "replay", status == http.StatusOK || !first)
	if first {
		a.stats.redemptions.Add(1)
	}
}

// recall rebuilds the proposal of a one-off mandate the agent does not remember,
// when its terms are exactly what this catalogue would have proposed: the payee one
// of its merchants in its currency, every line an item of that merchant at the
// catalogue price of its size (the first option, for an item with sizes), 1 to
// refagent.MaxQty of each, adding up to the amount cap.
func (a *Agent) recall(m agent.Mandate) (proposal, bool) {
	mer, ok := a.idx.cat.Merchant(m.Payee)
	if !ok || mer.Currency != m.Currency || len(m.Items) == 0 || len(m.Items) > wire.MaxItems {
		return proposal{}, false
	}
	var total wire.Amount
	for _, it := range m.Items {
		ci, ok := a.idx.bySKU[it.SKU]
		if !ok || ci.Merchant() != mer || it.Qty < 1 || it.Qty > refagent.MaxQty {
			return proposal{}, false
		}
		size := ""
		if len(ci.Sizes) > 0 && len(it.Options) > 0 {
			size = it.Options[0]
		}
		price, ok := ci.UnitAmount(size)
		if !ok || price != it.UnitAmount {
			return proposal{}, false
		}
		total += it.UnitAmount * wire.Amount(it.Qty)
	}
	if total != m.AmountCap {
		return proposal{}, false
	}
	pr := apiclient.PurchaseRequest{Tx: m.Tx, Merchant: wire.Merchant{ID: mer.ID, Name: mer.Name}, Items: m.Items,
		Total: total, Currency: mer.Currency, Kind: wire.KindOneOff}
	a.remember(pr)
	p, _ := a.lookup(m.Tx)
	return p, true
}
