package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/gateway/store"
)

var modes = []string{"disk", "memory"}

// config returns a small test config for mode ("disk" in a fresh temp dir, or "memory").
func config(t testing.TB, mode string) store.Config {
	t.Helper()
	cfg := store.Config{
		Logger:       slog.New(slog.DiscardHandler),
		MemTableSize: 4 << 20,
	}
	switch mode {
	case "disk":
		cfg.Dir = t.TempDir()
	case "memory":
		cfg.InMemory = true
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	return cfg
}

func open(t testing.TB, cfg store.Config) *store.DB {
	t.Helper()
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func set(t testing.TB, db *store.DB, key, value string) {
	t.Helper()
	err := db.Update(context.Background(), func(tx kv.Txn) error {
		return tx.Set([]byte(key), []byte(value))
	})
	if err != nil {
		t.Fatalf("set %s: %v", key, err)
	}
}

// get returns the value at key, or ok false when it is missing.
func get(t testing.TB, db *store.DB, key string) (value string, ok bool) {
	t.Helper()
	err := db.View(context.Background(), func(tx kv.Txn) error {
		v, err := tx.Get([]byte(key))
		if err != nil {
			return err
		}
		value, ok = string(v), true
		return nil
	})
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("get %s: %v", key, err)
	}
	return value, ok
}

func TestCRUD(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			db := open(t, config(t, mode))
			ctx := context.Background()

			if _, ok := get(t, db, "dev/d1"); ok {
				t.Fatal("missing key found")
			}
			set(t, db, "dev/d1", "v1")
			set(t, db, "dev/d1", "v2")
			set(t, db, "meta/empty", "")
			if v, ok := get(t, db, "dev/d1"); !ok || v != "v2" {
				t.Fatalf("dev/d1 = %q, %v; want v2", v, ok)
			}
			if v, ok := get(t, db, "meta/empty"); !ok || v != "" {
				t.Fatalf("meta/empty = %q, %v; want empty and present", v, ok)
			}

			// Set copies its arguments; Get returns a copy; reads see own writes.
			err := db.Update(ctx, func(tx kv.Txn) error {
				key, val := []byte("tx/t1"), []byte("pending")
				if err := tx.Set(key, val); err != nil {
					return err
				}
				copy(key, "XXXXX")
				copy(val, "XXXXXXX")
				got, err := tx.Get([]byte("tx/t1"))
				if err != nil {
					return err
				}
				if string(got) != "pending" {
					return fmt.Errorf("own write = %q", got)
				}
				got[0] = 'Z'
				again, err := tx.Get([]byte("tx/t1"))
				if err != nil || string(again) != "pending" {
					return fmt.Errorf("Get did not copy: %q, %v", again, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}

			err = db.Update(ctx, func(tx kv.Txn) error {
				if err := tx.Delete([]byte("dev/d1")); err != nil {
					return err
				}
				if _, err := tx.Get([]byte("dev/d1")); !errors.Is(err, kv.ErrNotFound) {
					return fmt.Errorf("deleted key in txn: %v", err)
				}
				return tx.Delete([]byte("dev/never")) // deleting a missing key is fine
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := get(t, db, "dev/d1"); ok {
				t.Fatal("deleted key found")
			}

			// fn's error aborts: nothing written, the error comes back unchanged.
			errBoom := errors.New("boom")
			err = db.Update(ctx, func(tx kv.Txn) error {
				if err := tx.Set([]byte("tx/t2"), []byte("x")); err != nil {
					return err
				}
				return errBoom
			})
			if err != errBoom {
				t.Fatalf("Update = %v, want errBoom itself", err)
			}
			if _, ok := get(t, db, "tx/t2"); ok {
				t.Fatal("aborted write visible")
			}
		})
	}
}

// scanKeys collects the keys (and values) Scan yields for prefix, stopping after limit.
func scanKeys(t testing.TB, tx kv.Txn, prefix string, limit int) []string {
	t.Helper()
	var got []string
	err := tx.Scan([]byte(prefix), func(k, v []byte) (bool, error) {
		got = append(got, string(k)+"="+string(v))
		return len(got) < limit, nil
	})
	if err != nil {
		t.Fatalf("Scan %q: %v", prefix, err)
	}
	return got
}

func TestScan(t *testing.T) {
	seq := func(dev string, n int) string { return fmt.Sprintf("out/%s/%020d", dev, n) }
	keys := []string{
		seq("d1", 10), seq("d1", 2), seq("d1", 1), // inserted out of order
		seq("d10", 1), seq("d2", 1), "out/d1", "out", "outx/d1/1", "ledger/j1",
	}
	tests := []struct {
		name   string
		prefix string
		limit  int
		want   []string
	}{
		{"prefix in order", "out/d1/", 100, []string{seq("d1", 1), seq("d1", 2), seq("d1", 10)}},
		{"stops when told", "out/d1/", 2, []string{seq("d1", 1), seq("d1", 2)}},
		{"prefix bounds", "out/d", 100, []string{
			"out/d1", seq("d1", 1), seq("d1", 2), seq("d1", 10), seq("d10", 1), seq("d2", 1),
		}},
		{"no match", "sess/", 100, nil},
		{"exact key is its own prefix", "ledger/j1", 100, []string{"ledger/j1"}},
		{"empty prefix is everything", "", 100, []string{
			"ledger/j1", "out", "out/d1", seq("d1", 1), seq("d1", 2), seq("d1", 10),
			seq("d10", 1), seq("d2", 1), "outx/d1/1",
		}},
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			db := open(t, config(t, mode))
			for _, k := range keys {
				set(t, db, k, "v")
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					err := db.View(context.Background(), func(tx kv.Txn) error {
						got := scanKeys(t, tx, tt.prefix, tt.limit)
						var want []string
						for _, k := range tt.want {
							want = append(want, k+"=v")
						}
						if strings.Join(got, " ") != strings.Join(want, " ") {
							t.Errorf("Scan(%q)\n got %v\nwant %v", tt.prefix, got, want)
						}
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
				})
			}

			t.Run("sees own writes, fn may write, error stops", func(t *testing.T) {
				errStop := errors.New("stop")
				err := db.Update(context.Background(), func(tx kv.Txn) error {
					if err := tx.Set([]byte(seq("d1", 5)), []byte("new")); err != nil {
						return err
					}
					if err := tx.Delete([]byte(seq("d1", 2))); err != nil {
						return err
					}
					got := scanKeys(t, tx, "out/d1/", 100)
					want := []string{seq("d1", 1) + "=v", seq("d1", 5) + "=new", seq("d1", 10) + "=v"}
					if strings.Join(got, " ") != strings.Join(want, " ") {
						return fmt.Errorf("scan with own writes: got %v want %v", got, want)
					}
					// Acknowledge (delete) while scanning, as the outbox does.
					if err := tx.Scan([]byte("out/d1/"), func(k, _ []byte) (bool, error) {
						return true, tx.Delete(k)
					}); err != nil {
						return err
					}
					if got := scanKeys(t, tx, "out/d1/", 100); len(got) != 0 {
						return fmt.Errorf("after deleting while scanning: %v", got)
					}
					return tx.Scan([]byte("out/"), func(k, _ []byte) (bool, error) {
						return true, errStop
					})
				})
				if !errors.Is(err, errStop) {
					t.Fatalf("Update = %v, want errStop", err)
				}
			})
		})
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name    string
		key     []byte
		value   []byte
		wantErr error
		wantMem error // in memory, when it differs
	}{
		{"empty key", []byte{}, []byte("v"), store.ErrEmptyKey, nil},
		{"nil key", nil, []byte("v"), store.ErrEmptyKey, nil},
		{"longest key", bytes.Repeat([]byte("k"), store.MaxKeySize), []byte("v"), nil, nil},
		{"key too long", bytes.Repeat([]byte("k"), store.MaxKeySize+1), []byte("v"), store.ErrKeyTooLong, nil},
		{"reserved prefix", []byte("!badger!head"), []byte("v"), store.ErrReservedKey, nil},
		{"largest in-memory value", []byte("meta/big"), make([]byte, store.MaxValueSize-1), nil, nil},
		{"largest value", []byte("meta/big"), make([]byte, store.MaxValueSize), nil, store.ErrValueTooLarge},
		{"value too large", []byte("meta/big"), make([]byte, store.MaxValueSize+1), store.ErrValueTooLarge, nil},
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			cfg := config(t, mode)
			cfg.MemTableSize = 0 // default: in memory a 1 MiB value must fit one batch
			db := open(t, cfg)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					want := tt.wantErr
					if mode == "memory" && tt.wantMem != nil {
						want = tt.wantMem
					}
					err := db.Update(context.Background(), func(tx kv.Txn) error {
						return tx.Set(tt.key, tt.value)
					})
					if !errors.Is(err, want) || (want == nil && err != nil) {
						t.Fatalf("Set = %.200v, want %v", err, want)
					}
					if want == nil {
						if v, ok := get(t, db, string(tt.key)); !ok || len(v) != len(tt.value) {
							t.Fatalf("read back %d bytes, %v", len(v), ok)
						}
						return
					}
					if msg := err.Error(); !strings.HasPrefix(msg, "store: ") || len(msg) > 200 {
						t.Errorf("error %.300q: want a short message starting with store:", msg)
					}
					if want == store.ErrValueTooLarge {
						return
					}
					err = db.View(context.Background(), func(tx kv.Txn) error {
						_, err := tx.Get(tt.key)
						return err
					})
					if !errors.Is(err, want) {
						t.Errorf("Get = %v, want %v", err, want)
					}
				})
			}
		})
	}
}

