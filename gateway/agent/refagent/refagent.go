package refagent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/apiclient"
)

// Errors.
var (
	// ErrBusy is returned by OnIntent and OnMandate when the queue is full, and by
	// OnMandate for a new price target or subscription when MaxTracked of them are
	// kept already; the event is not taken and the drop is counted. The gateway keeps
	// it and retries.
	ErrBusy = errors.New("refagent: queue full")
	// ErrClosed is returned by the On* methods and Charge once Run has returned, and
	// by a Run after that.
	ErrClosed = errors.New("refagent: stopped")
	// ErrRunning is returned by a second concurrent Run.
	ErrRunning = errors.New("refagent: already running")
	// ErrInvalid reports an event the agent cannot act on (no tx, no mandate token).
	ErrInvalid = errors.New("refagent: invalid event")
	// ErrConfig reports a Config New refuses.
	ErrConfig = errors.New("refagent: bad config")
	// ErrUnknownItem reports a sku the catalogue does not have (SetPrice).
	ErrUnknownItem = errors.New("refagent: unknown sku")
	// ErrBadPrice reports a price SetPrice refuses: not positive, over
	// wire.MaxAmount, or making a size of the item cost nothing or too much.
	ErrBadPrice = errors.New("refagent: bad price")
	// ErrNoSubscription is returned by Charge for a transaction that is not a
	// subscription the agent holds (never approved, forgotten, or not yet handed
	// over by the gateway).
	ErrNoSubscription = errors.New("refagent: no such subscription")
)

// Config configures an Agent. The zero value of every field but BaseURL and APIKey
// is a usable default.
type Config struct {
	// BaseURL is the gateway's HTTP API, such as "http://127.0.0.1:8080". Required.
	BaseURL string
	// APIKey is the agent's API key, sent as "Authorization: Bearer <key>". Required.
	// It is never logged.
	APIKey string
	// ID is the agent id mandates are bound to. Default "refagent".
	ID string
	// Catalog is what the agent sells. Default DefaultCatalog().
	Catalog *Catalog
	// HTTPClient makes the API calls. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives the agent's logs, scoped with component=refagent. Default:
	// discarded.
	Logger *slog.Logger
	// QueueSize bounds the events waiting for a worker; when it is full OnIntent and
	// OnMandate answer ErrBusy. Default 256.
	QueueSize int
	// Workers is how many goroutines Run starts. Default 4.
	Workers int
	// Retries is how many times a call that failed transiently (network error, 5xx,
	// 429, 409 in_flight) is retried. Default 4; negative: no retries.
	Retries int
	// Backoff is the wait before the first retry; each further retry waits twice as
	// long, up to 32 times Backoff. Default 200 ms.
	Backoff time.Duration
	// MaxTracked bounds, each on its own, the transactions whose proposals the agent
	// remembers to check mandates against (the oldest is forgotten first), the
	// devices whose last paid order it remembers for tips (likewise), and the price
	// targets and subscriptions it keeps (a new one beyond it is refused with
	// ErrBusy). Default 4096.
	MaxTracked int
	// TargetValidity is how long a price target stays open when the user did not say
	// ("for ten days", "until March 5"), and a subscription said without a count or
	// an end. Default 30 days; at most MaxValidity.
	TargetValidity time.Duration
	// WatchEvery is how often Run checks the price targets it keeps, besides on every
	// SetPrice, and forgets the expired ones. Default 1 s.
	WatchEvery time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultID             = "refagent"
	DefaultQueueSize      = 256
	DefaultWorkers        = 4
	DefaultRetries        = 4
	DefaultBackoff        = 200 * time.Millisecond
	DefaultMaxTracked     = 4096
	DefaultTargetValidity = 30 * 24 * time.Hour
	DefaultWatchEvery     = time.Second
	defaultTimeout        = 10 * time.Second
)

// Stats are the agent's counters since New.
type Stats struct {
	Intents    uint64 // intents taken into the queue
	Proposals  uint64 // purchase requests the gateway accepted, tips included
	Rejections uint64 // rejections (not understood) the gateway accepted
	// Redemptions are the payments received: one-off, tip and price-target mandates
	// redeemed, and every subscription payment. A replay of one already counted is
	// not counted again.
	Redemptions uint64
	Failures    uint64 // calls that failed for good, and mandates the merchant checks refused
	QueueDrops  uint64 // events refused with ErrBusy

	TargetsWatched       uint64 // price-target mandates taken into the watch list
	TargetsFired         uint64 // price targets redeemed because the price came down
	TargetsExpired       uint64 // price targets forgotten at their end, unredeemed
	TipsRequested        uint64 // tip purchase requests the gateway accepted
	SubscriptionPayments uint64 // subscription payments made: the first, and each Charge
}

