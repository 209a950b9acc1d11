package clienttest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/earshot/earshot/device/wire"
)

// mqttWait bounds the fake's waits on the broker.
const mqttWait = 5 * time.Second

// mqttBackend is the fake gateway's client of the broker: it subscribes to every
// device's up and status topics. Unlike a device, it lets paho reconnect by itself
// (after a broker restart); every connection gets a new epoch. Unlike the real
// gateway it uses a clean session: paho 1.5.1 races when a client with a persistent
// session publishes while it resumes (it sends the stored message twice and panics),
// and the fake keeps nothing the broker would have to hold for it.
type mqttBackend struct {
	g   *Gateway
	url string
	id  string // client id

	mu     sync.Mutex
	cli    paho.Client
	epoch  string
	up     chan struct{} // signalled after each connection's set-up
	closed bool
}

// ServeMQTT connects the gateway to the MQTT broker at brokerURL (tcp://host:port)
// and serves devices there until Close; GET /v1/transports then names the broker.
// It returns once the gateway has subscribed and published its online status.
func (g *Gateway) ServeMQTT(brokerURL string) error {
	b := &mqttBackend{g: g, url: brokerURL, id: newID("earshot-gateway-fake")}
	g.mu.Lock()
	if g.mqtt != nil || g.closed {
		g.mu.Unlock()
		return errors.New("clienttest: MQTT already served, or the gateway is closed")
	}
	g.mqtt = b
	g.mu.Unlock()
	return b.connect()
}

// MQTTURL returns the broker URL given to ServeMQTT, or "" without one.
func (g *Gateway) MQTTURL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mqtt == nil {
		return ""
	}
	return g.mqtt.url
}

// MQTTEpoch returns the epoch in the gateway's current status.
func (g *Gateway) MQTTEpoch() string {
	g.mu.Lock()
	b := g.mqtt
	g.mu.Unlock()
	if b == nil {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.epoch
}

// RestartMQTT makes the gateway look restarted to MQTT devices: it disconnects from
// the broker and connects again with a new epoch, having forgotten every MQTT
// session (devices, transactions and unacknowledged downlinks stay, as the real
// gateway keeps them in its store). With graceful, it publishes its offline status
// first, as a gateway that shuts down does; otherwise devices see only the new epoch.
func (g *Gateway) RestartMQTT(graceful bool) error {
	g.mu.Lock()
	b := g.mqtt
	g.mu.Unlock()
	if b == nil {
		return errors.New("clienttest: not serving MQTT")
	}
	b.mu.Lock()
	cli := b.cli
	b.mu.Unlock()
	if graceful {
		t := cli.Publish(wire.GatewayStatusTopic, wire.QoSEvents, true, wire.Presence{State: wire.Offline}.Encode())
		if !t.WaitTimeout(mqttWait) || t.Error() != nil {
			return fmt.Errorf("clienttest: offline status: %v", t.Error())
		}
	}
	cli.Disconnect(100)
	return b.connect()
}

func (b *mqttBackend) connect() error {
	up := make(chan struct{}, 1)
	opts := paho.NewClientOptions().AddBroker(b.url).
		SetClientID(b.id).SetUsername("earshot-gateway").
		SetProtocolVersion(4).SetCleanSession(true).SetKeepAlive(30*time.Second).
		SetAutoReconnect(true).SetMaxReconnectInterval(100*time.Millisecond).
		SetConnectRetry(true).SetConnectRetryInterval(100*time.Millisecond).
		SetOrderMatters(true).SetWriteTimeout(mqttWait).
		SetBinaryWill(wire.GatewayStatusTopic, wire.Presence{State: wire.Offline}.Encode(), wire.QoSEvents, true).
		SetDefaultPublishHandler(b.onMessage).
		SetOnConnectHandler(b.onConnect)
	cli := paho.NewClient(opts)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("clienttest: gateway closed")
	}
	b.cli, b.up = cli, up
	b.mu.Unlock()
	if t := cli.Connect(); !t.WaitTimeout(mqttWait) || t.Error() != nil {
		return fmt.Errorf("clienttest: connecting to %s: %v", b.url, t.Error())
	}
	select {
	case <-up:
		return nil
	case <-time.After(mqttWait):
		return errors.New("clienttest: MQTT set-up timed out")
	}
}

// onConnect runs after every (re)connection, in its own goroutine: new epoch,
// sessions forgotten, subscriptions, retained online status.
func (b *mqttBackend) onConnect(cli paho.Client) {
	epoch := newID("ep")
	b.g.mu.Lock()
	for _, d := range b.g.devices {
		if d.conn != nil && d.conn.transport() == "mqtt" {
			d.conn = nil
		}
	}
	b.g.mu.Unlock()
	b.mu.Lock()
	b.epoch = epoch
	up := b.up
	b.mu.Unlock()
	st := cli.SubscribeMultiple(map[string]byte{wire.UplinkFilter: wire.QoSEvents, wire.StatusFilter: wire.QoSEvents}, nil)
	if !st.WaitTimeout(mqttWait) || st.Error() != nil {
		return // the test fails on the missing set-up
	}
	t := cli.Publish(wire.GatewayStatusTopic, wire.QoSEvents, true, wire.Presence{State: wire.Online, Epoch: epoch}.Encode())
	if !t.WaitTimeout(mqttWait) || t.Error() != nil {
		return // as above
	}
	select {
	case up <- struct{}{}:
	default:
	}
}

