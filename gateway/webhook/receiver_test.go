package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/gateway/agent"
)

// attempt is one request a receiver answered.
type attempt struct {
	id     string
	seq    uint64
	device string
	ok     bool
}

// receiver is a webhook endpoint that verifies every request with Verify and answers
// according to answer (2xx when nil).
type receiver struct {
	t         *testing.T
	secret    string
	now       func() time.Time // default time.Now
	tolerance time.Duration
	answer    func(id string, n int) int // n: how many requests came before this one

	mu       sync.Mutex
	attempts []attempt
	bad      []string
	maxOK    uint64        // highest seq answered 2xx
	hit      chan struct{} // closed and replaced on every request
}

func newReceiver(t *testing.T, secret string) *receiver {
	return &receiver{t: t, secret: secret, hit: make(chan struct{})}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	now := time.Now()
	if rc.now != nil {
		now = rc.now()
	}
	rc.mu.Lock()
	defer func() {
		close(rc.hit)
		rc.hit = make(chan struct{})
		rc.mu.Unlock()
	}()
	switch {
	case err != nil:
		rc.bad = append(rc.bad, "read: "+err.Error())
	case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") != UserAgent:
		rc.bad = append(rc.bad, "request shape: "+r.Method+" "+r.Header.Get("Content-Type")+" "+r.Header.Get("User-Agent"))
	default:
		if err := Verify(rc.secret, r.Header, body, now, rc.tolerance); err != nil {
			rc.bad = append(rc.bad, "verify: "+err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	var p struct {
		Type string    `json:"type"`
		Data eventData `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		rc.bad = append(rc.bad, "payload: "+err.Error())
	}
	id := r.Header.Get(HeaderID)
	code := http.StatusOK
	if rc.answer != nil {
		code = rc.answer(id, len(rc.attempts))
	}
	ok := code >= 200 && code < 300
	rc.attempts = append(rc.attempts, attempt{id: id, seq: p.Data.Seq, device: p.Data.Device, ok: ok})
	if ok {
		rc.maxOK = max(rc.maxOK, p.Data.Seq)
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(code)
	if code == http.StatusNoContent {
		return
	}
	if _, err := w.Write([]byte("thanks")); err != nil {
		rc.bad = append(rc.bad, "write: "+err.Error())
	}
}

// delivered returns the ids answered 2xx, in arrival order.
func (rc *receiver) delivered() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var ids []string
	for _, a := range rc.attempts {
		if a.ok {
			ids = append(ids, a.id)
		}
	}
	return ids
}

func (rc *receiver) all() []attempt {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.attempts)
}

// waitAttempts blocks until the receiver has seen n requests.
func (rc *receiver) waitAttempts(n int) {
	rc.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		rc.mu.Lock()
		got, ch := len(rc.attempts), rc.hit
		rc.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			rc.t.Fatalf("receiver saw %d requests, want %d", got, n)
		}
	}
}

func (rc *receiver) checkNoBad() {
	rc.t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, b := range rc.bad {
		rc.t.Errorf("receiver: %s", b)
	}
}

// ids lists the ids of evs.
func ids(evs []agent.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func testSecret(t *testing.T, b byte) string {
	t.Helper()
	s, err := NewSecret(bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// endpoints is a mutable endpoint list for Config.Endpoints.
type endpoints struct {
	mu   sync.Mutex
	list []Endpoint
	err  error
}

func (e *endpoints) set(list ...Endpoint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = list
}

func (e *endpoints) get(context.Context) ([]Endpoint, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list), e.err
}

// testConfig is a Config with tiny backoffs.
func testConfig(src Source, eps *endpoints, logs io.Writer) Config {
	if logs == nil {
		logs = io.Discard
	}
	return Config{
		Source:     src,
		Endpoints:  eps.get,
		MinBackoff: time.Millisecond,
		MaxBackoff: 4 * time.Millisecond,
		Batch:      7,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:    NewMetrics(),
	}
}

// running is a Dispatcher started in the background.
type running struct {
	d      *Dispatcher
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return startD(t, d)
}

func startD(t *testing.T, d *Dispatcher) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it; the deadline only turns a hang into a failure.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run = %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := r.d.LiveWorkers(); n != 0 {
		t.Errorf("%d workers still running after Run returned", n)
	}
}
