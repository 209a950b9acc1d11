package main_test

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// BenchmarkDeviceConnect measures one device CONNECT through the real Mosquitto, the
// plugin and the gateway's check (the fake gateway, on loopback): mint a token,
// connect, disconnect. Mosquitto serves nobody else meanwhile, so this bounds the
// CONNECT rate of one broker.
func BenchmarkDeviceConnect(b *testing.B) {
	e := newEnv(b)
	key := e.gw.enroll(b)
	dev := key.DeviceID()
	for b.Loop() {
		o := mqtt.NewClientOptions().AddBroker("tcp://" + e.broker.Addr).SetProtocolVersion(4).
			SetClientID(dev).SetUsername(dev).SetPassword(token(b, key, time.Now())).
			SetCleanSession(false).SetAutoReconnect(false)
		c := mqtt.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect: %v", tok.Error())
		}
		c.Disconnect(0)
	}
}
