package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/earshot/earshot/authz/audit"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
)

// Step-up: the phone and the PIN (docs/protocol.md, "Step-up").
//
// A phone is known to the core once it has opened a session: phone/<user>/<device>
// is written in its hello, and a prompt that needs the phone goes to every phone of the
// user that way. The user's PIN key (never the PIN) is pin/<user>.

// MaxPINTries is how many wrong PINs close a transaction.
const MaxPINTries = 3

func phonePrefix(user string) []byte      { return []byte("phone/" + user + "/") }
func phoneKey(user, device string) []byte { return append(phonePrefix(user), device...) }
func pinKey(user string) []byte           { return []byte("pin/" + user) }

// userPIN is the stored PIN key: a salt and a public key (identity.PINKey).
type userPIN struct {
	Salt   string    `json:"salt"`
	Pub    string    `json:"pub"`
	Device string    `json:"device"` // the phone that set it
	Set    time.Time `json:"set"`
}

func loadPIN(txn kv.Txn, user string) (*userPIN, error) {
	raw, err := txn.Get(pinKey(user))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	p := new(userPIN)
	if err := json.Unmarshal(raw, p); err != nil {
		return nil, fmt.Errorf("session: pin of %s: %w", user, err)
	}
	return p, nil
}

// phonesOf lists the user's phones that have connected.
func phonesOf(txn kv.Txn, user string) ([]string, error) {
	var out []string
	prefix := phonePrefix(user)
	err := txn.Scan(prefix, func(k, _ []byte) (bool, error) {
		out = append(out, string(k[len(prefix):]))
		return true, nil
	})
	return out, err
}

// stepUp fits the risk decision's methods to what the user has: a phone for
// MethodPhone, a PIN for MethodPIN. A method the user cannot use is dropped when
// another remains; when none remains the purchase is refused with the code that says
// what to set up. It sets t.Approvers and t.PINSalt.
func stepUp(txn kv.Txn, t *Tx, methods []wire.Method) ([]wire.Method, *wire.Error, error) {
	out := slices.Clone(methods)
	var missing *wire.Error
	if slices.Contains(out, wire.MethodPhone) {
		phones, err := phonesOf(txn, t.User)
		if err != nil {
			return nil, nil, err
		}
		if len(phones) == 0 {
			out = slices.DeleteFunc(out, func(m wire.Method) bool { return m == wire.MethodPhone })
			missing = wire.NewError(wire.CodeNoPhone, "this purchase needs approval on your phone, and no phone is paired")
		}
		t.Approvers = phones
	}
	if slices.Contains(out, wire.MethodPIN) {
		p, err := loadPIN(txn, t.User)
		if err != nil {
			return nil, nil, err
		}
		if p == nil {
			out = slices.DeleteFunc(out, func(m wire.Method) bool { return m == wire.MethodPIN })
			missing = wire.NewError(wire.CodeNoPIN, "this purchase needs your PIN, and none is set: set one on your phone")
		} else {
			t.PINSalt = p.Salt
		}
	}
	if len(out) == 0 {
		return nil, missing, nil
	}
	return out, nil, nil
}

// setPIN stores the user's PIN key from the user's phone.
func (cn *Conn) setPIN(ctx context.Context, msgID string, p *wire.PINSet) error {
	if cn.dev.Kind != registry.KindPhone {
		return wire.NewError(wire.CodeBadRequest, "only the user's phone sets the PIN")
	}
	if msgID == "" {
		return wire.NewError(wire.CodeBadRequest, "pin.set needs an envelope id")
	}
	c := cn.core
	err := c.update(ctx, func(txn kv.Txn, touch func(string)) error {
		now := c.cfg.Now()
		raw, err := json.Marshal(userPIN{Salt: p.Salt, Pub: p.Pub, Device: cn.dev.ID, Set: now})
		if err != nil {
			return err
		}
		if err := txn.Set(pinKey(cn.dev.User), raw); err != nil {
			return err
		}
		if _, err := enqueue(txn, cn.dev.ID, &wire.PINSetOK{Ref: msgID}, now); err != nil {
			return err
		}
		touch(cn.dev.ID)
		return nil
	})
	if err == nil {
		cn.log.Info("PIN key set", "user", cn.dev.User) // the key is public, but there is no need to log it
	}
	return err
}

// checkPIN verifies a PIN confirm's second signature inside the confirm's transaction.
// A wrong PIN is counted on t; the third closes the transaction. It returns the
// refusal to send the device, nil when the PIN is right.
func (c *Core) checkPIN(txn kv.Txn, t *Tx, cf *wire.Confirm, device string, now time.Time) (*wire.Error, error) {
	p, err := loadPIN(txn, t.User)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return wire.NewError(wire.CodeNoPIN, "no PIN is set: set one on your phone"), nil
	}
	pub, err := identity.DecodePublic(p.Pub)
	if err != nil {
		return nil, fmt.Errorf("session: pin of %s: %w", t.User, err)
	}
	if identity.VerifyPIN(pub, device, cf) == nil {
		return nil, nil
	}
	t.PINFailures++
	err = c.appendAudit(txn, audit.Record{Kind: audit.KindRefusal, Tx: t.ID, Device: t.Device, User: t.User, Agent: t.Agent,
		TermsHash: t.Challenge.Hash, State: wire.CodeBadPIN.String(),
		Detail: map[string]string{"attempt": fmt.Sprint(t.PINFailures), "device": device}})
	if err != nil {
		return nil, err
	}
	if t.PINFailures < MaxPINTries {
		left := MaxPINTries - t.PINFailures
		return txErr(wire.CodeBadPIN, fmt.Sprintf("wrong PIN: %d %s left", left, plural(left, "try", "tries")), t.ID), saveTx(txn, t)
	}
	t.Code, t.Reason = wire.CodePINLocked, "wrong PIN three times: the purchase is closed"
	if err := t.move(wire.TxRejected, now); err != nil {
		return nil, err
	}
	if err := publish(txn, t, t.result(), now); err != nil {
		return nil, err
	}
	return txErr(wire.CodePINLocked, t.Reason, t.ID), nil
}

func txErr(code wire.Code, msg, tx string) *wire.Error {
	e := wire.NewError(code, msg)
	e.Tx = tx
	return e
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
