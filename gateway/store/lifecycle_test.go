package store_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/gateway/store"
)

// goroutinesSettle waits until the goroutine count is at most want.
func goroutinesSettle(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want <= %d:\n%s", n, want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			cfg := config(t, mode)
			cfg.GCInterval = time.Millisecond
			db := open(t, cfg)
			base := runtime.NumGoroutine()

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- db.Run(ctx) }()
			if mode == "disk" { // wait for a few GC passes to have run
				deadline := time.Now().Add(5 * time.Second)
				for db.Stats().GCPasses < 3 {
					if time.Now().After(deadline) {
						t.Fatal("no GC passes")
					}
					time.Sleep(time.Millisecond)
				}
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			goroutinesSettle(t, base)
		})
	}
}

func TestCloseStopsEverything(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			base := runtime.NumGoroutine()
			db, err := store.Open(config(t, mode))
			if err != nil {
				t.Fatal(err)
			}
			set(t, db, "meta/x", "1")
			runDone := make(chan error, 1)
			go func() { runDone <- db.Run(context.Background()) }()

			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 { // concurrent Closes all wait and agree
				wg.Go(func() { errs <- db.Close() })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatalf("Close again: %v", err)
			}
			// Run returns nil when Close stops it, ErrClosed if Close won the race.
			if err := <-runDone; err != nil && !errors.Is(err, store.ErrClosed) {
				t.Fatalf("Run racing Close = %v", err)
			}

			ctx := context.Background()
			noop := func(kv.Txn) error { return nil }
			for name, err := range map[string]error{
				"Update": db.Update(ctx, noop),
				"View":   db.View(ctx, noop),
				"Run":    db.Run(ctx),
			} {
				if !errors.Is(err, store.ErrClosed) {
					t.Errorf("%s after Close = %v, want ErrClosed", name, err)
				}
			}
			_ = db.Stats() // safe after Close
			goroutinesSettle(t, base)
		})
	}
}

func TestCloseWaitsForUpdates(t *testing.T) {
	db, err := store.Open(config(t, "disk"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	var ok atomic.Int64
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			err := db.Update(context.Background(), func(tx kv.Txn) error {
				return tx.Set(fmt.Appendf(nil, "tx/%d", i), []byte("x"))
			})
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, store.ErrClosed):
				errs <- err
			}
		})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Update racing Close: %v", err)
	}
	t.Logf("%d of %d Updates ran before Close", ok.Load(), n)
}

func TestContextCancelled(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			db := open(t, config(t, mode))

			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			ran := false
			err := db.Update(ctx, func(kv.Txn) error { ran = true; return nil })
			if !errors.Is(err, context.Canceled) || ran {
				t.Errorf("Update on a cancelled ctx = %v, fn ran %v", err, ran)
			}
			if err := db.View(ctx, func(kv.Txn) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
				t.Errorf("View on a cancelled ctx = %v, fn ran %v", err, ran)
			}

			// Cancelled while fn runs: aborted before the commit.
			ctx, cancel = context.WithCancel(context.Background())
			err = db.Update(ctx, func(tx kv.Txn) error {
				cancel()
				return tx.Set([]byte("tx/late"), []byte("x"))
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Update cancelled in fn = %v", err)
			}
			if _, ok := get(t, db, "tx/late"); ok {
				t.Error("write of a cancelled Update is visible")
			}
		})
	}
}
