package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/gateway/store"
	"github.com/prometheus/client_golang/prometheus"
)

// What a gateway loads or creates once, on first start: its admin token, its id, its
// mandate signing keys.

func loadOrCreateSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if tok := strings.TrimSpace(string(b)); len(tok) >= 32 {
			return tok, nil
		}
		return "", fmt.Errorf("gateway: %s is too short; delete it to make a new one", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("gateway: admin token: %w", err)
	}
	tok, err := randomHex(32)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("gateway: admin token: %w", err)
	}
	return tok, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("gateway: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func metaOrCreate(ctx context.Context, st kv.Store, name string, mk func() (string, error)) (string, error) {
	var v string
	err := st.Update(ctx, func(txn kv.Txn) error {
		b, err := txn.Get([]byte("meta/" + name))
		if err == nil {
			v = string(b)
			return nil
		} else if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if v, err = mk(); err != nil {
			return err
		}
		return txn.Set([]byte("meta/"+name), []byte(v))
	})
	return v, err
}

// loadKeys loads the mandate signing keys, creating the first one on first start.
func loadKeys(ctx context.Context, st kv.Store) (*authz.KeySet, error) {
	var (
		keys   []*authz.SigningKey
		active string
	)
	err := st.View(ctx, func(txn kv.Txn) error {
		if b, err := txn.Get([]byte("meta/mandate-active-kid")); err == nil {
			active = string(b)
		} else if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		return txn.Scan([]byte("keys/mandate/"), func(_, v []byte) (bool, error) {
			k, err := authz.ParseSigningKey(v)
			if err != nil {
				return false, err
			}
			keys = append(keys, k)
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: mandate keys: %w", err)
	}
	if active == "" {
		k, err := authz.GenerateSigningKey(rand.Reader, time.Now())
		if err != nil {
			return nil, err
		}
		pem, err := k.MarshalPEM()
		if err != nil {
			return nil, err
		}
		err = st.Update(ctx, func(txn kv.Txn) error {
			if err := txn.Set([]byte("keys/mandate/"+k.KID()), pem); err != nil {
				return err
			}
			return txn.Set([]byte("meta/mandate-active-kid"), []byte(k.KID()))
		})
		if err != nil {
			return nil, fmt.Errorf("gateway: mandate keys: %w", err)
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
		return nil, fmt.Errorf("gateway: active mandate key %s is missing from the store", active)
	}
	return authz.NewKeySet(act, others...)
}

func storeCollector(db *store.DB) []prometheus.Collector {
	g := func(name, help string, f func(store.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(db.Stats()) })
	}
	return []prometheus.Collector{
		g("earshot_store_lsm_bytes", "Badger LSM size.", func(s store.Stats) float64 { return float64(s.LSMBytes) }),
		g("earshot_store_vlog_bytes", "Badger value log size.", func(s store.Stats) float64 { return float64(s.VlogBytes) }),
		g("earshot_store_syncs", "Group-commit syncs performed.", func(s store.Stats) float64 { return float64(s.Syncs) }),
		g("earshot_store_commits", "Durable commits.", func(s store.Stats) float64 { return float64(s.Commits) }),
	}
}
