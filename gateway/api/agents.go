package api

import (
	"net/http"
	"time"

	"github.com/earshot/earshot/gateway/problem"
	"github.com/earshot/earshot/gateway/registry"
)

// agentView is an agent as the admin sees it; the webhook secret is shown only when
// it is new (creation, rotation).
type agentView struct {
	Agent      string           `json:"agent"`
	Name       string           `json:"name"`
	Scopes     []registry.Scope `json:"scopes"`
	WebhookURL string           `json:"webhook_url,omitempty"`
	Embedded   bool             `json:"embedded,omitempty"`
	CreatedAt  time.Time        `json:"created_at"`
	Revoked    bool             `json:"revoked,omitempty"`
	// Shown once.
	APIKey        string `json:"api_key,omitempty"`
	WebhookSecret string `json:"webhook_secret,omitempty"`
}

func aview(ag registry.Agent) agentView {
	return agentView{Agent: ag.ID, Name: ag.Name, Scopes: ag.Scopes, WebhookURL: ag.WebhookURL, Embedded: ag.Embedded,
		CreatedAt: ag.CreatedAt, Revoked: ag.Revoked}
}

func (a *API) createAgent(w http.ResponseWriter, r *http.Request) {
	var spec registry.AgentSpec
	if !decode(w, r, &spec) {
		return
	}
	ag, key, err := a.cfg.Registry.CreateAgent(r.Context(), spec)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("agent created", "agent", ag.ID, "name", ag.Name, "scopes", ag.Scopes, "webhook", ag.WebhookURL != "")
	v := aview(ag)
	v.APIKey, v.WebhookSecret = key, ag.WebhookSecret
	a.agentsChanged()
	reply(w, http.StatusCreated, v)
}

func (a *API) listAgents(w http.ResponseWriter, r *http.Request) {
	ags, err := a.cfg.Registry.Agents(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]agentView, 0, len(ags))
	for _, ag := range ags {
		out = append(out, aview(ag))
	}
	reply(w, http.StatusOK, map[string]any{"agents": out})
}

func (a *API) revokeAgent(w http.ResponseWriter, r *http.Request) {
	ag, err := a.cfg.Registry.RevokeAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("agent revoked", "agent", ag.ID)
	a.agentsChanged()
	reply(w, http.StatusOK, aview(ag))
}

func (a *API) rotateAgentKey(w http.ResponseWriter, r *http.Request) {
	key, err := a.cfg.Registry.RotateAgentKey(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("agent key rotated", "agent", r.PathValue("id"))
	reply(w, http.StatusCreated, map[string]string{"agent": r.PathValue("id"), "api_key": key})
}

func (a *API) setWebhook(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL          *string `json:"url"`
		RotateSecret bool    `json:"rotate_secret"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.URL == nil {
		problem.Write(w, http.StatusBadRequest, "bad_request", `"url" is required ("" removes the webhook)`)
		return
	}
	before, err := a.cfg.Registry.AgentByID(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ag, err := a.cfg.Registry.SetWebhook(r.Context(), before.ID, *req.URL, req.RotateSecret)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("agent webhook set", "agent", ag.ID, "webhook", ag.WebhookURL != "", "new_secret", ag.WebhookSecret != before.WebhookSecret)
	v := aview(ag)
	if ag.WebhookSecret != before.WebhookSecret {
		v.WebhookSecret = ag.WebhookSecret
	}
	a.agentsChanged()
	reply(w, http.StatusOK, v)
}

func (a *API) userLinks(w http.ResponseWriter, r *http.Request) {
	links, err := a.cfg.Registry.Links(r.Context(), r.PathValue("user"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if links == nil {
		links = []registry.Link{}
	}
	reply(w, http.StatusOK, map[string]any{"links": links})
}

// link records that the user linked the agent (the user's consent to let it act for
// them, given to the operator — or, later, from the user's phone).
func (a *API) link(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Agent string `json:"agent"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Agent == "" {
		problem.Write(w, http.StatusBadRequest, "bad_request", "agent is required")
		return
	}
	l, err := a.cfg.Registry.LinkAgent(r.Context(), r.PathValue("user"), req.Agent)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("agent linked", "user", l.User, "agent", l.Agent)
	reply(w, http.StatusCreated, l)
}

func (a *API) unlink(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Registry.UnlinkAgent(r.Context(), r.PathValue("user"), r.PathValue("agent")); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("agent unlinked", "user", r.PathValue("user"), "agent", r.PathValue("agent"))
	w.WriteHeader(http.StatusNoContent)
}

// agentsChanged tells the webhook dispatcher to re-read the agents.
func (a *API) agentsChanged() {
	if a.cfg.OnAgentsChanged != nil {
		a.cfg.OnAgentsChanged()
	}
}

// me tells an agent who it is to the gateway.
func (a *API) me(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	reply(w, http.StatusOK, aview(ag))
}

func (a *API) linkedUsers(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	if ag.Embedded {
		problem.Write(w, http.StatusConflict, "embedded_agent", "the embedded agent acts for every user")
		return
	}
	links, err := a.cfg.Registry.LinkedUsers(r.Context(), ag.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	type user struct {
		User     string    `json:"user"`
		LinkedAt time.Time `json:"linked_at"`
	}
	out := make([]user, 0, len(links))
	for _, l := range links {
		out = append(out, user{l.User, l.At})
	}
	reply(w, http.StatusOK, map[string]any{"users": out})
}

// notify sends a notice to one of a linked user's devices.
func (a *API) notify(w http.ResponseWriter, r *http.Request, ag registry.Agent) {
	var req struct {
		User   string `json:"user"`
		Device string `json:"device,omitempty"`
		Tx     string `json:"tx,omitempty"`
		Text   string `json:"text"`
	}
	if !decode(w, r, &req) {
		return
	}
	uid, err := registry.UserID(req.User)
	if err != nil {
		problem.Write(w, http.StatusBadRequest, "bad_request", "user: "+err.Error())
		return
	}
	if !a.mayAct(w, r, ag, uid, "user") {
		return
	}
	dev, err := a.cfg.Core.Notify(r.Context(), ag.ID, ag.Name, uid, req.Device, req.Tx, req.Text)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	reply(w, http.StatusAccepted, map[string]string{"user": uid, "device": dev})
}
