package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// CheckpointType is the typ header of a checkpoint's signature, so that a checkpoint
// verifies as nothing else and nothing else as a checkpoint.
const CheckpointType = "earshot-audit-checkpoint+jwt"

// ErrBadCheckpoint reports a checkpoint whose signature does not verify or does not
// say what the checkpoint says.
var ErrBadCheckpoint = errors.New("audit: bad checkpoint")

// Verifier verifies checkpoint signatures; *authz.KeySet implements it.
type Verifier interface {
	VerifyPayload(token, typ string) ([]byte, error)
}

// checkpointClaims is the signed payload of checkpoint Seq: the record before it,
// Seq-1, has hash Hash (the checkpoint's Prev), and the checkpoint was made at Time.
type checkpointClaims struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
}

// Checkpoint is a checkpoint record in the form an operator keeps outside the store,
// one JSON line: {"seq":..,"hash":..,"time":..,"sig":..}. Hash is the hash of record
// Seq-1, the checkpoint's Prev. Sig alone proves the other three; with a Checkpoint
// kept elsewhere, VerifyOptions.Anchor detects a log rewritten or cut short before Seq.
type Checkpoint struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
	Sig  string    `json:"sig"`
}

// CheckpointOf returns the Checkpoint of a checkpoint record.
func CheckpointOf(r Record) (Checkpoint, error) {
	if r.Kind != KindCheckpoint {
		return Checkpoint{}, fmt.Errorf("%w: record %d is a %s record", ErrBadCheckpoint, r.Seq, r.Kind)
	}
	return Checkpoint{Seq: r.Seq, Hash: r.Prev, Time: r.Time, Sig: r.Sig}, nil
}

// Verify checks that Sig verifies with v and signs exactly Seq, Hash and Time.
func (c Checkpoint) Verify(v Verifier) error {
	if v == nil {
		return fmt.Errorf("%w: checkpoint %d: no verifier", ErrBadCheckpoint, c.Seq)
	}
	if c.Sig == "" || len(c.Sig) > MaxSigBytes {
		return fmt.Errorf("%w: checkpoint %d: sig of %d bytes, want 1 to %d", ErrBadCheckpoint, c.Seq, len(c.Sig), MaxSigBytes)
	}
	payload, err := v.VerifyPayload(c.Sig, CheckpointType)
	if err != nil {
		return fmt.Errorf("%w: checkpoint %d: %w", ErrBadCheckpoint, c.Seq, err)
	}
	var claims checkpointClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&claims); err != nil {
		return fmt.Errorf("%w: checkpoint %d: signed payload: %w", ErrBadCheckpoint, c.Seq, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: checkpoint %d: data after the signed payload", ErrBadCheckpoint, c.Seq)
	}
	switch {
	case claims.Seq != c.Seq:
		return fmt.Errorf("%w: checkpoint %d: the signature is for checkpoint %d", errMismatch, c.Seq, claims.Seq)
	case claims.Hash != c.Hash:
		return fmt.Errorf("%w: checkpoint %d: the signature is for prev %s, the checkpoint has %s",
			errMismatch, c.Seq, short(claims.Hash), short(c.Hash))
	case !claims.Time.Equal(c.Time):
		return fmt.Errorf("%w: checkpoint %d: the signature is for time %s, the checkpoint has %s",
			errMismatch, c.Seq, claims.Time.Format(time.RFC3339Nano), c.Time.Format(time.RFC3339Nano))
	}
	return nil
}

// errMismatch is a valid signature over other values than the checkpoint's: the
// signature is genuine, the record around it was edited.
var errMismatch = fmt.Errorf("%w: signed values differ", ErrBadCheckpoint)

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}
