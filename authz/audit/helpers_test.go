package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
)

// The key set signs and verifies checkpoints.
var (
	_ Signer   = (*authz.KeySet)(nil)
	_ Verifier = (*authz.KeySet)(nil)
)

// t0 is the tests' fixed "now".
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newKeys(t testing.TB) *authz.KeySet {
	t.Helper()
	k, err := authz.GenerateSigningKey(nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := authz.NewKeySet(k)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// fixture is a Log over a store with a settable clock that ticks a millisecond per
// record appended through it.
type fixture struct {
	store kv.Store
	mem   *kv.Memory // store, when it is a Memory
	keys  *authz.KeySet
	clock *clock
	log   *Log
}

// newFixture returns a fixture over store (nil: a new kv.Memory); cfg's zero Signer
// and Now are the fixture's.
func newFixture(t testing.TB, store kv.Store, cfg Config) *fixture {
	t.Helper()
	f := &fixture{store: store, keys: newKeys(t), clock: &clock{now: t0}}
	if store == nil {
		f.mem = kv.NewMemory()
		f.store = f.mem
	}
	if cfg.Signer == nil {
		cfg.Signer = f.keys
	}
	if cfg.Now == nil {
		cfg.Now = f.clock.Now
	}
	l, err := New(f.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.log = l
	return f
}

// sample is the i-th of a cycle of realistic records.
func sample(i int) Record {
	tx := fmt.Sprintf("tx_%d", i)
	switch i % 4 {
	case 0:
		return Record{Kind: KindConsent, Tx: tx, Device: "dev_a", User: "usr_1", Amount: 950, Currency: "USD",
			TermsHash: "h_" + tx, State: "approved", Detail: map[string]string{"method": "tap"}}
	case 1:
		return Record{Kind: KindMandate, Tx: tx, JTI: "mnd_" + tx, User: "usr_1", Agent: "agent_ref",
			Payee: "m_luckin", Amount: 950, Currency: "USD", State: "issued"}
	case 2:
		return Record{Kind: KindRedemption, Tx: tx, JTI: "mnd_" + tx, Agent: "agent_ref", Payee: "m_luckin",
			Amount: 950, Currency: "USD", State: "redeemed"}
	}
	return Record{Kind: KindRefusal, Tx: tx, Agent: "agent_ref", Amount: 4500, Currency: "USD",
		Reasons: []string{"over_cap", "velocity.device"}}
}

// append appends n sample records, one transaction each, and returns them.
func (f *fixture) append(t testing.TB, n int) []Record {
	t.Helper()
	out := make([]Record, 0, n)
	for i := range n {
		var got Record
		err := f.store.Update(context.Background(), func(txn kv.Txn) error {
			r, err := f.log.Append(txn, sample(i))
			got = r
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
		f.clock.Advance(time.Millisecond)
	}
	return out
}

func (f *fixture) verify(t testing.TB, o VerifyOptions) Report {
	t.Helper()
	rep, err := o.Verify(context.Background(), f.store, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// get reads stored record seq.
func (f *fixture) get(t testing.TB, seq uint64) Record {
	t.Helper()
	var r Record
	err := f.store.View(context.Background(), func(txn kv.Txn) error {
		b, err := txn.Get(RecordKey(seq))
		if err != nil {
			return err
		}
		r, err = decodeRecord(b)
		return err
	})
	if err != nil {
		t.Fatalf("record %d: %v", seq, err)
	}
	return r
}

// put stores r under seq's key as it is, hash untouched.
func (f *fixture) put(t testing.TB, seq uint64, r Record) {
	t.Helper()
	b, err := r.encode()
	if err != nil {
		t.Fatal(err)
	}
	f.set(t, RecordKey(seq), b)
}

func (f *fixture) set(t testing.TB, key, value []byte) {
	t.Helper()
	err := f.store.Update(context.Background(), func(txn kv.Txn) error {
		if value == nil {
			return txn.Delete(key)
		}
		return txn.Set(key, value)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rehash does what an attacker with write access but no signing key can: recompute
// the prev and hash of every record from seq on, and rewrite the head to the last.
func (f *fixture) rehash(t testing.TB, seq uint64) {
	t.Helper()
	err := f.store.Update(context.Background(), func(txn kv.Txn) error {
		h, err := rawHead(txn)
		if err != nil {
			return err
		}
		prev := ZeroHash
		if seq > 1 {
			b, err := txn.Get(RecordKey(seq - 1))
			if err != nil {
				return err
			}
			r, err := decodeRecord(b)
			if err != nil {
				return err
			}
			prev = r.Hash
		}
		last := seq - 1
		for s := seq; ; s++ {
			b, err := txn.Get(RecordKey(s))
			if errors.Is(err, kv.ErrNotFound) {
				break
			}
			if err != nil {
				return err
			}
			r, err := decodeRecord(b)
			if err != nil {
				return err
			}
			r.Prev = prev
			if r.Hash, err = r.computeHash(); err != nil {
				return err
			}
			if b, err = r.encode(); err != nil {
				return err
			}
			if err := txn.Set(RecordKey(s), b); err != nil {
				return err
			}
			prev, last = r.Hash, s
		}
		h.Seq, h.Hash = last, prev
		hb, err := json.Marshal(h)
		if err != nil {
			return err
		}
		return txn.Set([]byte(HeadKey), hb)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// at is a problem's position and kind, what tests compare.
type at struct {
	Seq  uint64
	Kind string
}

// wantProblems fails unless rep's problems are exactly want, in seq order, each with
// a detail.
func wantProblems(t testing.TB, rep Report, want ...at) {
	t.Helper()
	var got []at
	for _, p := range rep.Problems {
		got = append(got, at{p.Seq, p.Kind})
		if p.Detail == "" {
			t.Errorf("problem %v without detail", p)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems %v, want %v", rep.Problems, want)
	}
}

// occStore is a kv.Store with optimistic concurrency, as Badger's: a transaction reads
// a snapshot, and its commit fails if a key it read changed since; Update then retries
// fn. Memory serialises whole transactions instead, so it never conflicts.
type occStore struct {
	mu        sync.Mutex
	data      map[string]versioned
	version   uint64
	conflicts atomic.Int64
}

type versioned struct {
	v   []byte
	ver uint64
}

var _ kv.Store = (*occStore)(nil)

func newOCCStore() *occStore { return &occStore{data: map[string]versioned{}} }

func (s *occStore) snapshot() map[string]versioned {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.data)
}

func (s *occStore) Update(ctx context.Context, fn func(kv.Txn) error) error {
	for range 1000 {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := &occTxn{snap: s.snapshot(), reads: map[string]uint64{}, writes: map[string][]byte{}}
		if err := fn(t); err != nil {
			return err
		}
		if s.commit(t) {
			return nil
		}
		s.conflicts.Add(1)
		runtime.Gosched()
	}
	return kv.ErrConflict
}

func (s *occStore) commit(t *occTxn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ver := range t.reads {
		if s.data[k].ver != ver {
			return false
		}
	}
	s.version++
	for k, v := range t.writes {
		if v == nil {
			delete(s.data, k)
		} else {
			s.data[k] = versioned{v, s.version}
		}
	}
	return true
}

func (s *occStore) View(ctx context.Context, fn func(kv.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return fn(&occTxn{snap: s.snapshot(), reads: map[string]uint64{}, readOnly: true})
}

type occTxn struct {
	snap     map[string]versioned
	reads    map[string]uint64
	writes   map[string][]byte // nil: deleted
	readOnly bool
}

func (t *occTxn) Get(key []byte) ([]byte, error) {
	k := string(key)
	if v, ok := t.writes[k]; ok {
		if v == nil {
			return nil, kv.ErrNotFound
		}
		return slices.Clone(v), nil
	}
	e, ok := t.snap[k]
	t.reads[k] = e.ver
	runtime.Gosched() // let other transactions interleave
	if !ok {
		return nil, kv.ErrNotFound
	}
	return slices.Clone(e.v), nil
}

func (t *occTxn) Set(key, value []byte) error {
	if t.readOnly {
		return errors.New("read-only")
	}
	t.writes[string(key)] = append([]byte{}, value...)
	return nil
}

func (t *occTxn) Delete(key []byte) error {
	if t.readOnly {
		return errors.New("read-only")
	}
	t.writes[string(key)] = nil
	return nil
}

func (t *occTxn) Scan(prefix []byte, fn func(key, value []byte) (bool, error)) error {
	merged := map[string][]byte{}
	for k, e := range t.snap {
		merged[k] = e.v
	}
	for k, v := range t.writes {
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(merged)) {
		if len(k) < len(prefix) || k[:len(prefix)] != string(prefix) {
			continue
		}
		t.reads[k] = t.snap[k].ver
		more, err := fn([]byte(k), merged[k])
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// rawHead reads the head without checking how its fields relate.
func rawHead(txn kv.Txn) (head, error) {
	b, err := txn.Get([]byte(HeadKey))
	if err != nil {
		return head{}, err
	}
	return decodeHead(b)
}
