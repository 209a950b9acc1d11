package mqtt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
)

// GatewayUser is the default MQTT username of the gateway's backend client.
const GatewayUser = "earshot-gateway"

// ExternalConfig configures the gateway as a backend client of an external broker.
type ExternalConfig struct {
	Core     *session.Core      // required
	Registry *registry.Registry // required: looks up devices on hello
	// Broker is the broker's URL: tcp://host:port or ssl://host:port. Required.
	Broker string
	// TLS configures ssl:// (CA, client certificate); nil uses the system roots.
	TLS *tls.Config
	// Username and Password are the gateway's broker credentials; Username defaults
	// to GatewayUser, Password (the broker secret) is required.
	Username, Password string
	// ClientID names the gateway's persistent session; default GatewayUser.
	ClientID string
	// DeviceURL is the broker URL devices are told to use; default Broker.
	DeviceURL string
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Metrics; default a fresh, unregistered set.
	Metrics *Metrics
	// KeepAlive is the MQTT keepalive; default 30s.
	KeepAlive time.Duration
	// MaxReconnectInterval caps the reconnect backoff; default 10s.
	MaxReconnectInterval time.Duration
	// PublishQueue bounds downlink messages waiting for the broker connection;
	// default 1024. When it is full a message stays in the core's outbox.
	PublishQueue int
	// Shards and ShardQueue size the uplink workers; defaults 8 and 256.
	Shards, ShardQueue int
}

// External is the gateway's connection to an external broker.
type External struct {
	cfg    ExternalConfig
	log    *slog.Logger
	m      *Metrics
	client paho.Client
	br     *bridge

	pubq     chan outgoing
	stopPub  chan struct{}
	pubDone  chan struct{}
	connects atomic.Int64

	stopOnce sync.Once
}

type outgoing struct {
	topic   string
	payload []byte
	retain  bool
}

// NewExternal checks the configuration; Start connects.
func NewExternal(cfg ExternalConfig) (*External, error) {
	if cfg.Core == nil || cfg.Registry == nil {
		return nil, errors.New("mqtt: Core and Registry are required")
	}
	u, err := url.Parse(cfg.Broker)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqtt: broker URL %q: want tcp://host:port or ssl://host:port", cfg.Broker)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
	default:
		return nil, fmt.Errorf("mqtt: broker URL scheme %q: want tcp or ssl", u.Scheme)
	}
	if cfg.Password == "" {
		return nil, errors.New("mqtt: the broker secret (Password) is required")
	}
	if cfg.Username == "" {
		cfg.Username = GatewayUser
	}
	if cfg.ClientID == "" {
		cfg.ClientID = GatewayUser
	}
	if cfg.DeviceURL == "" {
		cfg.DeviceURL = cfg.Broker
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = 10 * time.Second
	}
	if cfg.PublishQueue <= 0 {
		cfg.PublishQueue = 1024
	}
	x := &External{
		cfg: cfg, log: cfg.Logger.With("component", "mqtt", "broker", cfg.Broker), m: cfg.Metrics,
		pubq: make(chan outgoing, cfg.PublishQueue), stopPub: make(chan struct{}), pubDone: make(chan struct{}),
	}
	x.br = newBridge(bridgeConfig{
		Core: cfg.Core, Registry: cfg.Registry, Logger: x.log, Metrics: cfg.Metrics,
		Shards: cfg.Shards, ShardQueue: cfg.ShardQueue,
	}, (*externalBroker)(x))
	go x.publisher() // stopped by Close

	opts := paho.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1
		// A persistent session: uplinks published while the gateway is away are
		// queued by the broker, and unacknowledged ones are delivered again.
		SetCleanSession(false).
		SetAutoAckDisabled(true). // acknowledged once the core has handled them
		SetOrderMatters(true).
		SetKeepAlive(cfg.KeepAlive).
		SetConnectTimeout(10*time.Second).
		SetWriteTimeout(5*time.Second).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetResumeSubs(false). // OnConnect subscribes every time
		SetStore(newByteStore()).
		SetBinaryWill(wire.GatewayStatusTopic, wire.Presence{State: wire.Offline}.Encode(), wire.QoSEvents, true).
		SetOnConnectHandler(x.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			x.m.BrokerUp.Set(0)
			x.log.Warn("lost the MQTT broker; reconnecting", "err", err)
		})
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	x.client = paho.NewClient(opts)
	return x, nil
}

