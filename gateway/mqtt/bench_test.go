package mqtt_test

import (
	"bufio"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/mqtt"
	"github.com/earshot/earshot/gateway/registry"
)

// idleDevice connects like a device firmware (persistent session, will, downlink
// subscription) over a bare socket and then stays idle; the socket is all the
// client side holds, so the heap growth is the broker's.
func idleDevice(b *testing.B, addr string, k *identity.Key) net.Conn {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	id := k.DeviceID()
	tok, err := k.Token(audience, time.Now(), 0)
	if err != nil {
		b.Fatal(err)
	}
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4
	cp.ClientIdentifier, cp.Keepalive = id, 300
	cp.UsernameFlag, cp.Username = true, id
	cp.PasswordFlag, cp.Password = true, []byte(tok)
	cp.WillFlag, cp.WillQos, cp.WillRetain = true, 1, true
	cp.WillTopic, cp.WillMessage = wire.StatusTopic(id), wire.Presence{State: wire.Offline, Epoch: "bench"}.Encode()
	if err := cp.Write(c); err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReader(c)
	ack, err := packets.ReadPacket(r)
	if err != nil {
		b.Fatal(err)
	}
	if ca, ok := ack.(*packets.ConnackPacket); !ok || ca.ReturnCode != 0 {
		b.Fatalf("CONNACK %v", ack)
	}
	sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sp.MessageID, sp.Topics, sp.Qoss = 1, []string{wire.DownlinkTopic(id)}, []byte{1}
	if err := sp.Write(c); err != nil {
		b.Fatal(err)
	}
	if sa, err := packets.ReadPacket(r); err != nil {
		b.Fatal(err)
	} else if s, ok := sa.(*packets.SubackPacket); !ok || s.ReturnCodes[0] != 1 {
		b.Fatalf("SUBACK %v", sa)
	}
	return c
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkIdleDeviceMemory reports the embedded broker's memory per connected,
// subscribed, idle device (heap and goroutine stacks), over 200 devices per op.
func BenchmarkIdleDeviceMemory(b *testing.B) {
	const devices = 200
	r := newCore(b)
	defer r.core.Close()
	e, err := mqtt.NewEmbedded(mqtt.EmbeddedConfig{Core: r.core, Registry: r.reg, Listen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(); err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	keys := make([]*identity.Key, devices)
	for i := range keys {
		keys[i] = r.enroll(registry.KindKiosk)
	}
	var perDevice float64
	for b.Loop() {
		before := heapInUse()
		conns := make([]net.Conn, devices)
		for i, k := range keys {
			conns[i] = idleDevice(b, e.Addr(), k)
		}
		time.Sleep(50 * time.Millisecond) // let the broker settle its per-client state
		perDevice = float64(heapInUse()-before) / devices
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(perDevice, "B/device")
}
