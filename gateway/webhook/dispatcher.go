package webhook

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/earshot/earshot/gateway/agent"
)

// Source is the gateway's event log (implemented by gateway/session.Core).
type Source interface {
	// Events returns up to limit events of the agent with Seq > after, in Seq order.
	Events(ctx context.Context, agent string, after uint64, limit int) ([]agent.Event, error)
	// Acked returns the Seq through which the agent's webhook has taken the events.
	Acked(ctx context.Context, agent string) (uint64, error)
	// Ack records that the agent's webhook took every event through seq (durably).
	Ack(ctx context.Context, agent string, through uint64) error
	// Wake returns a channel closed when the agent may have events newer than any
	// read so far (take a fresh channel after each wake-up).
	Wake(agent string) <-chan struct{}
}

// Endpoint is where one agent's webhooks go. Its String and LogValue show only the
// agent: the secret, and the URL that may embed a token, stay out of logs.
type Endpoint struct {
	// Agent is the agent id whose events the endpoint receives; one endpoint per agent.
	Agent string
	// URL is the absolute http or https URL events are POSTed to.
	URL string
	// Secret is the signing secret, "whsec_" + base64 (NewSecret).
	Secret string
}

// String names the endpoint by its agent.
func (e Endpoint) String() string { return "webhook endpoint of agent " + e.Agent }

// LogValue logs the endpoint as its agent only.
func (e Endpoint) LogValue() slog.Value { return slog.GroupValue(slog.String("agent", e.Agent)) }

// validate checks the endpoint's shape; the error names neither URL nor secret.
func (e Endpoint) validate() error {
	if e.Agent == "" {
		return fmt.Errorf("%w: no agent", ErrEndpoint)
	}
	u, err := url.Parse(e.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: URL is not an absolute http(s) URL", ErrEndpoint)
	}
	if err := ValidSecret(e.Secret); err != nil {
		return fmt.Errorf("%w: %w", ErrEndpoint, err)
	}
	return nil
}

// Defaults of Config.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Minute
	DefaultMaxAge     = 24 * time.Hour
	DefaultBatch      = 64
	DefaultPoll       = 5 * time.Second
)

const (
	// UserAgent is sent with every delivery.
	UserAgent = "earshot-webhook/1"
	// maxResponse bounds how much of a response is read (and discarded) so the
	// connection can be reused.
	maxResponse = 64 << 10
	// ackTimeout bounds an acknowledgement, which is attempted even while the worker
	// stops so that a delivered event is not sent again.
	ackTimeout = 5 * time.Second
)

// Errors of the dispatcher.
var (
	// ErrConfig: New was given an unusable Config.
	ErrConfig = errors.New("webhook: bad config")
	// ErrEndpoint: an endpoint from Config.Endpoints is malformed; it gets no worker.
	ErrEndpoint = errors.New("webhook: bad endpoint")
	// ErrRunning: Run was called while the dispatcher was already running.
	ErrRunning = errors.New("webhook: dispatcher already running")
)

// Config configures a Dispatcher. Zero values take the documented defaults.
type Config struct {
	// Source is the event log. Required.
	Source Source
	// Endpoints says who gets webhooks now. It is called when Run starts, on every
	// Reload, and again after a failure (with backoff). Required.
	Endpoints func(ctx context.Context) ([]Endpoint, error)
	// Client sends the POSTs. Default: a 10 s timeout, redirects not followed (a 3xx
	// is a failed delivery, per the spec).
	Client *http.Client
	// MinBackoff and MaxBackoff bound the wait between attempts, which doubles from
	// MinBackoff up to MaxBackoff, with jitter (each wait is drawn from [b/2, b]).
	// Default 500 ms and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// MaxAge: an event still refused this long after its At is dead-lettered (logged,
	// counted, acknowledged, skipped). Default 24 h.
	MaxAge time.Duration
	// Batch is how many events one Source.Events call reads. Default 64.
	Batch int
	// Poll is how long a worker with nothing to send waits for Source.Wake before it
	// reads the log again anyway, as a safety net. Default 5 s.
	Poll time.Duration
	// Logger receives the dispatcher's logs. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives the counters. Default: NewMetrics(), unregistered.
	Metrics *Metrics
	// Now is the clock for webhook-timestamp and MaxAge. Default time.Now.
	Now func() time.Time
	// Rand is the jitter's randomness. Default crypto/rand.Reader.
	Rand io.Reader
}

// Dispatcher delivers each endpoint's events, in order, from the Source.
type Dispatcher struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	reload  chan struct{} // capacity 1: Reloads coalesce
	running atomic.Bool

	randMu sync.Mutex // guards cfg.Rand, which need not be safe for concurrent use

	live   atomic.Int64 // workers whose goroutine has not returned
	onSync func()       // test hook, called after each read of the endpoint list
}

