package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
)

func TestNew(t *testing.T) {
	keys := newKeys(t)
	mem := kv.NewMemory()
	tests := []struct {
		name  string
		store kv.Store
		cfg   Config
		ok    bool
	}{
		{"defaults", mem, Config{Signer: keys}, true},
		{"nil store", nil, Config{Signer: keys}, false},
		{"no signer", mem, Config{}, false},
		{"negative every", mem, Config{Signer: keys, CheckpointEvery: -1}, false},
		{"negative interval", mem, Config{Signer: keys, CheckpointInterval: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(tt.store, tt.cfg)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("error %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.every != DefaultCheckpointEvery || l.interval != DefaultCheckpointInterval || l.now == nil {
				t.Fatalf("defaults not applied: %+v", l)
			}
		})
	}
}

func TestAppendFills(t *testing.T) {
	f := newFixture(t, nil, Config{})
	got := f.append(t, 3)
	prev := ZeroHash
	for i, r := range got {
		if r.Seq != uint64(i+1) || r.Prev != prev || !r.Time.Equal(t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("record %d: seq %d prev %s time %s", i, r.Seq, r.Prev, r.Time)
		}
		if r.Time.Location() != time.UTC {
			t.Fatalf("record %d: time not UTC", i)
		}
		// Hash is the SHA-256 of the encoding with hash "".
		c := r
		c.Hash = ""
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if r.Hash != hex.EncodeToString(sum[:]) {
			t.Fatalf("record %d: hash %s", i, r.Hash)
		}
		// What Append returned is what is stored.
		if stored := f.get(t, r.Seq); !reflect.DeepEqual(stored, r) {
			t.Fatalf("record %d: returned %+v, stored %+v", i, r, stored)
		}
		prev = r.Hash
	}
	if rep := f.verify(t, VerifyOptions{}); !rep.OK() || rep.Records != 3 || rep.LastSeq != 3 || rep.LastHash != prev {
		t.Fatalf("report %+v", rep)
	}
}

func TestAppendRefuses(t *testing.T) {
	detail := func(k, v string) Record {
		return Record{Kind: KindConsent, Detail: map[string]string{k: v}}
	}
	tooMany := map[string]string{}
	for i := range MaxDetailKeys + 1 {
		tooMany[fmt.Sprintf("k%d", i)] = "v"
	}
	tests := []struct {
		name string
		r    Record
		want error
	}{
		{"seq set", Record{Kind: KindConsent, Seq: 1}, ErrInvalidRecord},
		{"time set", Record{Kind: KindConsent, Time: t0}, ErrInvalidRecord},
		{"hash set", Record{Kind: KindConsent, Hash: ZeroHash}, ErrInvalidRecord},
		{"prev set", Record{Kind: KindConsent, Prev: ZeroHash}, ErrInvalidRecord},
		{"sig set", Record{Kind: KindConsent, Sig: "x"}, ErrInvalidRecord},
		{"no kind", Record{Tx: "tx_1"}, ErrInvalidRecord},
		{"unknown kind", Record{Kind: "purchase"}, ErrInvalidRecord},
		{"checkpoint", Record{Kind: KindCheckpoint}, ErrInvalidRecord},
		{"long tx", Record{Kind: KindConsent, Tx: strings.Repeat("t", MaxIDBytes+1)}, ErrInvalidRecord},
		{"tx not UTF-8", Record{Kind: KindConsent, Tx: "tx\xff"}, ErrInvalidRecord},
		{"tx with a newline", Record{Kind: KindConsent, Tx: "tx\n1"}, ErrInvalidRecord},
		{"amount without currency", Record{Kind: KindMandate, Amount: 950}, ErrInvalidRecord},
		{"lowercase currency", Record{Kind: KindMandate, Amount: 950, Currency: "usd"}, ErrInvalidRecord},
		{"too many reasons", Record{Kind: KindRefusal, Reasons: strings.Split(strings.Repeat("r,", MaxReasons+1), ",")}, ErrInvalidRecord},
		{"prose reason", Record{Kind: KindRefusal, Reasons: []string{"user said under 30 but agent proposed 45"}}, ErrInvalidRecord},
		{"too many detail keys", Record{Kind: KindConsent, Detail: tooMany}, ErrInvalidRecord},
		{"long detail value", detail("note", strings.Repeat("v", MaxDetailValue+1)), ErrInvalidRecord},
		{"detail key not a code", detail("Note Here", "v"), ErrInvalidRecord},
		{"pin", detail("pin", "1234"), ErrSecret},
		{"PIN", detail("PIN", "1234"), ErrSecret},
		{"user_pin", detail("user_pin", "1234"), ErrSecret},
		{"userPin", detail("userPin", "1234"), ErrSecret},
		{"token", detail("token", "abc"), ErrSecret},
		{"mandatetoken", detail("mandatetoken", "abc"), ErrSecret},
		{"client_secret", detail("client_secret", "abc"), ErrSecret},
		{"apiKey", detail("apiKey", "abc"), ErrSecret},
		{"signing.key", detail("signing.key", "abc"), ErrSecret},
		{"Password", detail("Password", "hunter2"), ErrSecret},
		{"audio", detail("audio", "UklGRg"), ErrSecret},
		{"raw-audio", detail("raw-audio", "UklGRg"), ErrSecret},
		{"audiodump", detail("audiodump", "UklGRg"), ErrSecret},
		{"a JWS as a value", detail("mandate", "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJtbmRfMSJ9.c2ln"), ErrSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, Config{})
			err := f.store.Update(context.Background(), func(txn kv.Txn) error {
				_, err := f.log.Append(txn, tt.r)
				return err
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if rep := f.verify(t, VerifyOptions{}); rep.Records != 0 || !rep.OK() {
				t.Fatalf("a refused record was stored: %+v", rep)
			}
		})
	}
	// Names that only look like secret words pass.
	f := newFixture(t, nil, Config{})
	for _, k := range []string{"shipping", "monkey", "keyboard", "spinner", "method", "pinned"} {
		err := f.store.Update(context.Background(), func(txn kv.Txn) error {
			_, err := f.log.Append(txn, detail(k, "v"))
			return err
		})
		if err != nil {
			t.Errorf("detail key %q: %v", k, err)
		}
	}
}

