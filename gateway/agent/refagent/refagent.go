package refagent

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
)

// Errors.
var (
	// ErrBusy is returned by OnIntent and OnMandate when the queue is full; the
	// event is not taken and the drop is counted. The gateway keeps it and retries.
	ErrBusy = errors.New("refagent: queue full")
	// ErrClosed is returned by the On* methods once Run has returned, and by a Run
	// after that.
	ErrClosed = errors.New("refagent: stopped")
	// ErrRunning is returned by a second concurrent Run.
	ErrRunning = errors.New("refagent: already running")
	// ErrInvalid reports an event the agent cannot act on (no tx, no mandate token).
	ErrInvalid = errors.New("refagent: invalid event")
	// ErrConfig reports a Config New refuses.
	ErrConfig = errors.New("refagent: bad config")
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
	// MaxTracked bounds the transactions whose proposals the agent remembers to
	// check mandates against; the oldest is forgotten first. Default 4096.
	MaxTracked int
}

// Defaults.
const (
	DefaultID         = "refagent"
	DefaultQueueSize  = 256
	DefaultWorkers    = 4
	DefaultRetries    = 4
	DefaultBackoff    = 200 * time.Millisecond
	DefaultMaxTracked = 4096
	defaultTimeout    = 10 * time.Second
)

// Stats are the agent's counters since New.
type Stats struct {
	Intents     uint64 // intents taken into the queue
	Proposals   uint64 // purchase requests the gateway accepted
	Rejections  uint64 // rejections (not understood) the gateway accepted
	Redemptions uint64 // mandates redeemed; a replay of one already counted is not counted again
	Failures    uint64 // calls that failed for good, and mandates the merchant checks refused
	QueueDrops  uint64 // events refused with ErrBusy
}

type counters struct {
	intents, proposals, rejections, redemptions, failures, drops atomic.Uint64
}

const (
	stateNew int32 = iota
	stateRunning
	stateStopped
)

// Agent is the embedded reference agent. Create it with New, start it with Run.
type Agent struct {
	id      string
	base    string // BaseURL without a trailing slash
	key     string
	cat     *Catalog
	client  *http.Client
	log     *slog.Logger
	workers int
	retries int
	backoff time.Duration

	queue chan job
	state atomic.Int32
	stats counters

	mu      sync.Mutex
	props   map[string]*list.Element // tx -> element of order holding *proposal
	order   *list.List               // oldest first
	maxProp int

	jobDone func() // test hook, called after each job; set before Run
}

var _ agent.Agent = (*Agent)(nil)

// job is one queued event: exactly one of intent, mandate and cancel is set.
type job struct {
	intent  *agent.Intent
	mandate *agent.Mandate
	cancel  string // a tx the user cancelled after paying
}

// proposal is what the agent proposed for a transaction, to check its mandate.
type proposal struct {
	tx         string
	payee      string
	currency   string
	total      wire.Amount
	redeemedBy string // the mandate id once redeemed
}

// recall rebuilds a proposal from a mandate whose payee is one of the catalogue's
// merchants, in that merchant's currency.
func (a *Agent) recall(m agent.Mandate) (proposal, bool) {
	mer, ok := a.cat.Merchant(m.Payee)
	if !ok || mer.Currency != m.Currency {
		return proposal{}, false
	}
	p := proposal{tx: m.Tx, payee: m.Payee, currency: m.Currency, total: m.AmountCap}
	a.remember(&p)
	return p, true
}

