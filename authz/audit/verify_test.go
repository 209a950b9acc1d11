package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
)

// tamperLog is the log the tampering tests start from: CheckpointEvery 5 and 12
// records make records 1-5, checkpoint 6, records 7-11, checkpoint 12, records 13-14.
func tamperLog(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, nil, Config{CheckpointEvery: 5})
	f.append(t, 12)
	rep := f.verify(t, VerifyOptions{})
	wantProblems(t, rep)
	if rep.Records != 14 || rep.Checkpoints != 2 || f.get(t, 6).Kind != KindCheckpoint || f.get(t, 12).Kind != KindCheckpoint {
		t.Fatalf("unexpected layout: %+v", rep)
	}
	return f
}

// sign makes a checkpoint signature over r's seq, prev and time with s.
func sign(t *testing.T, s Signer, r Record) string {
	t.Helper()
	payload, err := json.Marshal(checkpointClaims{Seq: r.Seq, Hash: r.Prev, Time: r.Time})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.SignPayload(payload, CheckpointType)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// edit changes record seq with fn and stores it with its hash untouched.
func (f *fixture) edit(t *testing.T, seq uint64, fn func(*Record)) {
	t.Helper()
	r := f.get(t, seq)
	fn(&r)
	f.put(t, seq, r)
}

// rehashOne recomputes record seq's hash and stores it, nothing else.
func (f *fixture) rehashOne(t *testing.T, seq uint64) {
	t.Helper()
	f.edit(t, seq, func(r *Record) {
		h, err := r.computeHash()
		if err != nil {
			t.Fatal(err)
		}
		r.Hash = h
	})
}

// setHeadCheckpoint makes the head name checkpoint seq, as a careful attacker would.
func (f *fixture) setHeadCheckpoint(t *testing.T, seq uint64) {
	t.Helper()
	err := f.store.Update(context.Background(), func(txn kv.Txn) error {
		h, err := rawHead(txn)
		if err != nil {
			return err
		}
		b, err := txn.Get(RecordKey(seq))
		if err != nil {
			return err
		}
		cp, err := decodeRecord(b)
		if err != nil {
			return err
		}
		h.CheckpointSeq, h.CheckpointTime = seq, cp.Time
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

func TestVerifyFindsTampering(t *testing.T) {
	other := newKeys(t) // an attacker's key, not in the verifying set
	del := func(seqs ...uint64) func(*testing.T, *fixture) {
		return func(t *testing.T, f *fixture) {
			for _, s := range seqs {
				f.set(t, RecordKey(s), nil)
			}
		}
	}
	anchored := func(f *fixture, anchor Checkpoint) VerifyOptions { return VerifyOptions{Anchor: &anchor} }
	tests := []struct {
		name   string
		tamper func(t *testing.T, f *fixture)
		opts   func(f *fixture, anchor Checkpoint) VerifyOptions // nil: none; anchor is checkpoint 12
		want   []at
	}{
		{"amount changed in the stored JSON", func(t *testing.T, f *fixture) {
			var b []byte
			err := f.store.View(context.Background(), func(txn kv.Txn) error {
				var err error
				b, err = txn.Get(RecordKey(3))
				return err
			})
			if err != nil || !bytes.Contains(b, []byte(`"amount":950,`)) {
				t.Fatalf("record 3: %s, %v", b, err)
			}
			f.set(t, RecordKey(3), bytes.Replace(b, []byte(`"amount":950,`), []byte(`"amount":95000,`), 1))
		}, nil, []at{{3, ProblemEdited}}},
		{"edited and rehashed, next prev not fixed", func(t *testing.T, f *fixture) {
			f.edit(t, 3, func(r *Record) { r.Payee = "m_evil" })
			f.rehashOne(t, 3)
		}, nil, []at{{3, ProblemEdited}}},
		{"edited and rehashed, next prev fixed but not rehashed", func(t *testing.T, f *fixture) {
			f.edit(t, 3, func(r *Record) { r.Payee = "m_evil" })
			f.rehashOne(t, 3)
			f.edit(t, 4, func(r *Record) { r.Prev = f.get(t, 3).Hash })
		}, nil, []at{{4, ProblemEdited}}},
		{"edited and the rest of the chain rehashed, without the key", func(t *testing.T, f *fixture) {
			f.edit(t, 3, func(r *Record) { r.Amount = 1 })
			f.rehash(t, 3)
		}, nil, []at{{6, ProblemEdited}, {12, ProblemEdited}}},
		{"edited, chain rehashed and checkpoints re-signed by the key holder", func(t *testing.T, f *fixture) {
			f.edit(t, 3, func(r *Record) { r.Amount = 1 })
			f.rehash(t, 3)
			for _, cp := range []uint64{6, 12} {
				f.edit(t, cp, func(r *Record) { r.Sig = sign(t, f.keys, *r) })
				f.rehash(t, cp)
			}
		}, anchored, []at{{12, ProblemEdited}}},
		{"the same, without an anchor: not detectable", func(t *testing.T, f *fixture) {
			f.edit(t, 3, func(r *Record) { r.Amount = 1 })
			f.rehash(t, 3)
			for _, cp := range []uint64{6, 12} {
				f.edit(t, cp, func(r *Record) { r.Sig = sign(t, f.keys, *r) })
				f.rehash(t, cp)
			}
		}, nil, nil},
		{"one record deleted", del(4), nil, []at{{4, ProblemMissing}}},
		{"two records deleted", del(4, 5), nil, []at{{4, ProblemMissing}}},
		{"a checkpoint deleted", del(6), nil, []at{{6, ProblemMissing}}},
		{"two records swapped", func(t *testing.T, f *fixture) {
			a, b := f.get(t, 8), f.get(t, 9)
			f.put(t, 8, b)
			f.put(t, 9, a)
		}, nil, []at{{8, ProblemReordered}, {9, ProblemReordered}}},
		{"two records swapped and renumbered", func(t *testing.T, f *fixture) {
			a, b := f.get(t, 8), f.get(t, 9)
			a.Seq, b.Seq = 9, 8
			f.put(t, 8, b)
			f.put(t, 9, a)
		}, nil, []at{{8, ProblemEdited}, {9, ProblemEdited}}},
		{"a record copied to a new key", func(t *testing.T, f *fixture) {
			f.put(t, 15, f.get(t, 5))
		}, nil, []at{{5, ProblemReordered}, {15, ProblemReordered}}},
		{"tail truncated, head kept", del(13, 14), nil, []at{{13, ProblemTruncated}}},
		{"tail truncated, head rewritten: not detectable", func(t *testing.T, f *fixture) {
			del(14)(t, f)
			f.rehash(t, 14)
		}, nil, nil},
		{"tail truncated, head rewritten, known length", func(t *testing.T, f *fixture) {
			del(14)(t, f)
			f.rehash(t, 14)
		}, func(*fixture, Checkpoint) VerifyOptions { return VerifyOptions{MinSeq: 14} }, []at{{14, ProblemTruncated}}},
		{"truncated across a checkpoint, head seq rewritten", func(t *testing.T, f *fixture) {
			del(12, 13, 14)(t, f)
			f.rehash(t, 12)
		}, nil, []at{{12, ProblemTruncated}}},
		{"truncated across a checkpoint, head fully rewritten: not detectable", func(t *testing.T, f *fixture) {
			del(12, 13, 14)(t, f)
			f.rehash(t, 12)
			f.setHeadCheckpoint(t, 6)
		}, nil, nil},
		{"truncated across a checkpoint, head fully rewritten, anchored", func(t *testing.T, f *fixture) {
			del(12, 13, 14)(t, f)
			f.rehash(t, 12)
			f.setHeadCheckpoint(t, 6)
		}, anchored, []at{{12, ProblemTruncated}}},
		{"forged last checkpoint signature, chain rehashed", func(t *testing.T, f *fixture) {
			f.edit(t, 12, func(r *Record) { r.Sig = sign(t, other, *r) })
			f.rehash(t, 12)
		}, nil, []at{{12, ProblemBadSignature}}},
		{"forged checkpoint signature, chain rehashed: the next checkpoint no longer matches", func(t *testing.T, f *fixture) {
			f.edit(t, 6, func(r *Record) { r.Sig = sign(t, other, *r) })
			f.rehash(t, 6)
		}, nil, []at{{6, ProblemBadSignature}, {12, ProblemEdited}}},
		{"forged checkpoint signature", func(t *testing.T, f *fixture) {
			f.edit(t, 6, func(r *Record) { r.Sig = sign(t, other, *r) })
		}, nil, []at{{6, ProblemEdited}, {6, ProblemBadSignature}}},
		{"checkpoint time changed, chain rehashed", func(t *testing.T, f *fixture) {
			f.edit(t, 12, func(r *Record) { r.Time = r.Time.Add(time.Hour) })
			f.rehash(t, 12)
		}, nil, []at{{12, ProblemEdited}}},
		{"record not JSON", func(t *testing.T, f *fixture) {
			f.set(t, RecordKey(5), []byte(`{"seq":5,`))
		}, nil, []at{{5, ProblemMalformed}}},
		{"record with an unknown field", func(t *testing.T, f *fixture) {
			r := f.get(t, 5)
			b, err := r.encode()
			if err != nil {
				t.Fatal(err)
			}
			f.set(t, RecordKey(5), append(b[:len(b)-1], `,"note":"x"}`...))
		}, nil, []at{{5, ProblemMalformed}}},
		{"head deleted", func(t *testing.T, f *fixture) { f.set(t, []byte(HeadKey), nil) }, nil, []at{{0, ProblemMalformed}}},
		{"stray key", func(t *testing.T, f *fixture) { f.set(t, []byte(RecordPrefix+"x"), []byte("{}")) },
			nil, []at{{0, ProblemMalformed}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tamperLog(t)
			anchor, err := CheckpointOf(f.get(t, 12))
			if err != nil {
				t.Fatal(err)
			}
			tt.tamper(t, f)
			var o VerifyOptions
			if tt.opts != nil {
				o = tt.opts(f, anchor)
			}
			rep := f.verify(t, o)
			wantProblems(t, rep, tt.want...)
			for _, p := range rep.Problems {
				t.Log(p)
			}
		})
	}
}

// TestVerifyEditedFields changes each field of record 7 in turn, hash kept: each is
// found, at 7.
func TestVerifyEditedFields(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*Record)
	}{
		{"time", func(r *Record) { r.Time = r.Time.Add(time.Second) }},
		{"kind", func(r *Record) { r.Kind = KindRefusal }},
		{"tx", func(r *Record) { r.Tx = "tx_x" }},
		{"jti", func(r *Record) { r.JTI = "mnd_x" }},
		{"device", func(r *Record) { r.Device = "dev_x" }},
		{"user", func(r *Record) { r.User = "usr_x" }},
		{"agent", func(r *Record) { r.Agent = "agent_x" }},
		{"payee", func(r *Record) { r.Payee = "m_x" }},
		{"amount", func(r *Record) { r.Amount++ }},
		{"currency", func(r *Record) { r.Currency = "EUR" }},
		{"terms_hash", func(r *Record) { r.TermsHash = "h_x" }},
		{"state", func(r *Record) { r.State = "revoked" }},
		{"reasons", func(r *Record) { r.Reasons = []string{"x"} }},
		{"detail", func(r *Record) { r.Detail = map[string]string{"x": "y"} }},
		{"prev", func(r *Record) { r.Prev = ZeroHash }},
		{"hash", func(r *Record) { r.Hash = ZeroHash }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tamperLog(t)
			f.edit(t, 7, tt.fn)
			wantProblems(t, f.verify(t, VerifyOptions{}), at{7, ProblemEdited})
		})
	}
}

func TestVerifyEmptyAndNil(t *testing.T) {
	rep, err := Verify(context.Background(), kv.NewMemory(), newKeys(t))
	if err != nil || !rep.OK() || rep.Records != 0 {
		t.Fatalf("empty log: %+v, %v", rep, err)
	}
	f := tamperLog(t)
	// Without a verifier every checkpoint is reported, never passed.
	rep, err = Verify(context.Background(), f.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantProblems(t, rep, at{6, ProblemBadSignature}, at{12, ProblemBadSignature})
	// An anchor that is not a genuine checkpoint is reported as such.
	bad := Checkpoint{Seq: 12, Hash: ZeroHash, Time: t0, Sig: "x.y.z"}
	wantProblems(t, f.verify(t, VerifyOptions{Anchor: &bad}), at{12, ProblemBadSignature}, at{12, ProblemEdited})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, f.store, f.keys); err == nil {
		t.Fatal("cancelled context: no error")
	}
}

// TestVerifyKeyRotation: checkpoints signed before a rotation verify while the old
// key is in the set, and are reported once it is retired.
func TestVerifyKeyRotation(t *testing.T) {
	f := tamperLog(t)
	old := f.keys.ActiveKID()
	next, err := authz.GenerateSigningKey(nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Rotate(next); err != nil {
		t.Fatal(err)
	}
	f.append(t, 5) // checkpoint 20, by the new key
	wantProblems(t, f.verify(t, VerifyOptions{}))
	if err := f.keys.Retire(old); err != nil {
		t.Fatal(err)
	}
	wantProblems(t, f.verify(t, VerifyOptions{}), at{6, ProblemBadSignature}, at{12, ProblemBadSignature})
}

// TestVerifyBoundsProblems: a log broken everywhere lists MaxProblems problems and
// counts the rest.
func TestVerifyBoundsProblems(t *testing.T) {
	const n = MaxProblems + 100
	f := newFixture(t, nil, Config{CheckpointEvery: 10 * n})
	err := f.store.Update(context.Background(), func(txn kv.Txn) error {
		for i := range n {
			if _, err := f.log.Append(txn, sample(i)); err != nil {
				return err
			}
		}
		for s := uint64(1); s <= n; s++ {
			if err := txn.Set(RecordKey(s), []byte("{")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := f.verify(t, VerifyOptions{})
	if len(rep.Problems) != MaxProblems || rep.MoreProblems != 100 || rep.Records != n || rep.OK() {
		t.Fatalf("%d problems, %d more, %d records", len(rep.Problems), rep.MoreProblems, rep.Records)
	}
}
