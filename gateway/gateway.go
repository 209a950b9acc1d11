// Package gateway assembles the earshot gateway: the Badger store, the device
// registry, the session core, the WebSocket and MQTT transports, the HTTP API and the
// embedded reference agent, behind one Server with New, Run and Shutdown.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/audit"
	"github.com/earshot/earshot/authz/risk"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/llmagent"
	"github.com/earshot/earshot/gateway/agent/refagent"
	"github.com/earshot/earshot/gateway/api"
	"github.com/earshot/earshot/gateway/keyring"
	"github.com/earshot/earshot/gateway/mcp"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/rtc"
	"github.com/earshot/earshot/gateway/session"
	"github.com/earshot/earshot/gateway/store"
	"github.com/earshot/earshot/gateway/voice"
	"github.com/earshot/earshot/gateway/webhook"
	"github.com/earshot/earshot/gateway/ws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminTokenFile is the admin token's file name in the data directory.
const AdminTokenFile = "admin.token"

// AddrFile is the file in the data directory that holds the listening address while
// the gateway runs.
const AddrFile = "gateway.addr"

// Config configures a Server. The zero value runs with the embedded defaults.
type Config struct {
	// DataDir holds the store and the admin token; default "./data".
	DataDir string
	// Listen is the HTTP and WebSocket address; default "127.0.0.1:8080". Port 0
	// picks a free port (see Server.Addr).
	Listen string
	// InMemory keeps the store in memory (tests); the admin token is still written
	// to DataDir.
	InMemory bool
	// ConsentTTL is how long a prompt stays open; default 60s.
	ConsentTTL time.Duration
	// CancelWindow is how long after a payment the user may still cancel it; default
	// 2m, negative none.
	CancelWindow time.Duration
	// MandateTTL is how long a mandate may be redeemed; default 10m. A rotated-out
	// signing key stays in the JWKS this long (plus authz.Leeway) after the rotation.
	MandateTTL time.Duration
	// Heartbeat is the WebSocket ping interval; default 25s.
	Heartbeat time.Duration
	// CatalogFile replaces the reference agent's embedded demo catalogue.
	CatalogFile string
	// RiskFile replaces the embedded risk rules (authz/risk/default.yaml).
	RiskFile string
	// Risk, if set, is the risk policy itself (tests); it wins over RiskFile.
	Risk *risk.Policy
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Agent picks the embedded agent: "ref" (default), the rule-based reference agent,
	// or "llm", a model behind an OpenAI-compatible chat-completions API (LLM).
	Agent string
	// LLM configures the "llm" agent.
	LLM LLMConfig
	// WebhookMaxBackoff caps the wait between retries of a webhook the agent did not
	// take; default 5m (webhook.DefaultMaxBackoff).
	WebhookMaxBackoff time.Duration
	// NewAgent, if set, replaces the embedded agent. It is given the gateway's base
	// URL and a fresh API key for the REST API.
	NewAgent func(baseURL, apiKey string) (Agent, error)
	// MQTT configures the MQTT transport; the zero value is the embedded broker.
	MQTT MQTTConfig
	// Speech configures recognition and prompt speech; the zero value is the
	// embedded PocketSphinx (when built in) and espeak-ng (when installed).
	Speech SpeechConfig
	// WebRTC configures the WHIP endpoint; the zero value serves it.
	WebRTC WebRTCConfig
}

// LLMConfig configures the LLM agent (gateway/agent/llmagent).
type LLMConfig struct {
	// BaseURL is the chat-completions server's API base, such as
	// "http://127.0.0.1:11434/v1"; required for the llm agent.
	BaseURL string
	// Model names the model; required for the llm agent.
	Model string
	// APIKey, if the server needs one, is sent as its Bearer token and never logged.
	APIKey string
}

// WebRTCConfig configures the WebRTC (WHIP) transport.
type WebRTCConfig struct {
	// Disabled turns WHIP off.
	Disabled bool
	// Loopback offers loopback ICE candidates: needed when devices run on the gateway's
	// host (tests, the simulator). Default: on when Listen is a loopback address.
	Loopback *bool
	// NAT1To1IPs are public addresses to announce in ICE candidates.
	NAT1To1IPs []string
	// UDPPortMin and UDPPortMax bound the UDP ports for media; zero: any.
	UDPPortMin, UDPPortMax uint16
}

