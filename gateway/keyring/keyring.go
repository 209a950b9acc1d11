// Package keyring keeps the gateway's mandate signing keys in the store: it creates the
// first key on first start, rotates to a new key on request, and retires an old key once
// every mandate it signed has expired, so that the JWKS publishes exactly the keys a
// valid mandate may have been signed with.
//
// Keys in the store (see gateway/store's doc for the whole layout):
//
//	keys/mandate/<kid>        the private key, PEM (PKCS#8)
//	keys/mandate-info/<kid>   JSON Info without Active: created, rotated_out, retire_after
//	meta/mandate-active-kid   the kid that signs
//	keys/mandate-retired/<kid> the public JWK of a retired key, kept for the audit trail
//
// A key rotated out at T signs nothing after T, and no mandate lives longer than
// MaxValidity, so the key may leave the JWKS at T + MaxValidity. Retiring deletes the
// private key from the store.
package keyring

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
)

// Store keys.
const (
	retiredPrefix = "keys/mandate-retired/"
	keyPrefix     = "keys/mandate/"
	infoPrefix    = "keys/mandate-info/"
	activeKey     = "meta/mandate-active-kid"
)

// ErrConfig reports a bad Config.
var ErrConfig = errors.New("keyring: bad config")

// Config configures a Ring.
type Config struct {
	Store kv.Store // required
	// MaxValidity is the longest a mandate signed now can verify: the mandate TTL plus
	// authz.Leeway. Required.
	MaxValidity time.Duration
	// CheckEvery is how often Run retires expired keys; default 1 minute.
	CheckEvery time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger // default slog.Default()
}

// Info describes one key.
type Info struct {
	KID     string    `json:"kid"`
	Active  bool      `json:"active"`
	Created time.Time `json:"created"`
	// RotatedOut is when another key replaced it (zero for the active key).
	RotatedOut time.Time `json:"rotated_out,omitzero"`
	// RetireAfter is when it leaves the JWKS (zero for the active key).
	RetireAfter time.Time `json:"retire_after,omitzero"`
}

// Ring is the gateway's set of mandate keys. It is safe for concurrent use.
type Ring struct {
	cfg  Config
	log  *slog.Logger
	keys *authz.KeySet

	mu    sync.Mutex // serialises Rotate and Retire
	infos map[string]Info
}

// Open loads the keys from the store, creating the first one on first start, and retires
// keys whose time has come.
func Open(ctx context.Context, cfg Config) (*Ring, error) {
	if cfg.Store == nil || cfg.MaxValidity <= 0 {
		return nil, fmt.Errorf("%w: Store and a positive MaxValidity are required", ErrConfig)
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Ring{cfg: cfg, log: cfg.Logger.With("component", "keyring"), infos: map[string]Info{}}
	keys, active, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	if active == "" {
		k, err := r.create(ctx, "")
		if err != nil {
			return nil, err
		}
		keys, active = append(keys, k), k.KID()
	}
	var (
		act    *authz.SigningKey
		others []*authz.SigningKey
	)
	for _, k := range keys {
		if k.KID() == active {
			act = k
		} else {
			others = append(others, k)
		}
	}
	if act == nil {
		return nil, fmt.Errorf("keyring: the active key %s is missing from the store", active)
	}
	if r.keys, err = authz.NewKeySet(act, others...); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if _, err := r.RetireExpired(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads the keys and their infos. A key rotated out by a version without infos is
// given a full MaxValidity from now.
func (r *Ring) load(ctx context.Context) ([]*authz.SigningKey, string, error) {
	var (
		keys   []*authz.SigningKey
		active string
	)
	err := r.cfg.Store.View(ctx, func(txn kv.Txn) error {
		if b, err := txn.Get([]byte(activeKey)); err == nil {
			active = string(b)
		} else if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if err := txn.Scan([]byte(infoPrefix), func(k, v []byte) (bool, error) {
			var in Info
			if err := json.Unmarshal(v, &in); err != nil {
				return false, fmt.Errorf("%s: %w", k, err)
			}
			r.infos[in.KID] = in
			return true, nil
		}); err != nil {
			return err
		}
		return txn.Scan([]byte(keyPrefix), func(name, v []byte) (bool, error) {
			k, err := authz.ParseSigningKey(v)
			if err != nil {
				return false, fmt.Errorf("%s: %w", name, err)
			}
			keys = append(keys, k)
			return true, nil
		})
	})
	if err != nil {
		return nil, "", fmt.Errorf("keyring: %w", err)
	}
	now := r.cfg.Now()
	for _, k := range keys {
		in, ok := r.infos[k.KID()]
		if !ok {
			in = Info{KID: k.KID(), Created: k.Created()}
			if k.KID() != active {
				in.RotatedOut, in.RetireAfter = now, now.Add(r.cfg.MaxValidity)
			}
		}
		in.Active = k.KID() == active
		r.infos[k.KID()] = in
	}
	return keys, active, nil
}

// create generates a key, stores it, and makes it the active one; the previous active
// key (prev, if any) is marked rotated out, in the same transaction.
func (r *Ring) create(ctx context.Context, prev string) (*authz.SigningKey, error) {
	now := r.cfg.Now()
	k, err := authz.GenerateSigningKey(rand.Reader, now)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	pem, err := k.MarshalPEM()
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	next := Info{KID: k.KID(), Active: true, Created: now}
	var old Info
	if prev != "" {
		old = r.infos[prev]
		old.Active, old.RotatedOut, old.RetireAfter = false, now, now.Add(r.cfg.MaxValidity)
	}
	err = r.cfg.Store.Update(ctx, func(txn kv.Txn) error {
		if err := txn.Set([]byte(keyPrefix+k.KID()), pem); err != nil {
			return err
		}
		if err := setInfo(txn, next); err != nil {
			return err
		}
		if prev != "" {
			if err := setInfo(txn, old); err != nil {
				return err
			}
		}
		return txn.Set([]byte(activeKey), []byte(k.KID()))
	})
	if err != nil {
		return nil, fmt.Errorf("keyring: storing key %s: %w", k.KID(), err)
	}
	r.infos[k.KID()] = next
	if prev != "" {
		r.infos[prev] = old
	}
	return k, nil
}

func setInfo(txn kv.Txn, in Info) error {
	in.Active = false // the active kid is kept in one place only
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return txn.Set([]byte(infoPrefix+in.KID), b)
}

// Keys returns the key set that signs and verifies mandates.
func (r *Ring) Keys() *authz.KeySet { return r.keys }

// Rotate makes a new key the signing key. The previous one keeps verifying until every
// mandate it signed has expired.
func (r *Ring) Rotate(ctx context.Context) (Info, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.keys.ActiveKID()
	k, err := r.create(ctx, prev)
	if err != nil {
		return Info{}, err
	}
	if err := r.keys.Rotate(k); err != nil {
		return Info{}, fmt.Errorf("keyring: %w", err)
	}
	r.log.Info("mandate signing key rotated", "kid", k.KID(), "previous", prev,
		"previous_retires_after", r.infos[prev].RetireAfter)
	return r.infos[k.KID()], nil
}

// List returns every key, the active one first, then by creation, newest first.
func (r *Ring) List() []Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Info, 0, len(r.infos))
	for _, in := range r.infos {
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Info) int {
		if a.Active != b.Active {
			if a.Active {
				return -1
			}
			return 1
		}
		return b.Created.Compare(a.Created)
	})
	return out
}

