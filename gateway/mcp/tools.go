package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Waiting for the user's decision.
const (
	// DefaultPurchaseWait is how long request_purchase waits by default.
	DefaultPurchaseWait = 60 * time.Second
	// MaxWait bounds wait_seconds.
	MaxWait = 120 * time.Second
)

// Merchant is the payee of a purchase.
type Merchant struct {
	ID   string `json:"id" jsonschema:"the merchant's id, the payee of the mandate (e.g. earshot-coffee)"`
	Name string `json:"name" jsonschema:"the merchant's name as the user will see and hear it"`
}

// Item is one line of a purchase.
type Item struct {
	SKU        string      `json:"sku" jsonschema:"the merchant's product id"`
	Name       string      `json:"name" jsonschema:"the product's name as the user will see and hear it"`
	Qty        int         `json:"qty" jsonschema:"how many, at least 1"`
	UnitAmount wire.Amount `json:"unit_amount" jsonschema:"price of one, an integer in minor units of the currency (550 is 5.50)"`
	Options    []string    `json:"options,omitempty" jsonschema:"options the user will see, like large or oat milk"`
}

// PurchaseInput is what request_purchase takes.
type PurchaseInput struct {
	Tx       string      `json:"tx,omitempty" jsonschema:"the transaction of an intent the user spoke (from earshot://intents); leave empty to start a purchase yourself for user"`
	User     string      `json:"user,omitempty" jsonschema:"the user to ask, for a purchase you start (no tx); see list_users"`
	Device   string      `json:"device,omitempty" jsonschema:"only with user: which of the user's devices shows the prompt; default the glasses or kiosk the user connected last"`
	Merchant Merchant    `json:"merchant" jsonschema:"who is paid"`
	Items    []Item      `json:"items" jsonschema:"the lines of the order, exactly as the user will be asked to approve them"`
	Total    wire.Amount `json:"total" jsonschema:"the total, an integer in minor units of the currency: 1100 with USD is USD 11.00"`
	Currency string      `json:"currency" jsonschema:"ISO 4217 currency code such as USD or EUR"`
	Summary  string      `json:"summary,omitempty" jsonschema:"a short line the prompt may show with the items"`
	// WaitSeconds is a pointer so that 0 (do not wait) differs from absent.
	WaitSeconds    *int   `json:"wait_seconds,omitempty" jsonschema:"how long to wait for the user's decision, 0 to 120 seconds; default 60. Progress is reported while waiting"`
	IdempotencyKey string `json:"idempotency_key,omitempty" jsonschema:"repeating a call with the same key and arguments returns the first answer instead of asking the user again; default derived from this session and the arguments"`
}

// Consent is a transaction's state as request_purchase, check_consent and
// reject_intent report it.
type Consent struct {
	Tx    string `json:"tx" jsonschema:"the transaction"`
	State string `json:"state" jsonschema:"received, requested, prompted (the user is being asked), confirmed, mandated (approved: redeem it), redeemed, declined, expired, rejected, failed, cancelling, cancelled or settled"`
	// Decided is false while the user is still being asked.
	Decided bool   `json:"decided" jsonschema:"false while the user has not been asked or has not decided yet (see next)"`
	Code    string `json:"code,omitempty" jsonschema:"why it was rejected, expired or failed"`
	Reason  string `json:"reason,omitempty" jsonschema:"the reason as the user was told"`
	Mandate string `json:"mandate,omitempty" jsonschema:"the mandate id, once approved (the token itself stays with the gateway: use redeem)"`
	// AmountCap, Currency and Payee describe the mandate.
	AmountCap wire.Amount `json:"amount_cap,omitempty" jsonschema:"the most the mandate pays, minor units"`
	Currency  string      `json:"currency,omitempty" jsonschema:"the mandate's currency"`
	Payee     string      `json:"payee,omitempty" jsonschema:"the merchant the mandate pays"`
	ExpiresAt *time.Time  `json:"expires_at,omitempty" jsonschema:"when the open prompt expires (prompted) or the mandate can no longer be redeemed (mandated)"`
	Next      string      `json:"next" jsonschema:"what to do next"`
}