// New checks cfg, fills in its defaults and returns a Dispatcher ready to Run.
func New(cfg Config) (*Dispatcher, error) {
	switch {
	case cfg.Source == nil:
		return nil, fmt.Errorf("%w: Source is required", ErrConfig)
	case cfg.Endpoints == nil:
		return nil, fmt.Errorf("%w: Endpoints is required", ErrConfig)
	case cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 || cfg.MaxAge < 0 || cfg.Batch < 0 || cfg.Poll < 0:
		return nil, fmt.Errorf("%w: negative duration or batch", ErrConfig)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout:       DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.MinBackoff > cfg.MaxBackoff {
		return nil, fmt.Errorf("%w: MinBackoff %s above MaxBackoff %s", ErrConfig, cfg.MinBackoff, cfg.MaxBackoff)
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Dispatcher{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "webhook"),
		metrics: cfg.Metrics,
		reload:  make(chan struct{}, 1),
	}, nil
}

// Metrics returns the dispatcher's collectors.
func (d *Dispatcher) Metrics() *Metrics { return d.metrics }

// Reload asks Run to read Config.Endpoints again: workers start for new agents, stop
// for removed ones and restart for those whose URL or secret changed. It does not
// wait; Reloads asked for before the read coalesce.
func (d *Dispatcher) Reload() {
	select {
	case d.reload <- struct{}{}:
	default: // one is pending already
	}
}

// Run delivers until ctx ends, with one worker goroutine per endpoint, and returns nil
// once every worker has stopped. It returns ErrRunning if the Dispatcher is already
// running. A failing Config.Endpoints keeps the current workers and is retried.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer d.running.Store(false)
	workers := map[string]*worker{}
	defer func() {
		stop(workers)
		clear(workers)
		d.metrics.Endpoints.Set(0)
	}()
	var (
		retry *time.Timer
		fails int
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		var retryC <-chan time.Time
		if err := d.sync(ctx, workers); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fails++
			wait := d.backoff(fails)
			d.metrics.sourceError("endpoints")
			d.log.Error("reading webhook endpoints", "err", err, "retry_in", wait)
			if retry == nil {
				retry = time.NewTimer(wait)
			} else {
				retry.Reset(wait)
			}
			retryC = retry.C
		} else {
			fails = 0
			if retry != nil {
				retry.Stop()
			}
		}
		if d.onSync != nil {
			d.onSync()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.reload:
		case <-retryC:
		}
	}
}

// sync brings the workers in line with Config.Endpoints. A worker being replaced has
// stopped before its successor starts, so one agent never has two senders.
func (d *Dispatcher) sync(ctx context.Context, workers map[string]*worker) error {
	eps, err := d.cfg.Endpoints(ctx)
	if err != nil {
		return err
	}
	want := make(map[string]Endpoint, len(eps))
	for _, ep := range eps {
		if err := ep.validate(); err != nil {
			d.log.Error("webhook endpoint refused", "agent", ep.Agent, "err", err)
			continue
		}
		if _, dup := want[ep.Agent]; dup {
			d.log.Error("webhook endpoint refused: agent listed twice, keeping the first", "agent", ep.Agent)
			continue
		}
		want[ep.Agent] = ep
	}
	gone := map[string]*worker{}
	for a, w := range workers {
		if ep, ok := want[a]; !ok || ep != w.ep {
			gone[a] = w
			delete(workers, a)
		}
	}
	stop(gone)
	for a, ep := range want {
		if _, ok := workers[a]; !ok {
			workers[a] = d.start(ctx, ep)
		}
	}
	d.metrics.Endpoints.Set(float64(len(workers)))
	return nil
}

// start runs a worker for ep until ctx ends or it is stopped.
func (d *Dispatcher) start(ctx context.Context, ep Endpoint) *worker {
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{d: d, ep: ep, log: d.log.With("agent", ep.Agent), cancel: cancel, done: make(chan struct{})}
	d.live.Add(1)
	go func() {
		defer close(w.done)
		defer d.live.Add(-1)
		w.run(wctx)
	}()
	return w
}

// stop cancels every worker and then waits for all of them.
func stop(ws map[string]*worker) {
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		<-w.done
	}
}

// backoff is the wait before attempt n+1 after n failures: MinBackoff doubled n-1
// times, capped at MaxBackoff, drawn uniformly from [b/2, b].
func (d *Dispatcher) backoff(n int) time.Duration {
	b := d.cfg.MinBackoff
	for i := 1; i < n && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.cfg.MaxBackoff)
	half := b / 2
	if half <= 0 {
		return b
	}
	var buf [8]byte
	d.randMu.Lock()
	_, err := io.ReadFull(d.cfg.Rand, buf[:])
	d.randMu.Unlock()
	if err != nil {
		return b // no jitter rather than no retry
	}
	var r uint64
	for _, c := range buf {
		r = r<<8 | uint64(c)
	}
	return half + time.Duration(r%uint64(half+1))
}

// sleep waits for d or ctx; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
