// Package ws is the WebSocket transport: devices connect to /v1/device with the
// subprotocol earshot.v1 and a device token, and exchange one wire envelope per text
// frame. It is the only importer of gorilla/websocket on the gateway side.
//
// Events travel as text frames, audio as binary frames (wire.AudioHeader and payload):
// the device's speech up, prompt speech down.
//
// Each connection has two goroutines, started after the upgrade so the HTTP handler's
// goroutine (and its stack) is released: a reader that feeds frames to the session
// core through the speech layer (gateway/voice), and a writer that drains a bounded send queue and sends keepalive pings. The
// overflow policy is disconnect-slow-consumer: when a device does not read fast enough
// for its queue to drain, the connection is closed with wire.CodeSlowConsumer (a
// reconnectable code; what was not acknowledged is re-sent after resume) and counted.
//
// Close codes are wire.Code values (4000-4499 reconnect, 4500-4999 do not), except for
// frames over twice wire.MaxFrameBytes, which the library refuses with 1009 before they
// are read.
package ws

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/problem"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/voice"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Path is where devices connect.
const Path = "/v1/device"

// Errors from Send.
var (
	ErrQueueFull = errors.New("ws: send queue full; connection closed as a slow consumer")
	ErrClosed    = errors.New("ws: connection closed")
)

// Config configures the transport.
type Config struct {
	Voice    *voice.Service     // required: the session core, with speech in between
	Registry *registry.Registry // required: authenticates device tokens
	// Logger; default slog.Default().
	Logger *slog.Logger
	// SendQueue is the per-connection send queue length in frames; default 64.
	SendQueue int
	// PingInterval is how often the gateway pings; default 25s.
	PingInterval time.Duration
	// PongWait is how long the connection may stay silent (no frame, no pong) before
	// it is closed with wire.CodeHeartbeatLost; default 2.5 x PingInterval.
	PongWait time.Duration
	// HelloTimeout is how long a new connection has to send hello; default 10s.
	HelloTimeout time.Duration
	// WriteTimeout bounds one frame write; default 10s.
	WriteTimeout time.Duration
	// ReadBufferSize and WriteBufferSize size gorilla's buffers; defaults 1 KiB and
	// 4 KiB (write buffers are pooled between writes).
	ReadBufferSize, WriteBufferSize int
}

// Server upgrades device connections. It implements http.Handler.
type Server struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader
	m        *Metrics

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Voice == nil || cfg.Registry == nil {
		return nil, errors.New("ws: Voice and Registry are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = 64
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 25 * time.Second
	}
	if cfg.PongWait <= 0 {
		cfg.PongWait = cfg.PingInterval * 5 / 2
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = 1 << 10
	}
	if cfg.WriteBufferSize <= 0 {
		cfg.WriteBufferSize = 4 << 10
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "ws"), m: NewMetrics(), conns: make(map[*conn]struct{})}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  cfg.ReadBufferSize,
		WriteBufferSize: cfg.WriteBufferSize,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{wire.Subprotocol},
		// Devices are not browsers; a browser-based device sends its token anyway,
		// which a cross-site page cannot obtain, so the origin adds nothing.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return s, nil
}

// Metrics returns the transport's collectors, for registration.
func (s *Server) Metrics() *Metrics { return s.m }

// ServeHTTP authenticates the device, upgrades the connection and returns; the
// connection's goroutines run on until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		problem.Write(w, http.StatusBadRequest, "bad_request", "a WebSocket upgrade is required")
		return
	}
	if !offers(r, wire.Subprotocol) {
		problem.Write(w, http.StatusBadRequest, "bad_request", "the subprotocol "+wire.Subprotocol+" is required")
		return
	}
	tok := registry.BearerToken(r)
	if tok == "" {
		s.m.Refused.WithLabelValues(wire.CodeInvalidToken.String()).Inc()
		problem.Write(w, http.StatusUnauthorized, wire.CodeInvalidToken.String(), "Authorization: Bearer <device token> is required")
		return
	}
	dev, err := s.cfg.Registry.Authenticate(r.Context(), tok)
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = wire.NewError(wire.CodeUnavailable, "authentication unavailable")
		}
		status := http.StatusUnauthorized
		switch we.Code {
		case wire.CodeDeviceRevoked:
			status = http.StatusForbidden
		case wire.CodeUnavailable:
			status = http.StatusServiceUnavailable
		}
		s.m.Refused.WithLabelValues(we.Code.String()).Inc()
		s.log.Info("device refused at upgrade", "code", we.Code.String(), "remote", r.RemoteAddr)
		problem.Write(w, status, we.Code.String(), we.Message)
		return
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		problem.Write(w, http.StatusServiceUnavailable, wire.CodeShutdown.String(), "the gateway is shutting down")
		return
	}
	wsc, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	c := &conn{
		srv: s, ws: wsc, dev: dev, send: make(chan outFrame, s.cfg.SendQueue), done: make(chan struct{}),
		audio: make(chan struct{}, max(1, s.cfg.SendQueue/2)),
		log:   s.log.With("device", dev.ID),
		// The request's context ends when this handler returns; the connection's
		// work keeps its values but not its cancellation.
		ctx: context.WithoutCancel(r.Context()),
	}
	sc, err := s.cfg.Voice.Attach(dev, c)
	if err != nil {
		c.closeNow(wire.CodeShutdown, "the gateway is shutting down")
		return
	}
	c.sc = sc
	if !s.track(c) {
		sc.Detach()
		c.closeNow(wire.CodeShutdown, "the gateway is shutting down")
		return
	}
	s.m.Open.Inc()
	s.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown closes every connection with wire.CodeShutdown and waits for their
// goroutines, or for ctx. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close(wire.CodeShutdown, "gateway shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func offers(r *http.Request, proto string) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == proto {
			return true
		}
	}
	return false
}

// Metrics are the transport's collectors.
type Metrics struct {
	Open     prometheus.Counter
	Refused  *prometheus.CounterVec
	Closed   *prometheus.CounterVec
	Overflow prometheus.Counter
}

// NewMetrics returns unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Open: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_ws_connections_total", Help: "WebSocket device connections accepted.",
		}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_ws_refused_total", Help: "WebSocket upgrades refused, by code.",
		}, []string{"code"}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_ws_closed_total", Help: "WebSocket connections closed by the gateway, by code.",
		}, []string{"code"}),
		Overflow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_ws_slow_consumer_total", Help: "Connections closed because their send queue overflowed.",
		}),
	}
}

// Collectors lists every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Open, m.Refused, m.Closed, m.Overflow}
}
