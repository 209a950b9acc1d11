package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/registry"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// IntentsURI is the resource of the agent's unanswered intents.
const IntentsURI = "earshot://intents"

// The intents resource looks at the agent's newest intentWindow events and lists at
// most maxIntents of them.
const (
	intentWindow = 200
	maxIntents   = 20
	watchBatch   = 100
)

// Intent is one entry of the intents resource: what a user said that nobody has
// answered yet.
type Intent struct {
	Tx     string       `json:"tx"`
	User   string       `json:"user"`
	Device string       `json:"device"`
	Text   string       `json:"text"`
	Lang   string       `json:"lang,omitempty"`
	At     time.Time    `json:"at"`
	State  wire.TxState `json:"state"`
}

// Intents is the content of the intents resource.
type Intents struct {
	Intents []Intent `json:"intents"`
	Note    string   `json:"note"`
}

const intentsNote = "Newest first. Answer each with request_purchase (its tx, and the merchant, items and total " +
	"you propose) or reject_intent; the user is waiting on their device."

func hasScope(extra *sdk.RequestExtra, sc registry.Scope) bool {
	return extra != nil && extra.TokenInfo != nil && slices.Contains(extra.TokenInfo.Scopes, string(sc))
}

// errNoIntentsScope refuses the resource to a key without the intents scope, as the
// REST API's event stream does.
var errNoIntentsScope = errors.New(`insufficient_scope: this API key lacks the "intents" scope`)

// readIntents serves earshot://intents.
func (s *Server) readIntents(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
	if req.Params.URI != IntentsURI {
		return nil, sdk.ResourceNotFoundError(req.Params.URI)
	}
	c, err := callerOf(req.Extra, req.Session)
	if err != nil {
		return nil, err
	}
	if !hasScope(req.Extra, registry.ScopeIntents) {
		return nil, errNoIntentsScope
	}
	list, err := s.pendingIntents(ctx, c)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(Intents{Intents: list, Note: intentsNote})
	if err != nil {
		return nil, err
	}
	return &sdk.ReadResourceResult{
		Cacheable: sdk.Cacheable{CacheScope: "private"},
		Contents:  []*sdk.ResourceContents{{URI: IntentsURI, MIMEType: "application/json", Text: string(b)}},
	}, nil
}

// pendingIntents lists the agent's newest intents whose transaction is still
// received, asking the REST API for each one's state (which also hides a user who
// unlinked the agent).
func (s *Server) pendingIntents(ctx context.Context, c caller) ([]Intent, error) {
	last, err := s.cfg.Core.LastEvent(ctx, c.agent)
	if err != nil {
		return nil, fmt.Errorf("mcp: intents: %w", err)
	}
	after := uint64(0)
	if last > intentWindow {
		after = last - intentWindow
	}
	evs, err := s.cfg.Core.Events(ctx, c.agent, after, intentWindow)
	if err != nil {
		return nil, fmt.Errorf("mcp: intents: %w", err)
	}
	out := []Intent{}
	for i := len(evs) - 1; i >= 0 && len(out) < maxIntents; i-- {
		if evs[i].Type != agent.EventIntent {
			continue
		}
		var in agent.Intent
		if err := json.Unmarshal(evs[i].Data, &in); err != nil {
			s.log.Warn("intents: an unreadable intent event", "agent", c.agent, "seq", evs[i].Seq, "err", err)
			continue
		}
		var v txView
		_, err := s.call(ctx, c.key, request{method: "GET", path: pathTx(in.Tx, "")}, &v)
		var te *ToolError
		switch {
		case errors.As(err, &te) && te.Status == http.StatusNotFound:
			continue // gone, or the user unlinked the agent
		case err != nil:
			return nil, fmt.Errorf("mcp: intents: %w", err)
		case v.State != wire.TxReceived:
			continue // answered
		}
		out = append(out, Intent{Tx: in.Tx, User: in.User, Device: in.Device, Text: in.Text, Lang: in.Lang, At: in.At, State: v.State})
	}
	return out, nil
}

// watcher tells an agent's subscribed sessions of its new intents.
type watcher struct {
	cancel     context.CancelFunc
	subscribed map[*sdk.ServerSession]bool
}

// subscribe starts watching the agent's event log for its first subscribed session,
// and watches the session so that its subscription ends with it.
func (s *Server) subscribe(ctx context.Context, req *sdk.SubscribeRequest) error {
	if req.Params.URI != IntentsURI {
		return sdk.ResourceNotFoundError(req.Params.URI)
	}
	c, err := callerOf(req.Extra, req.Session)
	if err != nil {
		return err
	}
	if !hasScope(req.Extra, registry.ScopeIntents) {
		return errNoIntentsScope
	}
	last, err := s.cfg.Core.LastEvent(ctx, c.agent)
	if err != nil {
		return fmt.Errorf("mcp: subscribe: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	srv := s.servers[c.agent]
	if srv == nil {
		return errors.New("mcp: subscribe: no server for the agent")
	}
	w := s.watchers[c.agent]
	if w == nil {
		// The watcher outlives this request; Close or the last unsubscribing session
		// ends it.
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		w = &watcher{cancel: cancel, subscribed: make(map[*sdk.ServerSession]bool)}
		s.watchers[c.agent] = w
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watch(wctx, c.agent, srv, last)
		}()
		s.log.Info("watching intents", "agent", c.agent)
	}
	w.subscribed[req.Session] = true
	if ss := req.Session; !s.waiting[ss] {
		// One goroutine per subscribed session, however often it subscribes, ends its
		// subscription when it ends.
		s.waiting[ss] = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			// Wait's error only says how the session ended.
			_ = ss.Wait()
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.waiting, ss)
			s.unwatch(c.agent, ss)
		}()
	}
	return nil
}

func (s *Server) unsubscribe(_ context.Context, req *sdk.UnsubscribeRequest) error {
	if req.Params.URI != IntentsURI {
		return sdk.ResourceNotFoundError(req.Params.URI)
	}
	c, err := callerOf(req.Extra, req.Session)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unwatch(c.agent, req.Session)
	return nil
}

// unwatch ends the session's subscription, and the agent's watcher with its last
// one; s.mu is held.
func (s *Server) unwatch(agentID string, ss *sdk.ServerSession) {
	w := s.watchers[agentID]
	if w == nil {
		return
	}
	delete(w.subscribed, ss)
	if len(w.subscribed) == 0 {
		w.cancel()
		delete(s.watchers, agentID)
	}
}

// watch sends notifications/resources/updated to the agent's subscribed sessions
// whenever its log gains an intent, reading the log after seq after.
func (s *Server) watch(ctx context.Context, agentID string, srv *sdk.Server, after uint64) {
	defer s.log.Info("stopped watching intents", "agent", agentID)
	for {
		wake := s.cfg.Core.Wake(agentID)
		evs, err := s.cfg.Core.Events(ctx, agentID, after, watchBatch)
		if err != nil && ctx.Err() == nil {
			s.log.Error("watching intents", "agent", agentID, "err", err)
		}
		fresh := false
		for _, ev := range evs {
			after = ev.Seq
			fresh = fresh || ev.Type == agent.EventIntent
		}
		if fresh {
			if err := srv.ResourceUpdated(ctx, &sdk.ResourceUpdatedNotificationParams{URI: IntentsURI}); err != nil && ctx.Err() == nil {
				s.log.Warn("intents: resource update not sent", "agent", agentID, "err", err)
			}
		}
		if len(evs) == watchBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
	}
}