// CheckInput is what check_consent takes.
type CheckInput struct {
	Tx          string `json:"tx" jsonschema:"the transaction"`
	WaitSeconds int    `json:"wait_seconds,omitempty" jsonschema:"wait up to this many seconds (at most 120) for the state to change and the user to decide; default 0, answer at once"`
}

// RedeemInput is what redeem takes.
type RedeemInput struct {
	Tx             string       `json:"tx" jsonschema:"the mandated transaction to be paid for"`
	Amount         *wire.Amount `json:"amount,omitempty" jsonschema:"the amount to charge, minor units, at most the mandate's amount_cap; default the cap"`
	IdempotencyKey string       `json:"idempotency_key,omitempty" jsonschema:"a retry with the same key returns the first answer; default derived from the mandate and the amount"`
}

// Redemption is a payment made under a mandate.
type Redemption struct {
	Redemption string      `json:"redemption" jsonschema:"the redemption id"`
	Mandate    string      `json:"mandate" jsonschema:"the mandate id"`
	Tx         string      `json:"tx"`
	Amount     wire.Amount `json:"amount" jsonschema:"the amount paid, minor units"`
	Currency   string      `json:"currency"`
	Payee      string      `json:"payee"`
	RedeemedAt time.Time   `json:"redeemed_at"`
	Replayed   bool        `json:"replayed" jsonschema:"true when this answers a retry of an earlier redemption with the same idempotency key: nothing was paid twice"`
}

// CancelInput is what cancel takes.
type CancelInput struct {
	Tx     string `json:"tx" jsonschema:"the approved transaction whose mandate you give up before redeeming it"`
	Reason string `json:"reason" jsonschema:"why, as the user will be told"`
}

// Cancellation is a revoked mandate.
type Cancellation struct {
	Tx      string `json:"tx"`
	Mandate string `json:"mandate"`
	State   string `json:"state" jsonschema:"the mandate's state: revoked"`
	Reason  string `json:"reason,omitempty"`
}

// NotifyInput is what notify takes.
type NotifyInput struct {
	User   string `json:"user" jsonschema:"the user to tell (one who linked you)"`
	Text   string `json:"text" jsonschema:"what the device shows or says"`
	Device string `json:"device,omitempty" jsonschema:"which of the user's devices; default the one connected last"`
	Tx     string `json:"tx,omitempty" jsonschema:"the transaction the notice is about, if any"`
}

// Notice is a delivered notification.
type Notice struct {
	User   string `json:"user"`
	Device string `json:"device" jsonschema:"the device the notice went to"`
}

// RejectInput is what reject_intent takes.
type RejectInput struct {
	Tx            string `json:"tx" jsonschema:"the intent's transaction"`
	Reason        string `json:"reason" jsonschema:"what the user is told, e.g. that item is sold out"`
	NotUnderstood bool   `json:"not_understood,omitempty" jsonschema:"true when you could not understand what the user wanted (rather than refusing it)"`
}

// User is a user who linked the agent.
type User struct {
	User     string    `json:"user"`
	LinkedAt time.Time `json:"linked_at"`
}

// Users is what list_users returns.
type Users struct {
	Users []User `json:"users" jsonschema:"the users you may act for, the most recently linked first"`
}

// txView is GET /v1/transactions/{tx}'s answer.
type txView struct {
	Tx        string       `json:"tx"`
	State     wire.TxState `json:"state"`
	User      string       `json:"user"`
	Device    string       `json:"device"`
	Code      string       `json:"code"`
	Reason    string       `json:"reason"`
	ExpiresAt *time.Time   `json:"expires_at"`
	Mandate   string       `json:"mandate"`
}

// mandateView is GET /v1/mandates/{jti}'s answer.
type mandateView struct {
	Mandate   string      `json:"mandate"`
	Tx        string      `json:"tx"`
	State     string      `json:"state"`
	Payee     string      `json:"payee"`
	AmountCap wire.Amount `json:"amount_cap"`
	Currency  string      `json:"currency"`
	ExpiresAt int64       `json:"expires_at"`
	Cancel    string      `json:"cancel_reason"`
}

func ptr[T any](v T) *T { return &v }

