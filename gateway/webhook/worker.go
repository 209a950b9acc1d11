package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/earshot/earshot/gateway/agent"
)

// worker delivers one endpoint's events, one at a time, in Seq order.
type worker struct {
	d      *Dispatcher
	ep     Endpoint
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
}

// run is the worker's loop: read a batch after the cursor, deliver each event,
// acknowledge it, and wait for a wake-up when the log has nothing more.
func (w *worker) run(ctx context.Context) {
	src, cfg := w.d.cfg.Source, w.d.cfg
	after, ok := w.acked(ctx)
	if !ok {
		return
	}
	w.log.Info("webhook delivery started", "acked", after)
	defer w.log.Info("webhook delivery stopped")
	acked := after // what the Source has recorded; after is what was delivered
	fails := 0
	for {
		wake := src.Wake(w.ep.Agent) // before reading, so no append slips between
		evs, err := src.Events(ctx, w.ep.Agent, after, cfg.Batch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fails++
			wait := w.d.backoff(fails)
			w.d.metrics.sourceError("events")
			w.log.Error("reading agent events", "after", after, "err", err, "retry_in", wait)
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		fails = 0
		if len(evs) == 0 {
			if acked < after && w.ack(ctx, after) {
				acked = after
			}
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-time.After(cfg.Poll):
			}
			continue
		}
		for _, ev := range evs {
			if ev.Seq <= after {
				continue // not newer than the cursor: already handled
			}
			if !w.deliver(ctx, ev) {
				return
			}
			after = ev.Seq
			if w.ack(ctx, after) {
				acked = after
			}
		}
	}
}

// acked reads where delivery resumes, retrying until it succeeds or ctx ends.
func (w *worker) acked(ctx context.Context) (uint64, bool) {
	for fails := 1; ; fails++ {
		seq, err := w.d.cfg.Source.Acked(ctx, w.ep.Agent)
		if err == nil {
			return seq, true
		}
		if ctx.Err() != nil {
			return 0, false
		}
		wait := w.d.backoff(fails)
		w.d.metrics.sourceError("acked")
		w.log.Error("reading acknowledged seq", "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return 0, false
		}
	}
}

// ack records delivery through seq. It runs even while the worker stops (bounded by
// ackTimeout) so that an event already taken is not sent again after a restart. A
// failure is logged and counted; a later ack covers it.
func (w *worker) ack(ctx context.Context, through uint64) bool {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	if err := w.d.cfg.Source.Ack(actx, w.ep.Agent, through); err != nil {
		w.d.metrics.sourceError("ack")
		w.log.Error("acknowledging delivered events", "through", through, "err", err)
		return false
	}
	return true
}

// deliver POSTs ev until it is taken (2xx) or dead-lettered, and reports false only
// when ctx ended first.
func (w *worker) deliver(ctx context.Context, ev agent.Event) bool {
	cfg := w.d.cfg
	log := w.log.With("event", ev.ID, "type", ev.Type, "seq", ev.Seq)
	body, err := Payload(ev)
	if err != nil {
		w.deadLetter(log, deadPayload, 0, 0, "err", err)
		return true
	}
	if len(body) > MaxBody {
		w.deadLetter(log, deadTooLarge, 0, 0, "bytes", len(body), "limit", MaxBody)
		return true
	}
	for attempt := 1; ; attempt++ {
		now := cfg.Now()
		sig, err := Sign(w.ep.Secret, ev.ID, now, body)
		if err != nil {
			w.deadLetter(log, deadPayload, attempt, 0, "err", err)
			return true
		}
		status, retryAfter, err := w.post(ctx, ev.ID, now, sig, body)
		if ctx.Err() != nil {
			return false
		}
		if err == nil && status >= 200 && status < 300 {
			w.d.metrics.delivery(ResultOK)
			log.Debug("webhook delivered", "status", status, "attempt", attempt)
			return true
		}
		if age := cfg.Now().Sub(ev.At); age >= cfg.MaxAge {
			w.deadLetter(log, deadMaxAge, attempt, status, "age", age.Round(time.Second), "err", err)
			return true
		}
		w.d.metrics.delivery(ResultRetry)
		wait := w.d.backoff(attempt)
		if retryAfter > wait {
			wait = min(retryAfter, cfg.MaxBackoff)
		}
		log.Warn("webhook refused, will retry", "status", status, "attempt", attempt, "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// deadLetter logs and counts an event skipped without a 2xx.
func (w *worker) deadLetter(log *slog.Logger, reason string, attempt, status int, args ...any) {
	w.d.metrics.dead(reason)
	log.Error("webhook dead-lettered", append([]any{"reason", reason, "attempt", attempt, "status", status}, args...)...)
}

// post makes one attempt and returns the status and any Retry-After (whole seconds).
// Transport errors come back without the URL, which may embed a token.
func (w *worker) post(ctx context.Context, id string, now time.Time, sig string, body []byte) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, errors.New("cannot build request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	start := time.Now()
	resp, err := w.d.cfg.Client.Do(req)
	w.d.metrics.Latency.Observe(time.Since(start).Seconds())
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, 0, err
	}
	defer func() {
		// Draining a bounded prefix lets the connection be reused; a failed close
		// of a response body has nothing left to tell.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
		_ = resp.Body.Close()
	}()
	var retryAfter time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, retryAfter, nil
}
