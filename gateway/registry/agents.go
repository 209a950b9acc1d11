package registry

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/earshot/earshot/authz/kv"
)

// Agent errors.
var (
	ErrUnknownAgent = errors.New("registry: unknown agent")
	ErrBadAgent     = errors.New("registry: invalid agent")
	ErrNotLinked    = errors.New("registry: the user has not linked this agent")
)

// Scope is a permission an agent's API key carries.
type Scope string

// Scopes.
const (
	// ScopeIntents: hear the linked users' intents and transaction events (webhooks,
	// the event stream, the MCP intents resource).
	ScopeIntents Scope = "intents"
	// ScopePurchase: propose purchases for the linked users and decline intents.
	ScopePurchase Scope = "purchase"
	// ScopeRedeem: redeem mandates and settle payments (the merchant's side).
	ScopeRedeem Scope = "redeem"
	// ScopeCancel: revoke unredeemed mandates and answer cancellations.
	ScopeCancel Scope = "cancel"
	// ScopeNotify: send a message to a linked user's device.
	ScopeNotify Scope = "notify"
)

// AllScopes are every scope, in a stable order.
var AllScopes = []Scope{ScopeIntents, ScopePurchase, ScopeRedeem, ScopeCancel, ScopeNotify}

// ParseScopes reads a comma-separated scope list; "all" or "" is every scope.
func ParseScopes(s string) ([]Scope, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return slices.Clone(AllScopes), nil
	}
	var out []Scope
	for p := range strings.SplitSeq(s, ",") {
		sc := Scope(strings.TrimSpace(p))
		if !slices.Contains(AllScopes, sc) {
			return nil, fmt.Errorf("%w: unknown scope %q (known: intents, purchase, redeem, cancel, notify)", ErrBadAgent, sc)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// Agent is a registered agent: the gateway's own embedded agent, or an external one
// an admin created, which speaks the REST API, receives webhooks or connects over MCP.
type Agent struct {
	ID     string  `json:"agent"`
	Name   string  `json:"name"`
	Scopes []Scope `json:"scopes"`
	// WebhookURL, when set, receives the agent's events, signed with WebhookSecret
	// (Standard Webhooks, "whsec_..."). The secret is shown to the admin who sets the
	// URL and kept here to sign; it is never logged.
	WebhookURL    string `json:"webhook_url,omitempty"`
	WebhookSecret string `json:"webhook_secret,omitempty"`
	// Embedded marks the gateway's own agent (the reference agent or the LLM agent):
	// every user may use it without linking it.
	Embedded  bool      `json:"embedded,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked,omitempty"`
}

// Can reports whether the agent holds the scope.
func (a Agent) Can(s Scope) bool { return !a.Revoked && slices.Contains(a.Scopes, s) }

// AgentSpec is what an admin gives to create an agent.
type AgentSpec struct {
	Name       string  `json:"name"`
	Scopes     []Scope `json:"scopes"` // empty: every scope
	WebhookURL string  `json:"webhook_url,omitempty"`
}

type agentRecord struct {
	Agent
	KeyHash string `json:"key_hash"`
}

// Link is a user's link to an agent: the agent may act for the user.
type Link struct {
	User  string    `json:"user"`
	Agent string    `json:"agent"`
	At    time.Time `json:"linked_at"`
}

func linkKey(user, agent string) []byte { return []byte("link/" + user + "/" + agent) }
func linkPrefix(user string) []byte     { return []byte("link/" + user + "/") }

func checkName(name string) error {
	if name == "" || len(name) > 64 || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\r\n\t") {
		return fmt.Errorf("%w: a name of 1-64 printable characters is required", ErrBadAgent)
	}
	return nil
}

// CheckWebhookURL validates an agent's webhook URL: absolute http or https, at most
// 2048 bytes, no credentials in it.
func CheckWebhookURL(s string) error {
	if len(s) > 2048 {
		return fmt.Errorf("%w: the webhook URL is over 2048 bytes", ErrBadAgent)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: the webhook URL must be an absolute http or https URL", ErrBadAgent)
	}
	if u.User != nil {
		return fmt.Errorf("%w: the webhook URL must not carry credentials", ErrBadAgent)
	}
	return nil
}

func (r *Registry) randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("registry: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (r *Registry) newWebhookSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("registry: random: %w", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b), nil
}

// CreateAgent registers an external agent and returns it with its API key, which is
// stored only as a hash: the caller shows it once.
func (r *Registry) CreateAgent(ctx context.Context, spec AgentSpec) (Agent, string, error) {
	if err := checkName(spec.Name); err != nil {
		return Agent{}, "", err
	}
	scopes := spec.Scopes
	if len(scopes) == 0 {
		scopes = slices.Clone(AllScopes)
	}
	for _, s := range scopes {
		if !slices.Contains(AllScopes, s) {
			return Agent{}, "", fmt.Errorf("%w: unknown scope %q", ErrBadAgent, s)
		}
	}
	a := Agent{Name: spec.Name, Scopes: scopes, WebhookURL: spec.WebhookURL, CreatedAt: r.cfg.Now().UTC()}
	if a.WebhookURL != "" {
		if err := CheckWebhookURL(a.WebhookURL); err != nil {
			return Agent{}, "", err
		}
		var err error
		if a.WebhookSecret, err = r.newWebhookSecret(); err != nil {
			return Agent{}, "", err
		}
	}
	id, err := r.randomHex(8)
	if err != nil {
		return Agent{}, "", err
	}
	a.ID = "agt_" + id
	key, err := r.NewAPIKey()
	if err != nil {
		return Agent{}, "", err
	}
	err = r.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		if _, err := txn.Get(agentKey(a.ID)); err == nil {
			return fmt.Errorf("registry: agent id %s collides", a.ID)
		}
		return putAgent(txn, agentRecord{Agent: a, KeyHash: hashHex(key)}, key)
	})
	if err != nil {
		return Agent{}, "", err
	}
	return a, key, nil
}

