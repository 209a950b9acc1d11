package store

import (
	"context"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Run collects value-log garbage every Config.GCInterval until ctx ends or the DB is
// closed, and then returns nil. Each pass rewrites value-log files that are at least
// half garbage, a few at most. In memory there is no value log: Run only waits. Run on a
// closed DB returns ErrClosed. Close waits for a pass in progress.
func (db *DB) Run(ctx context.Context) error {
	db.mu.Lock()
	closed := db.closed
	db.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if db.inMemory {
		select {
		case <-ctx.Done():
		case <-db.closing:
		}
		return nil
	}
	t := time.NewTicker(db.gcInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-db.closing:
			return nil
		case <-t.C:
			db.gcPass(ctx)
		}
	}
}

// gcPass rewrites value-log files until Badger finds none worth rewriting.
func (db *DB) gcPass(ctx context.Context) {
	if db.enter() != nil {
		return
	}
	defer db.leave()
	defer db.gcPasses.Add(1)
	for range gcMaxRewrites {
		if ctx.Err() != nil {
			return
		}
		err := db.bdb.RunValueLogGC(gcDiscardRatio)
		switch {
		case err == nil:
			db.rewrites.Add(1)
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			return
		default:
			db.log.Warn("value-log gc failed", "err", err)
			return
		}
	}
}
