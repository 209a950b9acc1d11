package session

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/store"
)

// BenchmarkAppendEvent measures staging events for one agent's log from concurrent
// store transactions, and numbering them into the log (the sequencer's batches of
// 512): ns/op is per event, both steps; retries/op says how often a transaction ran
// again after a conflict (staging shares no key, so none should).
func BenchmarkAppendEvent(b *testing.B) {
	db, err := store.Open(store.Config{InMemory: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	in := agent.Intent{Tx: "tx_0123456789abcdef", Device: "dev_0123456789abcdefghij", User: "usr_alice", Text: "buy two oat lattes"}
	ctx := context.Background()
	before := db.Stats().ConflictRetries
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			err := db.Update(ctx, func(txn kv.Txn) error {
				return appendEvent(txn, "refagent", agent.EventIntent, in.Device, in.User, time.Now(), in)
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	c := &Core{cfg: Config{Store: db}}
	for {
		n, err := c.sequence(ctx, 512)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	b.ReportMetric(float64(db.Stats().ConflictRetries-before)/float64(b.N), "retries/op")
}
