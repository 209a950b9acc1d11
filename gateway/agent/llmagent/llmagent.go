package llmagent

import (
	"cmp"
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
	"github.com/earshot/earshot/gateway/agent/apiclient"
	"github.com/earshot/earshot/gateway/agent/refagent"
)

// Errors.
var (
	// ErrBusy is returned by OnIntent, OnMandate and OnOutcome when the queue is full;
	// the event is not taken and the drop is counted. The gateway keeps it and retries.
	ErrBusy = errors.New("llmagent: queue full")
	// ErrClosed is returned by the On* methods once Run has returned, and by a Run
	// after that.
	ErrClosed = errors.New("llmagent: stopped")
	// ErrRunning is returned by a second concurrent Run.
	ErrRunning = errors.New("llmagent: already running")
	// ErrInvalid reports an event the agent cannot act on (no tx, no mandate token).
	ErrInvalid = errors.New("llmagent: invalid event")
	// ErrConfig reports a Config New refuses.
	ErrConfig = errors.New("llmagent: bad config")
)

// Config configures an Agent. BaseURL, APIKey, LLMBaseURL and Model are required;
// the zero value of every other field is a usable default.
type Config struct {
	// BaseURL is the gateway's HTTP API, such as "http://127.0.0.1:8080". Required.
	BaseURL string
	// APIKey is the agent's API key for the gateway. Required. It is never logged
	// and never sent to the model server.
	APIKey string
	// ID is the agent id mandates are bound to. Default DefaultID.
	ID string
	// Catalog is what the agent sells. Default refagent.DefaultCatalog().
	Catalog *refagent.Catalog
	// LLMBaseURL is the OpenAI-compatible model server's base URL, such as
	// "http://127.0.0.1:8000/v1"; the agent posts to LLMBaseURL + "/chat/completions".
	// Required.
	LLMBaseURL string
	// Model is the model name sent with every request. Required.
	Model string
	// LLMAPIKey, if set, is sent to the model server as "Authorization: Bearer <key>".
	// It is never logged.
	LLMAPIKey string
	// HTTPClient makes the gateway API and the model server calls. Default: a client
	// with a 10 s timeout for the gateway, and one bounded by TurnTimeout alone for
	// the model server.
	HTTPClient *http.Client
	// Logger receives the agent's logs, scoped with component=llmagent. Default:
	// discarded. Logs carry ids, tool names and counts: never the user's words, the
	// model's text, a key or a mandate token.
	Logger *slog.Logger
	// QueueSize bounds the events waiting for a worker; when it is full the On*
	// methods answer ErrBusy. Default DefaultQueueSize.
	QueueSize int
	// Workers is how many goroutines Run starts: conversations held at once. Default
	// DefaultWorkers.
	Workers int
	// MaxTurns bounds the model calls of one intent. Default DefaultMaxTurns.
	MaxTurns int
	// TurnTimeout bounds one model call, its retries included. Default
	// DefaultTurnTimeout.
	TurnTimeout time.Duration
	// LLMRetries is how many times a model call that failed with a network error,
	// 429 or 5xx is retried. Default DefaultLLMRetries; negative: no retries.
	LLMRetries int
	// Retries is how many times a gateway API call that failed transiently is
	// retried. Default apiclient.DefaultRetries; negative: no retries.
	Retries int
	// Backoff is the wait before the first retry of either; each further retry waits
	// twice as long. Default DefaultBackoff.
	Backoff time.Duration
	// MaxTracked bounds the transactions whose proposals the agent remembers to check
	// mandates against; the oldest is forgotten first. Default DefaultMaxTracked.
	MaxTracked int
}

// Defaults.
const (
	DefaultID          = "llmagent"
	DefaultQueueSize   = 64
	DefaultWorkers     = 2
	DefaultMaxTurns    = 6
	DefaultTurnTimeout = 60 * time.Second
	DefaultLLMRetries  = 2
	DefaultBackoff     = 200 * time.Millisecond
	DefaultMaxTracked  = 4096
	// MaxMaxTurns is the most MaxTurns may be.
	MaxMaxTurns = 32
)

