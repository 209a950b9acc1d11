package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/earshot/earshot/authz/kv"
)

// Problem kinds.
const (
	ProblemEdited       = "edited"        // a record's content or link does not match its hash
	ProblemMissing      = "missing"       // records absent inside the log (a gap)
	ProblemReordered    = "reordered"     // a record out of seq order, moved or repeated
	ProblemTruncated    = "truncated"     // records absent at the end
	ProblemBadSignature = "bad_signature" // a checkpoint signature that does not verify
	ProblemMalformed    = "malformed"     // a record or key that cannot be read as written
)

// MaxProblems bounds Report.Problems; further problems are only counted.
const MaxProblems = 1000

// reorderWindow is how many records ahead of the one expected the verifier holds,
// waiting for the expected one to turn up late, before it calls it missing.
const reorderWindow = 64

// Problem is one finding of a verification. Seq is the position it concerns (0: the
// log as a whole, such as its head); Kind is one of the Problem constants.
type Problem struct {
	Seq    uint64 `json:"seq"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	if p.Seq == 0 {
		return fmt.Sprintf("log: %s: %s", p.Kind, p.Detail)
	}
	return fmt.Sprintf("record %d: %s: %s", p.Seq, p.Kind, p.Detail)
}

// Report is the result of a verification.
type Report struct {
	Records     int    `json:"records"`     // records read, readable or not
	Checkpoints int    `json:"checkpoints"` // checkpoint records read, good or bad
	LastSeq     uint64 `json:"last_seq"`    // the last seq of the chain
	LastHash    string `json:"last_hash"`   // its stored hash
	// Problems are the findings, in seq order, at most MaxProblems of them.
	Problems []Problem `json:"problems,omitempty"`
	// MoreProblems counts findings past MaxProblems.
	MoreProblems int `json:"more_problems,omitempty"`
}

// OK reports whether the verification found nothing wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 && r.MoreProblems == 0 }

// VerifyOptions adds what a verifier knows from outside the log.
type VerifyOptions struct {
	// From is the first seq expected, for part of a log (an Export from a later seq);
	// record From's prev cannot then be checked. Zero means 1.
	From uint64
	// MinSeq is a seq the log is known to have reached (from monitoring, say); a log
	// ending before it is reported truncated. Zero means no such knowledge.
	MinSeq uint64
	// Anchor is a checkpoint kept outside the store (see LastCheckpoint). The log must
	// hold it unchanged: a log that ends before it is reported truncated, one whose
	// record Anchor.Seq differs is reported edited. Nil means none.
	Anchor *Checkpoint
}

// Verify checks the log in store with zero VerifyOptions; see VerifyOptions.Verify.
func Verify(ctx context.Context, store kv.Store, v Verifier) (Report, error) {
	return VerifyOptions{}.Verify(ctx, store, v)
}

// VerifyRecords checks records from an export with zero VerifyOptions; see
// VerifyOptions.VerifyRecords.
func VerifyRecords(records []Record, v Verifier) Report {
	return VerifyOptions{}.VerifyRecords(records, v)
}

// Verify walks every record of the log in store, in key order, in one read
// transaction, and reports what is wrong: a record whose content does not hash to its
// hash, or whose hash is not the next record's prev (edited); a gap in the seqs
// (missing); a record under another seq's key or out of order (reordered); a head that
// names more records than are stored, or a log ending before opts.MinSeq or
// opts.Anchor (truncated); a checkpoint whose signature does not verify with v
// (bad_signature) or signs other values than the record's (edited); a record or key
// that cannot be read (malformed). It returns an error only when the store cannot be
// read or ctx ends.
func (o VerifyOptions) Verify(ctx context.Context, store kv.Store, v Verifier) (Report, error) {
	if store == nil {
		return Report{}, errors.New("audit: verify: nil store")
	}
	var c *checker
	err := store.View(ctx, func(txn kv.Txn) error {
		c = newChecker(o, v)
		hb, err := txn.Get([]byte(HeadKey))
		if err != nil && !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("audit: verify: read head: %w", err)
		}
		n := 0
		err = txn.Scan([]byte(RecordPrefix), func(k, val []byte) (bool, error) {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return false, err
				}
			}
			seq, ok := parseRecordKey(k)
			if !ok {
				c.add(0, ProblemMalformed, "key %q is not %s<20 digits>", k, RecordPrefix)
				return true, nil
			}
			if seq < c.from {
				return true, nil
			}
			r, err := decodeRecord(val)
			switch {
			case err != nil:
				c.add(seq, ProblemMalformed, "%v", err)
				c.feed(Record{Seq: seq}, true)
				return true, nil
			case r.Seq == 0:
				c.add(seq, ProblemMalformed, "the record under this key has seq 0")
				c.feed(Record{Seq: seq}, true)
				return true, nil
			case r.Seq != seq:
				c.add(seq, ProblemReordered, "the key of record %d holds record %d", seq, r.Seq)
			}
			c.feed(r, false)
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		c.finish()
		c.checkHead(hb)
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	return c.report(), nil
}

// VerifyRecords checks records, in the order given, as Verify checks a stored log,
// except for the head, which an export does not carry: so a cut-off tail is found only
// through opts.MinSeq or opts.Anchor. Records are read with ReadExport, which checks
// sizes and syntax; VerifyRecords reports the rest as problems.
func (o VerifyOptions) VerifyRecords(records []Record, v Verifier) Report {
	c := newChecker(o, v)
	for i, r := range records {
		if r.Seq == 0 {
			c.add(0, ProblemMalformed, "record %d of the export has seq 0", i+1)
			continue
		}
		c.feed(r, false)
	}
	c.finish()
	return c.report()
}

// entry is a record handed to the checker; bad means it could not be read, and only
// its position is known.
type entry struct {
	r   Record
	bad bool
}

// checker checks a stream of records for one Report. Records may come out of order: it
// holds up to reorderWindow records that came early and checks the chain in seq order.
type checker struct {
	opts    VerifyOptions
	v       Verifier
	rep     Report
	seen    map[Problem]bool // (Seq, Kind) already reported, Detail ""
	from    uint64
	next    uint64           // the seq expected next
	prev    string           // the hash record next must link to; "" if unknown
	pending map[uint64]entry // records that came before next
	lastCP  uint64           // the last checkpoint checked
	anchor  bool             // the anchor's record was checked
}

func newChecker(o VerifyOptions, v Verifier) *checker {
	c := &checker{opts: o, v: v, seen: map[Problem]bool{}, pending: map[uint64]entry{}, from: max(o.From, 1)}
	c.next = c.from
	if c.from == 1 {
		c.prev = ZeroHash
	}
	if a := o.Anchor; a != nil {
		if err := a.Verify(v); err != nil {
			c.add(a.Seq, ProblemBadSignature, "the anchor: %v", err)
		}
	}
	return c
}

// add records a problem, once per seq and kind.
func (c *checker) add(seq uint64, kind, format string, args ...any) {
	k := Problem{Seq: seq, Kind: kind}
	if c.seen[k] {
		return
	}
	if len(c.rep.Problems) >= MaxProblems {
		c.rep.MoreProblems++
		return
	}
	c.seen[k] = true
	c.rep.Problems = append(c.rep.Problems, Problem{Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

func (c *checker) feed(r Record, bad bool) {
	c.rep.Records++
	_, dup := c.pending[r.Seq]
	switch {
	case r.Seq < c.next || dup:
		c.add(r.Seq, ProblemReordered, "record %d appears again, or after records it precedes", r.Seq)
	case r.Seq == c.next:
		if len(c.pending) > 0 {
			c.add(r.Seq, ProblemReordered, "record %d comes after record %d", r.Seq, slices.Max(keys(c.pending)))
		}
		c.check(entry{r, bad})
		c.drain()
	default:
		c.pending[r.Seq] = entry{r, bad}
		if len(c.pending) > reorderWindow {
			c.skipGap()
		}
	}
}

// drain checks the pending records that follow on from next.
func (c *checker) drain() {
	for {
		e, ok := c.pending[c.next]
		if !ok {
			return
		}
		delete(c.pending, c.next)
		c.check(e)
	}
}

// skipGap gives up waiting for next: the records up to the first one pending are
// missing.
func (c *checker) skipGap() {
	first := slices.Min(keys(c.pending))
	if first-1 == c.next {
		c.add(c.next, ProblemMissing, "record %d is missing", c.next)
	} else {
		c.add(c.next, ProblemMissing, "records %d to %d are missing", c.next, first-1)
	}
	c.next, c.prev = first, "" // the gap explains the broken link
	c.drain()
}

// finish checks what is still pending, then what the options say about the end.
func (c *checker) finish() {
	for len(c.pending) > 0 {
		c.skipGap()
	}
	last := c.rep.LastSeq
	if m := c.opts.MinSeq; m > last {
		c.add(last+1, ProblemTruncated, "the log ends at record %d; it is known to have reached %d", last, m)
	}
	if a := c.opts.Anchor; a != nil && !c.anchor {
		if a.Seq > last {
			c.add(last+1, ProblemTruncated, "the log ends at record %d, before the anchored checkpoint %d", last, a.Seq)
		} else {
			c.add(a.Seq, ProblemMissing, "the anchored checkpoint %d is not in the log", a.Seq)
		}
	}
}

// check checks record e.r, which is next in seq order.
func (c *checker) check(e entry) {
	r := &e.r
	c.next = r.Seq + 1
	c.rep.LastSeq = r.Seq
	if e.bad {
		c.prev, c.rep.LastHash = "", ""
		return
	}
	if err := r.checkShape(); err != nil {
		c.add(r.Seq, ProblemMalformed, "%v", err)
	}
	self := true
	if h, err := r.computeHash(); err != nil {
		c.add(r.Seq, ProblemMalformed, "%v", err)
	} else if h != r.Hash {
		self = false
		c.add(r.Seq, ProblemEdited, "the record hashes to %s, its hash field says %s", short(h), short(r.Hash))
	}
	if c.prev != "" && r.Prev != c.prev {
		switch {
		case !self:
			// The record itself was changed; its prev may be what changed.
		case r.Seq == 1:
			c.add(1, ProblemEdited, "record 1's prev is %s, not zeros", short(r.Prev))
		default:
			c.add(r.Seq-1, ProblemEdited, "record %d has hash %s but record %d links to %s: "+
				"record %d was rewritten and rehashed (or record %d's prev)", r.Seq-1, short(c.prev), r.Seq,
				short(r.Prev), r.Seq-1, r.Seq)
		}
	}
	if r.Kind == KindCheckpoint {
		since := "record 1"
		if c.lastCP > 0 {
			since = fmt.Sprintf("checkpoint %d", c.lastCP)
		}
		c.rep.Checkpoints++
		c.lastCP = r.Seq
		cp, _ := CheckpointOf(*r) // r is a checkpoint: no error
		if err := cp.Verify(c.v); errors.Is(err, errMismatch) {
			c.add(r.Seq, ProblemEdited, "%v: the checkpoint, or a record since %s, was changed and the chain rehashed",
				err, since)
		} else if err != nil {
			c.add(r.Seq, ProblemBadSignature, "%v", err)
		}
	}
	if a := c.opts.Anchor; a != nil && a.Seq == r.Seq {
		c.anchor = true
		if r.Kind != KindCheckpoint || r.Prev != a.Hash || !r.Time.Equal(a.Time) || r.Sig != a.Sig {
			c.add(r.Seq, ProblemEdited, "the record differs from the anchored checkpoint: the log up to it was rewritten")
		}
	}
	c.prev, c.rep.LastHash = r.Hash, r.Hash
}

// checkHead compares the stored head (nil if absent) with the end of the chain.
func (c *checker) checkHead(b []byte) {
	last := c.rep.LastSeq
	if b == nil {
		if c.rep.Records > 0 {
			c.add(0, ProblemMalformed, "%s is missing", HeadKey)
		}
		return
	}
	h, err := decodeHead(b)
	if err != nil {
		c.add(0, ProblemMalformed, "%v", err)
		return
	}
	switch {
	case h.Seq > last:
		c.add(last+1, ProblemTruncated, "the head says the log ends at record %d, the last record is %d", h.Seq, last)
	case h.Seq < last:
		c.add(h.Seq+1, ProblemMalformed, "records %d to %d are past the head's seq %d", h.Seq+1, last, h.Seq)
	case c.rep.LastHash != "" && h.Hash != c.rep.LastHash:
		c.add(last, ProblemEdited, "the head's hash %s is not the record's hash %s", short(h.Hash), short(c.rep.LastHash))
	}
	switch {
	case h.CheckpointSeq > last:
		c.add(last+1, ProblemTruncated, "the head names checkpoint %d, the log ends at record %d", h.CheckpointSeq, last)
	case h.CheckpointSeq > c.lastCP:
		c.add(h.CheckpointSeq, ProblemEdited, "the head names checkpoint %d, which is not a checkpoint", h.CheckpointSeq)
	case h.CheckpointSeq < c.lastCP:
		c.add(c.lastCP, ProblemMalformed, "the head names checkpoint %d, not the last one, %d", h.CheckpointSeq, c.lastCP)
	}
}

// report returns the report, its problems in seq order.
func (c *checker) report() Report {
	slices.SortStableFunc(c.rep.Problems, func(a, b Problem) int { return cmp.Compare(a.Seq, b.Seq) })
	return c.rep
}

func keys(m map[uint64]entry) []uint64 { return slices.Collect(maps.Keys(m)) }
