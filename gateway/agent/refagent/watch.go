package refagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
)

// Prices and price targets. The catalogue's prices are where the agent starts;
// SetPrice changes them at run time (the simulated price drop). A price-target
// mandate is kept, keyed by its tx, until the current price of its items is at most
// its cap: then the agent redeems the current total, once, with Idempotency-Key
// redeem-<mandate id>. Targets are checked when they arrive, on every SetPrice and
// every Config.WatchEvery; one whose end has passed is forgotten.

// target is a price-target mandate the agent watches.
type target struct {
	tx, mandate, token string // the token is presented, never logged
	payee, currency    string
	cap                wire.Amount
	lines              []targetLine
	until              time.Time // zero: no end known
	// busy is set while a check has claimed the target: a fire job is queued or
	// running. Only the claimant redeems.
	busy bool
	// charging is the amount of a redemption that may have reached the gateway: a
	// retry sends the same body, so the gateway replays its answer; 0 before any.
	charging wire.Amount
}

type targetLine struct {
	item *Item
	size string // "" for an item without sizes
	qty  int
}

func (t *target) expired(now time.Time) bool { return !t.until.IsZero() && !now.Before(t.until) }

// Price returns the current price of sku's default size, and whether the catalogue
// has sku. It is safe for concurrent use.
func (a *Agent) Price(sku string) (wire.Amount, bool) {
	it, ok := a.skus[sku]
	if !ok {
		return 0, false
	}
	a.pmu.RLock()
	defer a.pmu.RUnlock()
	return a.basePrice(it), true
}

// SetPrice sets the price of sku's default size, in minor units of its merchant's
// currency; its other sizes keep their difference to it. From then on new orders are
// proposed at that price, and price targets are checked against it at once (the
// redemption itself is made by Run's workers). It is safe for concurrent use. It
// refuses an unknown sku (ErrUnknownItem) and a price that is not positive, over
// wire.MaxAmount, or makes a size cost nothing (ErrBadPrice).
func (a *Agent) SetPrice(sku string, amount wire.Amount) error {
	it, ok := a.skus[sku]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownItem, sku)
	}
	if amount <= 0 || amount > wire.MaxAmount {
		return fmt.Errorf("%w: %s: %d, want 1 to %d minor units", ErrBadPrice, sku, int64(amount), int64(wire.MaxAmount))
	}
	for _, s := range it.Sizes {
		if p := int64(amount) + s.Delta; p <= 0 || p > int64(wire.MaxAmount) {
			return fmt.Errorf("%w: %s: %d makes size %q cost %d", ErrBadPrice, sku, int64(amount), s.Name, p)
		}
	}
	a.pmu.Lock()
	a.prices[sku] = amount
	a.pmu.Unlock()
	a.log.Info("price set", "sku", sku, "amount", int64(amount))
	select {
	case a.poke <- struct{}{}:
	default: // a check is due already; it reads the new price
	}
	return nil
}

// basePrice is it's current price; pmu is held.
func (a *Agent) basePrice(it *Item) wire.Amount {
	if p, ok := a.prices[it.SKU]; ok {
		return p
	}
	return it.Price
}

// currentTotal is what the lines cost now.
func (a *Agent) currentTotal(lines []targetLine) wire.Amount {
	a.pmu.RLock()
	defer a.pmu.RUnlock()
	var sum wire.Amount
	for _, l := range lines {
		unit := a.basePrice(l.item)
		for _, s := range l.item.Sizes {
			if s.Name == l.size {
				unit += wire.Amount(s.Delta)
			}
		}
		sum += unit * wire.Amount(l.qty)
	}
	return sum
}

