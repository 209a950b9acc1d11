package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/earshot/earshot/authz/kv"
)

// Limits on what a transaction may write.
const (
	// MaxKeySize is the longest key, in bytes.
	MaxKeySize = 1 << 10
	// MaxValueSize is the largest value, in bytes.
	MaxValueSize = 1 << 20
)

// Errors. Each is wrapped with %w and detail; test with errors.Is.
var (
	ErrClosed        = errors.New("store: closed")
	ErrInvalidConfig = errors.New("store: invalid config")
	ErrEmptyKey      = errors.New("store: empty key")
	ErrKeyTooLong    = errors.New("store: key too long")
	ErrReservedKey   = errors.New("store: key uses Badger's reserved prefix")
	ErrValueTooLarge = errors.New("store: value too large")
	// ErrTxnTooBig: the transaction's writes do not fit one Badger batch.
	ErrTxnTooBig = errors.New("store: transaction too big")
	// ErrReadOnly: Set or Delete inside View.
	ErrReadOnly = errors.New("store: write in a read-only transaction")
	// ErrTxnDone: a kv.Txn was used after the function it was passed to returned.
	ErrTxnDone = errors.New("store: transaction used after its function returned")
	// ErrSync: the commit happened but the sync after it failed, so it is not durable.
	ErrSync = errors.New("store: sync failed")
)

// Defaults for zero Config fields.
const (
	DefaultGCInterval   = 5 * time.Minute
	DefaultMemTableSize = 16 << 20
	DefaultMaxRetries   = 16

	minMemTableSize  = 1 << 20
	gcDiscardRatio   = 0.5 // rewrite a value-log file when half of it is garbage
	gcMaxRewrites    = 8   // value-log files rewritten per GC pass at most
	backoffBase      = 20 * time.Microsecond
	backoffMax       = 2 * time.Millisecond
	minValueThresh   = 1 << 10
	maxValueThresh   = 64 << 10
	valueLogFileSize = 64 << 20
)

