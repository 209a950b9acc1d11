package brokerauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/cmd/earshot-mosquitto-auth/internal/brokerauth"
)

const (
	secret = "s3cret-broker"
	token  = "eyJhbGciOiJFZERTQSJ9.e30.c2lnbmF0dXJl" // the shape of a device token
)

// gatewayCall is what the fake gateway saw.
type gatewayCall struct {
	Auth string
	Body map[string]string
}

// gateway is a real HTTP server that answers with status and body, and records the
// calls it got.
func gateway(t *testing.T, status int, body string) (*httptest.Server, chan gatewayCall) {
	t.Helper()
	calls := make(chan gatewayCall, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c gatewayCall
		c.Auth = r.Header.Get("Authorization")
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&c.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		calls <- c
		if status != http.StatusOK {
			w.Header().Set("Content-Type", "application/problem+json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, calls
}

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mqtt.secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newChecker returns a Checker for url whose log goes to the returned buffer.
func newChecker(t *testing.T, url string, timeout time.Duration) (*brokerauth.Checker, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	c, err := brokerauth.New(brokerauth.Config{
		URL:        url,
		SecretFile: writeSecret(t, "\n  "+secret+"\n"),
		Timeout:    timeout,
		Logger:     slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, &log
}

func TestCheckGatewayAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   error  // nil: allowed
		code   string // RefusedError.Code when refused by the gateway
	}{
		{"allowed", 200, `{"allow":true}`, nil, ""},
		{"200 without allow", 200, `{"allow":false}`, brokerauth.ErrUnavailable, ""},
		{"200 without body", 200, ``, brokerauth.ErrUnavailable, ""},
		{"200 with garbage", 200, `allow`, brokerauth.ErrUnavailable, ""},
		{"invalid token", 401, `{"type":"about:blank","status":401,"code":"invalid_token"}`, brokerauth.ErrRefused, "invalid_token"},
		{"expired", 401, `{"status":401,"code":"token_expired"}`, brokerauth.ErrRefused, "token_expired"},
		{"replayed", 401, `{"status":401,"code":"token_replayed"}`, brokerauth.ErrRefused, "token_replayed"},
		{"unknown device", 401, `{"status":401,"code":"unknown_device"}`, brokerauth.ErrRefused, "unknown_device"},
		{"revoked", 403, `{"status":403,"code":"device_revoked"}`, brokerauth.ErrRefused, "device_revoked"},
		{"wrong secret", 401, `{"status":401,"code":"broker_unauthorized"}`, brokerauth.ErrRefused, "broker_unauthorized"},
		{"401 without problem", 401, ``, brokerauth.ErrRefused, "unknown"},
		{"huge problem", 403, `{"code":"` + strings.Repeat("x", 8000) + `"}`, brokerauth.ErrRefused, "unknown"},
		{"unavailable", 503, `{"status":503,"code":"unavailable"}`, brokerauth.ErrUnavailable, ""},
		{"server error", 500, ``, brokerauth.ErrUnavailable, ""},
		{"redirect is not followed", 302, ``, brokerauth.ErrUnavailable, ""},
		{"bad request", 400, ``, brokerauth.ErrUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := gateway(t, tt.status, tt.body)
			c, log := newChecker(t, srv.URL+"/v1/mqtt/auth", 0)
			err := c.Check(context.Background(), "dev_a", token, "dev_a-sub")
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
			var refused *brokerauth.RefusedError
			if tt.code != "" && (!errors.As(err, &refused) || refused.Code != tt.code || refused.Status != tt.status) {
				t.Errorf("Check = %#v, want a RefusedError %d %s", err, tt.status, tt.code)
			}
			select {
			case call := <-calls:
				if call.Auth != "Bearer "+secret {
					t.Errorf("Authorization = %q, want the trimmed secret", call.Auth)
				}
				want := map[string]string{"username": "dev_a", "password": token, "client_id": "dev_a-sub"}
				if len(call.Body) != len(want) {
					t.Errorf("body = %v, want %v", call.Body, want)
				}
				for k, v := range want {
					if call.Body[k] != v {
						t.Errorf("body[%s] = %q, want %q", k, call.Body[k], v)
					}
				}
			default:
				t.Error("the gateway was not asked")
			}
			if strings.Contains(log.String(), token) || strings.Contains(log.String(), secret) {
				t.Errorf("the log holds the token or the secret:\n%s", log)
			}
			if !strings.Contains(log.String(), "client_id=dev_a-sub") {
				t.Errorf("the log does not name the client:\n%s", log)
			}
			if tt.code != "" && !strings.Contains(log.String(), "code="+tt.code) && tt.code != "broker_unauthorized" {
				t.Errorf("the log does not hold code=%s:\n%s", tt.code, log)
			}
		})
	}
}

func TestCheckLocalDecisions(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name               string
		user, pass, client string
		want               error // nil: allowed
		asks               bool  // the gateway is asked
	}{
		{"gateway user with the secret", brokerauth.DefaultGatewayUser, secret, "earshot-gateway-1", nil, false},
		{"gateway user, wrong secret", brokerauth.DefaultGatewayUser, secret + "x", "gw", brokerauth.ErrGatewaySecret, false},
		{"gateway user, secret prefix", brokerauth.DefaultGatewayUser, secret[:4], "gw", brokerauth.ErrGatewaySecret, false},
		{"device, client id = username", "dev_a", token, "dev_a", nil, true},
		{"device, suffixed client id", "dev_a", token, "dev_a-listener", nil, true},
		{"device, another device's client id", "dev_a", token, "dev_b", brokerauth.ErrClientID, false},
		{"device, client id with the username inside", "dev_a", token, "dev_ab", brokerauth.ErrClientID, false},
		{"device, empty client id", "dev_a", token, "", brokerauth.ErrClientID, false},
		{"device takes the gateway's client id", "earshot", token, "earshot-gateway", brokerauth.ErrClientID, false},
		{"device with the secret is still a device", "dev_a", secret, "dev_a", nil, true},
		{"empty username", "", token, "x", brokerauth.ErrBadInput, false},
		{"empty password", "dev_a", "", "dev_a", brokerauth.ErrBadInput, false},
		{"username over 64 bytes", long(65), token, long(65), brokerauth.ErrBadInput, false},
		{"username of 64 bytes", long(64), token, long(64), nil, true},
		{"password over 2 KiB", "dev_a", long(2049), "dev_a", brokerauth.ErrBadInput, false},
		{"client id over its limit", "dev_a", token, "dev_a-" + long(124), brokerauth.ErrBadInput, false},
		{"wildcard in username", "dev_+", token, "dev_+", brokerauth.ErrBadInput, false},
		{"hash in username", "#", token, "#", brokerauth.ErrBadInput, false},
		{"slash in username", "dev_a/b", token, "dev_a/b", brokerauth.ErrBadInput, false},
		{"control character in username", "dev_a\n", token, "dev_a\n", brokerauth.ErrBadInput, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := gateway(t, 200, `{"allow":true}`)
			c, log := newChecker(t, srv.URL, 0)
			err := c.Check(context.Background(), tt.user, tt.pass, tt.client)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
			if asked := len(calls) > 0; asked != tt.asks {
				t.Errorf("gateway asked = %v, want %v", asked, tt.asks)
			}
			if strings.Contains(log.String(), secret) || strings.Contains(log.String(), token) {
				t.Errorf("the log holds a password:\n%s", log)
			}
		})
	}
}

