package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/earshot/earshot/authz/kv"
)

// reservedPrefix starts Badger's internal keys; Badger refuses it in user keys.
var reservedPrefix = []byte("!badger!")

// scanPrefetch is how many values a Scan reads ahead: outbox and index scans read every
// value, but usually stop after a few.
const scanPrefetch = 16

// txn is the kv.Txn handed to fn. Like Badger's, it is not safe for concurrent use, and
// it refuses use after fn returned (Badger would panic on a discarded transaction).
type txn struct {
	bt       *badger.Txn
	update   bool
	maxValue int // MaxValueSize, or less in memory
	wrote    bool
	done     bool
}

var _ kv.Txn = (*txn)(nil)

// Get implements kv.Txn: a copy of the value at key, or an error wrapping kv.ErrNotFound.
func (t *txn) Get(key []byte) ([]byte, error) {
	if err := t.check(key, false); err != nil {
		return nil, err
	}
	item, err := t.bt.Get(key)
	if err != nil {
		return nil, mapErr("get", err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, mapErr("get", err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Set implements kv.Txn. key and value are copied: the caller may reuse them.
func (t *txn) Set(key, value []byte) error {
	if err := t.check(key, true); err != nil {
		return err
	}
	if len(value) > t.maxValue {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(value), t.maxValue)
	}
	if err := t.bt.Set(bytes.Clone(key), append([]byte{}, value...)); err != nil {
		return mapErr("set", err)
	}
	t.wrote = true
	return nil
}

// Delete implements kv.Txn. Deleting a missing key is not an error.
func (t *txn) Delete(key []byte) error {
	if err := t.check(key, true); err != nil {
		return err
	}
	if err := t.bt.Delete(bytes.Clone(key)); err != nil {
		return mapErr("delete", err)
	}
	t.wrote = true
	return nil
}

// Scan implements kv.Txn: fn sees every key with prefix in key order, including this
// transaction's own writes made before the Scan started. key and value are valid only
// during the call. fn may Set and Delete; the Scan does not see those writes. An empty
// prefix scans everything.
func (t *txn) Scan(prefix []byte, fn func(key, value []byte) (bool, error)) error {
	if t.done {
		return ErrTxnDone
	}
	if len(prefix) > MaxKeySize {
		return fmt.Errorf("%w: prefix of %d bytes, limit %d", ErrKeyTooLong, len(prefix), MaxKeySize)
	}
	it := t.bt.NewIterator(badger.IteratorOptions{
		Prefix:         prefix,
		PrefetchValues: true,
		PrefetchSize:   scanPrefetch,
	})
	defer it.Close()
	for it.Seek(prefix); it.Valid(); it.Next() {
		item := it.Item()
		var more bool
		var ferr error
		if err := item.Value(func(v []byte) error {
			more, ferr = fn(item.Key(), v)
			return nil
		}); err != nil {
			return mapErr("scan", err)
		}
		if ferr != nil || !more {
			return ferr
		}
	}
	return nil
}

// check validates a key and the transaction's state for an operation.
func (t *txn) check(key []byte, write bool) error {
	switch {
	case t.done:
		return ErrTxnDone
	case write && !t.update:
		return ErrReadOnly
	case len(key) == 0:
		return ErrEmptyKey
	case len(key) > MaxKeySize:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLong, len(key), MaxKeySize)
	case bytes.HasPrefix(key, reservedPrefix):
		return ErrReservedKey
	}
	return nil
}

// mapErr turns Badger's errors into the contract's: kv.ErrNotFound, ErrTxnTooBig and
// ErrReadOnly by sentinel; the rest wrapped with the operation. badger.ErrConflict stays
// in the chain so Update can retry. Badger's size errors hex-dump the value (which may be
// a key or a token); check refuses those sizes first, so no such text gets out.
func mapErr(op string, err error) error {
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return kv.ErrNotFound
	case errors.Is(err, badger.ErrTxnTooBig):
		return fmt.Errorf("%w: %s: %w", ErrTxnTooBig, op, err)
	case errors.Is(err, badger.ErrReadOnlyTxn):
		return ErrReadOnly
	case errors.Is(err, badger.ErrDBClosed):
		return ErrClosed
	}
	return fmt.Errorf("store: %s: %w", op, err)
}
