// Package audit is earshot's audit trail: an append-only, hash-chained log of every
// consent, mandate, redemption, refusal, revocation, cancellation, settlement and key
// event, with signed checkpoints, and the verifier that finds tampering in it. It is
// pure logic over the kv contract: no network, no Badger, no gateway imports.
//
// # The chain
//
// A Record is stored as its JSON encoding (the struct fixes the field order; Detail's
// keys are sorted) under
//
//	audit/rec/<seq, 20 digits>   JSON Record; key order is seq order
//	audit/head                   JSON {"seq","hash","checkpoint_seq","checkpoint_time"}:
//	                             the last record and the last checkpoint
//
// Seq counts from 1 without gaps. Hash is the hex SHA-256 of the record's encoding
// with Hash "" (and Sig as it is); Prev is the previous record's Hash, 64 zeros for
// record 1. So every record commits to everything before it: changing any field of
// any record changes its hash, which no longer matches the next record's Prev.
//
// Log.Append writes inside the caller's kv transaction, so a record commits exactly
// when the state change it records commits (a transaction that fails leaves no
// record). Every Append reads and writes audit/head: two transactions appending at
// once conflict there, and the store's conflict detection serialises them.
//
// # Checkpoints
//
// After every Config.CheckpointEvery records, or at the first Append once
// Config.CheckpointInterval has passed since the last checkpoint, Append adds a
// checkpoint record n (Kind "checkpoint") after the caller's. Its Sig is a compact JWS
// (ES256, typ CheckpointType, made by authz.KeySet.SignPayload) over
//
//	{"seq": n, "hash": <hash of record n-1, the checkpoint's Prev>, "time": <its Time>}
//
// The signature covers the chain up to record n-1 through that hash; the checkpoint's
// own Hash then covers its Sig, so a checkpoint cannot be swapped for another either.
// A Checkpoint (seq, hash, time, sig) is the form operators keep outside the store:
// LastCheckpoint reads the latest, and every checkpoint is also in an Export.
//
// # What Verify proves, and what it does not
//
// Verify (a stored log) and VerifyRecords or VerifyExport (an exported one) recompute
// every hash and report each finding as a Problem naming the seq:
//
//	edited         a record's content does not hash to its Hash (any field changed
//	               without rehashing), or a record was rehashed but the next one's Prev
//	               still names the old hash (the earlier record is named), or a
//	               checkpoint's signature is for other values than the record holds
//	missing        a gap in the seqs (deleted records)
//	reordered      a record under another seq's key, or out of seq order
//	truncated      audit/head names more records than are stored; or the log ends
//	               before VerifyOptions.MinSeq or before VerifyOptions.Anchor
//	bad_signature  a checkpoint whose signature does not verify with the key set
//	malformed      a record, key or head that cannot be read as Append writes it
//
// Against someone who can write to the store but does not hold a signing key, a log
// that verifies is the log as appended, up to its last checkpoint: to rewrite a record
// before a checkpoint they must rehash everything after it, which changes the hash the
// checkpoint's signature covers.
//
// It proves nothing about the tail after the last checkpoint if the head is rewritten
// too: the head is not signed (it changes with every record), so records removed from
// the end together with a head rewritten to the new last record, or tail records
// edited and rehashed with the head, leave a log that verifies. Records removed from
// the end across a checkpoint look the same from inside the store, since the
// checkpoint goes with them. Only knowledge kept outside the store finds them:
// VerifyOptions.Anchor (a checkpoint exported earlier: the log must still hold it,
// unchanged) and VerifyOptions.MinSeq (a seq the log is known to have reached).
//
// And against someone who holds a signing key as well as write access, nothing after
// the last anchor kept elsewhere is proven: they can rewrite every record after it and
// sign new checkpoints. Hence checkpoints must leave the machine: export
// LastCheckpoint to operators (a log line shipped elsewhere, a ticket, a file on
// another host) often enough that what may be lost is bounded, and verify with the
// latest one as the anchor.
//
// # What is never logged
//
// Records hold ids, amounts and reason codes, never secrets, tokens, raw audio or full
// payment details: Append refuses a Detail key that names a secret (pin, token, secret,
// key, password, audio, ...) and a Detail value that holds a compact JWS, and Reasons
// and Detail keys must be short codes, not prose that could carry data. Once appended,
// a record cannot be taken out without breaking the chain.
package audit
