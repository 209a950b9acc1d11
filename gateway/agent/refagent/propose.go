package refagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
)

// maxSummaryBytes is the longest summary the gateway takes (gateway/session).
const maxSummaryBytes = wire.MaxTextBytes / 2

// tipItem is the one item of a tip, at the tip's amount.
var tipItem = wire.Item{SKU: "tip", Name: "Tip", Qty: 1}

// handleIntent proposes what the text asks for, or rejects what does not parse.
func (a *Agent) handleIntent(ctx context.Context, in agent.Intent) {
	log := a.log.With("tx", in.Tx)
	now := a.now()
	last, hasLast := a.lastOrder(in.Device)
	pc := ParseContext{Now: now}
	if hasLast {
		pc.TipCurrency = last.currency
	}
	req, err := a.cat.ParseRequest(in.Text, pc)
	if err != nil {
		a.reject(ctx, log, in.Tx, err)
		return
	}
	var (
		pr purchaseRequest
		p  proposal
	)
	if req.Kind == wire.KindTip {
		pr, p, err = a.tipProposal(in.Tx, last, req.Tip)
	} else {
		pr, p, err = a.orderProposal(in.Tx, req, now)
	}
	if err != nil {
		a.reject(ctx, log, in.Tx, err)
		return
	}
	p.device, p.user = in.Device, in.User
	a.propose(ctx, log, pr, &p)
}

// orderProposal prices the order at the current prices and makes its purchase
// request: one-off (with the merchant's tip cap, raised to a tip said with it), a price
// target (or one-off when the price is met already), or a subscription.
func (a *Agent) orderProposal(tx string, req Request, now time.Time) (purchaseRequest, proposal, error) {
	order := a.reprice(req.Order)
	m := order.Merchant
	pr := purchaseRequest{
		Tx:       tx,
		Merchant: wire.Merchant{ID: m.ID, Name: m.Name},
		Items:    order.Items(),
		Total:    order.Total(),
		Currency: m.Currency,
		Kind:     req.Kind,
		Summary:  order.Summary(),
	}
	if req.Kind == wire.KindPriceTarget && pr.Total <= req.Limit {
		pr.Kind = wire.KindOneOff // the price is met already: buy now, at today's price
	}
	switch pr.Kind {
	case wire.KindPriceTarget:
		items, err := targetItems(pr.Items, req.Limit, m.Currency)
		if err != nil {
			return pr, proposal{}, err
		}
		until := req.Until
		if until.IsZero() {
			until = now.Add(a.targetValidity)
		}
		pr.Items, pr.Total = items, req.Limit
		pr.Conditions = &wire.Conditions{Until: until.UnixMilli()}
		pr.Summary = fmt.Sprintf("%s when the price is at most %s, until %s",
			order.Summary(), wire.Money(req.Limit, m.Currency), until.Format("Jan 2"))
	case wire.KindRecurring:
		until := req.Until
		if until.IsZero() {
			until = now.Add(a.targetValidity)
		}
		pr.Conditions = &wire.Conditions{Every: req.Every, Times: req.Times, PeriodCap: pr.Total, Until: until.UnixMilli()}
		pr.Summary = fmt.Sprintf("%s every %s", order.Summary(), req.Every)
		if req.Times > 0 {
			pr.Summary += fmt.Sprintf(", %d times", req.Times)
		} else {
			pr.Summary += ", until " + until.Format("Jan 2")
		}
	default:
		if tc := max(m.TipCap, req.Tip); tc > 0 {
			pr.Conditions = &wire.Conditions{TipCap: tc}
		}
		if req.Tip > 0 {
			pr.Summary += ", then a tip of " + wire.Money(req.Tip, m.Currency)
		}
	}
	pr.Summary = truncate(pr.Summary, maxSummaryBytes)
	p := proposal{tx: tx, kind: pr.Kind, payee: m.ID, currency: m.Currency, total: pr.Total, items: pr.Items}
	if pr.Kind == wire.KindOneOff {
		p.tip = req.Tip
	}
	return pr, p, nil
}

// targetItems are the items of a price target: the order's one line at the unit
// amount that makes limit its total (wire.Terms: the items add up to the total).
func targetItems(items []wire.Item, limit wire.Amount, currency string) ([]wire.Item, error) {
	if len(items) != 1 {
		return nil, notUnderstood("Sorry, I can watch the price of one item at a time.")
	}
	it := items[0]
	if limit%wire.Amount(it.Qty) != 0 {
		return nil, notUnderstood("Sorry, %s doesn't split evenly over %d; say the price for one.",
			wire.Money(limit, currency), it.Qty)
	}
	it.UnitAmount = limit / wire.Amount(it.Qty)
	return []wire.Item{it}, nil
}

// tipProposal makes the purchase request of a tip on the device's last order.
func (a *Agent) tipProposal(tx string, last lastOrder, tip wire.Amount) (purchaseRequest, proposal, error) {
	m, ok := a.cat.Merchant(last.payee)
	if !ok { // the catalogue is fixed: only a lastOrder of another catalogue
		return purchaseRequest{}, proposal{}, notUnderstood("Sorry, there is no recent order to tip.")
	}
	item := tipItem
	item.UnitAmount = tip
	pr := purchaseRequest{
		Tx:         tx,
		Merchant:   wire.Merchant{ID: m.ID, Name: m.Name},
		Items:      []wire.Item{item},
		Total:      tip,
		Currency:   last.currency,
		Kind:       wire.KindTip,
		Conditions: &wire.Conditions{Parent: last.tx},
		Summary:    truncate(fmt.Sprintf("Tip of %s on your %s order", wire.Money(tip, last.currency), m.Name), maxSummaryBytes),
	}
	p := proposal{tx: tx, kind: wire.KindTip, payee: m.ID, currency: last.currency, total: tip, items: pr.Items}
	return pr, p, nil
}