// EnsureAgent registers (or updates) the gateway's embedded agent under its id with
// every scope and key as its API key, replacing the previous key.
func (r *Registry) EnsureAgent(ctx context.Context, id, name, key string) (Agent, error) {
	a := Agent{ID: id, Name: name, Scopes: slices.Clone(AllScopes), Embedded: true, CreatedAt: r.cfg.Now().UTC()}
	err := r.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		old, err := getAgent(txn, id)
		switch {
		case err == nil:
			a.CreatedAt = old.CreatedAt
			if err := txn.Delete([]byte("apikey/" + old.KeyHash)); err != nil {
				return err
			}
		case !errors.Is(err, ErrUnknownAgent):
			return err
		}
		return putAgent(txn, agentRecord{Agent: a, KeyHash: hashHex(key)}, key)
	})
	return a, err
}

func putAgent(txn kv.Txn, rec agentRecord, key string) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := txn.Set(agentKey(rec.ID), b); err != nil {
		return err
	}
	if key == "" {
		return nil
	}
	return txn.Set(apiKeyKey(key), []byte(rec.ID))
}

func getAgent(txn kv.Txn, id string) (agentRecord, error) {
	v, err := txn.Get(agentKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		return agentRecord{}, ErrUnknownAgent
	} else if err != nil {
		return agentRecord{}, err
	}
	var rec agentRecord
	if len(v) > 0 && v[0] != '{' {
		// Before agents had records, agent/<id> held only the key's hash.
		return agentRecord{Agent: Agent{ID: id, Name: id, Scopes: slices.Clone(AllScopes), Embedded: true}, KeyHash: string(v)}, nil
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return agentRecord{}, fmt.Errorf("registry: agent %s: %w", id, err)
	}
	return rec, nil
}

