// Package api is the gateway's HTTP API for agents, merchants, devices enrolling and
// the operator's admin commands, described by the OpenAPI 3.1 document it serves at
// /openapi.json (New lists the routes; a test keeps the two equal). Errors are RFC 9457
// problem details with a stable "code" (see gateway/problem).
//
// Agents authenticate with an API key (Authorization: Bearer esk_...) that carries
// scopes (registry.Scope), and act only for the users who linked them; the embedded
// agent acts for everyone. POSTs that move money take an Idempotency-Key (required on
// redemption, settlement, cancellation and revocation, and on a purchase the agent
// starts itself). The admin authenticates with the admin token from the data
// directory.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/keyring"
	"github.com/earshot/earshot/gateway/problem"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

// Config configures the API.
type Config struct {
	Core     *session.Core      // required
	Registry *registry.Registry // required
	Keys     *authz.KeySet      // required, for the JWKS
	// Store holds the audit trail the admin routes export and verify; nil: no audit
	// routes.
	Store kv.Store
	// Keyring rotates the signing keys; nil: no key routes.
	Keyring Keyring
	// AdminToken authorises /admin/v1; required.
	AdminToken string
	// Prices, if set, changes prices in the embedded agent's catalogue (the reference
	// agent's simulated merchant); nil: no price route.
	Prices Prices
	// OnAgentsChanged, if set, is called after an admin created, revoked or changed
	// an agent (the webhook dispatcher re-reads its endpoints).
	OnAgentsChanged func()
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Prices is what the admin price route needs of the embedded agent.
type Prices interface {
	SetPrice(sku string, amount wire.Amount) error
}

// Keyring is what the admin key routes need of gateway/keyring.
type Keyring interface {
	Rotate(ctx context.Context) (keyring.Info, error)
	List() []keyring.Info
	// AllJWKS is the JWKS with the retired keys, for the audit trail.
	AllJWKS(ctx context.Context) ([]byte, error)
}

// API serves the HTTP API.
type API struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	routes []Route
	idem   *idempotency
}

// Route is one operation the API serves, as the OpenAPI document describes it.
type Route struct {
	Method string
	Path   string // as in the OpenAPI document: /v1/transactions/{tx}
	// Auth is "agent", "admin" or "" (none).
	Auth string
	// Scope is the scope an agent's key needs ("" for admin and public routes).
	Scope registry.Scope
	// Idempotency is "required", "optional" or "" (not taken).
	Idempotency string
}

