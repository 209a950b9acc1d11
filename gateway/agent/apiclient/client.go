// Package apiclient is a small client for the gateway's REST API for agents
// (gateway/api), shared by the embedded agents (refagent, llmagent):
//
//	POST /v1/purchase-requests          RequestPurchase: propose a purchase for a tx;
//	                                    StartPurchase: one the agent starts itself
//	POST /v1/transactions/{tx}/reject   Reject: decline to propose (not_understood)
//	POST /v1/redemptions                Redeem: present a mandate once, Idempotency-Key
//
// and Do for any other agent route. The client authenticates with the agent's API key
// (Authorization: Bearer), reads at most MaxResponseBytes of an answer, and retries
// what may succeed later — a network failure, a 5xx, 429, or 409 in_flight — with
// exponential backoff. A non-2xx answer is an *Error carrying the RFC 9457 problem
// details' code (Code reads it from an error chain). The API key and mandate tokens
// are never logged.
package apiclient

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// Errors.
var (
	// ErrConfig reports a Config New refuses.
	ErrConfig = errors.New("apiclient: bad config")
	// ErrBadAnswer reports a 2xx answer that is not for what was asked: a
	// redemption with no id or another amount or currency, a purchase the agent
	// started with no tx.
	ErrBadAnswer = errors.New("apiclient: answer does not match the request")
	// ErrNoIdempotencyKey is returned by StartPurchase called without an
	// Idempotency-Key.
	ErrNoIdempotencyKey = errors.New("apiclient: an idempotency key is required")
	// ErrInvalidRequest reports a request the client refuses to send.
	ErrInvalidRequest = errors.New("apiclient: invalid request")
)

// MaxResponseBytes bounds the answers the client reads.
const MaxResponseBytes = 1 << 20

// Defaults.
const (
	DefaultRetries   = 4
	DefaultBackoff   = 200 * time.Millisecond
	DefaultTimeout   = 10 * time.Second
	DefaultUserAgent = "earshot-agent"
)

// Config configures a Client. The zero value of every field but BaseURL and APIKey is
// a usable default.
type Config struct {
	// BaseURL is the gateway's HTTP API, such as "http://127.0.0.1:8080". Required.
	BaseURL string
	// APIKey is the agent's API key, sent as "Authorization: Bearer <key>". Required.
	// It is never logged.
	APIKey string
	// HTTPClient makes the calls. Default: a client with a DefaultTimeout timeout.
	HTTPClient *http.Client
	// Logger receives a debug line per retry. It is used as given: the caller scopes
	// it. Default: discarded.
	Logger *slog.Logger
	// Retries is how many times a call that failed transiently is retried. Default
	// DefaultRetries; negative: no retries.
	Retries int
	// Backoff is the wait before the first retry; each further retry waits twice as
	// long, up to 32 times Backoff. Default DefaultBackoff.
	Backoff time.Duration
	// UserAgent is sent with every request. Default DefaultUserAgent.
	UserAgent string
}

// Client calls the gateway's agent API. It is safe for concurrent use.
type Client struct {
	base    string // BaseURL without a trailing slash
	key     string
	http    *http.Client
	log     *slog.Logger
	retries int
	backoff time.Duration
	ua      string
}

