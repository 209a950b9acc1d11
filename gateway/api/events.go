package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/earshot/earshot/gateway/problem"
	"github.com/earshot/earshot/gateway/registry"
)

// events streams the agent's events as server-sent events, the pull alternative to
// webhooks: each event's SSE id is its seq, so a client that reconnects with
// Last-Event-ID (or ?after=N) resumes after the last event it got. An agent without a
// webhook has its events acknowledged as they are streamed; one with a webhook only
// reads them here (the webhook's own cursor is not moved).
func (a *API) events(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	after := uint64(0)
	from := r.Header.Get("Last-Event-ID")
	if from == "" {
		from = r.URL.Query().Get("after")
	}
	if from != "" {
		n, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			problem.Write(w, http.StatusBadRequest, "bad_request", "Last-Event-ID or after: an event seq")
			return
		}
		after = n
	}
	rc := http.NewResponseController(w)
	// The server's write timeout is for requests, not streams.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		problem.Write(w, http.StatusInternalServerError, "internal", "streaming is not supported here")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": earshot events\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	ack := ag.WebhookURL == "" && !ag.Embedded
	ctx := r.Context()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		wake := a.cfg.Core.Wake(ag.ID)
		evs, err := a.cfg.Core.Events(ctx, ag.ID, after, 100)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error("event stream", "agent", ag.ID, "err", err)
			}
			return
		}
		for _, ev := range evs {
			after = ev.Seq
			if ok, err := a.cfg.Registry.MayActFor(ctx, ag, ev.User); err != nil || !ok {
				continue // the user unlinked the agent
			}
			b, err := json.Marshal(ev)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, b); err != nil {
				return
			}
		}
		if len(evs) > 0 {
			if rc.Flush() != nil {
				return
			}
			if ack {
				if err := a.cfg.Core.Ack(ctx, ag.ID, after); err != nil && ctx.Err() == nil {
					a.log.Warn("event stream: acknowledging", "agent", ag.ID, "err", err)
				}
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