// New returns the API.
func New(cfg Config) (*API, error) {
	if cfg.Core == nil || cfg.Registry == nil || cfg.Keys == nil || len(cfg.AdminToken) < 16 {
		return nil, errors.New("api: Core, Registry, Keys and an AdminToken of 16+ bytes are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("component", "api"), mux: http.NewServeMux()}
	if cfg.Store != nil {
		a.idem = newIdempotency(cfg.Store)
	}
	public := func(method, path string, h http.HandlerFunc) {
		a.handle(Route{Method: method, Path: path}, h)
	}
	agentRoute := func(method, path string, scope registry.Scope, idem string, h agentHandler) {
		rt := Route{Method: method, Path: path, Auth: "agent", Scope: scope, Idempotency: idem}
		a.handle(rt, a.agent(rt, h))
	}
	admin := func(method, path string, h http.HandlerFunc) {
		a.handle(Route{Method: method, Path: path, Auth: "admin"}, a.admin(h))
	}
	public("GET", "/openapi.json", a.openAPI)
	public("POST", "/v1/enroll", a.enroll)
	public("GET", "/.well-known/jwks.json", a.jwks)

	agentRoute("GET", "/v1/me", "", "", a.me)
	agentRoute("GET", "/v1/users", "", "", a.linkedUsers)
	agentRoute("POST", "/v1/purchase-requests", registry.ScopePurchase, "optional", a.purchaseRequest)
	agentRoute("POST", "/v1/transactions/{tx}/reject", registry.ScopePurchase, "", a.reject)
	agentRoute("GET", "/v1/transactions/{tx}", "", "", a.getTx)
	agentRoute("POST", "/v1/redemptions", registry.ScopeRedeem, "required", a.redeem)
	agentRoute("POST", "/v1/transactions/{tx}/cancellation", registry.ScopeCancel, "required", a.cancellation)
	agentRoute("POST", "/v1/transactions/{tx}/settle", registry.ScopeRedeem, "required", a.settle)
	agentRoute("POST", "/v1/transactions/{tx}/revoke", registry.ScopeCancel, "required", a.revokeMandate)
	agentRoute("GET", "/v1/mandates/{jti}", "", "", a.getMandate)
	agentRoute("POST", "/v1/notifications", registry.ScopeNotify, "optional", a.notify)
	agentRoute("GET", "/v1/events", registry.ScopeIntents, "", a.events)

	admin("POST", "/admin/v1/pairing-codes", a.pairingCode)
	admin("GET", "/admin/v1/devices", a.devices)
	admin("POST", "/admin/v1/devices/{id}/revoke", a.revoke)
	admin("POST", "/admin/v1/agents", a.createAgent)
	admin("GET", "/admin/v1/agents", a.listAgents)
	admin("POST", "/admin/v1/agents/{id}/revoke", a.revokeAgent)
	admin("POST", "/admin/v1/agents/{id}/keys", a.rotateAgentKey)
	admin("PUT", "/admin/v1/agents/{id}/webhook", a.setWebhook)
	admin("GET", "/admin/v1/users/{user}/agents", a.userLinks)
	admin("POST", "/admin/v1/users/{user}/agents", a.link)
	admin("DELETE", "/admin/v1/users/{user}/agents/{agent}", a.unlink)
	if cfg.Store != nil {
		admin("GET", "/admin/v1/audit/export", a.auditExport)
		admin("GET", "/admin/v1/audit/verify", a.auditVerify)
		admin("GET", "/admin/v1/audit/jwks", a.auditJWKS)
	}
	if cfg.Keyring != nil {
		admin("GET", "/admin/v1/keys", a.listKeys)
		admin("POST", "/admin/v1/keys/rotate", a.rotateKey)
	}
	if a.cfg.Prices != nil {
		admin("PUT", "/admin/v1/catalog/prices/{sku}", a.setPrice)
	}
	return a, nil
}

func (a *API) handle(rt Route, h http.HandlerFunc) {
	a.routes = append(a.routes, rt)
	a.mux.HandleFunc(rt.Method+" "+rt.Path, h)
}

// Routes lists the operations the API serves.
func (a *API) Routes() []Route { return slices.Clone(a.routes) }

// Register mounts the API's routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	for _, p := range []string{"/openapi.json", "/v1/enroll", "/v1/me", "/v1/users", "/v1/purchase-requests", "/v1/transactions/", "/v1/redemptions",
		"/v1/mandates/", "/v1/notifications", "/v1/events", "/.well-known/jwks.json", "/admin/v1/"} {
		mux.Handle(p, a.mux)
	}
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

type agentHandler func(w http.ResponseWriter, r *http.Request, ag registry.Agent)

// agent authenticates the agent's API key, checks the route's scope and, for routes
// that take one, handles the Idempotency-Key.
func (a *API) agent(rt Route, h agentHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ag, err := a.cfg.Registry.Authorize(r.Context(), registry.BearerToken(r))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="earshot"`)
			problem.Write(w, http.StatusUnauthorized, "unauthorized", "a valid agent API key is required")
			return
		}
		if rt.Scope != "" && !ag.Can(rt.Scope) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="earshot", error="insufficient_scope", scope=%q`, rt.Scope))
			problem.Write(w, http.StatusForbidden, "insufficient_scope", fmt.Sprintf("this API key lacks the %q scope", rt.Scope))
			return
		}
		if rt.Idempotency == "" || a.idem == nil || rt.Path == "/v1/redemptions" {
			// Redemptions keep their idempotency records in the ledger, atomically
			// with the payment.
			h(w, r, ag)
			return
		}
		a.idem.serve(w, r, ag.ID, rt.Idempotency == "required", func(w http.ResponseWriter, r *http.Request) { h(w, r, ag) })
	}
}

