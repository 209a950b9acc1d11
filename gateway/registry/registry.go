// Package registry keeps who may talk to the gateway: enrolled devices (bound to a user
// by a one-time pairing code the user created), the device tokens they connect with,
// and the API keys agents call the REST API with.
//
// Pairing codes and API keys are stored only as SHA-256 hashes; a device's public key is
// stored, its private key never leaves it. A device token's nonce is remembered until
// the token expires, so a token works once.
package registry

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// Errors.
var (
	ErrBadPairingCode = errors.New("registry: pairing code unknown, used or expired")
	ErrUnknownDevice  = errors.New("registry: unknown device")
	ErrBadUser        = errors.New("registry: user handles are 1-32 of a-z, 0-9, '-', '_'")
	ErrBadKind        = errors.New("registry: device kind must be glasses, kiosk or phone")
	ErrBadAPIKey      = errors.New("registry: unknown API key")
)

// Kind is a kind of device.
type Kind string

// Device kinds.
const (
	KindGlasses Kind = "glasses"
	KindKiosk   Kind = "kiosk"
	// KindPhone is the user's phone: it approves the purchases of the user's other
	// devices that need a stronger check (decoupled approval) and sets the user's PIN.
	KindPhone Kind = "phone"
)

// Device is an enrolled device.
type Device struct {
	ID         string    `json:"device"`
	User       string    `json:"user"`
	Kind       Kind      `json:"kind"`
	Name       string    `json:"name"`
	PublicKey  []byte    `json:"public_key"`
	EnrolledAt time.Time `json:"enrolled_at"`
	Revoked    bool      `json:"revoked"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Pairing is a one-time pairing code as handed to the user.
type Pairing struct {
	Code      string    `json:"code"`
	User      string    `json:"user"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Config configures a Registry.
type Config struct {
	Store kv.Store // required
	// Audience is the audience device tokens must name; required.
	Audience string
	// PairingTTL is how long a pairing code stays valid; default 10 minutes.
	PairingTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand is the randomness source; default crypto/rand.
	Rand io.Reader
	// MaxNonces bounds the remembered token nonces; default 100000. When full, new
	// tokens are refused as replayed until old ones expire (fail closed).
	MaxNonces int
}

// Registry is the device and agent registry. It is safe for concurrent use.
type Registry struct {
	cfg Config

	mu     sync.Mutex
	nonces map[string]time.Time // nonce -> token expiry
}

// New returns a Registry.
func New(cfg Config) (*Registry, error) {
	if cfg.Store == nil || cfg.Audience == "" {
		return nil, errors.New("registry: Store and Audience are required")
	}
	if cfg.PairingTTL <= 0 {
		cfg.PairingTTL = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.MaxNonces <= 0 {
		cfg.MaxNonces = 100000
	}
	return &Registry{cfg: cfg, nonces: make(map[string]time.Time)}, nil
}

// Audience returns the audience device tokens must carry.
func (r *Registry) Audience() string { return r.cfg.Audience }

var userRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// UserID maps a user handle ("alice") to its user id ("usr_alice").
func UserID(handle string) (string, error) {
	h := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(handle)), "usr_")
	if !userRE.MatchString(h) {
		return "", ErrBadUser
	}
	return "usr_" + h, nil
}

// codeAlphabet avoids look-alike characters (0/O, 1/I/L).
const codeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