// New checks cfg and fills in its defaults.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: BaseURL %q: want an http or https URL", ErrConfig, cfg.BaseURL)
	}
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("%w: APIKey is required", ErrConfig)
	}
	if cfg.Backoff < 0 {
		return nil, fmt.Errorf("%w: Backoff must not be negative", ErrConfig)
	}
	c := &Client{
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		key:     cfg.APIKey,
		http:    cfg.HTTPClient,
		log:     cfg.Logger,
		retries: max(cmp.Or(cfg.Retries, DefaultRetries), 0),
		backoff: cmp.Or(cfg.Backoff, DefaultBackoff),
		ua:      cmp.Or(cfg.UserAgent, DefaultUserAgent),
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultTimeout}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// PurchaseRequest is the body of POST /v1/purchase-requests: the terms the user is
// asked to approve. The items must add up to the total.
type PurchaseRequest struct {
	Tx       string        `json:"tx"`
	Merchant wire.Merchant `json:"merchant"`
	Items    []wire.Item   `json:"items"`
	Total    wire.Amount   `json:"total"`
	Currency string        `json:"currency"`
	Kind     wire.Kind     `json:"kind"`
	// Conditions are required by the kinds price_target, recurring and tip.
	Conditions *wire.Conditions `json:"conditions,omitempty"`
	Summary    string           `json:"summary"`
	// Supersedes is, for a modified order, the transaction it replaces.
	Supersedes string `json:"supersedes,omitempty"`
	// User and Device are for a purchase the agent starts itself (StartPurchase, Tx
	// empty): the user it is for and, optionally, which of the user's devices shows
	// the prompt (default: the glasses or kiosk the user connected last).
	User   string `json:"user,omitempty"`
	Device string `json:"device,omitempty"`
}

// Tx is the gateway's view of a transaction, as the purchase-request and reject
// routes answer it.
type Tx struct {
	Tx    string       `json:"tx"`
	State wire.TxState `json:"state"`
	// Code and Reason say why a transaction was rejected (a risk refusal: "refused").
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// ConsentHash and ExpiresAt describe the open prompt; ExpiresAt is kept as the
	// gateway wrote it (RFC 3339), undecoded.
	ConsentHash string          `json:"consent_hash,omitempty"`
	ExpiresAt   json.RawMessage `json:"expires_at,omitempty"`
	Mandate     string          `json:"mandate,omitempty"`
	Redemption  string          `json:"redemption,omitempty"`
}

// RejectRequest is the body of POST /v1/transactions/{tx}/reject. Code is
// "not_understood" or "refused"; Reason is device-visible text.
type RejectRequest struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// RedeemRequest is the body of POST /v1/redemptions. Mandate is the compact JWS the
// gateway issued: a bearer credential, never logged.
type RedeemRequest struct {
	Mandate  string      `json:"mandate"`
	Amount   wire.Amount `json:"amount"`
	Currency string      `json:"currency"`
	Payee    string      `json:"payee"`
}

// Redemption is the answer to a redemption.
type Redemption struct {
	Redemption string          `json:"redemption"`
	Mandate    string          `json:"mandate"`
	Tx         string          `json:"tx"`
	Amount     wire.Amount     `json:"amount"`
	Currency   string          `json:"currency"`
	Payee      string          `json:"payee"`
	RedeemedAt json.RawMessage `json:"redeemed_at"`
}

// RequestPurchase posts a purchase request and returns the transaction as the gateway
// left it: prompted, or mandated at once (a tip inside its cap), or rejected by the
// risk rules (State rejected, Code refused, Reason the rules' words).
func (c *Client) RequestPurchase(ctx context.Context, pr PurchaseRequest) (Tx, error) {
	var t Tx
	_, err := c.Do(ctx, http.MethodPost, "/v1/purchase-requests", "", pr, &t)
	return t, err
}

// StartPurchase posts a purchase the agent starts itself: pr.Tx empty, pr.User set
// (pr.Device optional). The gateway picks the transaction id and answers it in Tx.Tx.
// idempotencyKey is required (ErrNoIdempotencyKey): a retry, or the same call made
// again with the same key and body, gets the gateway's first answer (the same tx),
// so the user is never asked twice.
func (c *Client) StartPurchase(ctx context.Context, pr PurchaseRequest, idempotencyKey string) (Tx, error) {
	var t Tx
	switch {
	case idempotencyKey == "":
		return t, ErrNoIdempotencyKey
	case pr.Tx != "" || pr.User == "":
		return t, fmt.Errorf("%w: a purchase the agent starts has no tx and names the user", ErrInvalidRequest)
	}
	_, err := c.Do(ctx, http.MethodPost, "/v1/purchase-requests", idempotencyKey, pr, &t)
	if err == nil && t.Tx == "" {
		return t, fmt.Errorf("%w: no tx in the answer to a purchase the agent started", ErrBadAnswer)
	}
	return t, err
}

