package session

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/audit"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/wire"
)

// utterance opens a transaction for what the user said and hands it to the agent. A
// repeated utterance (same message id) is answered with its transaction's state.
func (cn *Conn) utterance(ctx context.Context, msgID string, u *wire.Utterance) error {
	c := cn.core
	if msgID == "" {
		return wire.NewError(wire.CodeBadRequest, "an utterance needs an envelope id")
	}
	if u.PTT && c.cfg.IsCancel != nil && c.cfg.IsCancel(u.Text) {
		return cn.cancelLatest(ctx, msgID, u.Text)
	}
	agentID, err := c.route(ctx, cn.dev.User)
	if err != nil {
		return err
	}
	if err := c.checkBacklog(ctx, agentID); err != nil && !c.uttered(ctx, cn.dev.ID, msgID) {
		return err // a repeated utterance is still told where its transaction stands
	}
	var (
		t       *Tx
		created bool
	)
	err = c.update(ctx, func(txn kv.Txn, touch func(string)) error {
		t, created = nil, false
		if id, err := txn.Get(uttKey(cn.dev.ID, msgID)); err == nil {
			t, err = loadTx(txn, string(id))
			return err
		} else if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		s, err := loadState(txn, cn.dev.ID)
		if err != nil {
			return err
		}
		if s.LastSeq-s.LastAck >= uint64(c.cfg.MaxUnacked) {
			return wire.NewError(wire.CodeRateLimited, "too many unacknowledged messages; ack, then retry")
		}

		now := c.cfg.Now()
		nt := &Tx{
			ID: c.randomID("tx_"), Device: cn.dev.ID, User: cn.dev.User, Session: s.Session, Agent: agentID,
			Ref: msgID, Text: u.Text, State: wire.TxReceived, Created: now, Updated: now,
			History:    []Transition{{State: wire.TxReceived, At: now}},
			DeviceKind: string(cn.dev.Kind), Enrolled: cn.dev.EnrolledAt,
		}
		if c.cfg.Said != nil {
			nt.Said = c.cfg.Said(u.Text)
		}
		if !u.PTT {
			// Purchases need push-to-talk or the wake word, never ambient speech.
			nt.Code, nt.Reason = wire.CodeRefused, "purchases need push-to-talk or the wake word"
			if err := nt.move(wire.TxRejected, now); err != nil {
				return err
			}
		}
		if err := saveTx(txn, nt); err != nil {
			return err
		}
		if err := txn.Set(txDevKey(cn.dev.ID, nt.ID), nil); err != nil {
			return err
		}
		if err := txn.Set(uttKey(cn.dev.ID, msgID), []byte(nt.ID)); err != nil {
			return err
		}
		if _, err := enqueue(txn, cn.dev.ID, nt.result(), now); err != nil {
			return err
		}
		touch(cn.dev.ID)
		t, created = nt, true
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case !created:
		cn.send(t.result(), msgID) // a repeat: say where its transaction stands
	case t.State == wire.TxReceived:
		c.m.utterance()
	default:
		c.finished(t.ID, t.State)
	}
	return nil
}

// confirm verifies the device's signed decision and, on approval, issues the mandate.
// The decision comes from the device that asked, or, for a prompt that needs the
// phone, from one of the user's phones (decoupled approval). An approval by PIN also
// carries the PIN signature; wrong PINs are counted and the third closes the
// transaction.
func (cn *Conn) confirm(ctx context.Context, cf *wire.Confirm) error {
	c := cn.core
	var (
		approved *Tx
		final    wire.TxState // the state the transaction ended in, if it did
		refusal  *wire.Error  // a refusal to send after the transaction commits (PIN)
		device   string       // the device that asked
		phone    bool
	)
	err := c.update(ctx, func(txn kv.Txn, touch func(string)) error {
		approved, final, refusal, device, phone = nil, "", nil, "", false
		t, err := loadTx(txn, cf.Tx)
		if errors.Is(err, ErrUnknownTx) {
			return wire.NewError(wire.CodeUnknownTx, "no such transaction")
		} else if err != nil {
			return err
		}
		if t.Device != cn.dev.ID {
			if !slices.Contains(t.Approvers, cn.dev.ID) || t.User != cn.dev.User {
				return wire.NewError(wire.CodeWrongDevice, "the transaction belongs to another device")
			}
			phone = true
		}
		device = t.Device
		now := c.cfg.Now()
		switch t.State {
		case wire.TxPrompted:
		case wire.TxExpired:
			return wire.NewError(wire.CodeChallengeExpired, "the prompt expired")
		case wire.TxReceived, wire.TxRequested:
			return wire.NewError(wire.CodeBadRequest, "no prompt is pending for the transaction")
		default:
			return wire.NewError(wire.CodeAlreadyDecided, "the transaction was already decided: "+string(t.State))
		}
		pub := ed25519.PublicKey(cn.dev.PublicKey)
		if phone {
			err = authz.VerifyApproval(t.Challenge, cf, cn.dev.ID, pub, now)
		} else {
			err = authz.VerifyConfirmation(t.Challenge, cf, cn.dev.ID, cn.currentSession(), pub, now)
		}
		if err != nil {
			return err
		}
		if cf.Decision == wire.DecisionApprove && cf.Method == wire.MethodPIN {
			if refusal, err = c.checkPIN(txn, t, cf, cn.dev.ID, now); err != nil || refusal != nil {
				if t.State == wire.TxRejected {
					final = t.State
					touch(t.Device)
				}
				return err
			}
		}
		terms := t.Challenge.Terms
		detail := map[string]string{"method": string(cf.Method)}
		if phone {
			detail["approver"] = cn.dev.ID
		}
		err = c.appendAudit(txn, audit.Record{Kind: audit.KindConsent, Tx: t.ID, Device: t.Device, User: t.User,
			Agent: t.Agent, Payee: terms.Merchant.ID, Amount: int64(terms.Total), Currency: terms.Currency,
			TermsHash: t.Challenge.Hash, State: string(cf.Decision), Detail: detail})
		if err != nil {
			return err
		}
		if cf.Decision == wire.DecisionDecline {
			if err := t.move(wire.TxDeclined, now); err != nil {
				return err
			}
			final = wire.TxDeclined
		} else {
			if err := c.issueMandate(txn, t, now); err != nil {
				return err
			}
			approved = t
		}
		if err := publish(txn, t, t.result(), now); err != nil {
			return err
		}
		touch(t.Device)
		return nil
	})
	if err != nil {
		return err
	}
	if cf.Decision == wire.DecisionApprove && cf.Method == wire.MethodPIN {
		switch {
		case refusal == nil:
			c.m.pin("ok")
		case refusal.Code == wire.CodePINLocked:
			c.m.pin("locked")
		default:
			c.m.pin("wrong")
		}
	}
	if refusal != nil && final == "" {
		return refusal // a wrong PIN: the prompt stays open
	}
	c.stopExpiry(cf.Tx)
	if refusal == nil {
		c.m.decision(cf.Decision)
	}
	if phone {
		// The phone hears how its decision ended too; the device that asked has it in
		// its outbox.
		if r, err := c.Tx(ctx, cf.Tx); err == nil {
			cn.send(r.result(), "")
		}
		c.log.Info("approved on the phone", "tx", cf.Tx, "device", device, "phone", cn.dev.ID, "decision", cf.Decision)
	}
	if approved != nil {
		if approved.Supersedes != "" {
			c.finished(approved.Supersedes, wire.TxCancelled)
		}
	} else {
		c.finished(cf.Tx, final)
	}
	if refusal != nil {
		return refusal // the third wrong PIN
	}
	return nil
}

// issueMandate signs a mandate for an approved prompt and records it in the ledger,
// inside the caller's transaction.
func (c *Core) issueMandate(txn kv.Txn, t *Tx, now time.Time) error {
	if err := t.move(wire.TxConfirmed, now); err != nil {
		return err
	}
	claims, err := authz.ClaimsFor(t.Challenge, t.User, t.Agent, c.cfg.Issuer, now, c.cfg.MandateTTL, c.cfg.Rand)
	if err != nil {
		return err
	}
	terms := t.Challenge.Terms
	if terms.Kind == wire.KindTip {
		// The terms name the tipped transaction; the mandate names its mandate.
		parent, err := loadTx(txn, terms.Conditions.Parent)
		if err != nil {
			return err
		}
		if claims.Constraints == nil {
			claims.Constraints = &authz.Constraints{}
		}
		claims.Constraints.Parent = parent.Mandate
	}
	token, err := c.cfg.Keys.Sign(claims)
	if err != nil {
		return err
	}
	if t.Supersedes != "" {
		// A modified order: the new mandate and the old one's end in one transaction
		// (the old transaction moves to cancelled in onTransition).
		old, err := loadTx(txn, t.Supersedes)
		if err != nil {
			return err
		}
		if err := c.ledger.Supersede(txn, old.Mandate, claims); err != nil {
			return err
		}
	} else if err := c.ledger.Record(txn, claims); err != nil {
		return err
	}
	t.Mandate, t.MandateToken, t.MandateExp = claims.ID, token, claims.Expiry
	if err := c.noteSpend(txn, t, terms.Total, terms.Currency, now); err != nil {
		return err
	}
	return t.move(wire.TxMandated, now)
}

// status answers tx.status with the transaction's current state.
func (cn *Conn) status(ctx context.Context, q *wire.TxStatus) error {
	var t *Tx
	err := cn.core.cfg.Store.View(ctx, func(txn kv.Txn) (err error) {
		t, err = loadTx(txn, q.Tx)
		return err
	})
	if errors.Is(err, ErrUnknownTx) || err == nil && t.Device != cn.dev.ID {
		return wire.NewError(wire.CodeUnknownTx, "no such transaction")
	} else if err != nil {
		return err
	}
	cn.send(t.result(), "")
	return nil
}

// rebindPrompts moves a device's open prompts to its new session: a device that could
// not resume gets fresh challenges (new session, new nonce, same terms otherwise) in
// place of the old ones, whose frames are dropped from the outbox. The user's phones
// get the new prompts of purchases waiting for them.
func rebindPrompts(txn kv.Txn, c *Core, device, session string, now time.Time, touch func(string)) error {
	var open []*Tx
	err := txn.Scan(txDevPrefix(device), func(k, _ []byte) (bool, error) {
		t, err := loadTx(txn, string(k[len(txDevPrefix(device)):]))
		if err != nil {
			return false, err
		}
		if t.State == wire.TxPrompted && t.Challenge.Terms.Session != session && now.UnixMilli() < t.Challenge.Terms.ExpiresAt {
			open = append(open, t)
		}
		return true, nil
	})
	if err != nil || len(open) == 0 {
		return err
	}
	stale := make(map[string]bool, len(open))
	for _, t := range open {
		stale[t.ID] = true
	}
	var drop [][]byte
	err = txn.Scan(outPrefix(device), func(k, v []byte) (bool, error) {
		env, err := wire.Decode(v)
		if err != nil || env.Type != wire.TypeConfirmRequest {
			return true, nil
		}
		var cr wire.ConfirmRequest
		if json.Unmarshal(env.Body, &cr) == nil && stale[cr.Tx] {
			drop = append(drop, append([]byte(nil), k...))
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	for _, t := range open {
		terms := t.Challenge.Terms
		terms.Session = session
		if terms.Nonce, err = authz.NewNonce(c.cfg.Rand); err != nil {
			return err
		}
		ch, err := authz.NewChallenge(terms, t.Challenge.Methods, now)
		if err != nil {
			return err
		}
		t.Challenge, t.Session, t.Updated = &ch, session, now
		t.Prompt = promptText(terms, ch.Methods, ch.Hash) // a new hash, a new binding code
		if err := publish(txn, t, t.promptBody(), now); err != nil {
			return err
		}
		for _, phone := range t.Approvers {
			if _, err := enqueue(txn, phone, t.approvalBody(), now); err != nil {
				return err
			}
			touch(phone)
		}
	}
	return nil
}
