package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/gateway/store"
)

// benchUpdates runs b.N small Updates to distinct keys from many goroutines and reports
// syncs per commit.
func benchUpdates(b *testing.B, db *store.DB) {
	b.Helper()
	var next atomic.Int64
	value := make([]byte, 256) // about a ledger entry
	b.SetParallelism(32)       // 32 writers per core: the gateway's many devices
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Appendf(nil, "ledger/j%08d", next.Add(1))
			if err := db.Update(context.Background(), func(tx kv.Txn) error {
				return tx.Set(key, value)
			}); err != nil {
				b.Error(err) // Error, not Fatal: this is not the test goroutine
				return
			}
		}
	})
	b.StopTimer()
	if st := db.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Syncs)/float64(st.Commits), "syncs/commit")
	}
}

func BenchmarkUpdateDurable(b *testing.B) {
	benchUpdates(b, open(b, config(b, "disk")))
}

func BenchmarkUpdateInMemory(b *testing.B) {
	benchUpdates(b, open(b, config(b, "memory")))
}
