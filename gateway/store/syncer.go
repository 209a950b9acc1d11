package store

import (
	"sync"
	"sync/atomic"
	"time"
)

// syncer batches durability: writers commit without syncing, then wait for a round, a
// sync that starts after they joined it. One round acknowledges every writer that joined
// before it started; writers that join while a sync runs wait for the next round.
//
// It also tracks whether anything committed may still be unsynced, so a transaction that
// only read can skip the wait when everything is already on disk: every commit bumps gen
// before it starts; a round that starts while no commit is in flight covers all gens up
// to the current one, and records that in synced once its sync succeeded.
type syncer struct {
	sync  func() error
	delay time.Duration

	kick chan struct{} // capacity 1: a round is wanted
	stop chan struct{} // closed by close
	done chan struct{} // closed when loop returns

	mu       sync.Mutex
	next     *round // the round writers join now; nil until someone joins
	gen      uint64 // commits begun
	inflight int    // commits begun and not yet finished
	synced   uint64 // every commit up to this gen is durable

	syncs atomic.Uint64 // sync calls made

	closeOnce sync.Once
}

// round is one sync. err is written before done is closed.
type round struct {
	done    chan struct{}
	err     error
	waiters int // joined so far; guarded by syncer.mu
}

func newSyncer(syncFn func() error, delay time.Duration) *syncer {
	s := &syncer{
		sync:  syncFn,
		delay: delay,
		kick:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go s.loop()
	return s
}

// beginCommit is called just before a transaction commits; endCommit just after, whether
// or not the commit succeeded.
func (s *syncer) beginCommit() {
	s.mu.Lock()
	s.gen++
	s.inflight++
	s.mu.Unlock()
}

func (s *syncer) endCommit() {
	s.mu.Lock()
	s.inflight--
	s.mu.Unlock()
}

// clean reports whether every commit begun so far is known to be durable.
func (s *syncer) clean() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight == 0 && s.synced == s.gen
}

// wait blocks until a sync that started after the call returns, and returns its error.
// It does not give up on a context: once a transaction committed, its caller is owed an
// answer about durability, and syncs are short. After close it returns ErrClosed.
func (s *syncer) wait() error {
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		return ErrClosed
	default:
	}
	if s.next == nil {
		s.next = &round{done: make(chan struct{})}
	}
	r := s.next
	r.waiters++
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default: // a kick is already pending; it will pick r up
	}
	<-r.done
	return r.err
}

func (s *syncer) loop() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			s.drain()
			return
		case <-s.kick:
		}
		if s.delay > 0 {
			t := time.NewTimer(s.delay)
			select {
			case <-t.C:
			case <-s.stop:
				t.Stop()
			}
		}
		s.runRound()
	}
}

// drain runs a last round for writers that joined before close, so none is left waiting.
func (s *syncer) drain() {
	s.runRound()
}

func (s *syncer) runRound() {
	s.mu.Lock()
	r := s.next
	s.next = nil
	covers, quiet := s.gen, s.inflight == 0
	s.mu.Unlock()
	if r == nil {
		return
	}
	err := s.sync()
	s.syncs.Add(1)
	if err == nil && quiet {
		s.mu.Lock()
		s.synced = max(s.synced, covers)
		s.mu.Unlock()
	}
	r.err = err
	close(r.done)
}

// close stops the loop after a last round for any waiter, and waits for it. Idempotent.
func (s *syncer) close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		close(s.stop)
		s.mu.Unlock()
	})
	<-s.done
}
