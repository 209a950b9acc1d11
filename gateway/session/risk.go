package session

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/authz/risk"
	"github.com/earshot/earshot/device/wire"
)

// The risk rules need the past: what a user spent and how often a device asked. Two
// small time-ordered indexes in the store answer that, written in the transactions
// that make the facts true:
//
//	spend/<user>/<currency>/<ms, 13 digits>/<tx>  = amount   written when a mandate is
//	                                                         issued, deleted when it is
//	                                                         revoked, cancelled or superseded
//	preq/<device>/<ms, 13 digits>/<tx>            = ""       every purchase request decided
//
// Entries older than historyKeep are deleted when a scan passes them, so the indexes
// stay as small as the rules' longest window needs.
const historyKeep = 8 * 24 * time.Hour

func spendPrefix(user, currency string) []byte { return []byte("spend/" + user + "/" + currency + "/") }
func preqPrefix(device string) []byte          { return []byte("preq/" + device + "/") }

func timeKey(prefix []byte, at time.Time, tx string) []byte {
	return fmt.Appendf(append([]byte(nil), prefix...), "%013d/%s", at.UnixMilli(), tx)
}

// spendKey is the spend index entry of a mandate issued at at.
func spendKey(user, currency string, at time.Time, tx string) []byte {
	return timeKey(spendPrefix(user, currency), at, tx)
}

// history answers the risk rules from the indexes, inside the purchase request's
// transaction, so that two requests at once see each other (the store serialises
// them).
type history struct {
	txn kv.Txn
	now time.Time
}

var _ risk.History = history{}

func (h history) Spent(_ context.Context, user, currency string, since time.Time) (int64, error) {
	var sum int64
	err := h.scan(spendPrefix(user, currency), since, func(v []byte) error {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("session: spend index: bad amount %q", v)
		}
		sum += n
		return nil
	})
	return sum, err
}

func (h history) Purchases(_ context.Context, device string, since time.Time) (int, error) {
	n := 0
	err := h.scan(preqPrefix(device), since, func([]byte) error { n++; return nil })
	return n, err
}

// scan calls fn for each entry under prefix at or after since, and deletes entries
// older than historyKeep.
func (h history) scan(prefix []byte, since time.Time, fn func(v []byte) error) error {
	var stale [][]byte
	from, keep := since.UnixMilli(), h.now.Add(-historyKeep).UnixMilli()
	err := h.txn.Scan(prefix, func(k, v []byte) (bool, error) {
		rest := string(k[len(prefix):])
		ms, _, ok := strings.Cut(rest, "/")
		at, err := strconv.ParseInt(ms, 10, 64)
		if !ok || err != nil {
			return false, fmt.Errorf("session: history index: bad key %q", k)
		}
		switch {
		case at < keep:
			stale = append(stale, append([]byte(nil), k...))
		case at >= from:
			if err := fn(v); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := h.txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// noRisk is the policy of a core configured without one: no limits, and the
// ordinary methods on every kind of device.
func noRisk() *risk.Policy {
	ordinary := []risk.Level{{Methods: []wire.Method{wire.MethodTap, wire.MethodVoice, wire.MethodButton}}}
	return &risk.Policy{StepUp: map[string][]risk.Level{"glasses": ordinary, "kiosk": ordinary, "phone": ordinary}}
}

// decide applies the risk rules to a proposal for t and records the request for the
// velocity rule, whatever the outcome.
func (c *Core) decide(ctx context.Context, txn kv.Txn, t *Tx, terms *wire.Terms, now time.Time) (risk.Decision, error) {
	req := risk.Request{
		Now: now, User: t.User, Device: t.Device, DeviceKind: t.DeviceKind, Enrolled: t.Enrolled,
		Merchant: terms.Merchant.ID, Amount: int64(terms.Total), Currency: terms.Currency,
		Items: terms.Items, Kind: terms.Kind, Said: t.Said,
	}
	d, err := c.cfg.Risk.Decide(ctx, req, history{txn: txn, now: now})
	if err != nil {
		return risk.Decision{}, fmt.Errorf("session: risk: %w", err)
	}
	if err := txn.Set(timeKey(preqPrefix(t.Device), now, t.ID), nil); err != nil {
		return risk.Decision{}, err
	}
	return d, nil
}

// reasonText is a decision's reasons for the user and the log, in rule order.
func reasonText(d risk.Decision) string {
	parts := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		parts[i] = r.Detail
	}
	return strings.Join(parts, "; ")
}

// reasonCodes are a decision's reason codes, for the log and the audit trail.
func reasonCodes(d risk.Decision) string {
	codes := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		codes[i] = r.Code
	}
	return strings.Join(codes, ",")
}