// New checks cfg, fills in its defaults and returns an agent that is not running yet.
func New(cfg Config) (*Agent, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: BaseURL %q: want an http or https URL", ErrConfig, cfg.BaseURL)
	}
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("%w: APIKey is required", ErrConfig)
	}
	if cfg.QueueSize < 0 || cfg.Workers < 0 || cfg.Backoff < 0 || cfg.MaxTracked < 0 {
		return nil, fmt.Errorf("%w: QueueSize, Workers, Backoff and MaxTracked must not be negative", ErrConfig)
	}
	a := &Agent{
		id:      cmp.Or(cfg.ID, DefaultID),
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		key:     cfg.APIKey,
		cat:     cfg.Catalog,
		client:  cfg.HTTPClient,
		log:     cfg.Logger,
		workers: cmp.Or(cfg.Workers, DefaultWorkers),
		retries: cmp.Or(cfg.Retries, DefaultRetries),
		backoff: cfg.Backoff,
		queue:   make(chan job, cmp.Or(cfg.QueueSize, DefaultQueueSize)),
		props:   map[string]*list.Element{},
		order:   list.New(),
		maxProp: cmp.Or(cfg.MaxTracked, DefaultMaxTracked),
	}
	if a.cat == nil {
		if a.cat, err = DefaultCatalog(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if a.client == nil {
		a.client = &http.Client{Timeout: defaultTimeout}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("component", "refagent", "agent", a.id)
	if a.retries < 0 {
		a.retries = 0
	}
	if a.backoff == 0 {
		a.backoff = DefaultBackoff
	}
	return a, nil
}

// ID returns the agent id mandates are bound to.
func (a *Agent) ID() string { return a.id }

// Stats returns the counters.
func (a *Agent) Stats() Stats {
	return Stats{
		Intents:     a.stats.intents.Load(),
		Proposals:   a.stats.proposals.Load(),
		Rejections:  a.stats.rejections.Load(),
		Redemptions: a.stats.redemptions.Load(),
		Failures:    a.stats.failures.Load(),
		QueueDrops:  a.stats.drops.Load(),
	}
}

// Run starts the workers and blocks until ctx is done and every worker has stopped
// (an API call in progress is cancelled with ctx). It returns nil then. Events still
// queued are abandoned: the gateway delivers at least once and hands them over again.
// An agent runs once: after Run returns, the On* methods and Run answer ErrClosed.
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
// redeems it. It answers ErrBusy when the queue is full.
func (a *Agent) OnMandate(ctx context.Context, m agent.Mandate) error {
	if err := firstErr(checkEventID("mandate.tx", m.Tx), checkEventID("mandate.id", m.ID)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if m.Token == "" {
		return fmt.Errorf("%w: mandate %s: no token", ErrInvalid, m.ID)
	}
	return a.enqueue(ctx, job{mandate: &m})
}

// OnOutcome forgets the transaction.
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

// handleIntent proposes the parsed order, or rejects what does not parse.
func (a *Agent) handleIntent(ctx context.Context, in agent.Intent) {
	log := a.log.With("tx", in.Tx)
	order, err := a.cat.Parse(in.Text)
	if err != nil {
		a.reject(ctx, log, in.Tx, err)
		return
	}
	total := order.Total()
	a.remember(&proposal{tx: in.Tx, payee: order.Merchant.ID, currency: order.Merchant.Currency, total: total})
	req := purchaseRequest{
		Tx:       in.Tx,
		Merchant: wire.Merchant{ID: order.Merchant.ID, Name: order.Merchant.Name},
		Items:    order.Items(),
		Total:    total,
		Currency: order.Merchant.Currency,
		Kind:     wire.KindOneOff,
		Summary:  truncate(order.Summary(), wire.MaxTextBytes),
	}
	var resp purchaseResponse
	_, err = a.call(ctx, http.MethodPost, "/v1/purchase-requests", "", req, &resp)
	var ae *apiError
	switch {
	case err == nil:
		a.stats.proposals.Add(1)
		log.Info("proposed", "merchant", order.Merchant.ID, "lines", len(order.Lines), "state", resp.State)
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		// Delivered again (at least once): the gateway already has an answer for tx.
		log.Info("purchase request already made", "code", ae.Code)
	default:
		if errors.As(err, &ae) { // refused for good: nothing to redeem
			a.forget(in.Tx)
		}
		a.stats.failures.Add(1)
		log.Warn("purchase request failed", "err", err)
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

// handleMandate acts as the merchant: it checks the mandate against the proposal and
// redeems exactly the proposed total, once.
func (a *Agent) handleMandate(ctx context.Context, m agent.Mandate) {
	log := a.log.With("tx", m.Tx, "mandate", m.ID)
	p, ok := a.lookup(m.Tx)
	if !ok {
		// The agent restarted since it proposed (the gateway hands unfinished mandates
		// back after its own restart). The mandate carries the terms the user approved;
		// as the merchant, redeem them if they are ours.
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
	case m.AmountCap < p.total:
		refuse = "amount cap is below the proposed total"
	}
	if refuse != "" {
		a.stats.failures.Add(1)
		log.Warn("mandate refused", "why", refuse)
		return
	}
	body := redeemRequest{Mandate: m.Token, Amount: p.total, Currency: p.currency, Payee: p.payee}
	var r redemption
	status, err := a.call(ctx, http.MethodPost, "/v1/redemptions", "redeem-"+m.ID, body, &r)
	if err != nil {
		a.stats.failures.Add(1)
		log.Warn("redemption failed", "err", err)
		return
	}
	if r.Redemption == "" || r.Amount != p.total || r.Currency != p.currency {
		a.stats.failures.Add(1)
		log.Error("redemption answer does not match the request", "redemption", r.Redemption)
		return
	}
	if a.markRedeemed(m.Tx, m.ID) {
		a.stats.redemptions.Add(1)
	}
	log.Info("redeemed", "redemption", r.Redemption, "replay", status == http.StatusOK)
}

// remember records a proposal, keeping whether tx was already redeemed, and forgets
// the oldest beyond MaxTracked.
func (a *Agent) remember(p *proposal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.props[p.tx]; ok {
		old := e.Value.(*proposal)
		if old.payee == p.payee && old.currency == p.currency && old.total == p.total {
			p.redeemedBy = old.redeemedBy
		}
		a.order.Remove(e)
	}
	a.props[p.tx] = a.order.PushBack(p)
	for a.order.Len() > a.maxProp {
		oldest := a.order.Front()
		delete(a.props, oldest.Value.(*proposal).tx)
		a.order.Remove(oldest)
	}
}

func (a *Agent) lookup(tx string) (proposal, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.props[tx]
	if !ok {
		return proposal{}, false
	}
	return *e.Value.(*proposal), true
}

// markRedeemed records the redemption and reports whether it is the first for tx.
func (a *Agent) markRedeemed(tx, mandate string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.props[tx]
	if !ok {
		return true // forgotten meanwhile; the redemption is still new to the counters
	}
	p := e.Value.(*proposal)
	if p.redeemedBy != "" {
		return false
	}
	p.redeemedBy = mandate
	return true
}

func (a *Agent) forget(tx string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.props[tx]; ok {
		delete(a.props, tx)
		a.order.Remove(e)
	}
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
