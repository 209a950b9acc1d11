// Package brokerauth decides whether an MQTT broker accepts a CONNECT, on behalf of
// the earshot gateway. It is the logic of the Mosquitto plugin in
// cmd/earshot-mosquitto-auth, kept free of cgo so that it builds and is tested
// everywhere.
//
// Two kinds of client connect to a broker in front of earshot:
//
//   - the gateway itself, as Config.GatewayUser, with the broker secret (the
//     contents of Config.SecretFile) as its password: compared here, in constant
//     time, without a call to anyone;
//   - devices, with username = device id, client id = the device id or the device id,
//     "-" and a suffix, and password = a fresh single-use device token. Only the
//     gateway can verify a token (it holds the device registry and the nonce memory),
//     so Check asks it: POST Config.URL with "Authorization: Bearer <secret>" and
//     {"username","password","client_id"}. 200 {"allow":true} accepts; anything else
//     (401/403 with an RFC 9457 problem whose code names the reason, 503, another
//     status, a timeout, a network error) refuses: the broker fails closed.
//
// Which topics a client may use is not decided here: that is the broker's ACL.
//
// Check is safe for concurrent use, but Mosquitto 2.0 calls it from its single
// network thread: while a call waits for the gateway, the broker serves nobody, so
// Config.Timeout must stay short and the gateway should be near (loopback).
package brokerauth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Limits. Inputs over a limit are refused before anything else is done.
const (
	// MaxUsernameBytes bounds a username: a device id (or the gateway user).
	MaxUsernameBytes = 64
	// MaxClientIDBytes bounds a client id: a device id, "-" and a suffix.
	MaxClientIDBytes = 2*MaxUsernameBytes + 1
	// MaxPasswordBytes bounds a password: a device token or the broker secret.
	MaxPasswordBytes = 2048
	// MaxSecretBytes bounds the secret file.
	MaxSecretBytes = 1024
	// maxRequestBytes bounds the JSON sent to the gateway (the inputs above, escaped).
	maxRequestBytes = 16 << 10
	// maxResponseBytes bounds what is read of the gateway's answer.
	maxResponseBytes = 4 << 10
)

// Defaults for the zero values of Config.
const (
	DefaultGatewayUser = "earshot-gateway"
	DefaultTimeout     = 2 * time.Second
)

// Errors. Every refusal Check returns wraps exactly one of them.
var (
	// ErrConfig reports an invalid Config or an unreadable secret file.
	ErrConfig = errors.New("brokerauth: config")
	// ErrBadInput reports a username, password or client id that is empty, over its
	// limit or not a possible device id.
	ErrBadInput = errors.New("brokerauth: bad input")
	// ErrClientID reports a client id that is not the username or username + "-...".
	ErrClientID = errors.New("brokerauth: client id does not belong to the username")
	// ErrGatewaySecret reports the gateway user with a wrong password.
	ErrGatewaySecret = errors.New("brokerauth: wrong broker secret")
	// ErrRefused reports a device the gateway refused (see RefusedError).
	ErrRefused = errors.New("brokerauth: refused by the gateway")
	// ErrUnavailable reports a gateway that could not be asked or did not answer
	// as the contract says: network error, timeout, 503 or any unexpected answer.
	ErrUnavailable = errors.New("brokerauth: gateway unavailable")
)

// RefusedError is a 401 or 403 from the gateway. Code is the problem's code:
// invalid_token, token_expired, token_replayed, unknown_device, device_revoked, or
// broker_unauthorized (the gateway does not know our secret).
type RefusedError struct {
	Status int
	Code   string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("brokerauth: refused by the gateway: %d %s", e.Status, e.Code)
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// Config configures a Checker. URL and SecretFile are required; every other zero
// value is a working default.
type Config struct {
	// URL is the gateway's broker-auth endpoint, for example
	// http://127.0.0.1:8080/v1/mqtt/auth (http or https).
	URL string
	// SecretFile holds the broker secret the gateway wrote (DATA_DIR/mqtt.secret).
	// It is read by New and by Reload; surrounding white space is trimmed; it must
	// not be empty.
	SecretFile string
	// GatewayUser is the username the gateway connects as. Default:
	// DefaultGatewayUser.
	GatewayUser string
	// Timeout bounds one call to the gateway, connection included. Default:
	// DefaultTimeout.
	Timeout time.Duration
	// Logger receives one line per decision (never a password, token or secret).
	// Default: discard.
	Logger *slog.Logger
	// Transport makes the HTTP calls. Default: a transport without proxy (the
	// secret goes to the gateway and nowhere else) that keeps idle connections.
	Transport http.RoundTripper
}

func (c Config) withDefaults() (Config, error) {
	u, err := url.Parse(c.URL)
	if c.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("%w: url %q: want http://host:port/v1/mqtt/auth or https://", ErrConfig, c.URL)
	}
	if c.SecretFile == "" {
		return c, fmt.Errorf("%w: secret_file is required", ErrConfig)
	}
	if c.GatewayUser == "" {
		c.GatewayUser = DefaultGatewayUser
	}
	if len(c.GatewayUser) > MaxUsernameBytes {
		return c, fmt.Errorf("%w: gateway_user over %d bytes", ErrConfig, MaxUsernameBytes)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Transport == nil {
		c.Transport = &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: c.Timeout,
		}
	}
	return c, nil
}

// Checker makes the decisions. Create it with New.
type Checker struct {
	mu     sync.Mutex // guards cfg, secret and client for Reload
	cfg    Config
	secret []byte
	client *http.Client
}