// TestAppendRollback: a transaction that fails after Append leaves no record, and the
// next Append takes the seq the failed one had.
func TestAppendRollback(t *testing.T) {
	f := newFixture(t, nil, Config{})
	boom := errors.New("boom")
	err := f.store.Update(context.Background(), func(txn kv.Txn) error {
		if _, err := f.log.Append(txn, sample(0)); err != nil {
			return err
		}
		return boom // the state change the record records failed
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if rep := f.verify(t, VerifyOptions{}); rep.Records != 0 || !rep.OK() {
		t.Fatalf("report %+v", rep)
	}
	if got := f.append(t, 1); got[0].Seq != 1 {
		t.Fatalf("seq %d after a rollback", got[0].Seq)
	}
}

// TestAppendConcurrent appends from many goroutines, each record in its own
// transaction: every record lands once, without a gap, and the chain verifies. Over
// occStore the transactions conflict on the head and retry, as over Badger.
func TestAppendConcurrent(t *testing.T) {
	const workers, each = 8, 25
	for _, tt := range []struct {
		name  string
		store kv.Store
	}{{"memory", kv.NewMemory()}, {"optimistic", newOCCStore()}} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.store, Config{CheckpointEvery: 10})
			var wg sync.WaitGroup
			errs := make(chan error, workers*each)
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						r := sample(i)
						r.Tx = fmt.Sprintf("tx_%d_%d", w, i)
						errs <- f.store.Update(context.Background(), func(txn kv.Txn) error {
							_, err := f.log.Append(txn, r)
							return err
						})
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			rep := f.verify(t, VerifyOptions{})
			wantProblems(t, rep)
			if rep.Records-rep.Checkpoints != workers*each || rep.Checkpoints != workers*each/10 {
				t.Fatalf("%d records, %d checkpoints", rep.Records, rep.Checkpoints)
			}
			seen := map[string]bool{}
			for seq := uint64(1); seq <= rep.LastSeq; seq++ {
				r := f.get(t, seq)
				if r.Kind == KindCheckpoint {
					continue
				}
				if seen[r.Tx] {
					t.Fatalf("%s recorded twice", r.Tx)
				}
				seen[r.Tx] = true
			}
			if s, ok := tt.store.(*occStore); ok {
				t.Logf("%d conflicts retried", s.conflicts.Load())
			}
		})
	}
}

