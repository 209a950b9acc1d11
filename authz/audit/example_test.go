package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/audit"
	"github.com/earshot/earshot/authz/kv"
)

// Example appends a mandate's record in the transaction that records the mandate,
// verifies the log, exports it and verifies the export against the last checkpoint
// kept outside the store.
func Example() {
	ctx := context.Background()
	key, err := authz.GenerateSigningKey(nil, time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	keys, err := authz.NewKeySet(key)
	if err != nil {
		fmt.Println(err)
		return
	}
	store := kv.NewMemory() // gateway/store's Badger in the gateway
	log, err := audit.New(store, audit.Config{Signer: keys, CheckpointEvery: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, tx := range []string{"tx_1", "tx_2", "tx_3"} {
		err := store.Update(ctx, func(txn kv.Txn) error {
			// ... the ledger writes the mandate in txn here ...
			_, err := log.Append(txn, audit.Record{
				Kind: audit.KindMandate, Tx: tx, JTI: "mnd_" + tx, Agent: "agent_ref",
				Payee: "m_luckin", Amount: 950, Currency: "USD", State: "issued",
			})
			return err
		})
		if err != nil {
			fmt.Println(err)
			return
		}
	}
	rep, err := audit.Verify(ctx, store, keys)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("records %d, checkpoints %d, ok %t\n", rep.Records, rep.Checkpoints, rep.OK())

	anchor, err := audit.LastCheckpoint(ctx, store) // ship this to the operators
	if err != nil {
		fmt.Println(err)
		return
	}
	var export bytes.Buffer
	if err := audit.Export(ctx, store, &export, 0); err != nil {
		fmt.Println(err)
		return
	}
	rep, err = audit.VerifyOptions{Anchor: &anchor}.VerifyExport(&export, keys)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("export: records %d, last seq %d, ok %t\n", rep.Records, rep.LastSeq, rep.OK())
	// Output:
	// records 4, checkpoints 1, ok true
	// export: records 4, last seq 4, ok true
}
