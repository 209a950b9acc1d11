package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/earshot/earshot/device/wire"
)

// MQTT settings of the protocol (docs/protocol.md §2, MQTT).
const (
	mqttKeepAlive = 30 * time.Second
	// mqttConnectTimeout bounds the CONNECT/CONNACK exchange.
	mqttConnectTimeout = 10 * time.Second
	// mqttInbox bounds the messages paho has handed over and the core has not read.
	// When it is full paho's router waits (backpressure on the broker), as a
	// WebSocket stops being read; nothing is dropped to make room.
	mqttInbox = 16
	// mqttStatusWait bounds the wait, after subscribing, for the gateway's retained
	// status, so that hello goes out knowing the gateway's epoch (a broker sends
	// retained messages right after the SUBACK; the wait only runs out when no gateway
	// ever published a status).
	mqttStatusWait = time.Second
	// mqttGoodbye bounds the offline status publish and the DISCONNECT of a clean
	// close, and the wait for the link's writer.
	mqttGoodbye = time.Second
	// mqttOutbox bounds the uplink frames written and not yet handed to paho; writers
	// wait while it is full.
	mqttOutbox = 32
)

// mqttDialer connects to the broker as the device (protocol §2, MQTT): username and
// client id = the device id, password = a fresh device token, clean session false,
// keepalive 30 s, and a retained offline status as the last will. Every attempt is a
// new paho client, so every CONNECT carries a new token, and paho never reconnects
// behind the client's back: the client's own loop reconnects, resumes and reports
// every disconnect, exactly as over WebSocket.
type mqttDialer struct {
	broker       string      // for logs and paho: scheme://host:port
	addr         string      // host:port
	tls          *tls.Config // nil: plain TCP
	device       string
	writeTimeout time.Duration
	statusWait   time.Duration
	newID        func() string
	log          *slog.Logger
	stats        *counters

	mu    sync.Mutex
	epoch string // the gateway epoch last seen on any link
}

var _ dialer = (*mqttDialer)(nil)

// newMQTTDialer parses an mqtt://, tcp://, mqtts:// or ssl:// broker URL.
func newMQTTDialer(u *url.URL, cfg *Config, device string, log *slog.Logger, st *counters) *mqttDialer {
	d := &mqttDialer{
		broker: u.Scheme + "://" + u.Host, addr: u.Host, device: device,
		writeTimeout: cfg.WriteTimeout, statusWait: min(mqttStatusWait, cfg.HelloTimeout),
		newID: cfg.NewID, log: log, stats: st,
	}
	port := "1883"
	if u.Scheme == "mqtts" || u.Scheme == "ssl" {
		port = "8883"
		d.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLS != nil {
			d.tls = cfg.TLS.Clone()
		}
		if d.tls.ServerName == "" {
			d.tls.ServerName = u.Hostname()
		}
	}
	if u.Port() == "" {
		d.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return d
}

func (d *mqttDialer) lastEpoch() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.epoch
}

func (d *mqttDialer) setEpoch(e string) {
	d.mu.Lock()
	d.epoch = e
	d.mu.Unlock()
}

func (d *mqttDialer) dial(ctx context.Context, token string) (link, error) {
	l := &mqttLink{
		d: d, log: d.log, presence: d.newID(), gwEpoch: d.lastEpoch(),
		inbox: make(chan mqttMessage, mqttInbox), quit: make(chan struct{}), netDown: make(chan struct{}),
		outbox: make(chan []byte, mqttOutbox),
	}
	will := wire.Presence{State: wire.Offline, Epoch: l.presence}.Encode()
	opts := paho.NewClientOptions().
		AddBroker(d.broker).
		SetClientID(d.device).SetUsername(d.device).SetPassword(token).
		// 3.1.1 only: paho's fallback to 3.1 would present the same single-use token twice.
		SetProtocolVersion(4).
		SetCleanSession(false).SetKeepAlive(mqttKeepAlive).
		SetAutoReconnect(false).SetConnectRetry(false).SetResumeSubs(false).
		// Messages are handed over in order on paho's router goroutine; onMessage
		// never blocks it for longer than the link lives.
		SetOrderMatters(true).
		SetConnectTimeout(mqttConnectTimeout).SetWriteTimeout(d.writeTimeout).
		SetBinaryWill(wire.StatusTopic(d.device), will, wire.QoSEvents, true).
		SetDefaultPublishHandler(l.onMessage).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) { return l.open(ctx) })
	l.cli = paho.NewClient(opts)

	ct := l.cli.Connect()
	<-ct.Done() // bounded: open honours ctx, and the CONNACK wait has a deadline
	l.connMu.Lock()
	aborted := l.stopAbort != nil && !l.stopAbort()
	l.connMu.Unlock()
	if err := ct.Error(); err != nil || aborted || ctx.Err() != nil {
		l.close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: mqtt connect: %w", ctx.Err())
		}
		if tok, ok := ct.(*paho.ConnectToken); ok && tok.ReturnCode() >= 1 && tok.ReturnCode() <= 5 {
			return nil, &DialError{ReturnCode: tok.ReturnCode(), Detail: err.Error()}
		}
		return nil, fmt.Errorf("client: mqtt connect: %w", err)
	}
	if err := l.setUp(ctx); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// setUp runs the session set-up after CONNACK (protocol §2, MQTT, "Session"):