type pairingRecord struct {
	User      string    `json:"user"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreatePairingCode makes a one-time pairing code for the user: 8 characters from a
// 31-letter alphabet (about 40 bits), shown as XXXX-XXXX, valid for PairingTTL.
func (r *Registry) CreatePairingCode(ctx context.Context, handle string) (Pairing, error) {
	user, err := UserID(handle)
	if err != nil {
		return Pairing{}, err
	}
	code, err := r.newCode()
	if err != nil {
		return Pairing{}, err
	}
	p := Pairing{Code: code, User: user, ExpiresAt: r.cfg.Now().Add(r.cfg.PairingTTL).UTC()}
	rec, _ := json.Marshal(pairingRecord{User: user, ExpiresAt: p.ExpiresAt})
	err = r.cfg.Store.Update(ctx, func(txn kv.Txn) error { return txn.Set(pairKey(p.Code), rec) })
	if err != nil {
		return Pairing{}, fmt.Errorf("registry: pairing code: %w", err)
	}
	return p, nil
}

// newCode draws 8 characters uniformly from codeAlphabet: bytes at or above the
// largest multiple of the alphabet's size are rejected, so no letter is favoured.
func (r *Registry) newCode() (string, error) {
	const limit = 256 - 256%len(codeAlphabet)
	var sb strings.Builder
	var b [16]byte
	for n := 0; n < 8; {
		if _, err := io.ReadFull(r.cfg.Rand, b[:]); err != nil {
			return "", fmt.Errorf("registry: pairing code: %w", err)
		}
		for _, c := range b {
			if int(c) >= limit || n == 8 {
				continue
			}
			if n == 4 {
				sb.WriteByte('-')
			}
			sb.WriteByte(codeAlphabet[int(c)%len(codeAlphabet)])
			n++
		}
	}
	return sb.String(), nil
}

// EnrollRequest is a device's enrolment.
type EnrollRequest struct {
	Code      string `json:"code"`
	PublicKey string `json:"public_key"` // identity.EncodePublic
	Proof     string `json:"proof"`      // identity.Key.EnrollProof(code)
	Kind      Kind   `json:"kind"`
	Name      string `json:"name"`
}

// Enroll consumes a pairing code and binds the device key to the code's user. The
// device proves it holds the key by signing the code.
func (r *Registry) Enroll(ctx context.Context, req EnrollRequest) (Device, error) {
	if req.Kind != KindGlasses && req.Kind != KindKiosk && req.Kind != KindPhone {
		return Device{}, ErrBadKind
	}
	if len(req.Name) > wire.MaxNameBytes {
		return Device{}, fmt.Errorf("registry: name of %d bytes, limit %d", len(req.Name), wire.MaxNameBytes)
	}
	pub, err := identity.DecodePublic(req.PublicKey)
	if err != nil {
		return Device{}, err
	}
	code := normaliseCode(req.Code)
	if err := identity.VerifyEnrollProof(pub, code, req.Proof); err != nil {
		return Device{}, err
	}
	now := r.cfg.Now()
	d := Device{ID: identity.DeviceID(pub), Kind: req.Kind, Name: req.Name, PublicKey: pub, EnrolledAt: now.UTC()}
	err = r.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		raw, err := txn.Get(pairKey(code))
		if errors.Is(err, kv.ErrNotFound) {
			return ErrBadPairingCode
		} else if err != nil {
			return err
		}
		var p pairingRecord
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("registry: pairing record: %w", err)
		}
		if !now.Before(p.ExpiresAt) {
			return ErrBadPairingCode
		}
		d.User = p.User
		rec, _ := json.Marshal(d)
		if err := txn.Delete(pairKey(code)); err != nil {
			return err
		}
		return txn.Set(deviceKey(d.ID), rec)
	})
	if err != nil {
		return Device{}, err
	}
	return d, nil
}

// normaliseCode accepts codes typed in lower case or without the dash.
func normaliseCode(c string) string {
	c = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(c), "-", ""))
	if len(c) == 8 {
		c = c[:4] + "-" + c[4:]
	}
	return c
}

// Device returns an enrolled device, revoked or not.
func (r *Registry) Device(ctx context.Context, id string) (Device, error) {
	var d Device
	err := r.cfg.Store.View(ctx, func(txn kv.Txn) error {
		raw, err := txn.Get(deviceKey(id))
		if errors.Is(err, kv.ErrNotFound) {
			return ErrUnknownDevice
		} else if err != nil {
			return err
		}
		return json.Unmarshal(raw, &d)
	})
	return d, err
}

// Devices lists every enrolled device.
func (r *Registry) Devices(ctx context.Context) ([]Device, error) {
	var out []Device
	err := r.cfg.Store.View(ctx, func(txn kv.Txn) error {
		return txn.Scan([]byte("dev/"), func(_, v []byte) (bool, error) {
			var d Device
			if err := json.Unmarshal(v, &d); err != nil {
				return false, err
			}
			out = append(out, d)
			return true, nil
		})
	})
	return out, err
}

// Revoke marks a device revoked; its tokens are refused from then on.
func (r *Registry) Revoke(ctx context.Context, id string) (Device, error) {
	var d Device
	err := r.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		raw, err := txn.Get(deviceKey(id))
		if errors.Is(err, kv.ErrNotFound) {
			return ErrUnknownDevice
		} else if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return err
		}
		if !d.Revoked {
			d.Revoked, d.RevokedAt = true, r.cfg.Now().UTC()
		}
		rec, _ := json.Marshal(d)
		return txn.Set(deviceKey(id), rec)
	})
	return d, err
}

// Authenticate checks a device token: a known, unrevoked device, a valid signature
// for the gateway's audience, unexpired, with a nonce not seen before. The error is a
// *wire.Error with the disconnect code the device should be given.
func (r *Registry) Authenticate(ctx context.Context, token string) (Device, error) {
	claims, err := identity.ParseToken(token)
	if err != nil {
		return Device{}, wire.NewError(wire.CodeInvalidToken, "malformed device token")
	}
	d, err := r.Device(ctx, claims.Subject)
	if errors.Is(err, ErrUnknownDevice) {
		return Device{}, wire.NewError(wire.CodeUnknownDevice, "device is not enrolled")
	} else if err != nil {
		return Device{}, wire.NewError(wire.CodeUnavailable, "device registry unavailable")
	}
	if d.Revoked {
		return Device{}, wire.NewError(wire.CodeDeviceRevoked, "device was revoked")
	}
	now := r.cfg.Now()
	claims, err = identity.VerifyToken(token, ed25519.PublicKey(d.PublicKey), r.cfg.Audience, now)
	switch {
	case errors.Is(err, identity.ErrTokenExpired):
		return Device{}, wire.NewError(wire.CodeTokenExpired, "device token expired")
	case errors.Is(err, identity.ErrTokenAudience):
		return Device{}, wire.NewError(wire.CodeInvalidToken, "device token is for another gateway")
	case err != nil:
		return Device{}, wire.NewError(wire.CodeInvalidToken, "device token does not verify")
	}
	if !r.useNonce(d.ID+"/"+claims.Nonce, time.Unix(claims.Expiry, 0), now) {
		return Device{}, wire.NewError(wire.CodeTokenReplayed, "device token was already used")
	}
	return d, nil
}

func (r *Registry) useNonce(n string, exp, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.nonces[n]; seen {
		return false
	}
	if len(r.nonces) >= r.cfg.MaxNonces {
		for k, e := range r.nonces {
			if !now.Before(e) {
				delete(r.nonces, k)
			}
		}
		if len(r.nonces) >= r.cfg.MaxNonces {
			return false
		}
	}
	r.nonces[n] = exp
	return true
}

// NewAPIKey returns a fresh random API key with the "esk_" prefix.
func (r *Registry) NewAPIKey() (string, error) {
	var b [24]byte
	if _, err := io.ReadFull(r.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("registry: api key: %w", err)
	}
	return "esk_" + hex.EncodeToString(b[:]), nil
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func pairKey(code string) []byte { return []byte("pair/" + hashHex(code)) }
func deviceKey(id string) []byte { return []byte("dev/" + id) }
func apiKeyKey(k string) []byte  { return []byte("apikey/" + hashHex(k)) }
func agentKey(id string) []byte  { return []byte("agent/" + id) }