type counters struct {
	intents, proposals, rejections, redemptions, failures, drops atomic.Uint64
	watched, fired, expired, tips, subPayments                   atomic.Uint64
}

const (
	stateNew int32 = iota
	stateRunning
	stateStopped
)

// Agent is the embedded reference agent. Create it with New, start it with Run.
type Agent struct {
	id             string
	api            *apiclient.Client
	cat            *Catalog
	log            *slog.Logger
	workers        int
	maxTracked     int
	targetValidity time.Duration
	watchEvery     time.Duration
	now            func() time.Time
	skus           map[string]*Item // every catalogue item

	queue chan job
	poke  chan struct{} // SetPrice wakes the watcher; capacity 1, a full one is enough
	state atomic.Int32
	stats counters

	pmu    sync.RWMutex
	prices map[string]wire.Amount // sku -> base price set by SetPrice

	mu      sync.Mutex
	props   *bounded[*proposal]      // tx -> what the agent proposed
	last    *bounded[lastOrder]      // device -> its last one-off order paid, for tips
	targets map[string]*target       // tx -> a price target watched; at most maxTracked
	subs    map[string]*subscription // tx -> a subscription; at most maxTracked

	jobDone func() // test hook, called after each job; set before Run
}

var _ agent.Agent = (*Agent)(nil)

// job is one queued event: exactly one of intent, mandate, cancel and fire is set.
type job struct {
	intent  *agent.Intent
	mandate *agent.Mandate
	cancel  string // a tx the user cancelled after paying
	fire    string // a tx whose price target is met
}

// proposal is what the agent proposed for a transaction, to check its mandate.
type proposal struct {
	tx         string
	device     string // "" when recalled from a mandate
	user       string // the user who asked; from the mandate when recalled
	kind       wire.Kind
	payee      string
	currency   string
	total      wire.Amount // for a price target its cap, for a subscription one payment
	items      []wire.Item
	tip        wire.Amount // a one-off order's tip, requested once it is paid
	tipTx      string      // the tip's tx, once the gateway answered its request
	redeemedBy string      // the mandate id once redeemed
}

// lastOrder is a device's last one-off order the agent was paid for: what a spoken
// tip adds to.
type lastOrder struct {
	tx, payee, currency string
}

// recall rebuilds a proposal from a mandate whose payee is one of the catalogue's
// merchants, in that merchant's currency.
func (a *Agent) recall(m agent.Mandate) (proposal, bool) {
	mer, ok := a.cat.Merchant(m.Payee)
	if !ok || mer.Currency != m.Currency {
		return proposal{}, false
	}
	p := proposal{tx: m.Tx, user: m.User, kind: kindOf(m), payee: m.Payee, currency: m.Currency, total: m.AmountCap, items: m.Items}
	a.remember(&p)
	return p, true
}

// kindOf is the mandate's kind; a gateway that does not say means one_off.
func kindOf(m agent.Mandate) wire.Kind { return cmp.Or(m.Kind, wire.KindOneOff) }