// targetLines are the catalogue's lines for the mandate's items (those of the
// proposal when the gateway sent none): each item the payee's, the size its first
// option when the item has sizes.
func (a *Agent) targetLines(m agent.Mandate, p proposal) ([]targetLine, error) {
	items := m.Items
	if len(items) == 0 {
		items = p.items
	}
	if len(items) == 0 {
		return nil, errors.New("no items to watch the price of")
	}
	lines := make([]targetLine, 0, len(items))
	for _, wi := range items {
		it, ok := a.skus[wi.SKU]
		if !ok || it.merchant.ID != m.Payee || wi.Qty < 1 || wi.Qty > MaxQty {
			return nil, fmt.Errorf("item %q is not the payee's, or its quantity is out of range", wi.SKU)
		}
		l := targetLine{item: it, size: it.DefaultSize(), qty: wi.Qty}
		if len(it.Sizes) > 0 && len(wi.Options) > 0 {
			if _, ok := it.UnitAmount(wi.Options[0]); ok {
				l.size = wi.Options[0]
			}
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// watchTarget keeps a price-target mandate, and redeems it at once if the price is
// met already. A mandate handed over again is harmless: the target is kept once per
// tx, and one already redeemed is not watched again.
func (a *Agent) watchTarget(ctx context.Context, log *slog.Logger, m agent.Mandate, p proposal) {
	if p.redeemedBy == m.ID {
		log.Info("price target already redeemed")
		return
	}
	lines, err := a.targetLines(m, p)
	if err != nil {
		a.stats.failures.Add(1)
		log.Warn("mandate refused", "why", err.Error())
		return
	}
	var until time.Time
	if m.ExpiresAt.Unix() > 0 {
		until = m.ExpiresAt
	}
	if c := m.Conditions; c != nil && c.Until > 0 {
		if u := time.UnixMilli(c.Until); until.IsZero() || u.Before(until) {
			until = u
		}
	}
	a.mu.Lock()
	old, known := a.targets[m.Tx]
	switch {
	case known && old.mandate == m.ID:
		a.mu.Unlock()
		log.Info("price target already watched")
		return
	case !known && len(a.targets) >= a.maxTracked:
		a.mu.Unlock()
		a.stats.failures.Add(1)
		log.Warn("price target refused: too many watched", "max", a.maxTracked)
		return
	}
	a.targets[m.Tx] = &target{tx: m.Tx, mandate: m.ID, token: m.Token, payee: m.Payee, currency: m.Currency,
		cap: m.AmountCap, lines: lines, until: until, busy: true}
	a.mu.Unlock()
	a.stats.watched.Add(1)
	log.Info("watching the price", "cap", int64(m.AmountCap), "until", until)
	a.fireTarget(ctx, m.Tx)
}

// watch checks the targets every WatchEvery and on every SetPrice, until ctx ends.
func (a *Agent) watch(ctx context.Context) {
	tick := time.NewTicker(a.watchEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-a.poke:
		}
		a.check()
	}
}

// check forgets the expired targets and queues a fire job for each target whose price
// is met. A job the full queue does not take is tried again at the next check.
func (a *Agent) check() {
	now := a.now()
	var due, expired []*target
	a.mu.Lock()
	for tx, t := range a.targets {
		switch {
		case t.busy:
		case t.expired(now):
			delete(a.targets, tx)
			expired = append(expired, t)
		case t.charging > 0 || a.currentTotal(t.lines) <= t.cap:
			t.busy = true
			due = append(due, t)
		}
	}
	a.mu.Unlock()
	for _, t := range expired {
		a.stats.expired.Add(1)
		a.log.Info("price target expired", "tx", t.tx, "mandate", t.mandate)
	}
	for _, t := range due {
		select {
		case a.queue <- job{fire: t.tx}:
		default:
			a.mu.Lock()
			t.busy = false
			a.mu.Unlock()
			a.log.Debug("price target met, queue full: next check", "tx", t.tx)
		}
	}
}

// fireTarget redeems a target a check claimed (busy), if its price is still met: the
// current total, at most its cap. A transient failure keeps it for the next check;
// a refusal forgets it.
func (a *Agent) fireTarget(ctx context.Context, tx string) {
	a.mu.Lock()
	t, ok := a.targets[tx]
	if !ok {
		a.mu.Unlock()
		return
	}
	log := a.log.With("tx", tx, "mandate", t.mandate)
	if t.expired(a.now()) {
		delete(a.targets, tx)
		a.mu.Unlock()
		a.stats.expired.Add(1)
		log.Info("price target expired")
		return
	}
	amount := t.charging
	if amount == 0 {
		if cur := a.currentTotal(t.lines); cur <= t.cap {
			amount, t.charging = cur, cur
		}
	}
	if amount == 0 {
		t.busy = false
		a.mu.Unlock()
		return
	}
	body := redeemRequest{Mandate: t.token, Amount: amount, Currency: t.currency, Payee: t.payee}
	a.mu.Unlock()

	r, status, err := a.redeem(ctx, body, "redeem-"+t.mandate)
	var ae *apiError
	retry := err != nil && !errors.Is(err, errBadAnswer) && (!errors.As(err, &ae) || ae.Transient())
	a.mu.Lock()
	if a.targets[tx] == t {
		if retry {
			t.busy = false
		} else {
			delete(a.targets, tx)
		}
	}
	a.mu.Unlock()
	if err != nil {
		a.redeemFailed(log, err)
		if retry {
			log.Info("price target kept: the redemption is tried again at the next check")
		}
		return
	}
	a.stats.fired.Add(1)
	if a.markRedeemed(tx, t.mandate) {
		a.stats.redemptions.Add(1)
	}
	log.Info("price target met: redeemed", "amount", int64(amount), "cap", int64(t.cap),
		"redemption", r.Redemption, "replay", status == http.StatusOK)
}
