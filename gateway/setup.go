package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

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
