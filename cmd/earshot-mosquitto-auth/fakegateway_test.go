package main_test

import (
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/identity"
)

const audience = "earshot:gw-test"

// fakeGateway is the gateway's side of the broker-auth contract: POST
// /v1/mqtt/auth with the broker secret as bearer token and
// {"username","password","client_id"}; 200 {"allow":true}, or 401/403 with an RFC
// 9457 problem whose code names the reason, or 503. It verifies device tokens it
// minted itself with identity.VerifyToken and remembers every nonce.
type fakeGateway struct {
	*httptest.Server

	mu      sync.Mutex
	secret  string
	keys    map[string]*identity.Key // enrolled devices
	revoked map[string]bool
	seen    map[string]bool // jti
	down    bool            // answer 503
	calls   int
}

func startGateway(t testing.TB, secret string) *fakeGateway {
	t.Helper()
	g := &fakeGateway{secret: secret, keys: map[string]*identity.Key{}, revoked: map[string]bool{}, seen: map[string]bool{}}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Close)
	return g
}

// enroll makes a device key the gateway knows.
func (g *fakeGateway) enroll(t testing.TB) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	g.keys[k.DeviceID()] = k
	g.mu.Unlock()
	return k
}

func (g *fakeGateway) set(f func(g *fakeGateway)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func (g *fakeGateway) callCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// token mints a token for k, issued at iat.
func token(t testing.TB, k *identity.Key, iat time.Time) string {
	t.Helper()
	tok, err := k.Token(audience, iat, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func problem(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{ // a failed write fails the CONNECT, which the test sees
		"type": "https://earshot.dev/problems/" + code, "title": http.StatusText(status), "status": status, "code": code,
	})
}

func (g *fakeGateway) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if r.Method != http.MethodPost || r.URL.Path != "/v1/mqtt/auth" {
		problem(w, http.StatusNotFound, "not_found")
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(bearer), []byte(g.secret)) != 1 {
		problem(w, http.StatusUnauthorized, "broker_unauthorized")
		return
	}
	if g.down {
		problem(w, http.StatusServiceUnavailable, "unavailable")
		return
	}
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
		ClientID string `json:"client_id"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, "bad_request")
		return
	}
	claims, err := identity.ParseToken(req.Password)
	if err != nil || claims.Subject != req.Username {
		problem(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	if req.ClientID != req.Username && !strings.HasPrefix(req.ClientID, req.Username+"-") {
		problem(w, http.StatusForbidden, "invalid_token")
		return
	}
	k, ok := g.keys[claims.Subject]
	switch {
	case !ok:
		problem(w, http.StatusUnauthorized, "unknown_device")
		return
	case g.revoked[claims.Subject]:
		problem(w, http.StatusForbidden, "device_revoked")
		return
	}
	if _, err := identity.VerifyToken(req.Password, ed25519.PublicKey(k.Public()), audience, time.Now()); errors.Is(err, identity.ErrTokenExpired) {
		problem(w, http.StatusUnauthorized, "token_expired")
		return
	} else if err != nil {
		problem(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	if g.seen[claims.Nonce] {
		problem(w, http.StatusUnauthorized, "token_replayed")
		return
	}
	g.seen[claims.Nonce] = true
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"allow":true}`)) // a failed write fails the CONNECT, which the test sees
}
