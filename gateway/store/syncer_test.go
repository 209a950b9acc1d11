package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
)

// fakeSync is a sync function whose calls the test releases one by one.
type fakeSync struct {
	started chan struct{}
	release chan error
}

func newFakeSync() *fakeSync {
	return &fakeSync{started: make(chan struct{}, 16), release: make(chan error)}
}

func (f *fakeSync) sync() error {
	f.started <- struct{}{}
	return <-f.release
}

// waitAsync runs s.wait in a goroutine and returns the channel its result arrives on.
func waitAsync(s *syncer) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.wait() }()
	return ch
}

func recvErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a result")
		return nil
	}
}

func notYet(t *testing.T, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("wait returned early: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestSyncerWaitersOfRunningSyncWaitForNext(t *testing.T) {
	f := newFakeSync()
	s := newSyncer(f.sync, 0)
	defer s.close()

	first := waitAsync(s)
	<-f.started // sync 1 is running; first joined before it started
	second := waitAsync(s)
	// second joins round 2 only once it has registered; give it time to block.
	notYet(t, second)

	errDisk := errors.New("disk on fire")
	f.release <- errDisk // sync 1 ends with an error: only first sees it
	if err := recvErr(t, first); !errors.Is(err, errDisk) {
		t.Fatalf("first: got %v, want %v", err, errDisk)
	}
	notYet(t, second) // sync 1 started before second joined: it does not count

	<-f.started
	f.release <- nil
	if err := recvErr(t, second); err != nil {
		t.Fatalf("second: %v", err)
	}
	if got := s.syncs.Load(); got != 2 {
		t.Fatalf("syncs = %d, want 2", got)
	}
}

func TestSyncerBatchesWaiters(t *testing.T) {
	f := newFakeSync()
	s := newSyncer(f.sync, 0)
	defer s.close()

	blocker := waitAsync(s)
	<-f.started // sync 1 holds the syncer; the next 10 waiters pile up for sync 2
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() { errs <- s.wait() })
	}
	// Every waiter must have joined round 2 before sync 1 ends, or it could be released
	// by a third sync. Joining is quick; poll for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		joined := 0
		if s.next != nil {
			joined = s.next.waiters
		}
		s.mu.Unlock()
		if joined == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("waiters never joined")
		}
		time.Sleep(time.Millisecond)
	}
	f.release <- nil
	if err := recvErr(t, blocker); err != nil {
		t.Fatal(err)
	}
	<-f.started
	f.release <- nil
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := s.syncs.Load(); got != 2 {
		t.Fatalf("syncs = %d for 11 waiters, want 2", got)
	}
}

func TestSyncerClean(t *testing.T) {
	f := newFakeSync()
	s := newSyncer(f.sync, 0)
	defer s.close()

	if !s.clean() {
		t.Fatal("fresh syncer not clean")
	}
	s.beginCommit()
	if s.clean() {
		t.Fatal("clean with a commit in flight")
	}
	s.endCommit()
	if s.clean() {
		t.Fatal("clean with an unsynced commit")
	}
	done := waitAsync(s)
	<-f.started
	if s.clean() {
		t.Fatal("clean while the covering sync runs")
	}
	f.release <- nil
	if err := recvErr(t, done); err != nil {
		t.Fatal(err)
	}
	if !s.clean() {
		t.Fatal("not clean after a quiet sync")
	}

	// A sync that started while a commit was in flight does not make the store clean.
	s.beginCommit()
	done = waitAsync(s)
	<-f.started
	s.endCommit()
	f.release <- nil
	if err := recvErr(t, done); err != nil {
		t.Fatal(err)
	}
	if s.clean() {
		t.Fatal("clean after a sync that raced a commit")
	}
}

func TestSyncerCloseDrainsAndRefuses(t *testing.T) {
	f := newFakeSync()
	s := newSyncer(f.sync, time.Hour) // a long window: only close can start the round
	w := waitAsync(s)
	notYet(t, w)
	closed := make(chan struct{})
	go func() { s.close(); close(closed) }()
	<-f.started
	f.release <- nil
	if err := recvErr(t, w); err != nil {
		t.Fatalf("waiter before close: %v", err)
	}
	<-closed
	if err := s.wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after close: %v, want ErrClosed", err)
	}
	s.close() // idempotent
}

func TestUpdateReportsSyncFailure(t *testing.T) {
	db, err := Open(Config{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	errDisk := errors.New("disk full")
	db.syncer.close() // swap in a syncer whose disk fails
	db.syncer = newSyncer(func() error { return errDisk }, 0)

	err = db.Update(context.Background(), func(tx kv.Txn) error {
		return tx.Set([]byte("ledger/j"), []byte("redeemed"))
	})
	if !errors.Is(err, ErrSync) || !errors.Is(err, errDisk) {
		t.Fatalf("Update = %v, want ErrSync wrapping the disk error", err)
	}
	// A read-only Update that may have seen the unsynced write must not acknowledge it.
	err = db.Update(context.Background(), func(tx kv.Txn) error {
		_, err := tx.Get([]byte("ledger/j"))
		return err
	})
	if !errors.Is(err, ErrSync) {
		t.Fatalf("read-only Update after a failed sync = %v, want ErrSync", err)
	}
}