// New validates cfg and reads the secret file.
func New(cfg Config) (*Checker, error) {
	c := new(Checker)
	if err := c.Reload(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload replaces the configuration and re-reads the secret file. On error the
// previous configuration and secret stay in force.
func (c *Checker) Reload(cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	secret, err := readSecret(cfg.SecretFile)
	if err != nil {
		return err
	}
	client := &http.Client{
		Transport: cfg.Transport,
		Timeout:   cfg.Timeout,
		// A redirect is not an answer of the contract; it is refused as one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.mu.Lock()
	old := c.client
	c.cfg, c.secret, c.client = cfg, secret, client
	c.mu.Unlock()
	if old != nil && old.Transport != client.Transport {
		old.CloseIdleConnections()
	}
	return nil
}

// Config returns the configuration in force, defaults filled in.
func (c *Checker) Config() Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// Close drops idle connections to the gateway. The Checker stays usable.
func (c *Checker) Close() {
	c.mu.Lock()
	client := c.client
	c.mu.Unlock()
	if client != nil {
		client.CloseIdleConnections()
	}
}

func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: secret file: %w", ErrConfig, err)
	}
	defer f.Close() // read-only: a close error loses nothing
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: secret file: %w", ErrConfig, err)
	}
	if len(b) > MaxSecretBytes {
		return nil, fmt.Errorf("%w: secret file %s is over %d bytes", ErrConfig, path, MaxSecretBytes)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: secret file %s is empty", ErrConfig, path)
	}
	return b, nil
}

// Check decides one CONNECT: nil accepts it; an error refuses it and wraps one of
// ErrBadInput, ErrClientID, ErrGatewaySecret, ErrRefused or ErrUnavailable. Each
// decision is logged with the username, the client id and the reason.
func (c *Checker) Check(ctx context.Context, username, password, clientID string) error {
	c.mu.Lock()
	cfg, secret, client := c.cfg, c.secret, c.client
	c.mu.Unlock()
	start := time.Now()
	err := check(ctx, cfg, secret, client, username, password, clientID)
	log := cfg.Logger.With("username", printable(username), "client_id", printable(clientID),
		"took", time.Since(start).Round(time.Microsecond))
	var refused *RefusedError
	switch {
	case err == nil:
		log.Info("mqtt connect allowed")
	case errors.As(err, &refused) && refused.Code == "broker_unauthorized":
		log.Error("mqtt connect refused: the gateway does not accept the broker secret; check secret_file", "status", refused.Status)
	case errors.As(err, &refused):
		log.Warn("mqtt connect refused", "status", refused.Status, "code", printable(refused.Code))
	case errors.Is(err, ErrUnavailable):
		log.Error("mqtt connect refused: gateway unavailable", "err", err)
	default:
		log.Warn("mqtt connect refused", "err", err)
	}
	return err
}

func check(ctx context.Context, cfg Config, secret []byte, client *http.Client, username, password, clientID string) error {
	switch {
	case username == "" || len(username) > MaxUsernameBytes:
		return fmt.Errorf("%w: username of %d bytes", ErrBadInput, len(username))
	case password == "" || len(password) > MaxPasswordBytes:
		return fmt.Errorf("%w: password of %d bytes", ErrBadInput, len(password))
	case len(clientID) > MaxClientIDBytes:
		return fmt.Errorf("%w: client id of %d bytes", ErrBadInput, len(clientID))
	}
	if username == cfg.GatewayUser {
		if subtle.ConstantTimeCompare([]byte(password), secret) != 1 {
			return ErrGatewaySecret
		}
		return nil
	}
	// A device id never holds MQTT wildcards, separators or control characters; one
	// that did would widen the broker's %u patterns.
	if strings.ContainsFunc(username, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("+#/", r) }) {
		return fmt.Errorf("%w: username is not a device id", ErrBadInput)
	}
	if clientID != username && !strings.HasPrefix(clientID, username+"-") {
		return ErrClientID
	}
	// The gateway's own client id is not a device's to take over.
	if clientID == cfg.GatewayUser || strings.HasPrefix(clientID, cfg.GatewayUser+"-") {
		return ErrClientID
	}
	return ask(ctx, cfg, secret, client, username, password, clientID)
}

// request is the body POSTed to the gateway.
type request struct {
	Username string `json:"username"`
	Password string `json:"password"`
	ClientID string `json:"client_id"`
}

// answer is the part of the gateway's answer read here: {"allow":true} on 200, an
// RFC 9457 problem with a code otherwise.
type answer struct {
	Allow bool   `json:"allow"`
	Code  string `json:"code"`
}

func ask(ctx context.Context, cfg Config, secret []byte, client *http.Client, username, password, clientID string) error {
	body, err := json.Marshal(request{Username: username, Password: password, ClientID: clientID})
	if err != nil || len(body) > maxRequestBytes {
		return fmt.Errorf("%w: request of %d bytes", ErrBadInput, len(body))
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("Authorization", "Bearer "+string(secret))
	resp, err := client.Do(req)
	if err != nil {
		// url.Error names the URL and the cause, never the headers.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close() // the body is read below; its close error tells nothing more
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%w: reading the answer: %w", ErrUnavailable, err)
	}
	var a answer
	decodeErr := errors.New("no body")
	if len(raw) > maxResponseBytes {
		decodeErr = fmt.Errorf("answer over %d bytes", maxResponseBytes)
	} else if len(raw) > 0 {
		decodeErr = json.Unmarshal(raw, &a)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if decodeErr != nil || !a.Allow {
			return fmt.Errorf("%w: 200 without {\"allow\":true}", ErrUnavailable)
		}
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		code := a.Code
		if decodeErr != nil || code == "" {
			code = "unknown"
		}
		if len(code) > MaxUsernameBytes {
			code = code[:MaxUsernameBytes]
		}
		return &RefusedError{Status: resp.StatusCode, Code: code}
	default:
		return fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
	}
}

// printable keeps a client-chosen string fit for a log line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