// MQTTConfig configures the MQTT transport.
type MQTTConfig struct {
	// Disabled turns MQTT off.
	Disabled bool
	// Listen is the embedded broker's address; default 127.0.0.1:1883, or a free
	// port when Config.Listen has port 0 (so tests and demos never collide).
	Listen string
	// Broker, when set, replaces the embedded broker with an external one
	// (tcp://host:port or ssl://host:port); the gateway connects as a backend client
	// with the secret in DATA_DIR/mqtt.secret (see docs/deploy-mqtt.md).
	Broker string
	// CAFile, CertFile and KeyFile configure TLS to an ssl:// broker: the CA that
	// signed the broker's certificate and, for mutual TLS, the gateway's own pair.
	CAFile, CertFile, KeyFile string
	// DeviceURL is the broker URL devices are told (GET /v1/transports); default the
	// embedded listener's or Broker.
	DeviceURL string
}

// Agent is an in-process agent the gateway runs: an agent.Agent with its own
// goroutines, owned by Run.
type Agent interface {
	agent.Agent
	Run(ctx context.Context) error
}

// Server is a running gateway.
type Server struct {
	cfg  Config
	log  *slog.Logger
	db   *store.DB
	core *session.Core
	// keyring holds the mandate signing keys and retires old ones.
	keyring *keyring.Ring
	ws      *ws.Server
	voice   *voice.Service
	rtc     *rtc.Server // nil when WebRTC is disabled
	// recognizer is closed at shutdown; speechNote says why there is none.
	recognizer interface{ Close() error }
	speechNote string
	mqtt       mqttTransport // nil when MQTT is disabled
	agent      Agent
	// hooks delivers external agents' events to their webhooks; it runs under
	// hooksStop and has stopped when hooksDone is closed.
	api       *api.API
	hooks     *webhook.Dispatcher
	hooksStop context.CancelFunc
	hooksDone chan struct{}
	http      *http.Server
	ln        net.Listener
	admin     string

	stopOnce sync.Once
	stopErr  error
}

// New opens the store, loads or creates the gateway's identity and keys, and binds
// the listener. Run serves.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "./data"
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8080"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "gateway")}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway: data dir: %w", err)
	}
	admin, err := loadOrCreateSecret(filepath.Join(cfg.DataDir, AdminTokenFile))
	if err != nil {
		return nil, err
	}
	s.admin = admin
	sc := store.Config{InMemory: cfg.InMemory, Logger: cfg.Logger}
	if !cfg.InMemory {
		sc.Dir = filepath.Join(cfg.DataDir, "badger")
	}
	s.db, err = store.Open(sc)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := s.build(); err != nil {
		// The store is closed so its lock file is released for the next attempt.
		_ = s.db.Close()
		return nil, err
	}
	return s, nil
}

// defaultMandateTTL is Config.MandateTTL's default.
const defaultMandateTTL = 10 * time.Minute

