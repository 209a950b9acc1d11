package mqtt

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
)

// Errors from a link's Send.
var (
	ErrClosed = errors.New("mqtt: link closed")
	ErrBusy   = errors.New("mqtt: broker connection busy; message left in the outbox")
)

// broker is what the bridge needs from a broker connection.
type broker interface {
	// publish sends a QoS 1 message without blocking, or fails.
	publish(topic string, payload []byte, retain bool) error
	// kick ends the device's MQTT connections, where the broker lets the gateway.
	kick(device string)
}

// message is one delivered uplink or status message.
type message struct {
	topic    string
	payload  []byte
	retained bool
	// done acknowledges the message to the broker once it has been handled; nil
	// when the broker acknowledged it already.
	done func()
}

// bridgeConfig configures the part shared by both brokers.
type bridgeConfig struct {
	Core       *session.Core
	Registry   *registry.Registry
	Logger     *slog.Logger
	Metrics    *Metrics
	Shards     int // default 8
	ShardQueue int // default 256
}

// bridge maps device topics onto the session core.
type bridge struct {
	cfg bridgeConfig
	log *slog.Logger
	m   *Metrics
	b   broker

	ctx    context.Context // cancelled by stop; the core's work on uplinks
	cancel context.CancelFunc
	shards []chan message
	wg     sync.WaitGroup

	mu      sync.Mutex
	stopped bool
	links   map[string]*link    // device -> its current session
	epochs  map[string]string   // device -> epoch of its newest online status
	closing map[string]closeReq // closes requested from inside a publish; see closeLater
	wake    chan struct{}       // signals the closer; capacity 1
}

type closeReq struct {
	code   wire.Code
	reason string
}

func newBridge(cfg bridgeConfig, b broker) *bridge {
	if cfg.Shards <= 0 {
		cfg.Shards = 8
	}
	if cfg.ShardQueue <= 0 {
		cfg.ShardQueue = 256
	}
	br := &bridge{
		cfg: cfg, log: cfg.Logger, m: cfg.Metrics, b: b,
		links: make(map[string]*link), epochs: make(map[string]string),
		closing: make(map[string]closeReq), wake: make(chan struct{}, 1),
	}
	br.ctx, br.cancel = context.WithCancel(context.Background())
	br.shards = make([]chan message, cfg.Shards)
	for i := range br.shards {
		br.shards[i] = make(chan message, cfg.ShardQueue)
		br.wg.Add(1)
		go br.work(br.shards[i])
	}
	br.wg.Add(1)
	go br.closer()
	return br
}

// closeLater closes the device's session from the closer goroutine. It is for
// callers that may be inside the core's flush of that very session (a broker hook
// run by a publish), where closing at once would deadlock. Pending requests are
// bounded by the number of devices: one per device.
func (br *bridge) closeLater(device string, code wire.Code, reason string) {
	br.mu.Lock()
	br.closing[device] = closeReq{code, reason}
	br.mu.Unlock()
	select {
	case br.wake <- struct{}{}:
	default: // the closer is already due to run
	}
}

func (br *bridge) closer() {
	defer br.wg.Done()
	for {
		select {
		case <-br.wake:
		case <-br.ctx.Done():
			return
		}
		br.mu.Lock()
		reqs := br.closing
		br.closing = make(map[string]closeReq)
		br.mu.Unlock()
		for device, r := range reqs {
			br.closeDevice(device, r.code, r.reason)
		}
	}
}

// deliver queues a message for its device's shard, waiting while the shard is full
// (the broker's delivery waits with it). It returns false after stop.
func (br *bridge) deliver(m message) bool {
	device, _, err := wire.ParseDeviceTopic(m.topic)
	if err != nil {
		br.m.Dropped.WithLabelValues("bad_topic").Inc()
		if m.done != nil {
			m.done()
		}
		return true
	}
	h := fnv.New32a()
	h.Write([]byte(device))
	shard := br.shards[h.Sum32()%uint32(len(br.shards))]
	br.m.Uplink.Inc()
	select {
	case shard <- m:
		return true
	default:
	}
	br.m.ShardFull.Inc()
	select {
	case shard <- m:
		return true
	case <-br.ctx.Done():
		return false
	}
}