// Config configures Open. The zero value of every field but Dir is a usable default.
type Config struct {
	// Dir is the data directory for Badger's files; created if missing. Required unless
	// InMemory, and must be empty when InMemory.
	Dir string
	// InMemory runs Badger without files (for tests): nothing survives Close, nothing is
	// synced, Run collects no garbage. Default false.
	InMemory bool
	// Logger receives the store's logs and Badger's own warnings and errors (Badger's
	// info and debug lines are dropped). Default slog.Default().
	Logger *slog.Logger
	// GCInterval is the period of Run's value-log garbage collection. Default 5m;
	// negative is invalid.
	GCInterval time.Duration
	// SyncDelay is the group-commit window: after a commit asks for a sync, the syncer
	// waits this long for more commits to join before syncing. Default 0: sync as soon
	// as the previous sync ends (commits that arrive during a sync share the next one).
	// Negative is invalid.
	SyncDelay time.Duration
	// MemTableSize is Badger's memtable size in bytes, the main memory cost of the store
	// (two memtables are kept). Default 16 MiB; minimum 1 MiB. Small-footprint options
	// follow from it: on disk, values of at least MemTableSize/1024 bytes (clamped to
	// 1-64 KiB) go to the value log, so large values do not crowd the small memtable or
	// a transaction's batch. In memory there is no value log and values must be
	// smaller than both 1 MiB and 15% of MemTableSize.
	MemTableSize int64
	// MaxRetries is how often Update re-runs fn after a transaction conflict before it
	// returns kv.ErrConflict. Default 16; negative means no retries.
	MaxRetries int
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.InMemory && c.Dir != "":
		return c, fmt.Errorf("%w: Dir %q set with InMemory", ErrInvalidConfig, c.Dir)
	case !c.InMemory && c.Dir == "":
		return c, fmt.Errorf("%w: Dir is required unless InMemory", ErrInvalidConfig)
	case c.GCInterval < 0:
		return c, fmt.Errorf("%w: negative GCInterval", ErrInvalidConfig)
	case c.SyncDelay < 0:
		return c, fmt.Errorf("%w: negative SyncDelay", ErrInvalidConfig)
	case c.MemTableSize != 0 && c.MemTableSize < minMemTableSize:
		return c, fmt.Errorf("%w: MemTableSize %d below %d", ErrInvalidConfig, c.MemTableSize, minMemTableSize)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.GCInterval == 0 {
		c.GCInterval = DefaultGCInterval
	}
	if c.MemTableSize == 0 {
		c.MemTableSize = DefaultMemTableSize
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	return c, nil
}

// maxBatch is Badger's limit on one transaction's writes: 15% of the memtable.
func (c Config) maxBatch() int64 { return c.MemTableSize * 15 / 100 }

// valueThreshold is the size from which a value goes to the value log on disk. In
// memory there is no value log, so it is as high as Badger allows (1 MiB, at most one
// batch) and values must stay below it: Badger v4.8.0 refuses larger ones and panics in
// its write loop on one of exactly the threshold.
func (c Config) valueThreshold() int64 {
	if c.InMemory {
		return min(MaxValueSize, c.maxBatch())
	}
	return min(max(c.MemTableSize/1024, minValueThresh), maxValueThresh)
}

// badgerOptions are small-footprint options: two memtables, a small block cache, 64 MiB
// value-log files, and a value threshold scaled to the memtable (see Config).
func (c Config) badgerOptions(log *slog.Logger) badger.Options {
	return badger.DefaultOptions(c.Dir).
		WithInMemory(c.InMemory).
		WithSyncWrites(false).     // the syncer batches syncs (group commit)
		WithDetectConflicts(true). // consume-once depends on it
		WithLogger(badgerLogger{log}).
		WithLoggingLevel(badger.WARNING).
		WithMemTableSize(c.MemTableSize).
		WithValueThreshold(c.valueThreshold()).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithNumCompactors(2).
		WithBlockCacheSize(8 << 20).
		WithCompression(options.Snappy).
		WithValueLogFileSize(valueLogFileSize).
		WithMetricsEnabled(true) // Size() reads Badger's metrics
}

// DB is a kv.Store over Badger. It is safe for concurrent use.
type DB struct {
	bdb        *badger.DB
	log        *slog.Logger
	syncer     *syncer    // nil when in memory
	rot        *rotations // nil when in memory
	inMemory   bool
	gcInterval time.Duration
	maxRetries int
	maxValue   int                 // largest value Set accepts
	jitter     func(n int64) int64 // uniform in [0, n)

	mu      sync.Mutex // guards closed and ops.Add
	closed  bool
	ops     sync.WaitGroup // transactions and GC passes in flight
	closing chan struct{}  // closed when Close starts

	closeOnce sync.Once
	closeErr  error

	commits   atomic.Uint64
	retries   atomic.Uint64
	conflicts atomic.Uint64
	gcPasses  atomic.Uint64
	rewrites  atomic.Uint64
}

var _ kv.Store = (*DB)(nil)

// Open opens (creating if needed) the store described by cfg and starts its syncer.
// Close releases it.
func Open(cfg Config) (*DB, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "store")
	bdb, err := badger.Open(cfg.badgerOptions(log))
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", cfg.Dir, err)
	}
	db := &DB{
		bdb:        bdb,
		log:        log,
		inMemory:   cfg.InMemory,
		gcInterval: cfg.GCInterval,
		maxRetries: cfg.MaxRetries,
		maxValue:   MaxValueSize,
		jitter:     rand.Int64N,
		closing:    make(chan struct{}),
	}
	if cfg.InMemory {
		db.maxValue = int(cfg.valueThreshold()) - 1
	} else {
		// What Badger replayed at open may be unsynced (a crash of the process leaves
		// its writes in the page cache): sync everything before anything is read.
		db.rot = &rotations{dir: cfg.Dir}
		if err := db.syncAll(true); err != nil {
			// The sync error is what matters; Close's would only repeat it.
			_ = bdb.Close()
			return nil, err
		}
		db.syncer = newSyncer(func() error { return db.syncAll(false) }, cfg.SyncDelay)
	}
	log.Info("store opened", "dir", cfg.Dir, "in_memory", cfg.InMemory)
	return db, nil
}

// syncAll syncs Badger's current files and, after a rotation (or when force), all of
// its log files: see rotations.
func (db *DB) syncAll(force bool) error {
	if err := db.bdb.Sync(); err != nil {
		return fmt.Errorf("badger: %w", err)
	}
	return db.rot.check(force)
}

// enter registers an operation that Close must wait for; leave ends it.
func (db *DB) enter() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	db.ops.Add(1)
	return nil
}

func (db *DB) leave() { db.ops.Done() }