// Metrics returns the transport's collectors, for registration.
func (x *External) Metrics() *Metrics { return x.m }

// URL is the broker URL devices are told to use.
func (x *External) URL() string { return x.cfg.DeviceURL }

// Start starts connecting. It does not wait for the broker: the gateway serves
// WebSocket devices while the broker is unreachable, and the client keeps trying.
func (x *External) Start() error {
	tok := x.client.Connect()
	if tok.WaitTimeout(3*time.Second) && tok.Error() != nil {
		return fmt.Errorf("mqtt: connect to %s: %w", x.cfg.Broker, tok.Error())
	}
	if !x.client.IsConnected() {
		x.log.Warn("MQTT broker not reachable yet; retrying in the background")
	}
	return nil
}

// onConnect runs on every connection (paho calls it on its own goroutine):
// subscribe, then announce a new epoch so devices say hello again.
func (x *External) onConnect(c paho.Client) {
	if x.connects.Add(1) > 1 {
		x.m.Reconnects.Inc()
	}
	handler := func(_ paho.Client, m paho.Message) {
		// After Close, deliver refuses and the message stays unacknowledged, for the
		// gateway's next session.
		x.br.deliver(message{topic: m.Topic(), payload: m.Payload(), retained: m.Retained(), done: m.Ack})
	}
	filters := map[string]byte{wire.UplinkFilter: wire.QoSEvents, wire.StatusFilter: wire.QoSEvents}
	for attempt := 1; ; attempt++ {
		tok := c.SubscribeMultiple(filters, handler)
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil && subscribed(tok) {
			break
		}
		if !c.IsConnectionOpen() {
			return // a new connection calls onConnect again
		}
		x.log.Error("subscribing to the device topics failed; retrying", "attempt", attempt, "err", tok.Error())
		time.Sleep(min(time.Duration(attempt)*time.Second, x.cfg.MaxReconnectInterval))
	}
	epoch := newEpoch()
	c.Publish(wire.GatewayStatusTopic, wire.QoSEvents, true, wire.Presence{State: wire.Online, Epoch: epoch}.Encode())
	x.m.BrokerUp.Set(1)
	x.log.Info("connected to the MQTT broker", "epoch", epoch)
}

// subscribed reports whether the broker granted every filter (0x80 is a refusal,
// for example by an ACL that does not name the gateway's user).
func subscribed(tok paho.Token) bool {
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return false
	}
	for _, qos := range st.Result() {
		if qos > 2 {
			return false
		}
	}
	return true
}

// publisher owns the calls into paho's Publish, which may block for its write
// timeout; Send only queues.
func (x *External) publisher() {
	defer close(x.pubDone)
	for {
		select {
		case p := <-x.pubq:
			if !x.client.IsConnectionOpen() {
				x.m.PublishFailed.Inc() // kept in the core's outbox; re-sent after hello
				continue
			}
			x.client.Publish(p.topic, wire.QoSEvents, p.retain, p.payload)
		case <-x.stopPub:
			return
		}
	}
}

// Close stops handling uplinks (what was not handled stays unacknowledged in the
// broker's session), announces the gateway offline and disconnects.
func (x *External) Close() error {
	x.stopOnce.Do(func() {
		x.br.stop()
		close(x.stopPub)
		<-x.pubDone
		if x.client.IsConnectionOpen() {
			x.client.Publish(wire.GatewayStatusTopic, wire.QoSEvents, true, wire.Presence{State: wire.Offline}.Encode()).
				WaitTimeout(time.Second)
		}
		x.client.Disconnect(250)
		x.m.BrokerUp.Set(0)
	})
	return nil
}

// externalBroker is the bridge's view of the external broker.
type externalBroker External

func (b *externalBroker) publish(topic string, payload []byte, retain bool) error {
	select {
	case b.pubq <- outgoing{topic, payload, retain}:
		return nil
	default:
		return ErrBusy
	}
}

// kick cannot disconnect a device from a broker the gateway does not run; the
// device was told why in an error, and the broker refuses its next CONNECT when its
// token no longer authenticates.
func (b *externalBroker) kick(string) {}
