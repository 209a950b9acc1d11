package main_test

import (
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// subackFailure is the SUBACK return code of a refused subscription (MQTT 3.1.1
// §3.9.3).
const subackFailure = 0x80

// TestACL proves docs/mosquitto/earshot.acl on the real broker: a device publishes
// only to its own up and status topics and subscribes only to its own down topic and
// the gateway's status; the gateway user reads and writes everything under
// earshot/v1.
func TestACL(t *testing.T) {
	e := newEnv(t)
	addr := e.broker.Addr
	keyA, keyB := e.gw.enroll(t), e.gw.enroll(t)
	a, b := keyA.DeviceID(), keyB.DeviceID()

	gw := mustConnect(t, addr, gatewayUser, e.secret, "earshot-gateway")
	code, atGateway := collect(t, gw, wire.TopicPrefix+"/#")
	if code != wire.QoSEvents {
		t.Fatalf("gateway SUBACK for %s/# = %#x, want %d", wire.TopicPrefix, code, wire.QoSEvents)
	}
	devA := mustConnect(t, addr, a, e.token(t, keyA, time.Now()), a)
	mustConnect(t, addr, b, e.token(t, keyB, time.Now()), b)

	t.Run("device subscriptions", func(t *testing.T) {
		for _, tt := range []struct {
			filter string
			want   byte
		}{
			{wire.DownlinkTopic(a), wire.QoSEvents},
			{wire.GatewayStatusTopic, wire.QoSEvents},
			{wire.DownlinkTopic(b), subackFailure},
			{wire.TopicPrefix + "/dev/+/down", subackFailure},
			{"$share/g/" + wire.TopicPrefix + "/dev/+/down", subackFailure},
			{"$share/g/" + wire.DownlinkTopic(b), subackFailure},
			{"#", subackFailure},
			{wire.TopicPrefix + "/#", subackFailure},
			{wire.UplinkFilter, subackFailure},
			{wire.UplinkTopic(b), subackFailure},
			{wire.UplinkTopic(a), subackFailure}, // its own up is write-only
			{wire.StatusTopic(b), subackFailure},
			{"$SYS/#", subackFailure},
		} {
			if got, _ := collect(t, devA, tt.filter); got != tt.want {
				t.Errorf("SUBACK for %s = %#x, want %#x", tt.filter, got, tt.want)
			}
		}
	})

	t.Run("device publishes", func(t *testing.T) {
		// Mosquitto drops a publish outside the ACL (3.1.1 has no way to say so, the
		// PUBACK still comes) and keeps the order of one client's messages: if any
		// forbidden one got through, the gateway would see it before the allowed ones.
		for _, topic := range []string{
			wire.UplinkTopic(b), wire.StatusTopic(b), wire.DownlinkTopic(b),
			wire.DownlinkTopic(a), wire.GatewayStatusTopic, wire.TopicPrefix + "/other", "elsewhere",
		} {
			publish(t, devA, topic, "forbidden "+topic, false)
		}
		online := string(wire.Presence{State: wire.Online}.Encode())
		publish(t, devA, wire.StatusTopic(a), online, true)
		publish(t, devA, wire.UplinkTopic(a), "allowed", false)
		for _, want := range []msg{{wire.StatusTopic(a), online}, {wire.UplinkTopic(a), "allowed"}} {
			if got := next(t, atGateway); got != want {
				t.Fatalf("the gateway got %+v, want %+v", got, want)
			}
		}
	})

	t.Run("device receives its down and the gateway status", func(t *testing.T) {
		_, atA := collect(t, devA, wire.DownlinkTopic(a))
		_, status := collect(t, devA, wire.GatewayStatusTopic)
		publish(t, gw, wire.DownlinkTopic(b), "for b", false)
		publish(t, gw, wire.DownlinkTopic(a), "for a", false)
		epoch := string(wire.Presence{State: wire.Online, Epoch: "e1"}.Encode())
		publish(t, gw, wire.GatewayStatusTopic, epoch, true)
		if got, want := next(t, atA), (msg{wire.DownlinkTopic(a), "for a"}); got != want {
			t.Errorf("device A got %+v, want %+v", got, want)
		}
		if got, want := next(t, status), (msg{wire.GatewayStatusTopic, epoch}); got != want {
			t.Errorf("device A got %+v, want %+v", got, want)
		}
	})
}
