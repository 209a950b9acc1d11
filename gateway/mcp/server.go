package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/problem"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Path is where the gateway serves MCP.
const Path = "/mcp"

// Core is what the MCP server needs of the session core (gateway/session.Core).
type Core interface {
	// Events returns up to limit of the agent's events after seq after, in order.
	Events(ctx context.Context, agentID string, after uint64, limit int) ([]agent.Event, error)
	// LastEvent returns the seq of the agent's newest event.
	LastEvent(ctx context.Context, agentID string) (uint64, error)
	// Wake returns a channel closed when the agents' logs may have grown.
	Wake(agentID string) <-chan struct{}
	// MandateToken returns the mandate of the agent's mandated transaction, token
	// included: redeem presents it and never shows it.
	MandateToken(ctx context.Context, agentID, txID string) (agent.Mandate, error)
}

// Registry authenticates agents' API keys (gateway/registry.Registry).
type Registry interface {
	Authorize(ctx context.Context, key string) (registry.Agent, error)
}

// The gateway's own types satisfy the interfaces, and the Server serves HTTP.
var (
	_ Core         = (*session.Core)(nil)
	_ Registry     = (*registry.Registry)(nil)
	_ http.Handler = (*Server)(nil)
)

// Config configures a Server.
type Config struct {
	// API is the gateway's REST API (gateway/api), called in-process; required.
	API http.Handler
	// Core is the session core; required.
	Core Core
	// Registry authenticates the API keys; required.
	Registry Registry
	// Logger; default slog.Default().
	Logger *slog.Logger
	// ProgressEvery is how often a waiting tool reports progress while nothing
	// changes; default 10s.
	ProgressEvery time.Duration
	// SessionIdle closes a session that sent no request for this long; default 1h.
	// (A client whose session was closed gets 404 and starts a new one.)
	SessionIdle time.Duration
	// MaxSessions bounds one agent's open sessions; default 16. A new session past it
	// is refused with 429 and counted (Stats).
	MaxSessions int
	// Version is the server version announced to clients; default "dev".
	Version string
}

// Defaults of Config.
const (
	DefaultProgressEvery = 10 * time.Second
	DefaultSessionIdle   = time.Hour
	DefaultMaxSessions   = 16
)

// Server is the http.Handler for Path. It owns the watchers of subscribed sessions
// and the waits of tool calls in flight; Close ends them.
type Server struct {
	cfg     Config
	log     *slog.Logger
	schemas *sdk.SchemaCache
	handler http.Handler // the SDK's streamable handler behind its bearer-token middleware
	refused atomic.Uint64
	closed  atomic.Bool // set under mu, so that track and subscribe see it in order

	mu       sync.Mutex
	servers  map[string]*sdk.Server      // one per agent, so updates reach only its sessions
	watchers map[string]*watcher         // agents with subscribed sessions
	waiting  map[*sdk.ServerSession]bool // subscribed sessions a goroutine waits for
	calls    map[uint64]context.CancelCauseFunc
	nextCall uint64
	wg       sync.WaitGroup
}

// ErrClosed is the cause given to tool calls ended by Close.
var ErrClosed = errors.New("mcp: the server is shutting down")

