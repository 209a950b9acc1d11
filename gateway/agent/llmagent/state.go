package llmagent

import (
	"container/list"

	"github.com/earshot/earshot/gateway/agent/apiclient"
)

// proposal is what the agent proposed for a transaction: the purchase request it
// posted (to post the same again when the intent is delivered twice) and, once
// redeemed, the mandate that paid it.
type proposal struct {
	pr         apiclient.PurchaseRequest
	redeemedBy string
}

// bounded maps tx to proposal, holding at most max and forgetting the one put longest
// ago first. The agent guards it with its mutex.
type bounded struct {
	max   int
	byTx  map[string]*list.Element
	order *list.List // of *proposal, oldest first
}

func newBounded(max int) *bounded {
	return &bounded{max: max, byTx: map[string]*list.Element{}, order: list.New()}
}

func (b *bounded) get(tx string) (*proposal, bool) {
	e, ok := b.byTx[tx]
	if !ok {
		return nil, false
	}
	return e.Value.(*proposal), true
}

// put sets tx's proposal and makes it the newest, forgetting the oldest beyond max.
func (b *bounded) put(p *proposal) {
	b.remove(p.pr.Tx)
	b.byTx[p.pr.Tx] = b.order.PushBack(p)
	for b.order.Len() > b.max {
		oldest := b.order.Front()
		delete(b.byTx, oldest.Value.(*proposal).pr.Tx)
		b.order.Remove(oldest)
	}
}

func (b *bounded) remove(tx string) {
	if e, ok := b.byTx[tx]; ok {
		delete(b.byTx, tx)
		b.order.Remove(e)
	}
}

// remember records the proposal for its tx.
func (a *Agent) remember(pr apiclient.PurchaseRequest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.props.put(&proposal{pr: pr})
}

// lookup returns a copy of the proposal for tx.
func (a *Agent) lookup(tx string) (proposal, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.props.get(tx)
	if !ok {
		return proposal{}, false
	}
	return *p, true
}

// markRedeemed records the redemption and reports whether it is the first for tx.
func (a *Agent) markRedeemed(tx, mandate string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.props.get(tx)
	if !ok {
		return true // forgotten meanwhile; the redemption is still new to the counters
	}
	if p.redeemedBy != "" {
		return false
	}
	p.redeemedBy = mandate
	return true
}

// forget drops what the agent keeps about tx.
func (a *Agent) forget(tx string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.props.remove(tx)
}