// update changes one agent under fn, which may return a new API key to store.
func (r *Registry) updateAgent(ctx context.Context, id string, fn func(rec *agentRecord) (newKey string, err error)) (Agent, error) {
	var out Agent
	err := r.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		rec, err := getAgent(txn, id)
		if err != nil {
			return err
		}
		oldHash := rec.KeyHash
		key, err := fn(&rec)
		if err != nil {
			return err
		}
		if key != "" || rec.Revoked {
			if err := txn.Delete([]byte("apikey/" + oldHash)); err != nil {
				return err
			}
		}
		out = rec.Agent
		return putAgent(txn, rec, key)
	})
	return out, err
}

// RotateAgentKey gives an external agent a new API key; the old one stops working.
func (r *Registry) RotateAgentKey(ctx context.Context, id string) (string, error) {
	key, err := r.NewAPIKey()
	if err != nil {
		return "", err
	}
	_, err = r.updateAgent(ctx, id, func(rec *agentRecord) (string, error) {
		if rec.Revoked {
			return "", fmt.Errorf("%w: agent %s is revoked", ErrBadAgent, id)
		}
		rec.KeyHash = hashHex(key)
		return key, nil
	})
	return key, err
}

// SetWebhook sets (or, with "", removes) an agent's webhook URL. A URL set for the
// first time gets a fresh signing secret; rotate says to replace an existing one.
func (r *Registry) SetWebhook(ctx context.Context, id, webhookURL string, rotate bool) (Agent, error) {
	if webhookURL != "" {
		if err := CheckWebhookURL(webhookURL); err != nil {
			return Agent{}, err
		}
	}
	secret, err := r.newWebhookSecret()
	if err != nil {
		return Agent{}, err
	}
	return r.updateAgent(ctx, id, func(rec *agentRecord) (string, error) {
		rec.WebhookURL = webhookURL
		switch {
		case webhookURL == "":
			rec.WebhookSecret = ""
		case rec.WebhookSecret == "" || rotate:
			rec.WebhookSecret = secret
		}
		return "", nil
	})
}

// RevokeAgent revokes an agent: its API key stops working and it gets no more events.
// Mandates already issued to it stay redeemable only by it, so they can no longer be
// redeemed.
func (r *Registry) RevokeAgent(ctx context.Context, id string) (Agent, error) {
	return r.updateAgent(ctx, id, func(rec *agentRecord) (string, error) {
		if rec.Embedded {
			return "", fmt.Errorf("%w: the embedded agent cannot be revoked", ErrBadAgent)
		}
		rec.Revoked = true
		return "", nil
	})
}

// AgentByID returns an agent.
func (r *Registry) AgentByID(ctx context.Context, id string) (Agent, error) {
	var rec agentRecord
	err := r.cfg.Store.View(ctx, func(txn kv.Txn) error {
		var err error
		rec, err = getAgent(txn, id)
		return err
	})
	return rec.Agent, err
}

// Agents lists every agent, revoked ones too.
func (r *Registry) Agents(ctx context.Context) ([]Agent, error) {
	var out []Agent
	err := r.cfg.Store.View(ctx, func(txn kv.Txn) error {
		return txn.Scan([]byte("agent/"), func(k, _ []byte) (bool, error) {
			rec, err := getAgent(txn, strings.TrimPrefix(string(k), "agent/"))
			if err != nil {
				return false, err
			}
			out = append(out, rec.Agent)
			return true, nil
		})
	})
	return out, err
}

// Authorize returns the agent an API key belongs to, unless it is revoked.
func (r *Registry) Authorize(ctx context.Context, key string) (Agent, error) {
	if key == "" || len(key) > 256 {
		return Agent{}, ErrBadAPIKey
	}
	var rec agentRecord
	err := r.cfg.Store.View(ctx, func(txn kv.Txn) error {
		v, err := txn.Get(apiKeyKey(key))
		if errors.Is(err, kv.ErrNotFound) {
			return ErrBadAPIKey
		} else if err != nil {
			return err
		}
		rec, err = getAgent(txn, string(v))
		if errors.Is(err, ErrUnknownAgent) {
			return ErrBadAPIKey
		}
		return err
	})
	if err != nil {
		return Agent{}, err
	}
	if rec.Revoked {
		return Agent{}, ErrBadAPIKey
	}
	return rec.Agent, nil
}