// TestAppendConflict makes one conflict for sure: transaction a reads the head, b
// appends and commits, then a commits and must retry on b's head.
func TestAppendConflict(t *testing.T) {
	s := newOCCStore()
	f := newFixture(t, s, Config{})
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		first := true
		done <- s.Update(context.Background(), func(txn kv.Txn) error {
			_, err := f.log.Append(txn, Record{Kind: KindConsent, Tx: "tx_a"})
			if first {
				first = false
				close(started)
				<-release
			}
			return err
		})
	}()
	<-started
	if err := s.Update(context.Background(), func(txn kv.Txn) error {
		_, err := f.log.Append(txn, Record{Kind: KindConsent, Tx: "tx_b"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := s.conflicts.Load(); n != 1 {
		t.Fatalf("%d conflicts, want 1", n)
	}
	if a, b := f.get(t, 2), f.get(t, 1); a.Tx != "tx_a" || b.Tx != "tx_b" {
		t.Fatalf("records %s, %s", b.Tx, a.Tx)
	}
	wantProblems(t, f.verify(t, VerifyOptions{}))
}

func TestCheckpoints(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		steps   []time.Duration // clock advance before each append
		wantCPs []uint64        // seqs of the checkpoints
	}{
		{"every 3", Config{CheckpointEvery: 3}, make([]time.Duration, 7), []uint64{4, 8}},
		{"every 1", Config{CheckpointEvery: 1}, make([]time.Duration, 2), []uint64{2, 4}},
		{"interval since record 1", Config{CheckpointInterval: time.Hour},
			[]time.Duration{0, 59 * time.Minute, 2 * time.Minute, 30 * time.Minute, 31 * time.Minute}, []uint64{4, 7}},
		{"neither reached", Config{}, []time.Duration{0, time.Minute, time.Minute}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, tt.cfg)
			for i, d := range tt.steps {
				f.clock.Advance(d)
				if err := f.store.Update(context.Background(), func(txn kv.Txn) error {
					_, err := f.log.Append(txn, sample(i))
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			rep := f.verify(t, VerifyOptions{})
			wantProblems(t, rep)
			var cps []uint64
			for seq := uint64(1); seq <= rep.LastSeq; seq++ {
				if r := f.get(t, seq); r.Kind == KindCheckpoint {
					cps = append(cps, seq)
				}
			}
			if fmt.Sprint(cps) != fmt.Sprint(tt.wantCPs) {
				t.Fatalf("checkpoints at %v, want %v", cps, tt.wantCPs)
			}
			cp, err := LastCheckpoint(context.Background(), f.store)
			if len(tt.wantCPs) == 0 {
				if !errors.Is(err, ErrNoCheckpoint) {
					t.Fatalf("LastCheckpoint: %v", err)
				}
				return
			}
			if err != nil || cp.Seq != tt.wantCPs[len(tt.wantCPs)-1] {
				t.Fatalf("LastCheckpoint %+v, %v", cp, err)
			}
			if err := cp.Verify(f.keys); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCheckpointSignature pins what a checkpoint signs: its seq, its prev and its
// time.
func TestCheckpointSignature(t *testing.T) {
	f := newFixture(t, nil, Config{CheckpointEvery: 2})
	f.append(t, 2)
	cp := f.get(t, 3)
	payload, err := f.keys.VerifyPayload(cp.Sig, CheckpointType)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"seq":3,"hash":%q,"time":%q}`, f.get(t, 2).Hash, cp.Time.Format(time.RFC3339Nano))
	if string(payload) != want {
		t.Fatalf("signed %s, want %s", payload, want)
	}
	if cp.Prev != f.get(t, 2).Hash {
		t.Fatal("checkpoint prev is not record 2's hash")
	}
	if _, err := LastCheckpoint(context.Background(), kv.NewMemory()); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("empty log: %v", err)
	}
}

// TestAppendCorrupt: Append refuses to build on a log whose head is gone.
func TestAppendCorrupt(t *testing.T) {
	f := newFixture(t, nil, Config{})
	f.append(t, 2)
	f.set(t, []byte(HeadKey), nil)
	err := f.store.Update(context.Background(), func(txn kv.Txn) error {
		_, err := f.log.Append(txn, sample(0))
		return err
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v, want ErrCorrupt", err)
	}
	f.set(t, []byte(HeadKey), []byte(`{"seq":1,"hash":"x"}`))
	err = f.store.Update(context.Background(), func(txn kv.Txn) error {
		_, err := f.log.Append(txn, sample(0))
		return err
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v, want ErrCorrupt", err)
	}
}
