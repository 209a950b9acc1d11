package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/earshot/earshot/gateway/agent"
)

// MaxBody bounds a webhook body, both what the Dispatcher sends (a larger event is
// dead-lettered) and what Handler reads.
const MaxBody = 256 << 10

// ErrPayload: an event cannot be turned into a webhook body.
var ErrPayload = errors.New("webhook: bad payload")

// body is the JSON POSTed for one event: the Standard Webhooks payload structure.
type body struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Payload returns the body POSTed for ev, compact JSON with exactly three fields:
// {"type": ev.Type, "timestamp": ev.At in RFC 3339 (UTC, sub-second digits kept),
// "data": ev.Data}. A nil Data is sent as null; Data that is not valid JSON, or an
// empty Type, is an error wrapping ErrPayload.
func Payload(ev agent.Event) ([]byte, error) {
	if ev.Type == "" {
		return nil, fmt.Errorf("%w: event %q has no type", ErrPayload, ev.ID)
	}
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep the data's bytes as the agent would expect them
	err := enc.Encode(body{Type: ev.Type, Timestamp: ev.At.UTC().Format(time.RFC3339Nano), Data: data})
	if err != nil {
		return nil, fmt.Errorf("%w: event %q: %v", ErrPayload, ev.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Handler returns the receiving end of the gateway's webhooks, for agents written in
// Go. It reads the body (at most MaxBody), verifies it with Verify(secret, ...,
// time.Now(), tolerance), decodes it into an agent.Event (ID from webhook-id; Type,
// At and Data from the body; Seq, Device and User are not part of the payload and
// stay zero: Data carries the device and user) and calls fn. It answers 204 when fn
// returns nil, 401 when the signature does not verify, 400 when the body is too large
// or not a webhook payload, 405 for a method other than POST, and 500 when fn fails,
// so that the gateway delivers the event again (with the same webhook-id: fn must
// tolerate repeats). An invalid secret makes every request fail with 500.
func Handler(secret string, tolerance time.Duration, fn func(agent.Event) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		raw, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if len(raw) > MaxBody {
			http.Error(w, "body too large", http.StatusBadRequest)
			return
		}
		if err := Verify(secret, r.Header, raw, time.Now(), tolerance); err != nil {
			if errors.Is(err, ErrSecret) {
				http.Error(w, "receiver misconfigured", http.StatusInternalServerError)
				return
			}
			http.Error(w, "signature not verified", http.StatusUnauthorized)
			return
		}
		ev, err := decode(r.Header.Get(HeaderID), raw)
		if err != nil {
			http.Error(w, "not a webhook payload", http.StatusBadRequest)
			return
		}
		if err := fn(ev); err != nil {
			http.Error(w, "event not taken", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// decode turns a verified body into the event it describes.
func decode(id string, raw []byte) (agent.Event, error) {
	var b struct {
		Type      string          `json:"type"`
		Timestamp *time.Time      `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return agent.Event{}, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if b.Type == "" || b.Timestamp == nil {
		return agent.Event{}, fmt.Errorf("%w: type or timestamp missing", ErrPayload)
	}
	return agent.Event{ID: id, Type: b.Type, At: *b.Timestamp, Data: b.Data}, nil
}