// Reject declines to propose anything for tx.
func (c *Client) Reject(ctx context.Context, tx string, r RejectRequest) (Tx, error) {
	var t Tx
	_, err := c.Do(ctx, http.MethodPost, "/v1/transactions/"+url.PathEscape(tx)+"/reject", "", r, &t)
	return t, err
}

// Redeem presents a mandate with an Idempotency-Key and checks that the answer is for
// what was asked (else ErrBadAnswer). It returns the final status: 201 for a new
// redemption, 200 for a replay of one under the same key.
func (c *Client) Redeem(ctx context.Context, r RedeemRequest, idempotencyKey string) (Redemption, int, error) {
	var out Redemption
	status, err := c.Do(ctx, http.MethodPost, "/v1/redemptions", idempotencyKey, r, &out)
	if err != nil {
		return out, status, err
	}
	if out.Redemption == "" || out.Amount != r.Amount || out.Currency != r.Currency {
		return out, status, ErrBadAnswer
	}
	return out, status, nil
}

// Error is a non-2xx answer, with its RFC 9457 problem details when it had them.
type Error struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("api: %d", e.Status)
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

// Transient reports whether the same request may succeed later: a 5xx, 429, or 409
// in_flight (the same Idempotency-Key is being answered).
func (e *Error) Transient() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests ||
		e.Status == http.StatusConflict && e.Code == "in_flight"
}

// Code returns the problem code of the gateway's refusal in err's chain, such as
// "over_period_cap" or "already_redeemed", or "" when err is not a refusal (nil, a
// network failure, a local error).
func Code(err error) string {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// Do sends body as JSON with method to path (after BaseURL; escape what goes into
// it) and decodes a 2xx answer into out (if not nil), retrying transient failures
// with backoff. idempotencyKey, if not empty, is sent as Idempotency-Key, the same on
// every retry. It returns the final status (0 when no answer came); a non-2xx answer
// is an *Error in the returned error's chain.
func (c *Client) Do(ctx context.Context, method, path, idempotencyKey string, body, out any) (int, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("apiclient: encode %s: %w", path, err)
	}
	for attempt := 0; ; attempt++ {
		status, retry, err := c.once(ctx, method, path, idempotencyKey, payload, out)
		if err == nil || !retry || attempt >= c.retries || ctx.Err() != nil {
			return status, err
		}
		wait := c.backoff << min(attempt, 5)
		c.log.Debug("retrying", "path", path, "attempt", attempt+1, "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return status, err
		}
	}
}

// once makes one request and says whether a failure is worth retrying.
func (c *Client) once(ctx context.Context, method, path, idempotencyKey string, payload []byte, out any) (status int, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return 0, false, fmt.Errorf("apiclient: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", c.ua)
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// A network failure, or ctx ending (Do stops on ctx.Err()).
		return 0, true, fmt.Errorf("apiclient: %s %s: %w", method, path, err)
	}
	defer func() {
		// Drain so the connection is reused; what is left is of no interest.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes))
		_ = resp.Body.Close() // a read-side close has nothing to report
	}()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return resp.StatusCode, true, fmt.Errorf("apiclient: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &Error{}
		if json.Unmarshal(raw, ae) != nil {
			ae = &Error{} // not problem JSON: keep the status alone
		}
		ae.Status = resp.StatusCode
		return resp.StatusCode, ae.Transient(), fmt.Errorf("apiclient: %s %s: %w", method, path, ae)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, false, fmt.Errorf("apiclient: %s %s: decode answer: %w", method, path, err)
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