// stop publishes the offline status and disconnects.
func (b *mqttBackend) stop() {
	b.mu.Lock()
	b.closed = true
	cli := b.cli
	b.mu.Unlock()
	if cli == nil {
		return
	}
	if cli.IsConnectionOpen() {
		t := cli.Publish(wire.GatewayStatusTopic, wire.QoSEvents, true, wire.Presence{State: wire.Offline}.Encode())
		t.WaitTimeout(time.Second) // best effort: the will says the same if it fails
	}
	cli.Disconnect(100)
}

// publish sends a QoS 1 message without waiting for the broker's acknowledgement
// (the caller may hold the gateway's lock, or run on paho's router).
func (b *mqttBackend) publish(topic string, payload []byte, retain bool) {
	b.mu.Lock()
	cli := b.cli
	b.mu.Unlock()
	cli.Publish(topic, wire.QoSEvents, retain, payload)
}

// onMessage runs on paho's router goroutine, one message at a time.
func (b *mqttBackend) onMessage(_ paho.Client, m paho.Message) {
	device, kind, err := wire.ParseDeviceTopic(m.Topic())
	if err != nil {
		return
	}
	switch kind {
	case wire.TopicUp:
		b.uplink(device, m.Payload())
	case wire.TopicStatus:
		if !m.Retained() { // a retained status is old news from before we subscribed
			b.presence(device, m.Payload())
		}
	}
}

func (b *mqttBackend) uplink(device string, frame []byte) {
	g := b.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	d := g.devices[device]
	env, err := wire.Decode(frame)
	if err != nil {
		b.reply(device, "", wire.CodeBadRequest, err.Error())
		return
	}
	if env.Type == wire.TypeHello {
		switch {
		case d == nil:
			b.reply(device, env.ID, wire.CodeUnknownDevice, "device not enrolled")
			return
		case d.revoked:
			b.reply(device, env.ID, wire.CodeDeviceRevoked, "device revoked")
			return
		case env.ID != "" && env.ID == d.lastHello && d.conn != nil:
			return // a QoS 1 duplicate of the hello that opened this session
		}
		h := new(wire.Hello)
		if err := wire.DecodeBody(env, h); err != nil {
			b.reply(device, env.ID, wire.CodeProtocolViolation, "invalid hello: "+err.Error())
			return
		}
		d.lastHello, d.persistent = env.ID, true
		g.helloLocked(d, h, &mqttConn{b: b, device: device})
		return
	}
	if d == nil || d.conn == nil || d.conn.transport() != "mqtt" {
		// No session: the gateway restarted, or the device skipped hello.
		b.reply(device, env.ID, wire.CodeNoSession, "no session for this device; send hello")
		return
	}
	d.uplinks[env.Type]++
	g.uplinkLocked(d, env)
}

// reply publishes an unsequenced error to a device's down topic.
func (b *mqttBackend) reply(device, ref string, code wire.Code, msg string) {
	e := wire.NewError(code, msg)
	e.Ref = ref
	frame, err := wire.Encode(wire.Envelope{ID: ref, Device: device, TS: time.Now().UnixMilli()}, e)
	if err != nil {
		return // the fake's errors always encode
	}
	b.publish(wire.DownlinkTopic(device), frame, false)
}

// presence applies a device's status: an offline status (its will, or its clean
// goodbye) ends its session, unless it is the will of an older connection (its epoch
// is not the newest online's).
func (b *mqttBackend) presence(device string, payload []byte) {
	p, err := wire.DecodePresence(payload)
	if err != nil {
		return
	}
	g := b.g
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.devices[device]
	if d == nil {
		return
	}
	d.presenceWrites++
	if p.State == wire.Online {
		d.presence, d.presenceEpoch = wire.Online, p.Epoch
		return
	}
	if d.presenceEpoch != "" && p.Epoch != d.presenceEpoch {
		return // stale
	}
	d.presence = wire.Offline
	if d.conn != nil && d.conn.transport() == "mqtt" {
		d.conn = nil
	}
}

// mqttConn is a device session over MQTT: its down topic.
type mqttConn struct {
	b      *mqttBackend
	device string
}

func (c *mqttConn) transport() string { return "mqtt" }

func (c *mqttConn) write(frame []byte) error {
	c.b.publish(wire.DownlinkTopic(c.device), frame, false)
	return nil
}

func (c *mqttConn) writeBinary([]byte) error {
	return errors.New("clienttest: no audio over MQTT")
}

// end tells the device that its session ended with code (replaced is never sent over
// MQTT: the device's topic is the same for both sessions).
func (c *mqttConn) end(code wire.Code) {
	if code != wire.CodeUnknown && code != wire.CodeReplaced {
		c.b.reply(c.device, "", code, code.String())
	}
}
