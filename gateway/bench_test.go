package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway"
)

// BenchmarkUtteranceToPrompt measures one utterance -> confirm.request round trip: the
// device client, the transport, the session core, the reference agent's parse and
// REST purchase request, and two durable store commits. Over a loopback WebSocket,
// over MQTT through the embedded broker, and over MQTT through a real Mosquitto
// (anonymous here: authentication costs only at CONNECT, see the plugin's benchmark).
func BenchmarkUtteranceToPrompt(b *testing.B) {
	b.Run("ws", func(b *testing.B) { benchUtterance(b, "ws", gateway.MQTTConfig{Disabled: true}) })
	b.Run("mqtt-embedded", func(b *testing.B) { benchUtterance(b, "mqtt", gateway.MQTTConfig{}) })
	b.Run("mqtt-mosquitto", func(b *testing.B) {
		m := clienttest.StartMosquitto(b, "allow_anonymous true\nset_tcp_nodelay true\nmax_inflight_messages 1000\nmax_queued_messages 100000\n")
		benchUtterance(b, "mqtt", gateway.MQTTConfig{Broker: m.URL})
	})
}

func benchUtterance(b *testing.B, transport string, mc gateway.MQTTConfig) {
	dir := b.TempDir()
	srv, err := gateway.New(gateway.Config{
		DataDir: dir, Listen: "127.0.0.1:0", ConsentTTL: time.Hour, MQTT: mc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	c := benchDevice(b, srv, dir, transport)
	defer c.Close()
	for b.Loop() {
		if _, err := c.Say(b.Context(), "buy two oat lattes"); err != nil {
			b.Fatal(err)
		}
		for ev := range c.Events() {
			if ev.Type == wire.TypeConfirmRequest {
				break
			}
		}
	}
}

func benchDevice(b *testing.B, srv *gateway.Server, dir, transport string) *client.Client {
	b.Helper()
	tok, err := os.ReadFile(filepath.Join(dir, gateway.AdminTokenFile))
	if err != nil {
		b.Fatal(err)
	}
	var p struct{ Code string }
	for range 200 { // Run may not be serving yet
		req, _ := http.NewRequest("POST", srv.URL()+"/admin/v1/pairing-codes", strings.NewReader(`{"user":"bench"}`))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			err = json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 201 {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	k, _ := identity.GenerateKey()
	en, err := client.Enroll(b.Context(), srv.URL(), k, p.Code, "glasses", "bench")
	if err != nil {
		b.Fatal(err)
	}
	u, _ := client.DeviceURL(srv.URL())
	if transport == "mqtt" {
		u = srv.MQTTURL()
	}
	var c *client.Client
	for range 100 { // an external broker may take a moment to accept the gateway
		c, err = client.Dial(b.Context(), client.Config{URL: u, Key: k, Audience: en.Audience, EventBuffer: 256})
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		b.Fatal(err)
	}
	return c
}