func (s *Server) build() error {
	// New takes no context (the Server shape is New, Run, Shutdown); its set-up is a
	// handful of local store operations.
	ctx := context.Background()
	id, err := metaOrCreate(ctx, s.db, "gateway-id", func() (string, error) { return randomHex(8) })
	if err != nil {
		return err
	}
	if s.cfg.MandateTTL <= 0 {
		s.cfg.MandateTTL = defaultMandateTTL
	}
	s.keyring, err = keyring.Open(ctx, keyring.Config{Store: s.db, MaxValidity: max(s.cfg.MandateTTL, authz.MaxOpenValidity) + authz.Leeway,
		Logger: s.cfg.Logger})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	keys := s.keyring.Keys()
	reg, err := registry.New(registry.Config{Store: s.db, Audience: "earshot:" + id})
	if err != nil {
		return err
	}
	s.ln, err = net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	apiKey, err := reg.NewAPIKey()
	if err != nil {
		return err
	}
	var cat *refagent.Catalog
	if s.agent, cat, err = s.newAgent(apiKey); err != nil {
		return err
	}
	// "Earshot" is the name users see on the embedded agent's notices.
	if _, err := reg.EnsureAgent(ctx, s.agent.ID(), "Earshot", apiKey); err != nil {
		return err
	}
	trail, err := audit.New(s.db, audit.Config{Signer: keys})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	policy, err := s.riskPolicy()
	if err != nil {
		return err
	}
	said, isCancel, err := saidFrom(cat)
	if err != nil {
		return err
	}
	metrics := session.NewMetrics()
	s.core, err = session.New(session.Config{
		Store: s.db, Registry: reg, Keys: keys, Agent: s.agent, Issuer: "earshot:" + id,
		ConsentTTL: s.cfg.ConsentTTL, MandateTTL: s.cfg.MandateTTL, Heartbeat: s.cfg.Heartbeat,
		Logger: s.cfg.Logger, Metrics: metrics, Audit: trail, CancelWindow: s.cfg.CancelWindow,
		Risk: policy, Said: said, IsCancel: isCancel,
	})
	if err != nil {
		return err
	}
	if s.voice, err = s.buildVoice(s.core, cat); err != nil {
		return err
	}
	s.ws, err = ws.New(ws.Config{Voice: s.voice, Registry: reg, Logger: s.cfg.Logger, PingInterval: s.cfg.Heartbeat})
	if err != nil {
		return err
	}
	s.hooks, err = webhook.New(webhook.Config{Source: s.core, Endpoints: webhookEndpoints(reg), Logger: s.cfg.Logger,
		MinBackoff: min(webhook.DefaultMinBackoff, s.cfg.WebhookMaxBackoff), MaxBackoff: s.cfg.WebhookMaxBackoff})
	if err != nil {
		return err
	}
	prices, _ := s.agent.(api.Prices) // the reference agent's simulated merchant
	a, err := api.New(api.Config{Core: s.core, Registry: reg, Keys: keys, Keyring: s.keyring, Store: s.db, AdminToken: s.admin,
		Logger: s.cfg.Logger, Prices: prices, OnAgentsChanged: s.hooks.Reload})
	if err != nil {
		return err
	}
	s.api = a
	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promReg.MustRegister(metrics.Collectors()...)
	promReg.MustRegister(s.ws.Metrics().Collectors()...)
	promReg.MustRegister(s.voice.Metrics().Collectors()...)
	promReg.MustRegister(storeCollector(s.db)...)
	promReg.MustRegister(s.hooks.Metrics().Collectors()...)

	mux := http.NewServeMux()
	mux.Handle(ws.Path, s.ws)
	if err := s.buildRTC(reg, promReg, mux); err != nil {
		return err
	}
	a.Register(mux)
	// MCP for third-party agents: tools over the same API, in-process (docs/mcp.md).
	mcpSrv, err := mcp.New(mcp.Config{API: a, Core: s.core, Registry: reg, Logger: s.cfg.Logger})
	if err != nil {
		return err
	}
	mux.Handle(mcp.Path, mcpSrv)
	if err := s.buildMQTT(reg, promReg, mux); err != nil {
		return err
	}
	mux.HandleFunc("GET "+TransportsPath, s.transports)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n")) // nothing to do if the prober left
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(promReg, promhttp.HandlerOpts{}))
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	// MCP tool calls wait for users and sessions hold streams open: end them when
	// shutdown starts, so that it need not wait for them.
	s.http.RegisterOnShutdown(mcpSrv.Close)
	return nil
}

// newAgent makes the configured agent, by default the reference agent, and returns
// the catalogue the speech grammar is built from (nil: the demo catalogue).
func (s *Server) newAgent(apiKey string) (Agent, *refagent.Catalog, error) {
	base := "http://" + s.ln.Addr().String()
	var cat *refagent.Catalog // nil: the agent's embedded demo catalogue
	if s.cfg.CatalogFile != "" {
		f, err := os.Open(s.cfg.CatalogFile)
		if err != nil {
			return nil, nil, fmt.Errorf("gateway: catalogue: %w", err)
		}
		defer f.Close()
		if cat, err = refagent.LoadCatalog(f); err != nil {
			return nil, nil, fmt.Errorf("gateway: catalogue %s: %w", s.cfg.CatalogFile, err)
		}
	}
	if s.cfg.NewAgent != nil {
		a, err := s.cfg.NewAgent(base, apiKey)
		return a, cat, err
	}
	switch s.cfg.Agent {
	case "", "ref":
	case "llm":
		if s.cfg.LLM.BaseURL == "" || s.cfg.LLM.Model == "" {
			return nil, nil, errors.New("gateway: the llm agent needs the model server's base URL and the model's name")
		}
		if cat == nil {
			var err error
			if cat, err = refagent.DefaultCatalog(); err != nil {
				return nil, nil, err
			}
		}
		a, err := llmagent.New(llmagent.Config{BaseURL: base, APIKey: apiKey, Catalog: cat, LLMBaseURL: s.cfg.LLM.BaseURL,
			Model: s.cfg.LLM.Model, LLMAPIKey: s.cfg.LLM.APIKey, Logger: s.cfg.Logger})
		return a, cat, err
	default:
		return nil, nil, fmt.Errorf("gateway: unknown agent %q (ref or llm)", s.cfg.Agent)
	}
	a, err := refagent.New(refagent.Config{BaseURL: base, APIKey: apiKey, ID: "refagent", Catalog: cat, Logger: s.cfg.Logger})
	return a, cat, err
}

