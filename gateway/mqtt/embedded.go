package mqtt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
)

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	Core     *session.Core      // required
	Registry *registry.Registry // required: authenticates device tokens
	// Listen is the TCP address; default 127.0.0.1:1883. Port 0 picks one (see Addr).
	Listen string
	// TLS, when set, makes the listener MQTT over TLS.
	TLS *tls.Config
	// Logger; default slog.Default(). The broker's own log is passed at warn level.
	Logger *slog.Logger
	// Metrics; default a fresh, unregistered set.
	Metrics *Metrics
	// MaxClients bounds connected clients; default 20000 (the open-file limit here).
	MaxClients int64
	// WritesPending bounds each client's outbound packet queue; default 64. A device
	// whose queue overflows is disconnected as a slow consumer and resumes. (mochi's
	// default, 8192, costs ~50 KiB per idle client.)
	WritesPending int32
	// Inflight bounds the QoS 1 messages kept per client, including a disconnected
	// persistent session's queue; default 256 (the core's own outbox limit).
	Inflight uint16
	// SessionExpiry is how long a disconnected persistent session is kept; default 24h.
	SessionExpiry time.Duration
	// Shards and ShardQueue size the uplink workers; defaults 8 and 256.
	Shards, ShardQueue int
}

// Embedded is the in-process broker with the gateway attached to it.
type Embedded struct {
	cfg   EmbeddedConfig
	log   *slog.Logger
	m     *Metrics
	srv   *mochi.Server
	tcp   *listeners.TCP
	br    *bridge
	epoch string
}

// Broker packet limits: one envelope (wire.MaxFrameBytes) plus topic and header.
const (
	maxPacketBytes = wire.MaxFrameBytes + 1024
	receiveMaximum = 32
)

// NewEmbedded creates the broker and binds its listener; Start serves.
func NewEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Core == nil || cfg.Registry == nil {
		return nil, errors.New("mqtt: Core and Registry are required")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:1883"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 20000
	}
	if cfg.WritesPending <= 0 {
		cfg.WritesPending = 64
	}
	if cfg.Inflight == 0 {
		cfg.Inflight = 256
	}
	if cfg.SessionExpiry <= 0 {
		cfg.SessionExpiry = 24 * time.Hour
	}
	e := &Embedded{cfg: cfg, log: cfg.Logger.With("component", "mqtt"), m: cfg.Metrics}

	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumClients = cfg.MaxClients
	caps.MaximumClientWritesPending = cfg.WritesPending
	caps.MaximumInflight = cfg.Inflight
	caps.ReceiveMaximum = receiveMaximum
	caps.MaximumPacketSize = maxPacketBytes
	caps.MaximumSessionExpiryInterval = uint32(cfg.SessionExpiry / time.Second)
	caps.MaximumMessageExpiryInterval = int64(cfg.SessionExpiry / time.Second)
	caps.MaximumQos = 1 // the protocol uses QoS 1 at most
	caps.TopicAliasMaximum = 0
	caps.SharedSubAvailable = 0 // devices have no use for it; the ACL refuses it anyway
	e.srv = mochi.New(&mochi.Options{
		Capabilities:             caps,
		InlineClient:             true,
		ClientNetWriteBufferSize: 2 << 10,
		ClientNetReadBufferSize:  2 << 10,
		SysTopicResendInterval:   3600, // $SYS is not used; publish it rarely
		Logger:                   slog.New(minLevel{cfg.Logger.With("component", "mqtt-broker").Handler(), slog.LevelWarn}),
	})
	e.br = newBridge(bridgeConfig{
		Core: cfg.Core, Registry: cfg.Registry, Logger: e.log, Metrics: cfg.Metrics,
		Shards: cfg.Shards, ShardQueue: cfg.ShardQueue,
	}, (*embeddedBroker)(e))
	if err := e.srv.AddHook(&hook{e: e}, nil); err != nil {
		e.br.stop()
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	e.tcp = listeners.NewTCP(listeners.Config{ID: "devices", Address: cfg.Listen, TLSConfig: cfg.TLS})
	if err := e.srv.AddListener(e.tcp); err != nil {
		e.br.stop()
		return nil, fmt.Errorf("mqtt: listen on %s: %w", cfg.Listen, err)
	}
	e.m.Connected = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "earshot_mqtt_clients_connected", Help: "Clients connected to the embedded broker.",
	}, func() float64 { return float64(e.srv.Info.ClientsConnected) })
	return e, nil
}

// Metrics returns the transport's collectors, for registration.
func (e *Embedded) Metrics() *Metrics { return e.m }

// Addr is the listener's address.
func (e *Embedded) Addr() string { return e.tcp.Address() }

// URL is the address devices connect to: tcp:// or, with TLS, ssl://.
func (e *Embedded) URL() string {
	if e.cfg.TLS != nil {
		return "ssl://" + e.Addr()
	}
	return "tcp://" + e.Addr()
}