// Stats are the agent's counters since New.
type Stats struct {
	Intents       uint64 // intents taken into the queue
	Proposals     uint64 // purchase requests the gateway accepted (it may still refuse them by its risk rules)
	Rejections    uint64 // rejections the gateway accepted
	Redemptions   uint64 // one-off mandates redeemed; a replay of one already counted is not counted again
	Failures      uint64 // gateway calls that failed for good, and mandates the agent refused
	QueueDrops    uint64 // events refused with ErrBusy
	ModelCalls    uint64 // chat-completions requests answered (retries not counted)
	ModelFailures uint64 // model turns that failed after their retries
	BadProposals  uint64 // propose_purchase calls refused back to the model
}

type counters struct {
	intents, proposals, rejections, redemptions, failures, drops atomic.Uint64
	modelCalls, modelFailures, badProposals                      atomic.Uint64
}

const (
	stateNew int32 = iota
	stateRunning
	stateStopped
)

// Agent is the LLM shopping agent. Create it with New, start it with Run.
type Agent struct {
	id       string
	api      *apiclient.Client
	chat     *chatClient
	idx      *index
	log      *slog.Logger
	workers  int
	maxTurns int

	queue chan job
	state atomic.Int32
	stats counters

	mu       sync.Mutex
	props    *bounded // tx -> what the agent proposed
	inFlight map[string]bool

	jobDone func() // test hook, called after each job; set before Run
}

var _ agent.Agent = (*Agent)(nil)

// job is one queued event: exactly one of intent, mandate and cancel is set.
type job struct {
	intent  *agent.Intent
	mandate *agent.Mandate
	cancel  string // a tx the user cancelled after paying
}

// New checks cfg, fills in its defaults and returns an agent that is not running yet.
func New(cfg Config) (*Agent, error) {
	if err := checkURL("BaseURL", cfg.BaseURL); err != nil {
		return nil, err
	}
	if err := checkURL("LLMBaseURL", cfg.LLMBaseURL); err != nil {
		return nil, err
	}
	switch {
	case cfg.APIKey == "":
		return nil, fmt.Errorf("%w: APIKey is required", ErrConfig)
	case strings.TrimSpace(cfg.Model) == "":
		return nil, fmt.Errorf("%w: Model is required", ErrConfig)
	case cfg.QueueSize < 0 || cfg.Workers < 0 || cfg.MaxTurns < 0 || cfg.TurnTimeout < 0 || cfg.Backoff < 0 || cfg.MaxTracked < 0:
		return nil, fmt.Errorf("%w: QueueSize, Workers, MaxTurns, TurnTimeout, Backoff and MaxTracked must not be negative", ErrConfig)
	case cfg.MaxTurns > MaxMaxTurns:
		return nil, fmt.Errorf("%w: MaxTurns %d: at most %d", ErrConfig, cfg.MaxTurns, MaxMaxTurns)
	}
	cat := cfg.Catalog
	if cat == nil {
		var err error
		if cat, err = refagent.DefaultCatalog(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	a := &Agent{
		id:       cmp.Or(cfg.ID, DefaultID),
		idx:      newIndex(cat),
		log:      cfg.Logger,
		workers:  cmp.Or(cfg.Workers, DefaultWorkers),
		maxTurns: cmp.Or(cfg.MaxTurns, DefaultMaxTurns),
		queue:    make(chan job, cmp.Or(cfg.QueueSize, DefaultQueueSize)),
		props:    newBounded(cmp.Or(cfg.MaxTracked, DefaultMaxTracked)),
		inFlight: map[string]bool{},
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("component", "llmagent", "agent", a.id)
	backoff := cmp.Or(cfg.Backoff, DefaultBackoff)
	var err error
	a.api, err = apiclient.New(apiclient.Config{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, HTTPClient: cfg.HTTPClient,
		Logger: a.log, Retries: cfg.Retries, Backoff: backoff, UserAgent: "earshot-llmagent"})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	modelHTTP := cfg.HTTPClient
	if modelHTTP == nil {
		modelHTTP = &http.Client{} // each call is bounded by TurnTimeout
	}
	a.chat = &chatClient{
		url:     strings.TrimRight(cfg.LLMBaseURL, "/") + "/chat/completions",
		model:   cfg.Model,
		key:     cfg.LLMAPIKey,
		http:    modelHTTP,
		retries: max(cmp.Or(cfg.LLMRetries, DefaultLLMRetries), 0),
		backoff: backoff,
		timeout: cmp.Or(cfg.TurnTimeout, DefaultTurnTimeout),
		log:     a.log,
	}
	return a, nil
}

func checkURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %s %q: want an http or https URL", ErrConfig, field, s)
	}
	return nil
}

// ID returns the agent id mandates are bound to.
func (a *Agent) ID() string { return a.id }

// Stats returns the counters.
func (a *Agent) Stats() Stats {
	return Stats{
		Intents:       a.stats.intents.Load(),
		Proposals:     a.stats.proposals.Load(),
		Rejections:    a.stats.rejections.Load(),
		Redemptions:   a.stats.redemptions.Load(),
		Failures:      a.stats.failures.Load(),
		QueueDrops:    a.stats.drops.Load(),
		ModelCalls:    a.stats.modelCalls.Load(),
		ModelFailures: a.stats.modelFailures.Load(),
		BadProposals:  a.stats.badProposals.Load(),
	}
}

// Run starts the workers and blocks until ctx is done and every one of them has
// stopped (a call in progress is cancelled with ctx). It returns nil then. Events
// still queued are abandoned: the gateway delivers at least once and hands them over
// again. An agent runs once: after Run returns, the On* methods and Run answer
// ErrClosed.
func (a *Agent) Run(ctx context.Context) error {
	if !a.state.CompareAndSwap(stateNew, stateRunning) {
		if a.state.Load() == stateStopped {
			return ErrClosed
		}
		return ErrRunning
	}
	a.log.Info("started", "workers", a.workers, "queue", cap(a.queue), "max_turns", a.maxTurns)
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
				a.mu.Lock()
				delete(a.inFlight, j.intent.Tx)
				a.mu.Unlock()
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

// OnIntent queues an intent; a worker holds the conversation with the model that
// ends in a purchase request or a rejection. An intent whose tx is queued or in a
// conversation already is taken without a second conversation. It answers ErrBusy
// when the queue is full.
func (a *Agent) OnIntent(ctx context.Context, in agent.Intent) error {
	if err := checkEventID("intent.tx", in.Tx); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inFlight[in.Tx] {
		return nil // delivered again while the first delivery is being worked on
	}
	if err := a.enqueue(ctx, job{intent: &in}); err != nil {
		return err
	}
	a.inFlight[in.Tx] = true
	a.stats.intents.Add(1)
	return nil
}

// OnMandate queues a mandate; a worker checks it against the proposal for its tx and,
// as the merchant, redeems it once. It answers ErrBusy when the queue is full.
func (a *Agent) OnMandate(ctx context.Context, m agent.Mandate) error {
	if err := checkEventID("mandate.tx", m.Tx); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := checkEventID("mandate.id", m.ID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if m.Token == "" {
		return fmt.Errorf("%w: mandate %s: no token", ErrInvalid, m.ID)
	}
	return a.enqueue(ctx, job{mandate: &m})
}

// OnOutcome forgets the transaction. A cancellation asked for after payment is
// accepted, as the merchant (nothing was made yet), then forgotten.
func (a *Agent) OnOutcome(ctx context.Context, o agent.Outcome) error {
	if a.state.Load() == stateStopped {
		return ErrClosed
	}
	if o.State == wire.TxCancelling {
		if err := checkEventID("outcome.tx", o.Tx); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return a.enqueue(ctx, job{cancel: o.Tx})
	}
	a.log.Debug("outcome", "tx", o.Tx, "state", string(o.State))
	a.forget(o.Tx)
	return nil
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

// handleCancel accepts the user's cancellation of a paid transaction.
func (a *Agent) handleCancel(ctx context.Context, tx string) {
	body := map[string]any{"accept": true}
	_, err := a.api.Do(ctx, http.MethodPost, "/v1/transactions/"+url.PathEscape(tx)+"/cancellation", "cancel-"+tx, body, nil)
	if apiclient.Code(err) == "cancelled" {
		err = nil // an accept delivered twice: done already
	}
	if err != nil {
		a.stats.failures.Add(1)
		a.log.Warn("accepting a cancellation failed", "tx", tx, "err", err)
		return
	}
	a.forget(tx)
	a.log.Info("cancellation accepted", "tx", tx)
}
