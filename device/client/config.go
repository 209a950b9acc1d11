package client

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// Config configures a Client. The zero value of every optional field is a working
// default.
type Config struct {
	// URL says where and how to connect (required); its scheme picks the transport:
	//
	//	ws://host:port/v1/device, wss://   WebSocket (see DeviceURL)
	//	mqtt://host:port, tcp://           MQTT 3.1.1 (port 1883 by default)
	//	mqtts://host:port, ssl://          MQTT 3.1.1 over TLS (port 8883 by default)
	//	whip://host:port/v1/whip, whips:// WebRTC, set up by WHIP over http:// (https://)
	//
	// For MQTT it is the gateway's broker (see Discover). The client behaves the same
	// on every transport; speech (Speak) needs WebSocket or WebRTC.
	URL string
	// Key is the device key enrolled with the gateway (required).
	Key *identity.Key
	// Audience is the gateway audience returned at enrolment (required).
	Audience string
	// Client describes the firmware in hello. Zero sends no name or version.
	Client wire.ClientInfo
	// PromptAudio asks the gateway to speak every prompt (hello's prompt_audio): the
	// speech arrives as Events of type wire.TypePromptAudio after the confirm.request.
	// WebSocket and WebRTC only. Default false.
	PromptAudio bool
	// WebRTC configures whip:// and whips:// connections.
	WebRTC WebRTCSettings
	// Logger receives the client's logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock for device tokens and message timestamps. Default: time.Now.
	Now func() time.Time
	// Dialer dials the WebSocket. Default: 1 KiB read and write buffers, a 10 s
	// handshake timeout and the proxy from the environment. The earshot.v1
	// subprotocol is always requested. Not used over MQTT.
	Dialer *websocket.Dialer
	// TLS configures wss:// and mqtts:// connections (for a private CA, or a client
	// certificate for mutual TLS); it takes precedence over Dialer.TLSClientConfig.
	// Default: the system roots, and the URL's host as the server name.
	TLS *tls.Config
	// Reconnect makes the client start a new session, with jittered exponential
	// backoff between MinBackoff and MaxBackoff, after a session ends with a code that
	// allows it (see the package doc). Default: off (the first end ends the client).
	Reconnect bool
	// MinBackoff and MaxBackoff bound the reconnect delay. Defaults: 250 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// HelloTimeout bounds the wait for hello.ok. Over WebSocket the connection
	// attempt fails after it; over MQTT hello is sent again (the link stays up).
	// Default: 10 s.
	HelloTimeout time.Duration
	// WriteTimeout bounds one frame write when the context has no earlier deadline.
	// Default: 10 s.
	WriteTimeout time.Duration
	// EventBuffer is the capacity of the Events channel. Default: 64.
	EventBuffer int
	// Rand returns a number in [0, 1) for backoff jitter. Default: math/rand/v2.
	Rand func() float64
	// NewID returns a fresh uplink message id; over MQTT also the epoch that tags
	// each connection's status messages. Default: "m_" and 96 random bits.
	NewID func() string
}

// WebRTCSettings configure the WebRTC transport. The zero value is a working default.
type WebRTCSettings struct {
	// Loopback allows loopback ICE candidates: for a gateway on the same host (tests).
	// Default false.
	Loopback bool
	// OpenTimeout bounds a connection from the WHIP answer to the open data channel
	// (ICE, DTLS, SCTP). Default 10 s.
	OpenTimeout time.Duration
	// Bitrate is the Opus encoder's bitrate in bit/s for the microphone track.
	// Default 24000.
	Bitrate int
}

const (
	defaultMinBackoff   = 250 * time.Millisecond
	defaultMaxBackoff   = 5 * time.Second
	defaultHelloTimeout = 10 * time.Second
	defaultWriteTimeout = 10 * time.Second
	defaultEventBuffer  = 64
)

func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		return c, errors.New("client: config: URL is required")
	}
	if _, err := transportOf(c.URL); err != nil {
		return c, err
	}
	if c.Key == nil {
		return c, errors.New("client: config: Key is required")
	}
	if c.Audience == "" {
		return c, errors.New("client: config: Audience is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	d := websocket.Dialer{
		Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 10 * time.Second,
		ReadBufferSize: 1024, WriteBufferSize: 1024,
	}
	if c.Dialer != nil {
		d = *c.Dialer // a copy: the caller's dialer is not modified
	}
	d.Subprotocols = []string{wire.Subprotocol}
	if c.TLS != nil {
		d.TLSClientConfig = c.TLS
	}
	c.Dialer = &d
	if c.MinBackoff <= 0 {
		c.MinBackoff = defaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = defaultMaxBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.HelloTimeout <= 0 {
		c.HelloTimeout = defaultHelloTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.EventBuffer <= 0 {
		c.EventBuffer = defaultEventBuffer
	}
	if c.WebRTC.OpenTimeout <= 0 {
		c.WebRTC.OpenTimeout = 10 * time.Second
	}
	if c.WebRTC.Bitrate <= 0 {
		c.WebRTC.Bitrate = 24000
	}
	if c.Rand == nil {
		c.Rand = mrand.Float64
	}
	if c.NewID == nil {
		c.NewID = randomID
	}
	return c, nil
}

// transportOf parses a Config.URL and checks its scheme.
func transportOf(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err == nil && u.Host != "" && u.Hostname() != "" {
		switch u.Scheme {
		case "ws", "wss", "whip", "whips":
			return u, nil
		case "mqtt", "tcp", "mqtts", "ssl":
			if (u.Path == "" || u.Path == "/") && u.RawQuery == "" {
				return u, nil
			}
		}
	}
	return nil, fmt.Errorf("client: config: URL %q: want ws[s]://host[:port]/path for WebSocket, "+
		"mqtt://host[:port] (also tcp://, mqtts://, ssl://) for MQTT, or whip[s]://host[:port]/path for WebRTC", raw)
}

// newDialer returns the dialer of the transport the URL names.
func newDialer(cfg *Config, device string, log *slog.Logger, st *counters) (dialer, error) {
	u, err := transportOf(cfg.URL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "ws", "wss":
		return &wsDialer{url: cfg.URL, dialer: cfg.Dialer, writeTimeout: cfg.WriteTimeout}, nil
	case "whip", "whips":
		return newWebRTCDialer(u, cfg, log)
	}
	return newMQTTDialer(u, cfg, device, log, st), nil
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	return "m_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// backoff returns the delay before reconnect attempt n (0-based): exponential from
// MinBackoff, capped at MaxBackoff, with "equal jitter" (half fixed, half random).
func (c *Config) backoff(n int) time.Duration {
	d := c.MinBackoff
	for i := 0; i < n && d < c.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.MaxBackoff)
	return d/2 + time.Duration(c.Rand()*float64(d/2))
}