// Start subscribes the gateway to the device topics, announces it online with a new
// epoch and starts accepting devices.
func (e *Embedded) Start() error {
	deliver := func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		// The broker has acknowledged the message already; the inline client cannot
		// hold the acknowledgement back. Inline handlers see live messages with the
		// publisher's retain flag, and the broker starts empty, so none is old news.
		e.br.deliver(message{topic: pk.TopicName, payload: bytes.Clone(pk.Payload)})
	}
	if err := e.srv.Subscribe(wire.UplinkFilter, 1, deliver); err != nil {
		return fmt.Errorf("mqtt: subscribe: %w", err)
	}
	if err := e.srv.Subscribe(wire.StatusFilter, 2, deliver); err != nil {
		return fmt.Errorf("mqtt: subscribe: %w", err)
	}
	e.epoch = newEpoch()
	if err := e.srv.Publish(wire.GatewayStatusTopic, wire.Presence{State: wire.Online, Epoch: e.epoch}.Encode(), true, wire.QoSEvents); err != nil {
		return fmt.Errorf("mqtt: gateway status: %w", err)
	}
	if err := e.srv.Serve(); err != nil {
		return fmt.Errorf("mqtt: serve: %w", err)
	}
	e.log.Info("embedded MQTT broker listening", "addr", e.Addr())
	return nil
}

// Close disconnects every client and stops the uplink workers. Call it after the
// session core has closed, so devices get the core's shutdown error first.
func (e *Embedded) Close() error {
	// Retained for devices that connect before the next start: the gateway is gone.
	_ = e.srv.Publish(wire.GatewayStatusTopic, wire.Presence{State: wire.Offline}.Encode(), true, wire.QoSEvents)
	e.br.stop()
	return e.srv.Close()
}

// embeddedBroker is the bridge's view of the embedded broker.
type embeddedBroker Embedded

func (b *embeddedBroker) publish(topic string, payload []byte, retain bool) error {
	return b.srv.Publish(topic, payload, retain, wire.QoSEvents)
}

func (b *embeddedBroker) kick(device string) {
	for _, cl := range b.srv.Clients.GetAll() {
		if !cl.Net.Inline && string(cl.Properties.Username) == device && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized) // it is being closed either way
		}
	}
}

// hook authenticates devices and enforces the ACL.
type hook struct {
	mochi.HookBase
	e *Embedded
}

func (h *hook) ID() string { return "earshot" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnPublishDropped}, []byte{b})
}

// authTimeout bounds a token check (a store read and a nonce write).
const authTimeout = 5 * time.Second

func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	refuse := func(code wire.Code, detail string) bool {
		h.e.m.Refused.WithLabelValues(code.String()).Inc()
		h.e.log.Info("MQTT connection refused", "username", clip(user), "client_id", clip(cl.ID),
			"remote", cl.Net.Remote, "code", code.String(), "reason", detail)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
	defer cancel()
	if we := checkDevice(ctx, h.e.cfg.Registry, user, string(pk.Connect.Password), cl.ID); we != nil {
		return refuse(we.Code, we.Message)
	}
	return true
}

func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	if Allowed(string(cl.Properties.Username), topic, write) {
		return true
	}
	action := "subscribe"
	if write {
		action = "publish"
	}
	h.e.m.ACLDenied.WithLabelValues(action).Inc()
	h.e.log.Warn("MQTT ACL refused", "device", clip(string(cl.Properties.Username)), "client_id", clip(cl.ID),
		"action", action, "topic", clip(topic))
	return false
}

// OnPublishDropped handles a device whose outbound queue overflowed: its session is
// closed as a slow consumer, off the publishing goroutine (which may be the core's,
// inside a flush).
func (h *hook) OnPublishDropped(cl *mochi.Client, pk packets.Packet) {
	if dev, kind, err := wire.ParseDeviceTopic(pk.TopicName); err == nil && kind == wire.TopicDown {
		h.e.br.closeLater(dev, wire.CodeSlowConsumer, "downlink queue overflowed")
	}
}

// ClientIDAllowed reports whether a device may connect with the client id: its own
// id, or its id followed by "-" and a suffix.
func ClientIDAllowed(device, clientID string) bool {
	return clientID == device || strings.HasPrefix(clientID, device+"-") && len(clientID) <= 2*wire.MaxIDBytes
}

// Allowed is the device ACL: a device publishes to its own uplink and status topics
// and reads its own downlink and the gateway's status. Filters are compared as
// strings, so a wildcard or $share filter never matches.
func Allowed(device, topic string, write bool) bool {
	if device == "" {
		return false
	}
	if write {
		return topic == wire.UplinkTopic(device) || topic == wire.StatusTopic(device)
	}
	return topic == wire.DownlinkTopic(device) || topic == wire.GatewayStatusTopic
}

func newEpoch() string {
	var b [9]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// clip bounds attacker-supplied strings in logs.
func clip(s string) string {
	if len(s) > 96 {
		return s[:96] + "..."
	}
	return s
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }
