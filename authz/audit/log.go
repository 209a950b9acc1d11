package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/earshot/earshot/authz/kv"
)

// Keys of the log in the kv store (see the package doc).
const (
	RecordPrefix = "audit/rec/" // audit/rec/<seq, 20 digits> -> JSON Record
	HeadKey      = "audit/head" // JSON: the last record's seq and hash, the last checkpoint
)

// RecordKey returns the key of record seq: RecordPrefix and seq in 20 digits, so that
// key order is seq order.
func RecordKey(seq uint64) []byte {
	return fmt.Appendf(nil, "%s%020d", RecordPrefix, seq)
}

// parseRecordKey returns the seq of a record key, or false for a key RecordKey
// cannot have made.
func parseRecordKey(k []byte) (uint64, bool) {
	d, ok := bytes.CutPrefix(k, []byte(RecordPrefix))
	if !ok || len(d) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(d), 10, 64)
	return seq, err == nil && seq > 0
}

// Defaults of Config.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Hour
)

// Errors.
var (
	// ErrInvalidConfig reports a Config New refuses.
	ErrInvalidConfig = errors.New("audit: invalid config")
	// ErrCorrupt reports a stored head or record Append cannot build on. Verify says
	// what is wrong with it.
	ErrCorrupt = errors.New("audit: log corrupt")
	// ErrNoCheckpoint is returned by LastCheckpoint for a log without one yet.
	ErrNoCheckpoint = errors.New("audit: no checkpoint yet")
)

// Signer signs checkpoints; *authz.KeySet implements it.
type Signer interface {
	SignPayload(payload []byte, typ string) (string, error)
}

// Config configures a Log.
type Config struct {
	// Signer signs checkpoints. Required.
	Signer Signer
	// Now is the clock that stamps records. Nil means time.Now.
	Now func() time.Time
	// CheckpointEvery is the number of records after which Append adds a checkpoint.
	// Zero means DefaultCheckpointEvery.
	CheckpointEvery int
	// CheckpointInterval makes the next Append add a checkpoint once this much time
	// has passed since the last one (or since record 1), however few records came in
	// between. Zero means DefaultCheckpointInterval.
	CheckpointInterval time.Duration
}

// Log appends records to the audit log in a kv store. It holds no state of its own
// (the head is in the store), so it is safe for concurrent use, and several Logs over
// one store append to one chain.
type Log struct {
	signer   Signer
	now      func() time.Time
	every    uint64
	interval time.Duration
}

// New returns a Log configured by cfg, for the log in store: the store whose
// transactions the caller hands to Append. New reads nothing; it checks that store and
// cfg.Signer are set and cfg's numbers are not negative (ErrInvalidConfig).
func New(store kv.Store, cfg Config) (*Log, error) {
	switch {
	case store == nil:
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	case cfg.Signer == nil:
		return nil, fmt.Errorf("%w: Signer is required", ErrInvalidConfig)
	case cfg.CheckpointEvery < 0:
		return nil, fmt.Errorf("%w: CheckpointEvery %d", ErrInvalidConfig, cfg.CheckpointEvery)
	case cfg.CheckpointInterval < 0:
		return nil, fmt.Errorf("%w: CheckpointInterval %s", ErrInvalidConfig, cfg.CheckpointInterval)
	}
	l := &Log{signer: cfg.Signer, now: cfg.Now, every: uint64(cfg.CheckpointEvery), interval: cfg.CheckpointInterval}
	if l.now == nil {
		l.now = time.Now
	}
	if l.every == 0 {
		l.every = DefaultCheckpointEvery
	}
	if l.interval == 0 {
		l.interval = DefaultCheckpointInterval
	}
	return l, nil
}

// head is the value at HeadKey.
type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	// CheckpointSeq is the last checkpoint's seq, 0 before the first.
	CheckpointSeq uint64 `json:"checkpoint_seq"`
	// CheckpointTime is the last checkpoint's time, or record 1's before the first.
	CheckpointTime time.Time `json:"checkpoint_time"`
}

// Append appends r to the log inside txn, the caller's transaction, so that the
// record commits or fails with the state change it records. It fills Seq, Time, Prev
// and Hash, which the caller must leave zero, and returns the record as stored. When
// CheckpointEvery records have been appended since the last checkpoint, or
// CheckpointInterval has passed, it appends a signed checkpoint after r, in the same
// transaction.
//
// Every Append reads and writes HeadKey, so two transactions appending at once
// conflict, and the store's conflict detection serialises them: one retries on the new
// head. Append has no effect outside txn, so it is safe in a retried transaction.
//
// It refuses (ErrInvalidRecord, ErrSecret) a record of an unknown kind or KindCheckpoint,
// over the size limits, or with a Detail key that names a secret; and fails with
// ErrCorrupt when the stored head cannot be built on.
func (l *Log) Append(txn kv.Txn, r Record) (Record, error) {
	if txn == nil {
		return Record{}, errors.New("audit: append: nil transaction")
	}
	switch {
	case r.Seq != 0 || !r.Time.IsZero() || r.Prev != "" || r.Hash != "" || r.Sig != "":
		return Record{}, fmt.Errorf("%w: seq, time, prev, hash and sig are set by Append", ErrInvalidRecord)
	case r.Kind == KindCheckpoint:
		return Record{}, fmt.Errorf("%w: field kind: checkpoints are appended by Append itself", ErrInvalidRecord)
	}
	if err := r.checkContent(); err != nil {
		return Record{}, err
	}
	// The record must not change under the caller's feet, nor the caller's slices
	// under the record's; empty ones are dropped, as a read back would.
	r.Reasons = slices.Clip(slices.Clone(r.Reasons))
	if len(r.Reasons) == 0 {
		r.Reasons = nil
	}
	r.Detail = maps.Clone(r.Detail)
	if len(r.Detail) == 0 {
		r.Detail = nil
	}
	h, err := readHead(txn)
	if err != nil {
		return Record{}, err
	}
	now := l.now().UTC()
	r.Seq, r.Time, r.Prev = h.Seq+1, now, h.Hash
	if err := write(txn, &r); err != nil {
		return Record{}, err
	}
	h.Seq, h.Hash = r.Seq, r.Hash
	if h.CheckpointTime.IsZero() {
		h.CheckpointTime = now
	}
	if h.Seq-h.CheckpointSeq >= l.every || now.Sub(h.CheckpointTime) >= l.interval {
		cp, err := l.checkpoint(txn, h, now)
		if err != nil {
			return Record{}, err
		}
		h = head{Seq: cp.Seq, Hash: cp.Hash, CheckpointSeq: cp.Seq, CheckpointTime: now}
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return Record{}, fmt.Errorf("audit: encode head: %w", err)
	}
	if err := txn.Set([]byte(HeadKey), hb); err != nil {
		return Record{}, fmt.Errorf("audit: write head: %w", err)
	}
	return r, nil
}

// checkpoint appends the checkpoint that follows the record h names.
func (l *Log) checkpoint(txn kv.Txn, h head, now time.Time) (Record, error) {
	cp := Record{Seq: h.Seq + 1, Time: now, Kind: KindCheckpoint, Prev: h.Hash}
	payload, err := json.Marshal(checkpointClaims{Seq: cp.Seq, Hash: cp.Prev, Time: cp.Time})
	if err != nil {
		return Record{}, fmt.Errorf("audit: checkpoint %d: %w", cp.Seq, err)
	}
	sig, err := l.signer.SignPayload(payload, CheckpointType)
	if err != nil {
		return Record{}, fmt.Errorf("audit: sign checkpoint %d: %w", cp.Seq, err)
	}
	if sig == "" || len(sig) > MaxSigBytes {
		return Record{}, fmt.Errorf("audit: sign checkpoint %d: signature of %d bytes, want 1 to %d",
			cp.Seq, len(sig), MaxSigBytes)
	}
	cp.Sig = sig
	if err := write(txn, &cp); err != nil {
		return Record{}, err
	}
	return cp, nil
}