func (a *API) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(registry.BearerToken(r)), []byte(a.cfg.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="earshot-admin"`)
			problem.Write(w, http.StatusUnauthorized, "unauthorized", "the admin token is required")
			return
		}
		h(w, r)
	}
}

// mayAct checks that the agent may act for the user (the user linked it), answering
// 404 otherwise: an agent does not learn of users who did not link it.
func (a *API) mayAct(w http.ResponseWriter, r *http.Request, ag registry.Agent, user, what string) bool {
	ok, err := a.cfg.Registry.MayActFor(r.Context(), ag, user)
	if err != nil {
		a.fail(w, r, err)
		return false
	}
	if !ok {
		problem.Write(w, http.StatusNotFound, "not_found", "no such "+what)
	}
	return ok
}

// ownTx loads the agent's transaction for a route on it, answering 404 for a
// transaction of another agent or of a user who no longer links the agent.
func (a *API) ownTx(w http.ResponseWriter, r *http.Request, ag registry.Agent) (*session.Tx, bool) {
	t, err := a.cfg.Core.Tx(r.Context(), r.PathValue("tx"))
	if err == nil && t.Agent != ag.ID {
		err = session.ErrUnknownTx
	}
	if err != nil {
		a.fail(w, r, err)
		return nil, false
	}
	if !a.mayAct(w, r, ag, t.User, "transaction") {
		return nil, false
	}
	return t, true
}

// decode reads one JSON object of at most MaxBodyBytes with no unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		problem.Write(w, http.StatusUnsupportedMediaType, "bad_request", "Content-Type must be application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &mbe):
		problem.Write(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is over %d bytes", MaxBodyBytes))
	case errors.Is(err, wire.ErrBadAmount):
		problem.Write(w, http.StatusUnprocessableEntity, "bad_amount", err.Error())
	default:
		problem.Write(w, http.StatusBadRequest, "bad_request", "malformed JSON body: "+err.Error())
	}
	return false
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// The status is sent; a client that went away cannot be told more.
	_ = json.NewEncoder(w).Encode(v)
}

// fail maps an error from the core, the ledger or the registry onto a problem.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *authz.Error
	switch {
	case errors.As(err, &ae):
		if ae.Code == authz.CodeInFlight {
			w.Header().Set("Retry-After", "1")
		}
		problem.Write(w, ae.Code.HTTPStatus(), ae.Code.String(), ae.Detail)
	case errors.Is(err, session.ErrUnknownTx):
		problem.Write(w, http.StatusNotFound, "unknown_tx", "no such transaction")
	case errors.Is(err, session.ErrForbidden):
		problem.Write(w, http.StatusForbidden, "forbidden", "the transaction belongs to another agent")
	case errors.Is(err, session.ErrTxState):
		problem.Write(w, http.StatusConflict, "tx_state", err.Error())
	case errors.Is(err, wire.ErrBadAmount):
		problem.Write(w, http.StatusUnprocessableEntity, "bad_amount", err.Error())
	case errors.Is(err, session.ErrInvalid):
		problem.Write(w, http.StatusUnprocessableEntity, "invalid_request", err.Error())
	case errors.Is(err, session.ErrNoDevice):
		problem.Write(w, http.StatusConflict, "no_device", err.Error())
	case errors.Is(err, registry.ErrBadAgent), errors.Is(err, registry.ErrBadUser):
		problem.Write(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, registry.ErrUnknownAgent):
		problem.Write(w, http.StatusNotFound, "unknown_agent", "no such agent")
	case errors.Is(err, registry.ErrNotLinked):
		problem.Write(w, http.StatusNotFound, "not_linked", err.Error())
	default:
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		problem.Write(w, http.StatusInternalServerError, "internal", "the gateway failed; the request may be retried")
	}
}

// enroll binds a device key to the user who created the pairing code.
func (a *API) enroll(w http.ResponseWriter, r *http.Request) {
	var req registry.EnrollRequest
	if !decode(w, r, &req) {
		return
	}
	d, err := a.cfg.Registry.Enroll(r.Context(), req)
	switch {
	case err == nil:
		a.log.Info("device enrolled", "device", d.ID, "user", d.User, "kind", d.Kind)
		reply(w, http.StatusCreated, map[string]string{"device": d.ID, "user": d.User, "audience": a.cfg.Registry.Audience()})
	case errors.Is(err, registry.ErrBadPairingCode):
		problem.Write(w, http.StatusForbidden, "invalid_pairing_code", "the pairing code is unknown, used or expired")
	case errors.Is(err, registry.ErrBadKind):
		problem.Write(w, http.StatusBadRequest, "bad_request", err.Error())
	default:
		problem.Write(w, http.StatusBadRequest, "bad_request", err.Error())
	}
}

type txView struct {
	Tx          string       `json:"tx"`
	State       wire.TxState `json:"state"`
	Device      string       `json:"device"`
	User        string       `json:"user"`
	Code        string       `json:"code,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	ConsentHash string       `json:"consent_hash,omitempty"`
	ExpiresAt   *time.Time   `json:"expires_at,omitempty"`
	Mandate     string       `json:"mandate,omitempty"`
	Redemption  string       `json:"redemption,omitempty"`
}

