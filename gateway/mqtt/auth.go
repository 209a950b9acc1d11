package mqtt

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/problem"
	"github.com/earshot/earshot/gateway/registry"
)

// AuthPath is where an external broker's auth plugin checks device credentials.
const AuthPath = "/v1/mqtt/auth"

// AuthRequest is what the broker plugin posts: the CONNECT's credentials.
type AuthRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	ClientID string `json:"client_id"`
}

// checkDevice is the CONNECT check both brokers make: the username is a device id,
// the client id is allowed for it, and the password is a fresh token of that device.
// It returns the refusal, or nil.
func checkDevice(ctx context.Context, reg *registry.Registry, user, password, clientID string) *wire.Error {
	switch {
	case user == "" || password == "":
		return wire.NewError(wire.CodeInvalidToken, "username (device id) and password (device token) are required")
	case len(user) > wire.MaxIDBytes || len(password) > wire.MaxTokenBytes:
		return wire.NewError(wire.CodeInvalidToken, "username or password over its size limit")
	case !ClientIDAllowed(user, clientID):
		return wire.NewError(wire.CodeInvalidToken, "client id must be the device id or start with it and '-'")
	}
	dev, err := reg.Authenticate(ctx, password)
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = wire.NewError(wire.CodeUnavailable, "authentication unavailable")
		}
		return we
	}
	if dev.ID != user {
		return wire.NewError(wire.CodeInvalidToken, "the token is not the username's")
	}
	return nil
}

// maxAuthBody bounds an AuthRequest: a token and two ids, with room for JSON.
const maxAuthBody = 8 << 10

// AuthHandler answers an external broker's question "may this client connect?"
// (POST AuthPath, Authorization: Bearer <broker secret>): 200 {"allow":true} for a
// device whose token authenticates, whose id is the username and whose client id is
// allowed; otherwise a problem whose code is the wire code's name (401, or 403 for
// a revoked device), or broker_unauthorized when the secret is wrong. Each token
// authenticates once, as at the embedded broker.
func AuthHandler(reg *registry.Registry, secret string, m *Metrics, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	if m == nil {
		m = NewMetrics()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(secret)) != 1 {
			problem.Write(w, http.StatusUnauthorized, "broker_unauthorized", "the broker secret is missing or wrong")
			return
		}
		var req AuthRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, maxAuthBody+1))
		switch {
		case err != nil:
			problem.Write(w, http.StatusBadRequest, "bad_request", "reading the body: "+err.Error())
			return
		case len(body) > maxAuthBody:
			problem.Write(w, http.StatusRequestEntityTooLarge, "too_large", "the body is over 8 KiB")
			return
		}
		if err := json.Unmarshal(body, &req); err != nil {
			problem.Write(w, http.StatusBadRequest, "bad_request", "the body is not an auth request: "+err.Error())
			return
		}
		refuse := func(code wire.Code, detail string) {
			m.Refused.WithLabelValues(code.String()).Inc()
			log.Info("MQTT connection refused (external broker)", "username", clip(req.Username),
				"client_id", clip(req.ClientID), "code", code.String(), "reason", detail)
			status := http.StatusUnauthorized
			switch code {
			case wire.CodeDeviceRevoked:
				status = http.StatusForbidden
			case wire.CodeUnavailable:
				status = http.StatusServiceUnavailable
			}
			problem.Write(w, status, code.String(), detail)
		}
		if we := checkDevice(r.Context(), reg, req.Username, req.Password, req.ClientID); we != nil {
			refuse(we.Code, we.Message)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"allow":true}` + "\n")) // the plugin reads the status
	})
}
