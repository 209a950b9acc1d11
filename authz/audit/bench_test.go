package audit

import (
	"context"
	"testing"

	"github.com/earshot/earshot/authz/kv"
)

// BenchmarkAppend appends one record per transaction, a checkpoint every 1000 (the
// default) included.
func BenchmarkAppend(b *testing.B) {
	f := newFixture(b, nil, Config{})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := sample(i)
		i++
		if err := f.store.Update(ctx, func(txn kv.Txn) error {
			_, err := f.log.Append(txn, r)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify10k verifies a log of 10,000 records and their 10 checkpoints.
func BenchmarkVerify10k(b *testing.B) {
	f := newFixture(b, nil, Config{})
	ctx := context.Background()
	if err := f.store.Update(ctx, func(txn kv.Txn) error {
		for i := range 10_000 {
			if _, err := f.log.Append(txn, sample(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Verify(ctx, f.store, f.keys)
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK() || rep.Records != 10_010 {
			b.Fatalf("report %+v", rep)
		}
	}
}
