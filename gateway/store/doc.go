// Package store is the gateway's persistent state: authz/kv.Store over Badger. It is the
// only package of earshot that imports Badger; everything else reads and writes through
// kv.Txn.
//
// # Guarantees
//
// Update is serialisable: Badger's conflict detection stays on, and when a transaction
// conflicts the store runs fn again on a fresh snapshot (at most Config.MaxRetries
// times, with a tiny jittered backoff), then gives up with kv.ErrConflict. This is what
// makes "read state, if issued set redeemed" consume exactly once.
//
// Update is durable: it returns nil only after a sync of Badger's write-ahead log and
// value log that started after its commit. Syncs are batched (group commit): Badger
// runs with SyncWrites off, and one background syncer owned by the DB calls DB.Sync
// once for all commits that finished before that sync started; commits that finish
// while a sync is running wait for the next one, so under load one fsync acknowledges
// many transactions.
// Badger's DB.Sync covers only its current log files, so the syncer also fsyncs the
// older ones whenever Badger has moved on to a new file (see rotation.go). An
// Update whose fn wrote nothing still waits for a sync when it may have read data that
// is committed but not yet synced, so what it acknowledges survives a crash. View does
// not wait: it may observe committed data a crash could still lose, so acknowledge
// from Update, not from View. With Config.InMemory nothing is synced.
//
// Limits: keys are 1 to MaxKeySize bytes and must not start with Badger's reserved
// "!badger!"; values are at most MaxValueSize bytes (in memory: below both 1 MiB and
// 15% of Config.MemTableSize). All writes of one transaction
// must fit Badger's batch (about 15% of Config.MemTableSize, counting large values as
// pointers into the value log), else Update fails with ErrTxnTooBig.
//
// # Key layout
//
// Every key of the gateway lives in this one table. Keys are ASCII, components are
// separated by '/', and a Scan over a prefix ending in '/' lists one kind in key order.
// Variable parts are ids from the protocol (device ids, jtis, tx ids, message ids);
// secrets are never part of a key, only their SHA-256 (hex).
//
//	key                                   owner          value
//	ledger/<jti>                          authz          mandate ledger entry (state machine)
//	idem/<agent>/<sha256(key)>            authz          idempotency record (request hash, answer)
//	dev/<device>                          gateway        enrolled device: public key, user, kind, name, revoked
//	pair/<sha256(code)>                   gateway        one-time pairing code
//	sess/<device>                         gateway        session: session id, resume token hash, last seq, last ack
//	out/<device>/<seq>                    gateway        downlink outbox frame; seq is 20-digit zero-padded decimal
//	tx/<tx>                               gateway        transaction record
//	txdev/<device>/<tx>                   gateway        index: transactions of a device
//	utt/<device>/<msgid>                  gateway        utterance dedupe -> tx
//	apikey/<sha256(api key)>              gateway        agent id the API key belongs to
//	agent/<agent>                         gateway        sha256 of the agent's current API key
//	keys/mandate/<kid>                    keyring        mandate signing key (PEM)
//	keys/mandate-info/<kid>               keyring        JSON: created, rotated_out, retire_after
//	keys/mandate-retired/<kid>            keyring        public JWK of a retired key (audit)
//	audit/rec/<seq, 20 digits>            authz/audit    JSON audit record, hash-chained
//	audit/head                            authz/audit    JSON: last seq and hash, last checkpoint
//	meta/<name>                           gateway        gateway metadata
//
// The 20-digit zero padding of out/<device>/<seq> (fmt "%020d") makes key order equal
// numeric order, so a resume is one Scan of out/<device>/ from the first unacked seq.
//
// # Lifecycle
//
// Open starts the syncer; Run runs the value-log garbage collection until its context
// ends; Close waits for transactions in flight, stops the syncer and closes Badger. Stats
// reports sizes and counters for /metrics.
package store