// LinkAgent lets the agent act for the user: hear the user's intents (if it has the
// intents scope, it becomes the agent the user's speech goes to), propose purchases
// to the user, notify the user's devices. Linking again moves the agent to the front.
func (r *Registry) LinkAgent(ctx context.Context, user, agentID string) (Link, error) {
	uid, err := UserID(user)
	if err != nil {
		return Link{}, err
	}
	l := Link{User: uid, Agent: agentID, At: r.cfg.Now().UTC()}
	err = r.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		rec, err := getAgent(txn, agentID)
		if err != nil {
			return err
		}
		if rec.Revoked {
			return fmt.Errorf("%w: agent %s is revoked", ErrBadAgent, agentID)
		}
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		return txn.Set(linkKey(uid, agentID), b)
	})
	return l, err
}

// UnlinkAgent removes a user's link to an agent. Transactions the agent already
// started keep their course; it gets no new intents and cannot start new ones.
func (r *Registry) UnlinkAgent(ctx context.Context, user, agentID string) error {
	uid, err := UserID(user)
	if err != nil {
		return err
	}
	return r.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		if _, err := txn.Get(linkKey(uid, agentID)); errors.Is(err, kv.ErrNotFound) {
			return ErrNotLinked
		} else if err != nil {
			return err
		}
		return txn.Delete(linkKey(uid, agentID))
	})
}

// Links returns the user's links, the most recent first.
func (r *Registry) Links(ctx context.Context, user string) ([]Link, error) {
	uid, err := UserID(user)
	if err != nil {
		return nil, err
	}
	var out []Link
	err = r.cfg.Store.View(ctx, func(txn kv.Txn) error {
		return txn.Scan(linkPrefix(uid), func(_, v []byte) (bool, error) {
			var l Link
			if err := json.Unmarshal(v, &l); err != nil {
				return false, err
			}
			out = append(out, l)
			return true, nil
		})
	})
	slices.SortFunc(out, func(a, b Link) int { return b.At.Compare(a.At) })
	return out, err
}

// MayActFor reports whether the agent may act for the user: the embedded agent
// always, others when the user linked them.
func (r *Registry) MayActFor(ctx context.Context, a Agent, user string) (bool, error) {
	if a.Revoked {
		return false, nil
	}
	if a.Embedded {
		return true, nil
	}
	ok := false
	err := r.cfg.Store.View(ctx, func(txn kv.Txn) error {
		_, err := txn.Get(linkKey(user, a.ID))
		if errors.Is(err, kv.ErrNotFound) {
			return nil
		}
		ok = err == nil
		return err
	})
	return ok, err
}

// IntentAgent returns the agent the user's speech goes to: the most recently linked
// agent with the intents scope that is not revoked; "" when there is none (the
// embedded agent then hears it).
func (r *Registry) IntentAgent(ctx context.Context, user string) (string, error) {
	links, err := r.Links(ctx, user)
	if err != nil {
		return "", err
	}
	for _, l := range links {
		a, err := r.AgentByID(ctx, l.Agent)
		if errors.Is(err, ErrUnknownAgent) {
			continue
		} else if err != nil {
			return "", err
		}
		if a.Can(ScopeIntents) {
			return a.ID, nil
		}
	}
	return "", nil
}

// LinkedUsers returns the users who linked the agent, the most recent first.
func (r *Registry) LinkedUsers(ctx context.Context, agentID string) ([]Link, error) {
	var out []Link
	err := r.cfg.Store.View(ctx, func(txn kv.Txn) error {
		return txn.Scan([]byte("link/"), func(k, v []byte) (bool, error) {
			if !strings.HasSuffix(string(k), "/"+agentID) {
				return true, nil
			}
			var l Link
			if err := json.Unmarshal(v, &l); err != nil {
				return false, err
			}
			if l.Agent == agentID {
				out = append(out, l)
			}
			return true, nil
		})
	})
	slices.SortFunc(out, func(a, b Link) int { return b.At.Compare(a.At) })
	return out, err
}
