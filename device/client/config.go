package client

import (
	"crypto/rand"
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
	// URL is the gateway's device endpoint, ws://host:port/v1/device (required). See
	// DeviceURL to derive it from the gateway's base URL.
	URL string
	// Key is the device key enrolled with the gateway (required).
	Key *identity.Key
	// Audience is the gateway audience returned at enrolment (required).
	Audience string
	// Client describes the firmware in hello. Zero sends no name or version.
	Client wire.ClientInfo
	// Logger receives the client's logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock for device tokens and message timestamps. Default: time.Now.
	Now func() time.Time
	// Dialer dials the WebSocket. Default: 1 KiB read and write buffers, a 10 s
	// handshake timeout and the proxy from the environment. The earshot.v1
	// subprotocol is always requested.
	Dialer *websocket.Dialer
	// Reconnect makes the client reconnect, with jittered exponential backoff between
	// MinBackoff and MaxBackoff, after a disconnect whose close code allows it.
	// Default: off (the first disconnect ends the client).
	Reconnect bool
	// MinBackoff and MaxBackoff bound the reconnect delay. Defaults: 250 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// HelloTimeout bounds the wait for hello.ok after the upgrade. Default: 10 s.
	HelloTimeout time.Duration
	// WriteTimeout bounds one frame write when the context has no earlier deadline.
	// Default: 10 s.
	WriteTimeout time.Duration
	// EventBuffer is the capacity of the Events channel. Default: 64.
	EventBuffer int
	// Rand returns a number in [0, 1) for backoff jitter. Default: math/rand/v2.
	Rand func() float64
	// NewID returns a fresh uplink message id. Default: "m_" and 96 random bits.
	NewID func() string
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
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return c, fmt.Errorf("client: config: URL %q: want ws://host[:port]/path or wss://", c.URL)
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
	if c.Rand == nil {
		c.Rand = mrand.Float64
	}
	if c.NewID == nil {
		c.NewID = randomID
	}
	return c, nil
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