// subscribe to the device's down topic and the gateway's status, learn the gateway's
// epoch, and publish the device's online status. Downlinks the broker kept for the
// device arrive meanwhile; they come before hello.ok and are dropped (the gateway
// re-sends what was not acknowledged after hello.ok).
func (l *mqttLink) setUp(ctx context.Context) error {
	down := wire.DownlinkTopic(l.d.device)
	st := l.cli.SubscribeMultiple(map[string]byte{down: wire.QoSEvents, wire.GatewayStatusTopic: wire.QoSEvents}, nil)
	if err := l.drain(ctx, st.Done(), nil, nil); err != nil {
		return err
	}
	if err := st.Error(); err != nil {
		return fmt.Errorf("client: mqtt subscribe: %w", err)
	}
	sub, _ := st.(*paho.SubscribeToken) // SubscribeMultiple always returns one
	for _, topic := range []string{down, wire.GatewayStatusTopic} {
		if rc, ok := sub.Result()[topic]; !ok || rc == 0x80 { // MQTT-3.9.3: 0x80 is a failure
			return fmt.Errorf("%w: the broker refused the subscription to %s (check its ACL)", ErrRefused, topic)
		}
	}
	if !l.gwSeen {
		t := time.NewTimer(l.d.statusWait)
		err := l.drain(ctx, nil, t.C, func() bool { return l.gwSeen })
		t.Stop()
		if err != nil {
			return err
		}
	}
	online := wire.Presence{State: wire.Online, Epoch: l.presence}.Encode()
	if err := l.publish(wire.StatusTopic(l.d.device), online, true); err != nil {
		return fmt.Errorf("client: mqtt online status: %w", err)
	}
	l.writerDone = make(chan struct{})
	go l.writer()
	return nil
}

// mqttMessage is one message paho delivered.
type mqttMessage struct {
	topic   string
	payload []byte
}

// mqttLink is one MQTT connection of the device.
type mqttLink struct {
	d        *mqttDialer
	log      *slog.Logger
	cli      paho.Client
	presence string // this connection's epoch, in its online status and its will

	inbox   chan mqttMessage // from paho's router to the reader; bounded
	quit    chan struct{}    // closed by close: onMessage and the writer stop
	netDown chan struct{}    // closed when the network connection closes
	netOnce sync.Once
	waits   atomic.Int64 // times onMessage waited for room in inbox

	outbox     chan []byte   // uplink frames for the writer; bounded
	writerDone chan struct{} // closed when the writer returns; nil before set-up
	outWaits   atomic.Int64  // times write waited for room in outbox

	connMu    sync.Mutex
	conn      net.Conn
	stopAbort func() bool // stops the connect context's watch on conn

	closeOnce sync.Once

	// Owned by the reading goroutine.
	gwSeen     bool   // a gateway status arrived on this link
	gwOffline  bool   // the gateway's last status is offline
	gwEpoch    string // the gateway's last online epoch
	helloEpoch string // the epoch known when the last hello went out
	helloed    bool
}

var _ link = (*mqttLink)(nil)

