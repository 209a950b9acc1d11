package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/audit"
	"github.com/earshot/earshot/gateway/problem"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
)

// mandateView is a mandate's state as agents see it.
type mandateView struct {
	Mandate     string   `json:"mandate"`
	Tx          string   `json:"tx"`
	State       string   `json:"state"`
	Payee       string   `json:"payee"`
	AmountCap   int64    `json:"amount_cap"`
	Currency    string   `json:"currency"`
	ExpiresAt   int64    `json:"expires_at"`             // Unix seconds
	Redemption  string   `json:"redemption,omitempty"`   // once redeemed
	Amount      int64    `json:"amount,omitempty"`       // paid, once redeemed
	SettleAfter int64    `json:"settle_after,omitempty"` // end of the cancel window, Unix ms
	Cancel      string   `json:"cancel_reason,omitempty"`
	Declined    string   `json:"cancel_declined,omitempty"`
	Receipts    []string `json:"receipts"` // signed receipts, oldest first
}

func mview(e *authz.Entry) mandateView {
	v := mandateView{Mandate: e.Claims.ID, Tx: e.Claims.Tx, State: e.State.String(), Payee: e.Claims.Payee,
		AmountCap: int64(e.Claims.AmountCap), Currency: e.Claims.Currency, ExpiresAt: e.Claims.Expiry,
		SettleAfter: e.SettleAfter, Cancel: e.CancelReason, Declined: e.CancelDeclined, Receipts: e.Receipts}
	if e.Redemption != nil {
		v.Redemption, v.Amount = e.Redemption.ID, int64(e.Redemption.Amount)
	}
	if v.Receipts == nil {
		v.Receipts = []string{}
	}
	return v
}

func (a *API) getMandate(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	e, err := a.cfg.Core.Mandate(r.Context(), ag.ID, r.PathValue("jti"))
	if err != nil {
		if a.forbiddenAsNotFound(w, err) {
			return
		}
		a.fail(w, r, err)
		return
	}
	if !a.mayAct(w, r, ag, e.Claims.User, "mandate") {
		return
	}
	reply(w, http.StatusOK, mview(e))
}

// forbiddenAsNotFound answers a mandate of another agent as not found: an agent sees
// only its own.
func (a *API) forbiddenAsNotFound(w http.ResponseWriter, err error) bool {
	if authz.CodeOf(err) == authz.CodeNotFound || errors.Is(err, session.ErrForbidden) {
		problem.Write(w, http.StatusNotFound, "not_found", "no such mandate")
		return true
	}
	return false
}

func (a *API) cancellation(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	if _, ok := a.ownTx(w, r, ag); !ok {
		return
	}
	var req struct {
		Accept *bool  `json:"accept"`
		Reason string `json:"reason"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Accept == nil {
		problem.Write(w, http.StatusBadRequest, "bad_request", `"accept" (true or false) is required`)
		return
	}
	if !*req.Accept && req.Reason == "" {
		problem.Write(w, http.StatusBadRequest, "bad_request", `a refused cancellation needs a "reason" the user will hear`)
		return
	}
	e, err := a.cfg.Core.ResolveCancel(r.Context(), ag.ID, r.PathValue("tx"), *req.Accept, req.Reason)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, mview(e))
}

func (a *API) settle(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	if _, ok := a.ownTx(w, r, ag); !ok {
		return
	}
	e, err := a.cfg.Core.Settle(r.Context(), ag.ID, r.PathValue("tx"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, mview(e))
}

func (a *API) revokeMandate(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	if _, ok := a.ownTx(w, r, ag); !ok {
		return
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if !decode(w, r, &req) {
		return
	}
	e, err := a.cfg.Core.Revoke(r.Context(), ag.ID, r.PathValue("tx"), req.Reason)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, mview(e))
}

// auditExport streams the audit trail as JSON lines, from ?from= (default 1).
func (a *API) auditExport(w http.ResponseWriter, r *http.Request) {
	from := uint64(1)
	if s := r.URL.Query().Get("from"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			problem.Write(w, http.StatusBadRequest, "bad_request", "from: a record number, 1 or more")
			return
		}
		from = n
	}
	w.Header().Set("Content-Type", "application/jsonl")
	if err := audit.Export(r.Context(), a.cfg.Store, w, from); err != nil {
		// The status line is gone; the client sees a truncated body that fails to verify.
		a.log.Error("audit export", "err", err)
	}
}

// auditVerify verifies the stored audit trail against the mandate keys.
func (a *API) auditVerify(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	keys, err := a.auditKeys(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rep, err := audit.Verify(r.Context(), a.cfg.Store, keys)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("audit verified", "records", rep.Records, "problems", len(rep.Problems)+rep.MoreProblems,
		"took", time.Since(start))
	reply(w, http.StatusOK, rep)
}

// auditKeys verifies audit checkpoints: every key that ever signed, when the keyring
// is there (checkpoints outlive a key's time in the JWKS).
func (a *API) auditKeys(r *http.Request) (audit.Verifier, error) {
	if a.cfg.Keyring == nil {
		return a.cfg.Keys, nil
	}
	b, err := a.cfg.Keyring.AllJWKS(r.Context())
	if err != nil {
		return nil, err
	}
	return authz.ParseJWKS(b)
}

func (a *API) auditJWKS(w http.ResponseWriter, r *http.Request) {
	var b []byte
	var err error
	if a.cfg.Keyring != nil {
		b, err = a.cfg.Keyring.AllJWKS(r.Context())
	} else {
		b, err = a.cfg.Keys.JWKS()
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(b)
}