// New checks cfg, fills in its defaults and returns an agent that is not running yet.
func New(cfg Config) (*Agent, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: BaseURL %q: want an http or https URL", ErrConfig, cfg.BaseURL)
	}
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("%w: APIKey is required", ErrConfig)
	}
	if cfg.QueueSize < 0 || cfg.Workers < 0 || cfg.Backoff < 0 || cfg.MaxTracked < 0 || cfg.WatchEvery < 0 {
		return nil, fmt.Errorf("%w: QueueSize, Workers, Backoff, MaxTracked and WatchEvery must not be negative", ErrConfig)
	}
	if cfg.TargetValidity < 0 || cfg.TargetValidity > MaxValidity {
		return nil, fmt.Errorf("%w: TargetValidity %v: want 0 (default) to %v", ErrConfig, cfg.TargetValidity, MaxValidity)
	}
	a := &Agent{
		id:             cmp.Or(cfg.ID, DefaultID),
		cat:            cfg.Catalog,
		log:            cfg.Logger,
		workers:        cmp.Or(cfg.Workers, DefaultWorkers),
		maxTracked:     cmp.Or(cfg.MaxTracked, DefaultMaxTracked),
		targetValidity: cmp.Or(cfg.TargetValidity, DefaultTargetValidity),
		watchEvery:     cmp.Or(cfg.WatchEvery, DefaultWatchEvery),
		now:            cfg.Now,
		skus:           map[string]*Item{},
		queue:          make(chan job, cmp.Or(cfg.QueueSize, DefaultQueueSize)),
		poke:           make(chan struct{}, 1),
		prices:         map[string]wire.Amount{},
		targets:        map[string]*target{},
		subs:           map[string]*subscription{},
	}
	a.props = newBounded[*proposal](a.maxTracked)
	a.last = newBounded[lastOrder](a.maxTracked)
	if a.cat == nil {
		if a.cat, err = DefaultCatalog(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	for _, m := range a.cat.merchants {
		for _, it := range m.Items {
			a.skus[it.SKU] = it
		}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("component", "refagent", "agent", a.id)
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: defaultTimeout}
	}
	a.api, err = apiclient.New(apiclient.Config{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, HTTPClient: client, Logger: a.log,
		Retries: cmp.Or(cfg.Retries, DefaultRetries), Backoff: cmp.Or(cfg.Backoff, DefaultBackoff), UserAgent: "earshot-refagent"})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// ID returns the agent id mandates are bound to.
func (a *Agent) ID() string { return a.id }

// Stats returns the counters.
func (a *Agent) Stats() Stats {
	return Stats{
		Intents:              a.stats.intents.Load(),
		Proposals:            a.stats.proposals.Load(),
		Rejections:           a.stats.rejections.Load(),
		Redemptions:          a.stats.redemptions.Load(),
		Failures:             a.stats.failures.Load(),
		QueueDrops:           a.stats.drops.Load(),
		TargetsWatched:       a.stats.watched.Load(),
		TargetsFired:         a.stats.fired.Load(),
		TargetsExpired:       a.stats.expired.Load(),
		TipsRequested:        a.stats.tips.Load(),
		SubscriptionPayments: a.stats.subPayments.Load(),
	}
}

// Run starts the workers and the price watcher and blocks until ctx is done and
// every one of them has stopped (an API call in progress is cancelled with ctx). It
// returns nil then. Events still queued are abandoned: the gateway delivers at least
// once and hands them over again. An agent runs once: after Run returns, the On*
// methods, Charge and Run answer ErrClosed.
func (a *Agent) Run(ctx context.Context) error {
	if !a.state.CompareAndSwap(stateNew, stateRunning) {
		if a.state.Load() == stateStopped {
			return ErrClosed
		}
		return ErrRunning
	}
	a.log.Info("started", "workers", a.workers, "queue", cap(a.queue))
	var wg sync.WaitGroup
	for range a.workers {
		wg.Go(func() { a.work(ctx) })
	}
	wg.Go(func() { a.watch(ctx) })
	wg.Wait()
	a.state.Store(stateStopped)
	a.log.Info("stopped", "abandoned", len(a.queue))
	return nil
}

func (a *Agent) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-a.queue:
			if ctx.Err() != nil {
				return
			}
			switch {
			case j.intent != nil:
				a.handleIntent(ctx, *j.intent)
			case j.mandate != nil:
				a.handleMandate(ctx, *j.mandate)
			case j.cancel != "":
				a.handleCancel(ctx, j.cancel)
			case j.fire != "":
				a.fireTarget(ctx, j.fire)
			}
			if a.jobDone != nil {
				a.jobDone()
			}
		}
	}
}

// OnIntent queues an intent; a worker parses it and proposes a purchase or rejects
// it. It answers ErrBusy when the queue is full.
func (a *Agent) OnIntent(ctx context.Context, in agent.Intent) error {
	if err := checkEventID("intent.tx", in.Tx); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := a.enqueue(ctx, job{intent: &in}); err != nil {
		return err
	}
	a.stats.intents.Add(1)
	return nil
}