func TestCheckGatewayDown(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String() + "/v1/mqtt/auth"
		l.Close()
		c, _ := newChecker(t, url, 0)
		if err := c.Check(context.Background(), "dev_a", token, "dev_a"); !errors.Is(err, brokerauth.ErrUnavailable) {
			t.Fatalf("Check = %v, want ErrUnavailable", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) }) // runs before srv.Close
		c, _ := newChecker(t, srv.URL, 100*time.Millisecond)
		start := time.Now()
		err := c.Check(context.Background(), "dev_a", token, "dev_a")
		if !errors.Is(err, brokerauth.ErrUnavailable) {
			t.Fatalf("Check = %v, want ErrUnavailable", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("Check took %s with a 100ms timeout", took)
		}
	})
}

func TestSecretFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		ok      bool
	}{
		{"trimmed", "  abc \n", true},
		{"empty", "", false},
		{"white space only", " \n\t", false},
		{"over 1 KiB", strings.Repeat("s", brokerauth.MaxSecretBytes+1), false},
		{"1 KiB", strings.Repeat("s", brokerauth.MaxSecretBytes), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := brokerauth.New(brokerauth.Config{URL: "http://127.0.0.1:1/", SecretFile: writeSecret(t, tt.content)})
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, brokerauth.ErrConfig) {
				t.Fatalf("New = %v, want ok = %v", err, tt.ok)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := brokerauth.New(brokerauth.Config{URL: "http://127.0.0.1:1/", SecretFile: filepath.Join(t.TempDir(), "none")})
		if !errors.Is(err, brokerauth.ErrConfig) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("New = %v, want ErrConfig wrapping ErrNotExist", err)
		}
	})
}