// New returns the MCP server.
func New(cfg Config) (*Server, error) {
	if cfg.API == nil || cfg.Core == nil || cfg.Registry == nil {
		return nil, errors.New("mcp: API, Core and Registry are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = DefaultProgressEvery
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger.With("component", "mcp"), schemas: sdk.NewSchemaCache(),
		servers: make(map[string]*sdk.Server), watchers: make(map[string]*watcher),
		waiting: make(map[*sdk.ServerSession]bool),
		calls:   make(map[uint64]context.CancelCauseFunc),
	}
	sdkLog := slog.New(warnOnly{s.log.Handler()})
	streams := sdk.NewStreamableHTTPHandler(s.serverFor, &sdk.StreamableHTTPOptions{
		SessionTimeout: cfg.SessionIdle, Logger: sdkLog, MaxRequestBodyBytes: 1 << 20,
	})
	// The SDK's middleware puts the agent into the request as TokenInfo, whose UserID
	// (the agent id) binds the session: another agent's key on it gets 403.
	s.handler = auth.RequireBearerToken(s.verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(streams)
	return s, nil
}

// Stats counts what the server refused.
type Stats struct {
	// SessionsRefused counts new sessions refused because the agent had MaxSessions.
	SessionsRefused uint64
}

// Stats returns the counters.
func (s *Server) Stats() Stats { return Stats{SessionsRefused: s.refused.Load()} }

type agentKey struct{}

// ServeHTTP authenticates the agent's API key on every request and serves MCP.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.closed.Load() {
		problem.Write(w, http.StatusServiceUnavailable, "unavailable", "the gateway is shutting down")
		return
	}
	ag, err := s.cfg.Registry.Authorize(r.Context(), registry.BearerToken(r))
	if err != nil {
		if !errors.Is(err, registry.ErrBadAPIKey) {
			s.log.Error("authorising an agent key", "err", err)
			problem.Write(w, http.StatusInternalServerError, "internal", "the gateway failed; the request may be retried")
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="earshot"`)
		problem.Write(w, http.StatusUnauthorized, "unauthorized", "a valid agent API key is required (Authorization: Bearer esk_...)")
		return
	}
	if r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" && s.sessions(ag.ID) >= s.cfg.MaxSessions {
		s.refused.Add(1)
		s.log.Warn("session refused: too many open", "agent", ag.ID, "max", s.cfg.MaxSessions)
		w.Header().Set("Retry-After", "60")
		problem.Write(w, http.StatusTooManyRequests, "too_many_sessions",
			fmt.Sprintf("this agent has %d open MCP sessions; close one (DELETE) or wait for an idle one to expire", s.cfg.MaxSessions))
		return
	}
	// A tool call may wait minutes for the user and a subscription's stream stays
	// open: the server's write timeout is for ordinary requests. A writer without
	// deadlines (a test recorder) has nothing to clear.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	s.handler.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), agentKey{}, ag)))
}

// verify hands the agent ServeHTTP authenticated to the SDK's middleware.
func (s *Server) verify(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
	ag, ok := r.Context().Value(agentKey{}).(registry.Agent)
	if !ok {
		return nil, auth.ErrInvalidToken
	}
	scopes := make([]string, 0, len(ag.Scopes))
	for _, sc := range ag.Scopes {
		scopes = append(scopes, string(sc))
	}
	return &auth.TokenInfo{UserID: ag.ID, Scopes: scopes}, nil
}

// serverFor returns the agent's MCP server, made on its first request.
func (s *Server) serverFor(r *http.Request) *sdk.Server {
	ag, ok := r.Context().Value(agentKey{}).(registry.Agent)
	if !ok {
		return nil // the SDK answers 400
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv := s.servers[ag.ID]; srv != nil {
		return srv
	}
	srv := s.newServer()
	s.servers[ag.ID] = srv
	return srv
}

// sessions counts the agent's open sessions. A request that fails to open one (a
// probe of a newer protocol version, an initialize that fails) leaves a session that
// the SDK closes right after: only initialized ones count.
func (s *Server) sessions(agentID string) int {
	s.mu.Lock()
	srv := s.servers[agentID]
	s.mu.Unlock()
	n := 0
	if srv != nil {
		for ss := range srv.Sessions() {
			if ss.InitializeParams() != nil {
				n++
			}
		}
	}
	return n
}

// instructions tell the model how earshot works.
const instructions = `earshot asks a person for explicit, single-use consent before any payment.
Every purchase you propose is shown (or spoken) on the user's own device (smart glasses, kiosk
or phone) and only the user can approve it there. Amounts are integers in minor units of the
currency (1100 with USD is USD 11.00).

Flow: read earshot://intents (or subscribe to it) for what users said, or call list_users to
see who linked you. Call request_purchase (with the intent's tx, or with user for a purchase
you start); it waits while the user decides and reports progress. State "mandated" means
approved: call redeem once to be paid (the gateway keeps the mandate token; you never see it).
"declined", "expired" or "rejected" mean no purchase: do not ask again unprompted. Use cancel
to give up an approved purchase before redeeming it, notify to tell the user something, and
reject_intent for an intent you will not act on.`

// newServer makes one agent's MCP server with the tools and the intents resource.
func (s *Server) newServer() *sdk.Server {
	srv := sdk.NewServer(&sdk.Implementation{Name: "earshot", Title: "earshot voice consent gateway", Version: s.cfg.Version},
		&sdk.ServerOptions{
			Instructions:       instructions,
			Logger:             slog.New(warnOnly{s.log.Handler()}),
			SchemaCache:        s.schemas,
			SubscribeHandler:   s.subscribe,
			UnsubscribeHandler: s.unsubscribe,
			Capabilities: &sdk.ServerCapabilities{
				Tools:     &sdk.ToolCapabilities{},
				Resources: &sdk.ResourceCapabilities{Subscribe: true},
			},
		})
	s.addTools(srv)
	srv.AddResource(&sdk.Resource{
		URI: IntentsURI, Name: "intents", Title: "Unanswered intents", MIMEType: "application/json",
		Description: "What the users who linked you said and nobody has answered yet, newest first. " +
			"Answer each with request_purchase (its tx) or reject_intent. Subscribe to hear of new ones.",
	}, s.readIntents)
	return srv
}

// track makes ctx end when Close runs; the returned func releases it.
func (s *Server) track(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		cancel(ErrClosed)
		return ctx, func() {}
	}
	id := s.nextCall
	s.nextCall++
	s.calls[id] = cancel
	s.mu.Unlock()
	return ctx, func() {
		s.mu.Lock()
		delete(s.calls, id)
		s.mu.Unlock()
		cancel(nil)
	}
}

// Close ends the tool calls in flight, the watchers and every session, and waits for
// the goroutines it owns. New requests get 503. Idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed.Store(true)
	for _, cancel := range s.calls {
		cancel(ErrClosed)
	}
	for _, w := range s.watchers {
		w.cancel()
	}
	var sessions []*sdk.ServerSession
	for _, srv := range s.servers {
		for ss := range srv.Sessions() {
			sessions = append(sessions, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		// Closing waits for the session's calls, which were just cancelled; its
		// error only says how the connection ended.
		_ = ss.Close()
	}
	s.wg.Wait()
}

// warnOnly passes the SDK's warnings and errors and drops its per-session chatter.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}
func (h warnOnly) WithAttrs(a []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(a)} }
func (h warnOnly) WithGroup(n string) slog.Handler      { return warnOnly{h.Handler.WithGroup(n)} }
