package refagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// The REST API bodies the agent sends and reads (gateway/api).

type purchaseRequest struct {
	Tx         string           `json:"tx"`
	Merchant   wire.Merchant    `json:"merchant"`
	Items      []wire.Item      `json:"items"`
	Total      wire.Amount      `json:"total"`
	Currency   string           `json:"currency"`
	Kind       wire.Kind        `json:"kind"`
	Conditions *wire.Conditions `json:"conditions,omitempty"`
	Summary    string           `json:"summary"`
}

type purchaseResponse struct {
	Tx          string          `json:"tx"`
	State       string          `json:"state"`
	ConsentHash string          `json:"consent_hash"`
	ExpiresAt   json.RawMessage `json:"expires_at"`
}

type rejectRequest struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

type redeemRequest struct {
	Mandate  string      `json:"mandate"`
	Amount   wire.Amount `json:"amount"`
	Currency string      `json:"currency"`
	Payee    string      `json:"payee"`
}

type redemption struct {
	Redemption string          `json:"redemption"`
	Mandate    string          `json:"mandate"`
	Tx         string          `json:"tx"`
	Amount     wire.Amount     `json:"amount"`
	Currency   string          `json:"currency"`
	Payee      string          `json:"payee"`
	RedeemedAt json.RawMessage `json:"redeemed_at"`
}

// apiError is a non-2xx answer, with its RFC 9457 problem details when it had them.
type apiError struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("refagent: api: %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	} else if e.Title != "" {
		s += ": " + e.Title
	}
	return s
}

// Code returns the problem code of the gateway's refusal in err's chain, such as
// "over_period_cap" or "exhausted" from Charge, or "" when err is not a refusal
// (nil, a network failure, a local error).
func Code(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// transient reports whether the same request may succeed later.
func (e *apiError) transient() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests ||
		e.Status == http.StatusConflict && e.Code == "in_flight"
}

// maxResponseBytes bounds the answers the agent reads.
const maxResponseBytes = 1 << 20

// call POSTs body as JSON to path and decodes a 2xx answer into out (if not nil),
// retrying transient failures with exponential backoff. It returns the final status.
func (a *Agent) call(ctx context.Context, method, path, idempotencyKey string, body, out any) (int, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("refagent: encode %s: %w", path, err)
	}
	for attempt := 0; ; attempt++ {
		status, retry, err := a.once(ctx, method, path, idempotencyKey, payload, out)
		if err == nil || !retry || attempt >= a.retries || ctx.Err() != nil {
			return status, err
		}
		wait := a.backoff << min(attempt, 5)
		a.log.Debug("retrying", "path", path, "attempt", attempt+1, "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return status, err
		}
	}
}

// once makes one request and says whether a failure is worth retrying.
func (a *Agent) once(ctx context.Context, method, path, idempotencyKey string, payload []byte, out any) (status int, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(payload))
	if err != nil {
		return 0, false, fmt.Errorf("refagent: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "earshot-refagent")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		// A network failure, or ctx ending (call stops on ctx.Err()).
		return 0, true, fmt.Errorf("refagent: %s %s: %w", method, path, err)
	}
	defer func() {
		// Drain so the connection is reused; what is left is of no interest.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		_ = resp.Body.Close() // a read-side close has nothing to report
	}()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, true, fmt.Errorf("refagent: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &apiError{}
		if json.Unmarshal(raw, ae) != nil {
			ae = &apiError{} // not problem JSON: keep the status alone
		}
		ae.Status = resp.StatusCode
		return resp.StatusCode, ae.transient(), ae
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, false, fmt.Errorf("refagent: %s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, false, nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