func TestReload(t *testing.T) {
	path := writeSecret(t, "old")
	cfg := brokerauth.Config{URL: "http://127.0.0.1:1/", SecretFile: path}
	c, err := brokerauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	user := brokerauth.DefaultGatewayUser
	if err := c.Check(ctx, user, "old", "gw"); err != nil {
		t.Fatalf("old secret refused: %v", err)
	}
	if err := os.WriteFile(path, []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, user, "new", "gw"); !errors.Is(err, brokerauth.ErrGatewaySecret) {
		t.Fatalf("new secret before reload: %v, want ErrGatewaySecret", err)
	}
	if err := c.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, user, "new", "gw"); err != nil {
		t.Fatalf("new secret after reload refused: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(cfg); !errors.Is(err, brokerauth.ErrConfig) {
		t.Fatalf("reload without the file = %v, want ErrConfig", err)
	}
	if err := c.Check(ctx, user, "new", "gw"); err != nil {
		t.Fatalf("a failed reload dropped the secret: %v", err)
	}
}

func TestParseOptions(t *testing.T) {
	secretFile := writeSecret(t, "x")
	tests := []struct {
		name string
		opts map[string]string
		want brokerauth.Config // URL empty: an error is expected
	}{
		{"minimal", map[string]string{"url": "http://127.0.0.1:8080/v1/mqtt/auth", "secret_file": secretFile},
			brokerauth.Config{URL: "http://127.0.0.1:8080/v1/mqtt/auth", SecretFile: secretFile}},
		{"all", map[string]string{"url": " https://gw.example/v1/mqtt/auth ", "secret_file": secretFile, "gateway_user": "gw", "timeout": "500ms"},
			brokerauth.Config{URL: "https://gw.example/v1/mqtt/auth", SecretFile: secretFile, GatewayUser: "gw", Timeout: 500 * time.Millisecond}},
		{"no url", map[string]string{"secret_file": secretFile}, brokerauth.Config{}},
		{"mqtt url", map[string]string{"url": "tcp://127.0.0.1:1883", "secret_file": secretFile}, brokerauth.Config{}},
		{"no secret file", map[string]string{"url": "http://127.0.0.1:8080/"}, brokerauth.Config{}},
		{"bad timeout", map[string]string{"url": "http://h/", "secret_file": secretFile, "timeout": "2"}, brokerauth.Config{}},
		{"negative timeout", map[string]string{"url": "http://h/", "secret_file": secretFile, "timeout": "-1s"}, brokerauth.Config{}},
		{"misspelt option", map[string]string{"url": "http://h/", "secret_file": secretFile, "secretfile": "x"}, brokerauth.Config{}},
		{"long gateway user", map[string]string{"url": "http://h/", "secret_file": secretFile, "gateway_user": strings.Repeat("g", 65)}, brokerauth.Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := brokerauth.ParseOptions(tt.opts)
			if tt.want.URL == "" {
				if !errors.Is(err, brokerauth.ErrConfig) {
					t.Fatalf("ParseOptions = %+v, %v; want ErrConfig", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseOptions = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestCheckSubscribe(t *testing.T) {
	c, log := newChecker(t, "http://127.0.0.1:1/", 0)
	gw := brokerauth.DefaultGatewayUser
	tests := []struct {
		user, filter string
		ok           bool
	}{
		{"dev_a", "earshot/v1/dev/dev_a/down", true},
		{"dev_a", "earshot/v1/gateway/status", true},
		{"dev_a", "earshot/v1/dev/dev_b/down", false},
		{"dev_a", "earshot/v1/dev/+/down", false},
		{"dev_a", "earshot/v1/dev/dev_a/+", false},
		{"dev_a", "earshot/v1/dev/dev_a/#", false},
		{"dev_a", "earshot/v1/dev/dev_a/up", false},
		{"dev_a", "earshot/v1/dev/dev_a/status", false},
		{"dev_a", "$share/g/earshot/v1/dev/dev_a/down", false},
		{"dev_a", "$share/g/earshot/v1/dev/+/down", false},
		{"dev_a", "#", false},
		{"dev_a", "$SYS/#", false},
		{"dev_a", "earshot/v1/#", false},
		{"dev_a", "", false},
		{"", "earshot/v1/gateway/status", false},
		{gw, "earshot/v1/#", true},
		{gw, "earshot/v1/dev/+/up", true},
		{gw, "earshot/v1/dev/+/status", true},
		{gw, "$share/gateways/earshot/v1/dev/+/up", true},
		{gw, "$share//earshot/v1/dev/+/up", false},
		{gw, "$share/gateways", false},
		{gw, "$share/+/earshot/v1/dev/+/up", false},
		{gw, "#", false},
		{gw, "$SYS/#", false},
		{gw, "earshot/v2/#", false},
		{gw, "earshot/v1/" + strings.Repeat("a", brokerauth.MaxFilterBytes), false},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.filter, func(t *testing.T) {
			err := c.CheckSubscribe(tt.user, tt.filter)
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, brokerauth.ErrSubscribe) {
				t.Fatalf("CheckSubscribe = %v, want ok = %v", err, tt.ok)
			}
		})
	}
	if !strings.Contains(log.String(), "mqtt subscription refused") {
		t.Errorf("refusals are not logged:\n%s", log)
	}
}