// Update runs fn in a read-write transaction, commits it, and returns nil once the
// commit is durable (see the package doc). On a conflict it runs fn again, up to
// Config.MaxRetries times, then returns an error wrapping kv.ErrConflict. fn's own error
// is returned as is and nothing is written. If ctx ends before the commit, Update
// returns ctx.Err() and writes nothing; after the commit it waits for the sync
// regardless. An error wrapping ErrSync means the commit is visible but may not survive
// a crash. The kv.Txn is valid only while fn runs, and not for concurrent use.
func (db *DB) Update(ctx context.Context, fn func(kv.Txn) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.leave()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := db.backoff(ctx, attempt); err != nil {
				return err
			}
		}
		wrote, err := db.try(ctx, fn)
		if errors.Is(err, badger.ErrConflict) {
			if attempt < db.maxRetries {
				db.retries.Add(1)
				continue
			}
			db.conflicts.Add(1)
			return fmt.Errorf("store: update: %w after %d attempts", kv.ErrConflict, attempt+1)
		}
		if err != nil {
			return err
		}
		return db.durable(wrote)
	}
}

// try runs fn once and commits; it reports whether anything was written.
func (db *DB) try(ctx context.Context, fn func(kv.Txn) error) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	bt := db.bdb.NewTransaction(true)
	defer bt.Discard()
	t := &txn{bt: bt, update: true, maxValue: db.maxValue}
	err := fn(t)
	t.done = true
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !t.wrote {
		return false, nil
	}
	if db.syncer != nil {
		db.syncer.beginCommit()
		defer db.syncer.endCommit()
	}
	if err := bt.Commit(); err != nil {
		return false, mapErr("commit", err)
	}
	db.commits.Add(1)
	return true, nil
}

// durable waits until what the transaction wrote, or read, is synced.
func (db *DB) durable(wrote bool) error {
	if db.syncer == nil || (!wrote && db.syncer.clean()) {
		return nil
	}
	if err := db.syncer.wait(); err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrSync, err)
	}
	return nil
}

// backoff sleeps a random time below an exponentially growing cap before retry attempt.
func (db *DB) backoff(ctx context.Context, attempt int) error {
	ceiling := min(backoffBase<<min(attempt, 16), backoffMax)
	t := time.NewTimer(time.Duration(db.jitter(int64(ceiling)) + 1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// View runs fn in a read-only transaction over a consistent snapshot. It may see
// commits that are not synced yet (see the package doc).
func (db *DB) View(ctx context.Context, fn func(kv.Txn) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	bt := db.bdb.NewTransaction(false)
	defer bt.Discard()
	t := &txn{bt: bt}
	err := fn(t)
	t.done = true
	return err
}

// Close waits for transactions and a GC pass in flight, stops the syncer and closes
// Badger. New transactions fail with ErrClosed once Close has started. Close is
// idempotent: later calls wait for the first and return its result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.mu.Lock()
		db.closed = true
		close(db.closing)
		db.mu.Unlock()
		db.ops.Wait()
		if db.syncer != nil {
			db.syncer.close()
		}
		if err := db.bdb.Close(); err != nil {
			db.closeErr = fmt.Errorf("store: close: %w", err)
		}
		db.log.Info("store closed")
	})
	return db.closeErr
}

// Stats is a snapshot of the store's sizes and counters, for /metrics.
type Stats struct {
	LSMBytes  int64 // size of the LSM tree on disk (Badger refreshes it about once a minute)
	VlogBytes int64 // size of the value log on disk (same refresh)

	Commits         uint64 // Update transactions committed with writes
	Syncs           uint64 // syncs performed; Syncs/Commits < 1 is group commit at work
	ConflictRetries uint64 // times Update re-ran fn after a conflict
	Conflicts       uint64 // Updates that gave up with kv.ErrConflict
	GCPasses        uint64 // value-log GC passes run by Run
	GCRewrites      uint64 // value-log files rewritten by those passes
}

// Stats returns current sizes and counters. It is cheap and safe after Close (sizes are
// then zero).
func (db *DB) Stats() Stats {
	s := Stats{
		Commits:         db.commits.Load(),
		ConflictRetries: db.retries.Load(),
		Conflicts:       db.conflicts.Load(),
		GCPasses:        db.gcPasses.Load(),
		GCRewrites:      db.rewrites.Load(),
	}
	if db.syncer != nil {
		s.Syncs = db.syncer.syncs.Load()
	}
	if db.enter() == nil {
		s.LSMBytes, s.VlogBytes = db.bdb.Size()
		db.leave()
	}
	return s
}