// OnMandate queues a mandate; a worker checks it against the proposal for its tx and
// redeems it: at once (one_off, tip), when the price comes down (price_target), or
// its first payment (recurring). It answers ErrBusy when the queue is full, or when
// the mandate is a new price target or subscription and MaxTracked of those are
// kept already.
func (a *Agent) OnMandate(ctx context.Context, m agent.Mandate) error {
	if err := firstErr(checkEventID("mandate.tx", m.Tx), checkEventID("mandate.id", m.ID)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if m.Token == "" {
		return fmt.Errorf("%w: mandate %s: no token", ErrInvalid, m.ID)
	}
	if a.full(kindOf(m), m.Tx) {
		a.stats.drops.Add(1)
		return ErrBusy
	}
	return a.enqueue(ctx, job{mandate: &m})
}

// full reports whether a mandate of kind for tx would be refused because MaxTracked
// price targets or subscriptions are kept already.
func (a *Agent) full(kind wire.Kind, tx string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch kind {
	case wire.KindPriceTarget:
		_, known := a.targets[tx]
		return !known && len(a.targets) >= a.maxTracked
	case wire.KindRecurring:
		_, known := a.subs[tx]
		return !known && len(a.subs) >= a.maxTracked
	}
	return false
}

// OnOutcome forgets the transaction: its proposal, and the price target or
// subscription it was, if any.
func (a *Agent) OnOutcome(ctx context.Context, o agent.Outcome) error {
	if a.state.Load() == stateStopped {
		return ErrClosed
	}
	a.log.Debug("outcome", "tx", o.Tx, "state", string(o.State))
	if o.State == wire.TxCancelling {
		// As the merchant, nothing was made yet: accept every cancellation.
		return a.enqueue(ctx, job{cancel: o.Tx})
	}
	a.forget(o.Tx)
	return nil
}

// handleCancel accepts the user's cancellation of a paid transaction.
func (a *Agent) handleCancel(ctx context.Context, tx string) {
	var out struct {
		State string `json:"state"`
	}
	body := map[string]any{"accept": true}
	_, err := a.call(ctx, http.MethodPost, "/v1/transactions/"+tx+"/cancellation", "cancel-"+tx, body, &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "cancelled" {
		err, out.State = nil, "cancelled" // an accept delivered twice (after a restart): done already
	}
	if err != nil {
		a.stats.failures.Add(1)
		a.log.Warn("accepting a cancellation failed", "tx", tx, "err", err)
		return
	}
	a.forget(tx)
	a.log.Info("cancellation accepted", "tx", tx, "state", out.State)
}

func (a *Agent) enqueue(ctx context.Context, j job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if a.state.Load() == stateStopped {
		return ErrClosed
	}
	select {
	case a.queue <- j:
		return nil
	default:
		a.stats.drops.Add(1)
		return ErrBusy
	}
}

// checkEventID accepts an id the gateway handed over: 1 to wire.MaxIDBytes visible
// ASCII characters, safe in a header and, escaped, in a path.
func checkEventID(field, id string) error {
	if id == "" || len(id) > wire.MaxIDBytes {
		return fmt.Errorf("%s: %d bytes, want 1 to %d", field, len(id), wire.MaxIDBytes)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("%s: not visible ASCII", field)
		}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// remember records a proposal, keeping whether tx was already redeemed and its tip
// requested, and forgets the oldest beyond MaxTracked.
func (a *Agent) remember(p *proposal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.props.get(p.tx); ok &&
		old.payee == p.payee && old.currency == p.currency && old.total == p.total && old.kind == p.kind {
		p.redeemedBy = old.redeemedBy
		if p.tip == old.tip {
			p.tipTx = old.tipTx
		}
	}
	a.props.put(p.tx, p)
}

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

// forget drops everything the agent keeps about tx. A device's last order is
// forgotten too when it is tx (cancelled: nothing to tip).
func (a *Agent) forget(tx string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.props.get(tx); ok && p.device != "" {
		if l, ok := a.last.get(p.device); ok && l.tx == tx {
			a.last.remove(p.device)
		}
	}
	a.props.remove(tx)
	delete(a.targets, tx)
	delete(a.subs, tx)
}

// paid records a one-off order paid as its device's last order, for tips.
func (a *Agent) paid(p proposal) {
	if p.device == "" || p.kind != wire.KindOneOff {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last.put(p.device, lastOrder{tx: p.tx, payee: p.payee, currency: p.currency})
}

func (a *Agent) lastOrder(device string) (lastOrder, bool) {
	if device == "" {
		return lastOrder{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last.get(device)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
