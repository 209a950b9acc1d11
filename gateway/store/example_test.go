package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/gateway/store"
)

// Consume a mandate exactly once: read its ledger state and move it from issued to
// redeemed in one transaction. A concurrent redemption conflicts, re-runs, and then
// finds it redeemed.
func Example() {
	db, err := store.Open(store.Config{InMemory: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = db.Close() }() // in memory: nothing to lose on close

	ctx := context.Background()
	key := []byte("ledger/m-123")
	errSpent := errors.New("mandate already redeemed")
	redeem := func(tx kv.Txn) error {
		state, err := tx.Get(key)
		if err != nil {
			return err
		}
		if string(state) != "issued" {
			return errSpent
		}
		return tx.Set(key, []byte("redeemed"))
	}

	if err := db.Update(ctx, func(tx kv.Txn) error { return tx.Set(key, []byte("issued")) }); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("first:", db.Update(ctx, redeem))
	fmt.Println("second:", db.Update(ctx, redeem))
	// Output:
	// first: <nil>
	// second: mandate already redeemed
}

// List a device's pending downlink frames in seq order: the 20-digit padding makes key
// order numeric order.
func ExampleDB_View() {
	db, err := store.Open(store.Config{InMemory: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = db.Close() }() // in memory: nothing to lose on close

	ctx := context.Background()
	err = db.Update(ctx, func(tx kv.Txn) error {
		for _, seq := range []int{10, 9, 2} {
			key := fmt.Appendf(nil, "out/glasses-1/%020d", seq)
			if err := tx.Set(key, fmt.Appendf(nil, "frame %d", seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = db.View(ctx, func(tx kv.Txn) error {
		return tx.Scan([]byte("out/glasses-1/"), func(_, value []byte) (bool, error) {
			fmt.Println(string(value))
			return true, nil
		})
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// frame 2
	// frame 9
	// frame 10
}