func TestTxnMisuse(t *testing.T) {
	db := open(t, config(t, "memory"))
	ctx := context.Background()
	err := db.View(ctx, func(tx kv.Txn) error { return tx.Set([]byte("meta/x"), nil) })
	if !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Set in View = %v, want ErrReadOnly", err)
	}
	err = db.View(ctx, func(tx kv.Txn) error { return tx.Delete([]byte("meta/x")) })
	if !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Delete in View = %v, want ErrReadOnly", err)
	}

	var kept kv.Txn
	if err := db.Update(ctx, func(tx kv.Txn) error { kept = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Get":    func() error { _, err := kept.Get([]byte("meta/x")); return err }(),
		"Set":    kept.Set([]byte("meta/x"), nil),
		"Delete": kept.Delete([]byte("meta/x")),
		"Scan":   kept.Scan(nil, func(_, _ []byte) (bool, error) { return true, nil }),
	} {
		if !errors.Is(err, store.ErrTxnDone) {
			t.Errorf("%s after fn returned = %v, want ErrTxnDone", name, err)
		}
	}
}

func TestTxnTooBig(t *testing.T) {
	db := open(t, config(t, "memory")) // in memory every value counts fully in the batch
	err := db.Update(context.Background(), func(tx kv.Txn) error {
		for i := range 8 {
			if err := tx.Set(fmt.Appendf(nil, "out/d/%d", i), make([]byte, 512<<10)); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, store.ErrTxnTooBig) {
		t.Fatalf("Update = %v, want ErrTxnTooBig", err)
	}
}

func TestOpenConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  store.Config
	}{
		{"no dir", store.Config{}},
		{"dir and in memory", store.Config{Dir: t.TempDir(), InMemory: true}},
		{"negative gc interval", store.Config{InMemory: true, GCInterval: -1}},
		{"negative sync delay", store.Config{InMemory: true, SyncDelay: -1}},
		{"tiny memtable", store.Config{InMemory: true, MemTableSize: 4096}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(tt.cfg)
			if !errors.Is(err, store.ErrInvalidConfig) {
				if db != nil {
					_ = db.Close() // the assertion below already failed the test
				}
				t.Fatalf("Open = %v, want ErrInvalidConfig", err)
			}
		})
	}
}
