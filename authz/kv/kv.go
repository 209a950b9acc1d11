// Package kv is the transactional key-value contract that authz's ledger and the
// gateway's session core write through. gateway/store implements it over Badger; Memory
// implements it in process for unit tests.
//
// Update is serialisable and durable: when it returns nil, what fn wrote is on disk
// (synced), so it may be acknowledged to a device or an agent. fn may run more than once
// when transactions conflict, so it must have no effects outside the transaction.
package kv

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
)

// Errors.
var (
	ErrNotFound = errors.New("kv: key not found")
	// ErrConflict is returned when a transaction still conflicted after the store's
	// retries; the caller may retry later.
	ErrConflict = errors.New("kv: transaction conflict")
)

// Txn is one transaction's view of the store.
type Txn interface {
	// Get returns a copy of the value at key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	Set(key, value []byte) error
	Delete(key []byte) error
	// Scan calls fn for every key with the prefix, in key order, until fn returns
	// false or an error. key and value are valid only during the call.
	Scan(prefix []byte, fn func(key, value []byte) (more bool, err error)) error
}

// Store runs transactions.
type Store interface {
	// Update runs fn in a read-write transaction and commits it durably.
	Update(ctx context.Context, fn func(Txn) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Txn) error) error
}

// Memory is an in-process Store for unit tests: transactions are serialised by one
// lock, so every Update is trivially serialisable. It is not durable.
type Memory struct {
	mu   sync.RWMutex
	data map[string][]byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{data: make(map[string][]byte)} }

// Update implements Store.
func (m *Memory) Update(ctx context.Context, fn func(Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &memTxn{m: m, writes: make(map[string][]byte)}
	if err := fn(t); err != nil {
		return err
	}
	for k, v := range t.writes {
		if v == nil {
			delete(m.data, k)
		} else {
			m.data[k] = v
		}
	}
	return nil
}

// View implements Store.
func (m *Memory) View(ctx context.Context, fn func(Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return fn(&memTxn{m: m, readOnly: true})
}

type memTxn struct {
	m        *Memory
	writes   map[string][]byte // nil value = deleted
	readOnly bool
}

var errReadOnly = errors.New("kv: write in a read-only transaction")

func (t *memTxn) Get(key []byte) ([]byte, error) {
	if v, ok := t.writes[string(key)]; ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return bytes.Clone(v), nil
	}
	v, ok := t.m.data[string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (t *memTxn) Set(key, value []byte) error {
	if t.readOnly {
		return errReadOnly
	}
	if value == nil {
		value = []byte{}
	}
	t.writes[string(key)] = bytes.Clone(value)
	return nil
}

func (t *memTxn) Delete(key []byte) error {
	if t.readOnly {
		return errReadOnly
	}
	t.writes[string(key)] = nil
	return nil
}

func (t *memTxn) Scan(prefix []byte, fn func(key, value []byte) (bool, error)) error {
	merged := maps.Clone(t.m.data)
	for k, v := range t.writes {
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(merged)) {
		if !bytes.HasPrefix([]byte(k), prefix) {
			continue
		}
		more, err := fn([]byte(k), merged[k])
		if err != nil || !more {
			return err
		}
	}
	return nil
}