// webhookEndpoints lists the external agents that have a webhook.
func webhookEndpoints(reg *registry.Registry) func(context.Context) ([]webhook.Endpoint, error) {
	return func(ctx context.Context) ([]webhook.Endpoint, error) {
		ags, err := reg.Agents(ctx)
		if err != nil {
			return nil, err
		}
		var eps []webhook.Endpoint
		for _, a := range ags {
			if a.WebhookURL != "" && !a.Revoked && !a.Embedded {
				eps = append(eps, webhook.Endpoint{Agent: a.ID, URL: a.WebhookURL, Secret: a.WebhookSecret})
			}
		}
		return eps, nil
	}
}

// API is the gateway's HTTP API (its routes are what /openapi.json describes).
func (s *Server) API() *api.API { return s.api }

// Addr is the address the gateway listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the gateway's base URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Run serves until ctx ends, then shuts down with a fresh 10-second budget.
func (s *Server) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	wg.Add(3)
	go func() { defer wg.Done(); errc <- s.db.Run(runCtx) }()
	go func() { defer wg.Done(); errc <- s.agent.Run(runCtx) }()
	go func() { defer wg.Done(); errc <- s.keyring.Run(runCtx) }()
	if err := s.core.Start(runCtx); err != nil {
		cancel()
		wg.Wait()
		// Serve never ran, so Shutdown cannot close the listener; the store still must.
		return errors.Join(err, s.ln.Close(), s.Shutdown(context.WithoutCancel(ctx)))
	}
	hooksCtx, hooksStop := context.WithCancel(runCtx)
	s.hooksStop, s.hooksDone = hooksStop, make(chan struct{})
	go func() {
		defer close(s.hooksDone)
		if err := s.hooks.Run(hooksCtx); err != nil && hooksCtx.Err() == nil {
			s.log.Error("webhooks stopped", "err", err)
		}
	}()
	if s.mqtt != nil {
		if err := s.mqtt.Start(); err != nil {
			cancel()
			wg.Wait()
			return errors.Join(err, s.ln.Close(), s.Shutdown(context.WithoutCancel(ctx)))
		}
	}
	rec := s.voice.Recognizer()
	if s.speechNote != "" {
		rec = s.speechNote
	}
	s.log.Info("earshot gateway listening", "addr", s.Addr(), "mqtt", s.MQTTURL(), "webrtc", s.rtc != nil,
		"data_dir", s.cfg.DataDir, "recogniser", rec, "admin_token_file", filepath.Join(s.cfg.DataDir, AdminTokenFile))
	wg.Add(1)
	go func() { defer wg.Done(); errc <- s.http.Serve(s.ln) }()
	// The address file lets scripts and the simulator find a gateway started on port 0.
	addrFile := filepath.Join(s.cfg.DataDir, AddrFile)
	if err := os.WriteFile(addrFile, []byte(s.Addr()+"\n"), 0o644); err != nil {
		s.log.Warn("could not write the address file", "path", addrFile, "err", err)
	}
	defer func() {
		// A stale address file is harmless: the next start overwrites it.
		_ = os.Remove(addrFile)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	shutCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	if serr := s.Shutdown(shutCtx); err == nil {
		err = serr
	}
	cancel()
	wg.Wait()
	return err
}

// Shutdown stops accepting, disconnects devices with a reconnectable code, and closes
// the store. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.log.Info("shutting down")
		errs := []error{s.http.Shutdown(ctx)}
		if s.hooksStop != nil { // webhooks read the store: they stop before it closes
			s.hooksStop()
			<-s.hooksDone
		}
		s.core.Close()
		errs = append(errs, s.ws.Shutdown(ctx))
		if s.rtc != nil {
			errs = append(errs, s.rtc.Shutdown(ctx))
		}
		if s.mqtt != nil {
			errs = append(errs, s.mqtt.Close())
		}
		if s.recognizer != nil {
			errs = append(errs, s.recognizer.Close())
		}
		errs = append(errs, s.db.Close())
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}
