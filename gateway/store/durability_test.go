package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/gateway/store"
)

// consumeOnce runs n goroutines that each try to move key from "issued" to "redeemed",
// and returns how many succeeded. On their first attempt all of them read "issued"
// before any may write, so n-1 must conflict.
func consumeOnce(t *testing.T, db *store.DB, key string, n int) int {
	t.Helper()
	set(t, db, key, "issued")
	errSpent := errors.New("already redeemed")
	var wins, readers atomic.Int64
	allRead := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			first := true
			err := db.Update(context.Background(), func(tx kv.Txn) error {
				v, err := tx.Get([]byte(key))
				if err != nil {
					return err
				}
				if first {
					first = false
					if readers.Add(1) == int64(n) {
						close(allRead)
					}
					<-allRead
				}
				if string(v) != "issued" {
					return errSpent
				}
				return tx.Set([]byte(key), []byte("redeemed"))
			})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, errSpent):
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected Update error: %v", err)
	}
	if v, _ := get(t, db, key); v != "redeemed" {
		t.Errorf("final state %q, want redeemed", v)
	}
	return int(wins.Load())
}

func TestConsumeOnce(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			const n = 50
			cfg := config(t, mode)
			cfg.MaxRetries = n // every loser conflicts once, then sees "redeemed"
			db := open(t, cfg)
			for i := range 3 {
				before := db.Stats().ConflictRetries
				if wins := consumeOnce(t, db, fmt.Sprintf("ledger/j%d", i), n); wins != 1 {
					t.Fatalf("round %d: %d winners, want exactly 1", i, wins)
				}
				if r := db.Stats().ConflictRetries - before; r < n-1 {
					t.Errorf("round %d: %d conflict retries, want >= %d", i, r, n-1)
				}
			}
			t.Logf("stats: %+v", db.Stats())
		})
	}
}

// conflictOnce makes the first run of the returned fn conflict: it reads key, lets a
// rival Update write key, then writes key itself.
func conflictOnce(t *testing.T, db *store.DB, key string) (fn func(kv.Txn) error, runs *atomic.Int64) {
	t.Helper()
	runs = new(atomic.Int64)
	return func(tx kv.Txn) error {
		if _, err := tx.Get([]byte(key)); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if runs.Add(1) == 1 {
			rival := db.Update(context.Background(), func(tx kv.Txn) error {
				return tx.Set([]byte(key), []byte("rival"))
			})
			if rival != nil {
				return fmt.Errorf("rival: %w", rival)
			}
		}
		return tx.Set([]byte(key), []byte("mine"))
	}, runs
}

func TestConflictRetries(t *testing.T) {
	tests := []struct {
		name       string
		maxRetries int
		wantErr    error
		wantRuns   int64
		wantValue  string
	}{
		{"default retries win", 0, nil, 2, "mine"},
		{"no retries give up", -1, kv.ErrConflict, 1, "rival"},
	}
	for _, mode := range modes {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				cfg := config(t, mode)
				cfg.MaxRetries = tt.maxRetries
				db := open(t, cfg)
				fn, runs := conflictOnce(t, db, "ledger/j")
				err := db.Update(context.Background(), fn)
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Fatalf("Update = %v, want %v", err, tt.wantErr)
				}
				if runs.Load() != tt.wantRuns {
					t.Errorf("fn ran %d times, want %d", runs.Load(), tt.wantRuns)
				}
				if v, _ := get(t, db, "ledger/j"); v != tt.wantValue {
					t.Errorf("value %q, want %q", v, tt.wantValue)
				}
				st := db.Stats()
				if tt.wantErr != nil && st.Conflicts != 1 {
					t.Errorf("Stats.Conflicts = %d, want 1", st.Conflicts)
				}
				if tt.wantErr == nil && st.ConflictRetries != 1 {
					t.Errorf("Stats.ConflictRetries = %d, want 1", st.ConflictRetries)
				}
			})
		}
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	cfg := config(t, "disk")
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	set(t, db, "ledger/j1", "redeemed")
	big := bytes.Repeat([]byte("a"), 256<<10) // goes to the value log
	if err := db.Update(context.Background(), func(tx kv.Txn) error {
		return tx.Set([]byte("keys/mandate/k1"), big)
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, cfg)
	if v, ok := get(t, db, "ledger/j1"); !ok || v != "redeemed" {
		t.Fatalf("after reopen: %q, %v", v, ok)
	}
	if v, _ := get(t, db, "keys/mandate/k1"); v != string(big) {
		t.Fatalf("large value after reopen: %d bytes, want %d", len(v), len(big))
	}
}

func TestGroupCommit(t *testing.T) {
	db := open(t, config(t, "disk"))
	const writers, each = 64, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := db.Update(context.Background(), func(tx kv.Txn) error {
					return tx.Set(fmt.Appendf(nil, "out/d%d/%020d", w, i), []byte("frame"))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := db.Stats()
	t.Logf("commits %d, syncs %d (%.3f syncs/commit)", st.Commits, st.Syncs, float64(st.Syncs)/float64(st.Commits))
	if st.Commits != writers*each {
		t.Errorf("commits = %d, want %d", st.Commits, writers*each)
	}
	if st.Syncs == 0 || st.Syncs >= st.Commits {
		t.Errorf("syncs = %d for %d commits: want 0 < syncs < commits", st.Syncs, st.Commits)
	}
}

func TestReadOnlyUpdate(t *testing.T) {
	db := open(t, config(t, "disk"))
	set(t, db, "idem/a/h", "answer")
	before := db.Stats()
	// Everything is synced already: a read-only Update neither commits nor syncs.
	var got string
	if err := db.Update(context.Background(), func(tx kv.Txn) error {
		v, err := tx.Get([]byte("idem/a/h"))
		got = string(v)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	after := db.Stats()
	if got != "answer" || after.Commits != before.Commits || after.Syncs != before.Syncs {
		t.Fatalf("got %q; commits %d->%d syncs %d->%d", got, before.Commits, after.Commits, before.Syncs, after.Syncs)
	}
}

func TestSyncDelay(t *testing.T) {
	cfg := config(t, "disk")
	cfg.SyncDelay = 2 * time.Millisecond
	db := open(t, cfg)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if err := db.Update(context.Background(), func(tx kv.Txn) error {
				return tx.Set(fmt.Appendf(nil, "sess/d%d", i), []byte("s"))
			}); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	if st := db.Stats(); st.Syncs >= st.Commits {
		t.Errorf("with a 2ms window: %d syncs for %d commits", st.Syncs, st.Commits)
	}
}

func TestStatsSizes(t *testing.T) {
	cfg := config(t, "disk")
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	set(t, db, "meta/small", "1")
	if err := db.Update(context.Background(), func(tx kv.Txn) error {
		return tx.Set([]byte("meta/large"), make([]byte, 64<<10))
	}); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.Commits != 2 || st.Syncs != 2 {
		t.Errorf("Stats = %+v, want 2 commits, 2 syncs", st)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, cfg) // Badger measures its files when it opens them
	if st := db.Stats(); st.LSMBytes <= 0 || st.VlogBytes <= 0 {
		t.Errorf("sizes after reopen: LSM %d, vlog %d; want both > 0", st.LSMBytes, st.VlogBytes)
	}
}
