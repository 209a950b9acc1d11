package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/earshot/earshot/authz/kv"
)

// Export limits.
const (
	// MaxLineBytes bounds one line of an export, newline excluded.
	MaxLineBytes = 64 << 10
	// DefaultReadMax is the number of records ReadExport reads when max is zero.
	DefaultReadMax = 100_000
)

// ErrExport reports an export ReadExport or VerifyExport cannot read; the message
// names the line.
var ErrExport = errors.New("audit: bad export")

// Export writes the records of the log in store from seq from on (0 means 1) to w as
// JSON lines, one record a line, in seq order, in one read transaction. Each line is
// the stored encoding (compacted, should it have been stored with spaces), so an
// export of a tampered log shows the tampering to whoever verifies it. A stored value
// that is not JSON stops the export with an error naming its key.
func Export(ctx context.Context, store kv.Store, w io.Writer, from uint64) error {
	if store == nil || w == nil {
		return errors.New("audit: export: nil store or writer")
	}
	bw := bufio.NewWriter(w)
	var line bytes.Buffer
	n := 0
	err := store.View(ctx, func(txn kv.Txn) error {
		return txn.Scan([]byte(RecordPrefix), func(k, val []byte) (bool, error) {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return false, err
				}
			}
			if seq, ok := parseRecordKey(k); ok && seq < from {
				return true, nil
			}
			line.Reset()
			if err := json.Compact(&line, val); err != nil {
				return false, fmt.Errorf("key %q: %w", k, err)
			}
			line.WriteByte('\n')
			if _, err := bw.Write(line.Bytes()); err != nil {
				return false, err
			}
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

// ReadExport reads an export written by Export: at most max records (0 means
// DefaultReadMax), each line at most MaxLineBytes and one record in strict JSON (no
// unknown field, nothing after it). It checks sizes and syntax only; VerifyRecords
// checks the rest. Errors wrap ErrExport and name the line.
func ReadExport(r io.Reader, max int) ([]Record, error) {
	switch {
	case max < 0:
		return nil, fmt.Errorf("%w: max %d", ErrExport, max)
	case max == 0:
		max = DefaultReadMax
	}
	var records []Record
	err := readLines(r, func(line int, rec Record) error {
		if len(records) == max {
			return fmt.Errorf("%w: line %d: more than %d records", ErrExport, line, max)
		}
		records = append(records, rec)
		return nil
	})
	return records, err
}

// VerifyExport reads an export as ReadExport does and verifies it as VerifyRecords
// does, record by record, so that an export of any length is verified in bounded
// memory. It returns an error, and no report, for an export it cannot read.
func (o VerifyOptions) VerifyExport(r io.Reader, v Verifier) (Report, error) {
	c := newChecker(o, v)
	err := readLines(r, func(line int, rec Record) error {
		if rec.Seq == 0 {
			c.add(0, ProblemMalformed, "line %d: record with seq 0", line)
			return nil
		}
		c.feed(rec, false)
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	c.finish()
	return c.report(), nil
}

// readLines calls fn with every record of an export and its line number.
func readLines(r io.Reader, fn func(line int, rec Record) error) error {
	if r == nil {
		return fmt.Errorf("%w: nil reader", ErrExport)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4<<10), MaxLineBytes+1) // +1: room for a '\r' before the '\n'
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) > MaxLineBytes {
			return fmt.Errorf("%w: line %d: %d bytes, at most %d", ErrExport, line, len(b), MaxLineBytes)
		}
		if len(b) == 0 {
			return fmt.Errorf("%w: line %d: empty", ErrExport, line)
		}
		rec, err := decodeRecord(b)
		if err != nil {
			return fmt.Errorf("%w: line %d: %w", ErrExport, line, err)
		}
		if err := fn(line, rec); err != nil {
			return err
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("%w: line %d: longer than %d bytes", ErrExport, line+1, MaxLineBytes)
	case err != nil:
		return fmt.Errorf("%w: line %d: %w", ErrExport, line+1, err)
	}
	return nil
}