func (br *bridge) work(q chan message) {
	defer br.wg.Done()
	for {
		select {
		case m := <-q:
			br.handle(m)
			if m.done != nil {
				m.done()
			}
		case <-br.ctx.Done():
			return
		}
	}
}

// stop ends the workers; messages still queued are not acknowledged, so a broker
// with a persistent session delivers them again.
func (br *bridge) stop() {
	br.mu.Lock()
	br.stopped = true
	br.mu.Unlock()
	br.cancel()
	br.wg.Wait()
}

func (br *bridge) handle(m message) {
	device, kind, err := wire.ParseDeviceTopic(m.topic)
	if err != nil {
		return
	}
	switch kind {
	case wire.TopicUp:
		br.uplink(device, m.payload)
	case wire.TopicStatus:
		if !m.retained { // a retained status is old news from before we subscribed
			br.presence(device, m.payload)
		}
	}
}

func (br *bridge) current(device string) *link {
	br.mu.Lock()
	defer br.mu.Unlock()
	return br.links[device]
}

func (br *bridge) uplink(device string, frame []byte) {
	env, err := wire.Decode(frame)
	l := br.current(device)
	if err == nil && env.Type == wire.TypeHello {
		if l != nil && l.hello == env.ID && env.ID != "" {
			br.m.Dropped.WithLabelValues("duplicate_hello").Inc()
			return // a QoS 1 duplicate of the hello that opened this session
		}
		br.hello(device, env.ID, frame)
		return
	}
	if l == nil {
		// No session: the gateway restarted, or the device skipped hello. A
		// reconnect-range code makes the device say hello and retry.
		br.m.Dropped.WithLabelValues("no_session").Inc()
		ref := ""
		if err == nil {
			ref = env.ID
		}
		br.reply(device, ref, wire.NewError(wire.CodeNoSession, "no session for this device; send hello"))
		return
	}
	br.handleOn(l, frame)
}

// hello opens a new session for the device, replacing its previous one.
func (br *bridge) hello(device, id string, frame []byte) {
	dev, err := br.cfg.Registry.Device(br.ctx, device)
	switch {
	case errors.Is(err, registry.ErrUnknownDevice):
		br.refuse(device, id, wire.NewError(wire.CodeUnknownDevice, "the device is not enrolled"))
		return
	case err != nil:
		br.log.Error("looking up device", "device", device, "err", err)
		br.reply(device, id, wire.NewError(wire.CodeUnavailable, "the gateway cannot open sessions now; retry"))
		return
	case dev.Revoked:
		br.refuse(device, id, wire.NewError(wire.CodeDeviceRevoked, "the device was revoked"))
		return
	}
	l := &link{br: br, dev: device, hello: id}
	br.mu.Lock()
	if br.stopped {
		br.mu.Unlock()
		return
	}
	br.links[device] = l
	br.mu.Unlock()
	sc, err := br.cfg.Core.Attach(dev, l) // closes the previous link with CodeReplaced
	if err != nil {
		br.forget(l)
		br.reply(device, id, wire.NewError(wire.CodeShutdown, "the gateway is shutting down"))
		return
	}
	l.attached(sc)
	br.m.Sessions.Inc()
	br.handleOn(l, frame)
}

func (br *bridge) handleOn(l *link, frame []byte) {
	sc := l.conn()
	if sc == nil {
		return // closed while attaching
	}
	err := sc.Handle(br.ctx, frame)
	if err == nil {
		return
	}
	var we *wire.Error
	if !errors.As(err, &we) {
		we = wire.NewError(wire.CodeServerError, "internal error")
	}
	l.Close(we.Code, we.Message)
}