func view(t *session.Tx) txView {
	v := txView{Tx: t.ID, State: t.State, Device: t.Device, User: t.User, Reason: t.Reason, Mandate: t.Mandate, Redemption: t.Redemption}
	if t.Code != wire.CodeUnknown {
		v.Code = t.Code.String()
	}
	if t.Challenge != nil {
		v.ConsentHash = t.Challenge.Hash
		exp := time.UnixMilli(t.Challenge.Terms.ExpiresAt).UTC()
		v.ExpiresAt = &exp
	}
	return v
}

// purchaseRequest proposes a purchase: for the transaction of an intent the agent
// heard (tx), or, without a tx, one the agent starts itself for a user who linked it
// (user, and optionally device) — that needs an Idempotency-Key, so that a retry
// cannot ask the user twice.
func (a *API) purchaseRequest(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	var pr session.PurchaseRequest
	if !decode(w, r, &pr) {
		return
	}
	if pr.Tx == "" {
		if pr.User == "" {
			problem.Write(w, http.StatusBadRequest, "bad_request", "tx (answering an intent) or user (a purchase the agent starts) is required")
			return
		}
		if r.Header.Get("Idempotency-Key") == "" {
			problem.Write(w, http.StatusBadRequest, "idempotency_key_required", "a purchase the agent starts needs an Idempotency-Key header")
			return
		}
		uid, err := registry.UserID(pr.User)
		if err != nil {
			problem.Write(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		if !a.mayAct(w, r, ag, uid, "user") {
			return
		}
	}
	t, err := a.cfg.Core.RequestPurchase(r.Context(), ag.ID, pr)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	reply(w, http.StatusCreated, view(t))
}

func (a *API) reject(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	if _, ok := a.ownTx(w, r, ag); !ok {
		return
	}
	var req struct {
		Code   string `json:"code"`
		Reason string `json:"reason"`
	}
	if !decode(w, r, &req) {
		return
	}
	code := wire.CodeRefused
	if req.Code == wire.CodeNotUnderstood.String() {
		code = wire.CodeNotUnderstood
	}
	t, err := a.cfg.Core.Reject(r.Context(), ag.ID, r.PathValue("tx"), code, req.Reason)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, view(t))
}

// getTx answers a transaction's state. With ?wait=N (seconds, at most 60) it first
// waits until the state is no longer the one it is now (or the one ?state= names),
// so an agent can wait for the user's decision without polling.
func (a *API) getTx(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	t, ok := a.ownTx(w, r, ag)
	if !ok {
		return
	}
	q := r.URL.Query()
	if s := q.Get("wait"); s != "" {
		secs, err := strconv.Atoi(s)
		if err != nil || secs < 0 || secs > 60 {
			problem.Write(w, http.StatusBadRequest, "bad_request", "wait: whole seconds from 0 to 60")
			return
		}
		seen := t.State
		if st := q.Get("state"); st != "" {
			seen = wire.TxState(st)
		}
		wait := time.Duration(secs) * time.Second
		// The server's write timeout is for ordinary requests; this one may wait longer.
		// (A writer without deadlines, such as the MCP server's in-process recorder,
		// needs none.)
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 10*time.Second)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			problem.Write(w, http.StatusInternalServerError, "internal", "waiting is not supported here")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		if t, err = a.cfg.Core.WaitTx(ctx, ag.ID, t.ID, seen); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	reply(w, http.StatusOK, view(t))
}

type redeemRequest struct {
	Mandate  string      `json:"mandate"`
	Amount   wire.Amount `json:"amount"`
	Currency string      `json:"currency"`
	Payee    string      `json:"payee"`
}

func (a *API) redeem(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		problem.Write(w, http.StatusBadRequest, "idempotency_key_required", "an Idempotency-Key header is required")
		return
	}
	var req redeemRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Mandate == "" || req.Currency == "" || req.Payee == "" {
		problem.Write(w, http.StatusBadRequest, "bad_request", "mandate, amount, currency and payee are required")
		return
	}
	red, replayed, err := a.cfg.Core.Redeem(r.Context(), authz.RedeemRequest{
		Agent: ag.ID, Token: req.Mandate, Amount: req.Amount, Currency: req.Currency, Payee: req.Payee, IdempotencyKey: key,
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	reply(w, status, red)
}

func (a *API) jwks(w http.ResponseWriter, r *http.Request) {
	b, err := a.cfg.Keys.JWKS()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	// As in reply: nothing more can be told to a client that went away.
	_, _ = w.Write(b)
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, map[string]any{"keys": a.cfg.Keyring.List()})
}

// rotateKey makes a new key sign from now on. Verifiers that cache the JWKS (it is
// served with max-age 300) must fetch it again when they meet an unknown kid.
func (a *API) rotateKey(w http.ResponseWriter, r *http.Request) {
	in, err := a.cfg.Keyring.Rotate(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	reply(w, http.StatusCreated, in)
}

func (a *API) pairingCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User string `json:"user"`
	}
	if !decode(w, r, &req) {
		return
	}
	p, err := a.cfg.Registry.CreatePairingCode(r.Context(), req.User)
	if errors.Is(err, registry.ErrBadUser) {
		problem.Write(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	} else if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("pairing code created", "user", p.User) // never the code itself
	reply(w, http.StatusCreated, p)
}

func (a *API) devices(w http.ResponseWriter, r *http.Request) {
	ds, err := a.cfg.Registry.Devices(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	type dv struct {
		Device     string        `json:"device"`
		User       string        `json:"user"`
		Kind       registry.Kind `json:"kind"`
		Name       string        `json:"name"`
		EnrolledAt time.Time     `json:"enrolled_at"`
		Revoked    bool          `json:"revoked"`
	}
	out := make([]dv, 0, len(ds))
	for _, d := range ds {
		out = append(out, dv{d.ID, d.User, d.Kind, d.Name, d.EnrolledAt, d.Revoked})
	}
	reply(w, http.StatusOK, map[string]any{"devices": out})
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	d, err := a.cfg.Registry.Revoke(r.Context(), r.PathValue("id"))
	if errors.Is(err, registry.ErrUnknownDevice) {
		problem.Write(w, http.StatusNotFound, "unknown_device", "no such device")
		return
	} else if err != nil {
		a.fail(w, r, err)
		return
	}
	a.cfg.Core.Disconnect(d.ID, wire.CodeDeviceRevoked, "the device was revoked")
	a.log.Info("device revoked", "device", d.ID)
	reply(w, http.StatusOK, map[string]any{"device": d.ID, "revoked": true})
}

// setPrice changes a price in the embedded agent's catalogue: the simulated merchant's
// price drop that fires price targets.
func (a *API) setPrice(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Amount wire.Amount `json:"amount"`
	}
	if !decode(w, r, &req) {
		return
	}
	sku := r.PathValue("sku")
	if err := a.cfg.Prices.SetPrice(sku, req.Amount); err != nil {
		problem.Write(w, http.StatusUnprocessableEntity, "bad_price", err.Error())
		return
	}
	a.log.Info("price changed", "sku", sku, "amount", req.Amount)
	reply(w, http.StatusOK, map[string]any{"sku": sku, "amount": req.Amount})
}