// open dials the broker for paho, honouring ctx until the CONNACK (paho's own dial
// cannot be cancelled), and watches the connection so that onMessage learns at once
// when it closes.
func (l *mqttLink) open(ctx context.Context) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", l.d.addr)
	if err != nil {
		return nil, err
	}
	if l.d.tls != nil {
		tc := tls.Client(conn, l.d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close() // the handshake error says what went wrong
			return nil, err
		}
		conn = tc
	}
	w := &watchedConn{Conn: conn, onClose: func() { l.netOnce.Do(func() { close(l.netDown) }) }}
	l.connMu.Lock()
	l.conn = w
	l.stopAbort = context.AfterFunc(ctx, func() { _ = w.Close() }) // paho sees the error
	l.connMu.Unlock()
	return w, nil
}

// watchedConn reports its Close: paho closes the connection first when it is lost.
type watchedConn struct {
	net.Conn
	onClose func()
}

func (w *watchedConn) Close() error {
	w.onClose()
	return w.Conn.Close()
}

// onMessage runs on paho's router goroutine. It waits while inbox is full, which
// stops paho reading from the broker, but never longer than the link lives: paho
// waits for this handler before it reports a lost connection.
func (l *mqttLink) onMessage(_ paho.Client, m paho.Message) {
	msg := mqttMessage{topic: m.Topic(), payload: m.Payload()}
	select {
	case l.inbox <- msg:
		return
	default:
	}
	l.waits.Add(1)
	select {
	case l.inbox <- msg:
	case <-l.quit: // closed: the broker's queue or the gateway's resume re-delivers it
	case <-l.netDown: // lost: as above
	}
}

// drain reads the inbox during set-up, until stop is closed, timeout fires or done
// reports true, applying gateway statuses and dropping downlinks (they precede
// hello.ok).
func (l *mqttLink) drain(ctx context.Context, stop <-chan struct{}, timeout <-chan time.Time, done func() bool) error {
	for done == nil || !done() {
		select {
		case <-stop:
			return nil
		case <-timeout:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("client: mqtt set-up: %w", ctx.Err())
		case <-l.netDown:
			return errors.New("client: mqtt connection lost during set-up")
		case m := <-l.inbox:
			if m.topic == wire.GatewayStatusTopic {
				_ = l.gatewayStatus(m.payload) // no hello yet: nothing to signal
			} else {
				l.d.stats.early.Add(1)
			}
		}
	}
	return nil
}

func (l *mqttLink) read(deadline time.Time) (wire.Envelope, error) {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	for {
		var m mqttMessage
		select {
		case m = <-l.inbox: // what paho delivered comes first, even after a loss
		default:
			select {
			case m = <-l.inbox:
			case <-l.quit:
				return wire.Envelope{}, errLinkClosed
			case <-l.netDown:
				select {
				case m = <-l.inbox:
				default:
					return wire.Envelope{}, errors.New("client: mqtt connection lost")
				}
			case <-timeout:
				return wire.Envelope{}, errTimeout
			}
		}
		if m.topic == wire.GatewayStatusTopic {
			if err := l.gatewayStatus(m.payload); err != nil {
				return wire.Envelope{}, err
			}
			continue
		}
		if m.topic != wire.DownlinkTopic(l.d.device) {
			l.log.Debug("message on an unexpected topic dropped", "topic", m.topic)
			continue
		}
		env, err := wire.Decode(m.payload)
		if err != nil {
			return env, &undecodable{bytes: len(m.payload), err: err}
		}
		if env.Type == wire.TypeError {
			// An error with a disconnect code is how a gateway ends a session over
			// MQTT (protocol §2, MQTT, "Session"): the counterpart of a close code.
			e := new(wire.Error)
			if wire.DecodeBody(env, e) == nil && e.Code.Disconnect() {
				return env, &sessionEnd{code: e.Code, reason: e.Message, ref: e.Ref}
			}
		}
		return env, nil
	}
}

// gatewayStatus applies the gateway's presence and returns the signal it means for
// the session, if any.
func (l *mqttLink) gatewayStatus(payload []byte) error {
	p, err := wire.DecodePresence(payload)
	if err != nil {
		l.log.Debug("invalid gateway status dropped", "err", err)
		return nil
	}
	l.gwSeen = true
	if p.State == wire.Offline {
		was := l.gwOffline
		l.gwOffline = true
		if !was {
			return errGatewayOffline
		}
		return nil
	}
	wasOffline := l.gwOffline
	l.gwOffline, l.gwEpoch = false, p.Epoch
	l.d.setEpoch(p.Epoch)
	if wasOffline || (l.helloed && p.Epoch != l.helloEpoch) {
		return errGatewayRestarted
	}
	return nil
}