// RetireExpired retires the keys whose RetireAfter has passed and returns their kids.
func (r *Ring) RetireExpired(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	var retired []string
	for kid, in := range r.infos {
		if in.Active || in.RetireAfter.IsZero() || now.Before(in.RetireAfter) {
			continue
		}
		err := r.cfg.Store.Update(ctx, func(txn kv.Txn) error {
			pem, err := txn.Get([]byte(keyPrefix + kid))
			if err != nil {
				return err
			}
			k, err := authz.ParseSigningKey(pem)
			if err != nil {
				return err
			}
			jwk, err := k.PublicJWK()
			if err != nil {
				return err
			}
			if err := txn.Set([]byte(retiredPrefix+kid), jwk); err != nil {
				return err
			}
			if err := txn.Delete([]byte(keyPrefix + kid)); err != nil {
				return err
			}
			return txn.Delete([]byte(infoPrefix + kid))
		})
		if err != nil {
			return retired, fmt.Errorf("keyring: retiring %s: %w", kid, err)
		}
		if err := r.keys.Retire(kid); err != nil {
			return retired, fmt.Errorf("keyring: %w", err)
		}
		delete(r.infos, kid)
		retired = append(retired, kid)
		r.log.Info("mandate signing key retired", "kid", kid, "rotated_out", in.RotatedOut)
	}
	slices.Sort(retired)
	return retired, nil
}

// AllPublic returns every public key that ever signed here, retired ones included:
// audit checkpoints and receipts outlive the keys' time in the JWKS.
func (r *Ring) AllPublic(ctx context.Context) (*authz.PublicKeys, error) {
	b, err := r.AllJWKS(ctx)
	if err != nil {
		return nil, err
	}
	return authz.ParseJWKS(b)
}

// AllJWKS is AllPublic as a JWK Set: the JWKS plus the retired keys.
func (r *Ring) AllJWKS(ctx context.Context) ([]byte, error) {
	jwks, err := r.keys.JWKS()
	if err != nil {
		return nil, err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	err = r.cfg.Store.View(ctx, func(txn kv.Txn) error {
		return txn.Scan([]byte(retiredPrefix), func(_, v []byte) (bool, error) {
			set.Keys = append(set.Keys, json.RawMessage(slices.Clone(v)))
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return b, nil
}

// Run retires expired keys every CheckEvery until ctx ends.
func (r *Ring) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := r.RetireExpired(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("retiring mandate keys", "err", err)
			}
		}
	}
}
