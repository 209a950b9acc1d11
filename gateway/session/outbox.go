package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

// state is a device's durable session state.
type state struct {
	Device     string    `json:"device"`
	Session    string    `json:"session"`
	ResumeHash string    `json:"resume_hash"` // SHA-256 of the resume token; the token is never stored
	LastSeq    uint64    `json:"last_seq"`    // newest downlink seq assigned
	LastAck    uint64    `json:"last_ack"`    // newest seq the device acknowledged
	Updated    time.Time `json:"updated"`
}

func sessKey(device string) []byte   { return []byte("sess/" + device) }
func outPrefix(device string) []byte { return []byte("out/" + device + "/") }
func outKey(device string, seq uint64) []byte {
	return fmt.Appendf(nil, "out/%s/%020d", device, seq)
}

func seqOf(key []byte, device string) (uint64, error) {
	return strconv.ParseUint(string(key[len(outPrefix(device)):]), 10, 64)
}

func loadState(txn kv.Txn, device string) (*state, error) {
	raw, err := txn.Get(sessKey(device))
	if errors.Is(err, kv.ErrNotFound) {
		return &state{Device: device}, nil
	} else if err != nil {
		return nil, err
	}
	s := new(state)
	if err := json.Unmarshal(raw, s); err != nil {
		return nil, fmt.Errorf("session: state of %s: %w", device, err)
	}
	return s, nil
}

func saveState(txn kv.Txn, s *state) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return txn.Set(sessKey(s.Device), raw)
}

// enqueue appends a downlink message to the device's outbox inside txn and returns
// its seq. The frame is flushed to the live connection after the transaction commits.
func enqueue(txn kv.Txn, device string, body wire.Body, now time.Time) (uint64, error) {
	s, err := loadState(txn, device)
	if err != nil {
		return 0, err
	}
	seq := s.LastSeq + 1
	frame, err := wire.Encode(wire.Envelope{
		ID: "d" + strconv.FormatUint(seq, 10), Device: device, Seq: seq, TS: now.UnixMilli(),
	}, body)
	if err != nil {
		return 0, err
	}
	if err := txn.Set(outKey(device, seq), frame); err != nil {
		return 0, err
	}
	s.LastSeq, s.Updated = seq, now
	return seq, saveState(txn, s)
}

// ack deletes every outbox frame up to seq and records the ack.
func ack(txn kv.Txn, device string, seq uint64, now time.Time) error {
	s, err := loadState(txn, device)
	if err != nil {
		return err
	}
	if seq > s.LastSeq {
		return wire.NewError(wire.CodeBadRequest, fmt.Sprintf("ack of seq %d, newest sent is %d", seq, s.LastSeq))
	}
	if seq <= s.LastAck {
		return nil
	}
	var done [][]byte
	err = txn.Scan(outPrefix(device), func(k, _ []byte) (bool, error) {
		n, err := seqOf(k, device)
		if err != nil || n > seq {
			return false, err
		}
		done = append(done, append([]byte(nil), k...))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range done {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	s.LastAck, s.Updated = seq, now
	return saveState(txn, s)
}

// pending returns the outbox frames after seq, in order.
func pending(txn kv.Txn, device string, after uint64) (seqs []uint64, frames [][]byte, err error) {
	err = txn.Scan(outPrefix(device), func(k, v []byte) (bool, error) {
		n, err := seqOf(k, device)
		if err != nil {
			return false, err
		}
		if n > after {
			seqs = append(seqs, n)
			frames = append(frames, append([]byte(nil), v...))
		}
		return true, nil
	})
	return seqs, frames, err
}