// write hashes r, fills r.Hash and stores r at its key, which must be free.
func write(txn kv.Txn, r *Record) error {
	hash, err := r.computeHash()
	if err != nil {
		return err
	}
	r.Hash = hash
	b, err := r.encode()
	if err != nil {
		return err
	}
	if len(b) > MaxRecordBytes {
		return fmt.Errorf("%w: record %d: %d bytes, at most %d", ErrInvalidRecord, r.Seq, len(b), MaxRecordBytes)
	}
	key := RecordKey(r.Seq)
	switch _, err := txn.Get(key); {
	case err == nil:
		return fmt.Errorf("%w: record %d is already stored, past the head", ErrCorrupt, r.Seq)
	case !errors.Is(err, kv.ErrNotFound):
		return fmt.Errorf("audit: read record %d: %w", r.Seq, err)
	}
	if err := txn.Set(key, b); err != nil {
		return fmt.Errorf("audit: write record %d: %w", r.Seq, err)
	}
	return nil
}

// readHead returns the head; an empty log's is seq 0 with ZeroHash. A missing head
// with records stored is ErrCorrupt: appending would overwrite record 1.
func readHead(txn kv.Txn) (head, error) {
	b, err := txn.Get([]byte(HeadKey))
	if errors.Is(err, kv.ErrNotFound) {
		found := false
		err := txn.Scan([]byte(RecordPrefix), func(_, _ []byte) (bool, error) {
			found = true
			return false, nil
		})
		if err != nil {
			return head{}, fmt.Errorf("audit: read records: %w", err)
		}
		if found {
			return head{}, fmt.Errorf("%w: %s is missing but records are stored", ErrCorrupt, HeadKey)
		}
		return head{Hash: ZeroHash}, nil
	}
	if err != nil {
		return head{}, fmt.Errorf("audit: read head: %w", err)
	}
	h, err := decodeHead(b)
	if err != nil {
		return head{}, err
	}
	if h.CheckpointSeq > h.Seq {
		return head{}, fmt.Errorf("%w: head: field checkpoint_seq: %d past seq %d", ErrCorrupt, h.CheckpointSeq, h.Seq)
	}
	return h, nil
}

// decodeHead decodes a stored head and checks its fields' forms. readHead checks
// how they relate; Verify reports it.
func decodeHead(b []byte) (head, error) {
	var h head
	if len(b) > 1<<10 {
		return head{}, fmt.Errorf("%w: head of %d bytes", ErrCorrupt, len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return head{}, fmt.Errorf("%w: head: %w", ErrCorrupt, err)
	}
	switch {
	case h.Seq == 0:
		return head{}, fmt.Errorf("%w: head: field seq: 0", ErrCorrupt)
	case !isHash(h.Hash):
		return head{}, fmt.Errorf("%w: head: field hash: want 64 lowercase hex digits", ErrCorrupt)
	case h.CheckpointTime.IsZero() || !isUTC(h.CheckpointTime):
		return head{}, fmt.Errorf("%w: head: field checkpoint_time: %s is not a UTC time", ErrCorrupt, h.CheckpointTime)
	}
	return h, nil
}

// LastCheckpoint returns the log's last checkpoint, to be kept outside the store (see
// the package doc), or ErrNoCheckpoint.
func LastCheckpoint(ctx context.Context, store kv.Store) (Checkpoint, error) {
	var cp Checkpoint
	err := store.View(ctx, func(txn kv.Txn) error {
		b, err := txn.Get([]byte(HeadKey))
		if errors.Is(err, kv.ErrNotFound) {
			return ErrNoCheckpoint
		}
		if err != nil {
			return fmt.Errorf("audit: read head: %w", err)
		}
		h, err := decodeHead(b)
		if err != nil {
			return err
		}
		if h.CheckpointSeq == 0 {
			return ErrNoCheckpoint
		}
		rb, err := txn.Get(RecordKey(h.CheckpointSeq))
		if err != nil {
			return fmt.Errorf("%w: checkpoint %d the head names: %w", ErrCorrupt, h.CheckpointSeq, err)
		}
		r, err := decodeRecord(rb)
		if err != nil {
			return fmt.Errorf("%w: checkpoint %d: %w", ErrCorrupt, h.CheckpointSeq, err)
		}
		cp, err = CheckpointOf(r)
		return err
	})
	return cp, err
}
