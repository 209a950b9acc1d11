package rtc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/problem"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/voice"
)

// Path is the WHIP endpoint; sessions live under Path + "/{id}".
const Path = "/v1/whip"

// Label is the label of the device's data channel.
const Label = "earshot"

// DisconnectTimeout is how long a peer may stay in the ICE disconnected state before
// it is closed.
const DisconnectTimeout = 5 * time.Second

// Errors.
var (
	// ErrConfig reports a Config that New refuses.
	ErrConfig = errors.New("rtc: bad config")
	// ErrQueueFull: the peer's send queue overflowed; it was closed as a slow consumer.
	ErrQueueFull = errors.New("rtc: send queue full; peer closed as a slow consumer")
	// ErrClosed: the peer is closed.
	ErrClosed = errors.New("rtc: peer closed")
	// ErrOffer reports an offer this gateway cannot answer; the message says why.
	ErrOffer = errors.New("rtc: bad offer")
)

// Config configures the transport.
type Config struct {
	Voice    *voice.Service     // required
	Registry *registry.Registry // required: authenticates device tokens
	Logger   *slog.Logger       // default slog.Default()
	// Loopback allows loopback ICE candidates (tests; a gateway and its devices on one
	// host). Default false.
	Loopback bool
	// NAT1To1IPs are public IPs announced as host candidates instead of the local ones
	// (a gateway behind 1:1 NAT). Default none.
	NAT1To1IPs []string
	// UDPPortMin and UDPPortMax bound the ports ICE listens on; 0 and 0: any.
	UDPPortMin, UDPPortMax uint16
	// MaxPeers bounds the peer connections, set-ups included; beyond it an offer is
	// answered 503 with Retry-After. Default 256.
	MaxPeers int
	// SendQueue is the per-peer send queue length in messages; default 128.
	SendQueue int
	// GatherTimeout bounds ICE gathering before the answer (no trickle); default 5 s.
	GatherTimeout time.Duration
	// HelloTimeout is how long a new peer has to open its data channel and send
	// hello; default 10 s.
	HelloTimeout time.Duration
	// MaxOfferBytes bounds the offer SDP; default 64 KiB.
	MaxOfferBytes int
}

// Server answers WHIP offers and runs the peers. It implements http.Handler.
type Server struct {
	cfg Config
	log *slog.Logger
	m   *Metrics
	api *webrtc.API

	mu       sync.Mutex
	peers    map[string]*peer
	settling int // offers being answered
	closed   bool
	wg       sync.WaitGroup
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Voice == nil || cfg.Registry == nil {
		return nil, fmt.Errorf("%w: Voice and Registry are required", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 256
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = 128
	}
	if cfg.SendQueue < 2 {
		cfg.SendQueue = 2 // half of it for binary frames
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = 5 * time.Second
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = 10 * time.Second
	}
	if cfg.MaxOfferBytes <= 0 {
		cfg.MaxOfferBytes = 64 << 10
	}
	api, err := newAPI(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("component", "rtc"), m: NewMetrics(), api: api,
		peers: make(map[string]*peer)}, nil
}

func newAPI(cfg Config) (*webrtc.API, error) {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(cfg.Loopback)
	if len(cfg.NAT1To1IPs) > 0 {
		se.SetNAT1To1IPs(cfg.NAT1To1IPs, webrtc.ICECandidateTypeHost)
	}
	if cfg.UDPPortMin != 0 || cfg.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, fmt.Errorf("%w: UDP ports %d-%d: %w", ErrConfig, cfg.UDPPortMin, cfg.UDPPortMax, err)
		}
	}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetSCTPMaxMessageSize(2 * wire.MaxFrameBytes)
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("rtc: registering opus: %w", err)
	}
	// No interceptors: the gateway only receives one audio track and does not ask for
	// retransmissions (NACK) or send congestion feedback.
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me)), nil
}

// Metrics returns the transport's collectors, for registration.
func (s *Server) Metrics() *Metrics { return s.m }

// ServeHTTP serves POST Path (a new session) and DELETE Path/{id} (its end). Mount it
// at Path and Path + "/".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, Path)
	if !ok {
		problem.Write(w, http.StatusNotFound, "not_found", "no such WHIP resource")
		return
	}
	id := strings.TrimPrefix(rest, "/")
	switch {
	case id == "" && r.Method == http.MethodPost:
		s.offer(w, r)
	case id == "":
		w.Header().Set("Allow", http.MethodPost)
		problem.Write(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST an SDP offer here")
	case r.Method == http.MethodDelete:
		s.delete(w, r, id)
	default:
		// PATCH (trickle ICE, ICE restart) included: not supported; no Accept-Patch.
		w.Header().Set("Allow", http.MethodDelete)
		problem.Write(w, http.StatusMethodNotAllowed, "method_not_allowed",
			"a WHIP session supports DELETE only (no trickle ICE or ICE restart)")
	}
}

// authenticate checks the bearer token and answers the request when it fails.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (registry.Device, bool) {
	tok := registry.BearerToken(r)
	if tok == "" {
		s.m.offer("unauthorized")
		w.Header().Set("WWW-Authenticate", `Bearer realm="earshot"`)
		problem.Write(w, http.StatusUnauthorized, wire.CodeInvalidToken.String(), "Authorization: Bearer <device token> is required")
		return registry.Device{}, false
	}
	dev, err := s.cfg.Registry.Authenticate(r.Context(), tok)
	if err == nil {
		return dev, true
	}
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
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="earshot", error="invalid_token"`)
	}
	s.m.offer("unauthorized")
	s.log.Info("device refused", "code", we.Code.String(), "remote", r.RemoteAddr)
	problem.Write(w, status, we.Code.String(), we.Message)
	return registry.Device{}, false
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, id string) {
	dev, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	p := s.peers[id]
	s.mu.Unlock()
	if p == nil || p.dev.ID != dev.ID {
		problem.Write(w, http.StatusNotFound, "not_found", "no such WHIP session")
		return
	}
	p.Close(wire.CodeUnknown, "deleted by the device")
	w.WriteHeader(http.StatusOK)
}

// reserve takes a peer slot for an offer being answered.
func (s *Server) reserve() (status int, code, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return http.StatusServiceUnavailable, wire.CodeShutdown.String(), "the gateway is shutting down"
	case len(s.peers)+s.settling >= s.cfg.MaxPeers:
		return http.StatusServiceUnavailable, wire.CodeUnavailable.String(), "too many WebRTC peers; retry later"
	}
	s.settling++
	return 0, "", ""
}

// admit turns a reservation into a running peer, unless the server closed meanwhile.
func (s *Server) admit(p *peer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settling--
	if s.closed {
		return false
	}
	s.peers[p.id] = p
	s.wg.Add(1)
	s.m.Peers.Inc()
	return true
}

func (s *Server) release() {
	s.mu.Lock()
	s.settling--
	s.mu.Unlock()
}

func (s *Server) untrack(p *peer) {
	s.mu.Lock()
	if s.peers[p.id] == p {
		delete(s.peers, p.id)
		s.m.Peers.Dec()
	}
	s.mu.Unlock()
}

// Shutdown closes every peer with wire.CodeShutdown and waits for their goroutines,
// or for ctx. Offers that arrive afterwards are refused with 503. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	peers := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.Close(wire.CodeShutdown, "gateway shutting down")
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

// newID returns an unguessable resource id (128 random bits).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