func (l *mqttLink) helloReady() error {
	if l.gwOffline {
		return errGatewayOffline
	}
	return nil
}

func (l *mqttLink) helloSent() {
	l.helloed, l.helloEpoch = true, l.gwEpoch
}

func (l *mqttLink) started(*wire.HelloOK) {}
func (l *mqttLink) persistent() bool      { return true }

func (l *mqttLink) alive() bool {
	select {
	case <-l.quit:
		return false
	case <-l.netDown:
		return false
	default:
		return true
	}
}

// write queues an uplink frame for the link's writer, which publishes it at QoS 1;
// it waits while the outbox is full, bounded by ctx and the link's life. Like a
// WebSocket write it returns before the broker has the frame: a frame written just
// before the link fails may be lost, and the protocol's resume and no_session retry
// recover what matters.
//
// The writer is its own goroutine because paho's Publish cannot be interrupted: it
// waits for paho's writer, and when the connection drops at that moment it waits
// until WriteTimeout. Off the reading goroutine, such a wait never delays noticing
// the loss. Publish does not wait for the PUBACK either: paho reads PUBACKs on the
// goroutine that delivers messages, which waits while the client's Events is full.
func (l *mqttLink) write(ctx context.Context, frame []byte) error {
	if !l.alive() {
		return fmt.Errorf("write: %w", errLinkClosed)
	}
	select {
	case l.outbox <- frame:
		return nil
	default:
	}
	l.outWaits.Add(1)
	select {
	case l.outbox <- frame:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("write: %w", ctx.Err())
	case <-l.quit:
		return fmt.Errorf("write: %w", errLinkClosed)
	case <-l.netDown:
		return errors.New("write: mqtt connection lost")
	}
}

// writeAudio refuses: MQTT carries events only (protocol §2, MQTT).
func (l *mqttLink) writeAudio(context.Context, []byte) error {
	return fmt.Errorf("%w over MQTT", ErrAudioUnsupported)
}

// writer publishes the outbox in order until the link ends.
func (l *mqttLink) writer() {
	defer close(l.writerDone)
	up := wire.UplinkTopic(l.d.device)
	for {
		select {
		case frame := <-l.outbox:
			if err := l.publish(up, frame, false); err != nil {
				l.log.Debug("uplink not published", "err", err) // the link is failing; paho reports the loss
			}
		case <-l.quit:
			return
		case <-l.netDown:
			return
		}
	}
}

func (l *mqttLink) publish(topic string, payload []byte, retain bool) error {
	t := l.cli.Publish(topic, wire.QoSEvents, retain, payload)
	select {
	case <-t.Done(): // failed at once (not connected, timeout), or already acknowledged
		return t.Error()
	default:
		return nil
	}
}

// close publishes the offline status (retained; a will is only sent on an
// unexpected loss), waits for the broker to take it, and disconnects.
func (l *mqttLink) close() {
	l.closeOnce.Do(func() {
		close(l.quit)
		if l.writerDone != nil {
			t := time.NewTimer(mqttGoodbye)
			select {
			case <-l.writerDone:
			case <-t.C: // stuck in paho's Publish after a loss: it returns by WriteTimeout
				l.log.Debug("uplink writer still busy at close")
			}
			t.Stop()
		}
		select {
		case <-l.netDown:
			return // lost: paho is cleaning up, and the will told everyone
		default:
		}
		if !l.cli.IsConnectionOpen() {
			return // never connected
		}
		offline := wire.Presence{State: wire.Offline, Epoch: l.presence}.Encode()
		t := l.cli.Publish(wire.StatusTopic(l.d.device), wire.QoSEvents, true, offline)
		if !t.WaitTimeout(mqttGoodbye) || t.Error() != nil {
			l.log.Debug("offline status not confirmed", "err", t.Error())
		}
		l.cli.Disconnect(uint(mqttGoodbye / time.Millisecond))
		if n, m := l.waits.Load(), l.outWaits.Load(); n > 0 || m > 0 {
			l.log.Debug("queues were full", "deliveries_waited", n, "writes_waited", m)
		}
	})
}

func (l *mqttLink) abort() {
	l.connMu.Lock()
	conn := l.conn
	l.connMu.Unlock()
	if conn != nil {
		_ = conn.Close() // paho sees the error and reports the loss
	}
}