// requestTip asks for the tip said with the one-off order, now that it is paid. The
// tip is a purchase the agent starts itself: no tx, the order's user and device, and
// Idempotency-Key tip-<order tx>; the gateway picks the tip's tx and answers it, and
// the tip's proposal is remembered under that tx for its mandate. Called again for
// the same order (its mandate handed over again) it does nothing once the gateway
// has answered; before that the same key makes the gateway replay its first answer,
// so the user is never tipped twice.
func (a *Agent) requestTip(ctx context.Context, log *slog.Logger, order proposal) {
	if tx, asked := a.tipAsked(order.tx); asked {
		log.Info("tip already requested", "tip_tx", tx)
		return
	}
	if order.user == "" {
		a.stats.failures.Add(1)
		log.Warn("tip not requested: the order's user is not known")
		return
	}
	pr, p, err := a.tipProposal("", lastOrder{tx: order.tx, payee: order.payee, currency: order.currency}, order.tip)
	if err != nil {
		a.stats.failures.Add(1)
		log.Warn("tip not requested", "err", err)
		return
	}
	pr.User, pr.Device = order.user, order.device
	resp, err := a.api.StartPurchase(ctx, pr, tipKey(order.tx))
	if err == nil {
		err = checkEventID("tip.tx", resp.Tx)
	}
	if err != nil {
		a.stats.failures.Add(1)
		log.Warn("tip request failed", "err", err)
		return
	}
	p.tx, p.device, p.user = resp.Tx, order.device, order.user
	a.remember(&p)
	log = log.With("tip_tx", resp.Tx)
	if !a.tipAnswered(order.tx, resp.Tx) {
		log.Info("tip already requested", "state", resp.State)
		return
	}
	a.stats.proposals.Add(1)
	a.stats.tips.Add(1)
	log.Info("tip requested", "merchant", pr.Merchant.ID, "amount", int64(pr.Total), "state", resp.State)
}

// tipKey is the Idempotency-Key of the tip said with the order tx.
func tipKey(orderTx string) string { return "tip-" + orderTx }

// tipAsked returns the tip's tx when the gateway has answered the request of the tip
// said with the order tx.
func (a *Agent) tipAsked(orderTx string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if o, ok := a.props.get(orderTx); ok && o.tipTx != "" {
		return o.tipTx, true
	}
	return "", false
}

// tipAnswered records the tip's tx with its order, and reports whether it is the
// first answer recorded (the order forgotten meanwhile counts as first).
func (a *Agent) tipAnswered(orderTx, tipTx string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.props.get(orderTx)
	if !ok {
		return true
	}
	if o.tipTx != "" {
		return false
	}
	o.tipTx = tipTx
	return true
}

// propose remembers the proposal and sends its purchase request.
func (a *Agent) propose(ctx context.Context, log *slog.Logger, pr purchaseRequest, p *proposal) {
	a.remember(p)
	var resp purchaseResponse
	_, err := a.call(ctx, http.MethodPost, "/v1/purchase-requests", "", pr, &resp)
	var ae *apiError
	switch {
	case err == nil:
		a.stats.proposals.Add(1)
		if pr.Kind == wire.KindTip {
			a.stats.tips.Add(1)
		}
		log.Info("proposed", "kind", string(pr.Kind), "merchant", pr.Merchant.ID, "lines", len(pr.Items), "state", resp.State)
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		// Delivered again (at least once): the gateway already has an answer for tx.
		log.Info("purchase request already made", "code", ae.Code)
	default:
		if errors.As(err, &ae) { // refused for good: nothing to redeem
			a.forget(pr.Tx)
		}
		a.stats.failures.Add(1)
		log.Warn("purchase request failed", "kind", string(pr.Kind), "err", err)
	}
}

func (a *Agent) reject(ctx context.Context, log *slog.Logger, tx string, perr error) {
	reason := "Sorry, I didn't understand that."
	var pe *ParseError
	if errors.As(perr, &pe) {
		reason = pe.Reason
	}
	body := rejectRequest{Code: wire.CodeNotUnderstood.String(), Reason: truncate(reason, wire.MaxTextBytes)}
	_, err := a.call(ctx, http.MethodPost, "/v1/transactions/"+url.PathEscape(tx)+"/reject", "", body, nil)
	var ae *apiError
	switch {
	case err == nil:
		a.stats.rejections.Add(1)
		log.Info("rejected", "why", errKind(perr))
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		log.Info("rejection already made", "code", ae.Code)
	default:
		a.stats.failures.Add(1)
		log.Warn("rejection failed", "err", err)
	}
}

// errKind names a parse error for logs without quoting the user's words.
func errKind(err error) string {
	switch {
	case errors.Is(err, ErrMixedMerchants):
		return "mixed_merchants"
	case errors.Is(err, ErrQuantity):
		return "quantity"
	}
	return "not_understood"
}

// reprice returns the order at the current prices (SetPrice): its lines point at
// copies of the catalogue's items with today's price.
func (a *Agent) reprice(o Order) Order {
	a.pmu.RLock()
	defer a.pmu.RUnlock()
	out := Order{Merchant: o.Merchant, Lines: make([]Line, len(o.Lines))}
	for i, l := range o.Lines {
		if p, ok := a.prices[l.Item.SKU]; ok && p != l.Item.Price {
			it := *l.Item
			it.Price = p
			l.Item = &it
		}
		out.Lines[i] = l
	}
	return out
}