// presence applies a device's status message.
func (br *bridge) presence(device string, payload []byte) {
	p, err := wire.DecodePresence(payload)
	if err != nil {
		br.m.Dropped.WithLabelValues("bad_presence").Inc()
		return
	}
	br.mu.Lock()
	if p.State == wire.Online {
		br.epochs[device] = p.Epoch
		br.mu.Unlock()
		return
	}
	newest, known := br.epochs[device]
	if known && p.Epoch != newest {
		br.mu.Unlock()
		br.m.Dropped.WithLabelValues("stale_offline").Inc()
		return // the will of an older connection
	}
	delete(br.epochs, device)
	l := br.links[device]
	br.mu.Unlock()
	if l != nil {
		l.detach()
	}
}

// reply publishes an unsequenced error to the device.
func (br *bridge) reply(device, ref string, e *wire.Error) {
	e.Ref, e.Retry = ref, e.Code.Retryable()
	frame, err := wire.Encode(wire.Envelope{ID: ref, Device: device}, e)
	if err != nil {
		br.log.Error("encoding error reply", "err", err)
		return
	}
	if err := br.b.publish(wire.DownlinkTopic(device), frame, false); err != nil {
		br.log.Debug("error reply not sent", "device", device, "err", err)
	}
}

// refuse tells a device it may not open a session and disconnects it.
func (br *bridge) refuse(device, ref string, e *wire.Error) {
	br.m.Refused.WithLabelValues(e.Code.String()).Inc()
	br.log.Info("session refused", "device", device, "code", e.Code.String())
	br.reply(device, ref, e)
	br.b.kick(device)
}

// forget removes l if it is still the device's current link.
func (br *bridge) forget(l *link) {
	br.mu.Lock()
	if br.links[l.dev] == l {
		delete(br.links, l.dev)
	}
	br.mu.Unlock()
}

// closeDevice closes the device's current session, if any, with the code.
func (br *bridge) closeDevice(device string, code wire.Code, reason string) {
	if l := br.current(device); l != nil {
		l.Close(code, reason)
	}
}

// link is one device session over MQTT. It implements session.Transport.
type link struct {
	br    *bridge
	dev   string
	hello string // the envelope id of the hello that opened it

	mu     sync.Mutex
	sc     *session.Conn
	gone   bool // detached from the core
	closed atomic.Bool
}

var _ session.Transport = (*link)(nil)

func (l *link) Kind() string { return "mqtt" }

// Send publishes a downlink frame. It does not block: when the broker connection
// cannot take it now, the frame stays in the core's outbox and is re-sent after the
// device's next hello.
func (l *link) Send(frame []byte) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.br.b.publish(wire.DownlinkTopic(l.dev), frame, false); err != nil {
		l.br.m.PublishFailed.Inc()
		return err
	}
	l.br.m.Downlink.Inc()
	return nil
}

// Close ends the session. Except when a newer session replaced it (same topic, so
// nothing to tell), the device gets an error with the code, and the embedded broker
// disconnects it.
func (l *link) Close(code wire.Code, reason string) {
	if !l.closed.CompareAndSwap(false, true) {
		return
	}
	l.br.m.Closed.WithLabelValues(code.String()).Inc()
	if code != wire.CodeReplaced && code != wire.CodeUnknown {
		l.br.reply(l.dev, "", wire.NewError(code, reason))
		if !code.Reconnect() || code == wire.CodeSlowConsumer {
			l.br.b.kick(l.dev)
		}
	}
	l.detach()
}

// attached records the core's Conn; a link closed meanwhile detaches at once.
func (l *link) attached(sc *session.Conn) {
	l.mu.Lock()
	l.sc = sc
	l.mu.Unlock()
	if l.closed.Load() {
		l.detach()
	}
}

func (l *link) conn() *session.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone {
		return nil
	}
	return l.sc
}

// detach unregisters the session from the core and the bridge, once.
func (l *link) detach() {
	l.closed.Store(true)
	l.br.forget(l)
	l.mu.Lock()
	sc := l.sc
	if sc == nil || l.gone {
		l.mu.Unlock()
		return
	}
	l.gone = true
	l.mu.Unlock()
	sc.Detach()
}