// addTools registers the tools on one agent's server.
func (s *Server) addTools(srv *sdk.Server) {
	sdk.AddTool(srv, &sdk.Tool{
		Name:  "request_purchase",
		Title: "Ask the user to approve a purchase",
		Description: "Proposes a purchase to the user, who approves or declines it on their own device, and waits for " +
			"the decision (reporting progress). Give tx to answer an intent from earshot://intents, or user to start " +
			"a purchase yourself. State mandated means approved: then call redeem. Amounts are integers in minor units.",
		Annotations: &sdk.ToolAnnotations{IdempotentHint: true, DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
	}, s.requestPurchase)
	sdk.AddTool(srv, &sdk.Tool{
		Name:        "check_consent",
		Title:       "Check a purchase's state",
		Description: "Returns a transaction's state; with wait_seconds, waits for it to change and for the user to decide.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, s.checkConsent)
	sdk.AddTool(srv, &sdk.Tool{
		Name:  "redeem",
		Title: "Get paid under an approved purchase",
		Description: "Charges an approved (mandated) transaction once, for at most its amount_cap. The gateway presents " +
			"the mandate itself. Retrying with the same idempotency key never pays twice.",
		Annotations: &sdk.ToolAnnotations{IdempotentHint: true, DestructiveHint: ptr(true), OpenWorldHint: ptr(true)},
	}, s.redeem)
	sdk.AddTool(srv, &sdk.Tool{
		Name:        "cancel",
		Title:       "Give up an approved purchase",
		Description: "Revokes the mandate of an approved transaction that was not redeemed; the user is told why.",
		Annotations: &sdk.ToolAnnotations{IdempotentHint: true, DestructiveHint: ptr(true), OpenWorldHint: ptr(true)},
	}, s.cancel)
	sdk.AddTool(srv, &sdk.Tool{
		Name:        "notify",
		Title:       "Tell the user something",
		Description: "Shows or speaks a short message on one of the user's devices.",
		Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
	}, s.notify)
	sdk.AddTool(srv, &sdk.Tool{
		Name:        "reject_intent",
		Title:       "Decline what the user asked for",
		Description: "Answers an intent from earshot://intents without a purchase; the user hears the reason.",
		Annotations: &sdk.ToolAnnotations{IdempotentHint: true, DestructiveHint: ptr(true), OpenWorldHint: ptr(true)},
	}, s.rejectIntent)
	sdk.AddTool(srv, &sdk.Tool{
		Name:        "list_users",
		Title:       "List the users you may act for",
		Description: "The users who linked you, the most recent first.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, s.listUsers)
}

// caller is who makes a request: the agent, the key it authenticated this HTTP
// request with, and its session.
type caller struct {
	agent, key, session string
}

func callerOf(extra *sdk.RequestExtra, ss *sdk.ServerSession) (caller, error) {
	if extra == nil || extra.TokenInfo == nil || extra.TokenInfo.UserID == "" {
		return caller{}, &ToolError{Status: http.StatusUnauthorized, Code: "unauthorized", Detail: "no authenticated agent"}
	}
	c := caller{agent: extra.TokenInfo.UserID}
	if extra.Header != nil {
		c.key = registry.BearerToken(&http.Request{Header: extra.Header})
	}
	if ss != nil {
		c.session = ss.ID()
	}
	return c, nil
}

// waitArg reads a wait_seconds argument.
func waitArg(secs *int, def time.Duration) (time.Duration, error) {
	if secs == nil {
		return def, nil
	}
	if *secs < 0 || time.Duration(*secs)*time.Second > MaxWait {
		return 0, badArgs("wait_seconds: 0 to %d", int(MaxWait/time.Second))
	}
	return time.Duration(*secs) * time.Second, nil
}

// derive makes an Idempotency-Key from its parts.
func derive(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "mcp-" + hex.EncodeToString(h.Sum(nil))[:40]
}

func (s *Server) requestPurchase(ctx context.Context, req *sdk.CallToolRequest, in PurchaseInput) (*sdk.CallToolResult, Consent, error) {
	c, err := callerOf(req.Extra, req.Session)
	if err != nil {
		return nil, Consent{}, err
	}
	wait, err := waitArg(in.WaitSeconds, DefaultPurchaseWait)
	if err != nil {
		return nil, Consent{}, err
	}
	switch {
	case in.Tx == "" && in.User == "":
		return nil, Consent{}, badArgs("give tx (answering an intent from earshot://intents) or user (a purchase you start)")
	case in.Tx != "" && (in.User != "" || in.Device != ""):
		return nil, Consent{}, badArgs("user and device are only for a purchase you start without a tx")
	}
	pr := session.PurchaseRequest{
		Tx: in.Tx, User: in.User, Device: in.Device, Merchant: wire.Merchant{ID: in.Merchant.ID, Name: in.Merchant.Name},
		Total: in.Total, Currency: in.Currency, Kind: wire.KindOneOff, Summary: in.Summary,
	}
	for _, it := range in.Items {
		pr.Items = append(pr.Items, wire.Item{SKU: it.SKU, Name: it.Name, Qty: it.Qty, UnitAmount: it.UnitAmount, Options: it.Options})
	}
	key := in.IdempotencyKey
	if key == "" {
		b, err := json.Marshal(pr)
		if err != nil {
			return nil, Consent{}, err
		}
		key = derive("request_purchase", c.session, string(b))
	}
	ctx, done := s.track(ctx)
	defer done()
	var v txView
	if _, err := s.call(ctx, c.key, request{method: "POST", path: "/v1/purchase-requests", idem: key, body: pr}, &v); err != nil {
		return nil, Consent{}, err
	}
	s.log.Info("purchase requested", "agent", c.agent, "tx", v.Tx, "state", v.State)
	p := s.progress(req)
	v, err = s.waitDecision(ctx, c.key, v, "", wait, p)
	if err != nil {
		return nil, Consent{}, err
	}
	return nil, s.consent(ctx, c.key, v), nil
}

func (s *Server) checkConsent(ctx context.Context, req *sdk.CallToolRequest, in CheckInput) (*sdk.CallToolResult, Consent, error) {
	c, err := callerOf(req.Extra, req.Session)
	if err != nil {
		return nil, Consent{}, err
	}
	wait, err := waitArg(&in.WaitSeconds, 0)
	if err != nil {
		return nil, Consent{}, err
	}
	if in.Tx == "" {
		return nil, Consent{}, badArgs("tx is required")
	}
	ctx, done := s.track(ctx)
	defer done()
	var v txView
	if _, err := s.call(ctx, c.key, request{method: "GET", path: pathTx(in.Tx, "")}, &v); err != nil {
		return nil, Consent{}, err
	}
	if wait > 0 {
		if v, err = s.waitDecision(ctx, c.key, v, v.State, wait, s.progress(req)); err != nil {
			return nil, Consent{}, err
		}
	}
	return nil, s.consent(ctx, c.key, v), nil
}

func (s *Server) redeem(ctx context.Context, req *sdk.CallToolRequest, in RedeemInput) (*sdk.CallToolResult, Redemption, error) {
	c, err := callerOf(req.Extra, req.Session)
	if err != nil {
		return nil, Redemption{}, err
	}
	if in.Tx == "" {
		return nil, Redemption{}, badArgs("tx is required")
	}
	// The REST API decides whether this agent may see the transaction at all.
	var v txView
	if _, err := s.call(ctx, c.key, request{method: "GET", path: pathTx(in.Tx, "")}, &v); err != nil {
		return nil, Redemption{}, err
	}
	if v.Mandate == "" {
		return nil, Redemption{}, &ToolError{Status: http.StatusConflict, Code: "tx_state",
			Detail: "the transaction is " + string(v.State) + ", with no mandate to redeem"}
	}
	m, err := s.cfg.Core.MandateToken(ctx, c.agent, v.Tx)
	if err != nil {
		s.log.Error("mandate token", "agent", c.agent, "tx", v.Tx, "err", err)
		return nil, Redemption{}, &ToolError{Status: http.StatusInternalServerError, Code: "internal", Detail: "the mandate could not be read; retry"}
	}
	amount := m.AmountCap
	if in.Amount != nil {
		amount = *in.Amount
	}
	key := in.IdempotencyKey
	if key == "" {
		key = derive("redeem", m.ID, strconv.FormatInt(int64(amount), 10))
	}
	var red struct {
		ID         string      `json:"redemption"`
		Mandate    string      `json:"mandate"`
		Tx         string      `json:"tx"`
		Payee      string      `json:"payee"`
		Amount     wire.Amount `json:"amount"`
		Currency   string      `json:"currency"`
		RedeemedAt int64       `json:"redeemed_at"`
	}
	// The token goes to the API in-process and nowhere else.
	an, err := s.call(ctx, c.key, request{method: "POST", path: "/v1/redemptions", idem: key, body: map[string]any{
		"mandate": m.Token, "amount": amount, "currency": m.Currency, "payee": m.Payee,
	}}, &red)
	if err != nil {
		return nil, Redemption{}, scrub(err, m.Token)
	}
	out := Redemption{Redemption: red.ID, Mandate: red.Mandate, Tx: red.Tx, Amount: red.Amount, Currency: red.Currency,
		Payee: red.Payee, RedeemedAt: time.UnixMilli(red.RedeemedAt).UTC(), Replayed: an.header.Get("Idempotent-Replayed") == "true"}
	s.log.Info("redeemed", "agent", c.agent, "tx", out.Tx, "mandate", out.Mandate, "amount", out.Amount, "replayed", out.Replayed)
	return nil, out, nil
}

func (s *Server) cancel(ctx context.Context, req *sdk.CallToolRequest, in CancelInput) (*sdk.CallToolResult, Cancellation, error) {
	c, err := callerOf(req.Extra, req.Session)
	if err != nil {
		return nil, Cancellation{}, err
	}
	if in.Tx == "" {
		return nil, Cancellation{}, badArgs("tx is required")
	}
	var m mandateView
	_, err = s.call(ctx, c.key, request{method: "POST", path: pathTx(in.Tx, "/revoke"), idem: derive("cancel", in.Tx, in.Reason),
		body: map[string]string{"reason": in.Reason}}, &m)
	if err != nil {
		return nil, Cancellation{}, err
	}
	return nil, Cancellation{Tx: m.Tx, Mandate: m.Mandate, State: m.State, Reason: m.Cancel}, nil
}

func (s *Server) notify(ctx context.Context, req *sdk.CallToolRequest, in NotifyInput) (*sdk.CallToolResult, Notice, error) {
	c, err := callerOf(req.Extra, req.Session)
	if err != nil {
		return nil, Notice{}, err
	}
	var n Notice
	_, err = s.call(ctx, c.key, request{method: "POST", path: "/v1/notifications",
		body: map[string]string{"user": in.User, "device": in.Device, "tx": in.Tx, "text": in.Text}}, &n)
	return nil, n, err
}

func (s *Server) rejectIntent(ctx context.Context, req *sdk.CallToolRequest, in RejectInput) (*sdk.CallToolResult, Consent, error) {
	c, err := callerOf(req.Extra, req.Session)
	if err != nil {
		return nil, Consent{}, err
	}
	if in.Tx == "" {
		return nil, Consent{}, badArgs("tx is required")
	}
	code := wire.CodeRefused.String()
	if in.NotUnderstood {
		code = wire.CodeNotUnderstood.String()
	}
	var v txView
	_, err = s.call(ctx, c.key, request{method: "POST", path: pathTx(in.Tx, "/reject"),
		body: map[string]string{"code": code, "reason": in.Reason}}, &v)
	if err != nil {
		return nil, Consent{}, err
	}
	return nil, s.consent(ctx, c.key, v), nil
}

func (s *Server) listUsers(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, Users, error) {
	c, err := callerOf(req.Extra, req.Session)
	if err != nil {
		return nil, Users{}, err
	}
	var us Users
	if _, err := s.call(ctx, c.key, request{method: "GET", path: "/v1/users"}, &us); err != nil {
		return nil, Users{}, err
	}
	if us.Users == nil {
		us.Users = []User{}
	}
	return nil, us, nil
}

// pending reports whether the user is still being asked.
func pending(st wire.TxState) bool {
	return slices.Contains([]wire.TxState{wire.TxRequested, wire.TxPrompted, wire.TxConfirmed}, st)
}

// waitDecision long-polls the transaction until it is no longer pending and no
// longer in state from, or wait has passed, reporting progress every
// ProgressEvery.
func (s *Server) waitDecision(ctx context.Context, key string, v txView, from wire.TxState, wait time.Duration, p *progress) (txView, error) {
	deadline := time.Now().Add(wait)
	p.report(ctx, v, false)
	for pending(v.State) || v.State == from {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		secs := int((min(left, s.cfg.ProgressEvery) + time.Second - 1) / time.Second)
		q := map[string][]string{"wait": {strconv.Itoa(min(secs, 60))}, "state": {string(v.State)}}
		var nv txView
		if _, err := s.call(ctx, key, request{method: "GET", path: pathTx(v.Tx, ""), query: q}, &nv); err != nil {
			return v, err
		}
		if err := context.Cause(ctx); err != nil {
			return v, err
		}
		p.report(ctx, nv, nv.State == v.State)
		v = nv
	}
	return v, nil
}

// consent is the tool's view of a transaction, with its mandate's terms once there
// is one.
func (s *Server) consent(ctx context.Context, key string, v txView) Consent {
	c := Consent{Tx: v.Tx, State: string(v.State), Decided: !pending(v.State) && v.State != wire.TxReceived, Code: v.Code, Reason: v.Reason, Mandate: v.Mandate}
	if v.State == wire.TxPrompted {
		c.ExpiresAt = v.ExpiresAt
	}
	if v.Mandate != "" {
		var m mandateView
		_, err := s.call(ctx, key, request{method: "GET", path: "/v1/mandates/" + v.Mandate}, &m)
		var te *ToolError
		switch {
		case err == nil:
			c.AmountCap, c.Currency, c.Payee = m.AmountCap, m.Currency, m.Payee
			if v.State == wire.TxMandated {
				c.ExpiresAt = ptr(time.Unix(m.ExpiresAt, 0).UTC())
			}
		case errors.As(err, &te):
			// The state is right without the terms; the agent may ask again.
		default:
			s.log.Warn("mandate terms", "tx", v.Tx, "err", err)
		}
	}
	c.Next = next(v.State)
	return c
}

// next tells the model what a state asks of it.
func next(st wire.TxState) string {
	switch st {
	case wire.TxReceived:
		return "the user spoke and nobody answered yet: request_purchase with this tx, or reject_intent"
	case wire.TxRequested, wire.TxPrompted, wire.TxConfirmed:
		return "the user is still deciding: call check_consent with wait_seconds to wait for the answer"
	case wire.TxMandated:
		return "approved: call redeem once to be paid (or cancel to give it up)"
	case wire.TxRedeemed, wire.TxSettled:
		return "paid: nothing more to do"
	case wire.TxCancelling:
		return "the user asked to cancel the paid order: the merchant must accept or refuse"
	case wire.TxDeclined:
		return "the user declined: do not ask again unless the user does"
	case wire.TxExpired:
		return "the user did not answer in time: ask again only if the user asks"
	default:
		return "no purchase: see code and reason"
	}
}

// progress reports a waiting tool call's progress, when the client asked for it.
type progress struct {
	s     *Server
	ss    *sdk.ServerSession
	token any
	n     int
}

func (s *Server) progress(req *sdk.CallToolRequest) *progress {
	return &progress{s: s, ss: req.Session, token: req.Params.GetProgressToken()}
}

func (p *progress) report(ctx context.Context, v txView, same bool) {
	if p.token == nil || p.ss == nil {
		return
	}
	msg := string(v.State)
	switch {
	case same:
		msg = "still waiting for the user's decision (" + msg + ")"
	case v.State == wire.TxRequested:
		msg = "requested: the gateway is preparing the prompt"
	case v.State == wire.TxPrompted:
		msg = "prompted: the user is being asked on their device"
	case v.State == wire.TxConfirmed:
		msg = "confirmed: the user approved; the mandate is being issued"
	case v.State == wire.TxMandated:
		msg = "mandated: approved"
	}
	p.n++
	err := p.ss.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: p.token, Progress: float64(p.n), Message: msg})
	if err != nil && ctx.Err() == nil {
		p.s.log.Debug("progress not sent", "session", p.ss.ID(), "err", err)
	}
}
