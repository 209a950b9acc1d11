package client

import (
	"context"
	"fmt"
	"slices"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// Step-up (docs/protocol.md, "Step-up: the phone and the PIN"): a phone approves the
// purchases of the user's other devices (Approve) and sets the user's PIN (SetPIN); a
// kiosk signs with the PIN the user typed (ConfirmPIN).

// Approve answers, on the user's phone, a prompt that needs the phone: the
// confirm.request of another device of the user (Terms.Device is that device), sent to
// the phone with methods ["phone"] and a binding code. Like Confirm it recomputes the
// hash (ErrHashMismatch) and checks the terms' transaction (ErrBadPrompt), but it
// accepts terms of another device; it refuses a prompt whose Binding is not
// wire.BindingCode of its hash (ErrBindingMismatch), and an approval when the prompt
// does not offer wire.MethodPhone (ErrMethodNotOffered). Show the user the terms and
// req.Binding, the code the other device shows, before calling it. The decision is
// signed with this device's key, method phone.
func (c *Client) Approve(ctx context.Context, req *wire.ConfirmRequest, d wire.Decision) error {
	hash, err := c.checkPrompt(req, false)
	if err != nil {
		return err
	}
	switch {
	case req.Binding == "" || req.Binding != wire.BindingCode(hash):
		return fmt.Errorf("%w: tx %s", ErrBindingMismatch, req.Tx)
	case d == wire.DecisionApprove && !slices.Contains(req.Methods, wire.MethodPhone):
		return fmt.Errorf("%w: %q, offered %v", ErrMethodNotOffered, wire.MethodPhone, req.Methods)
	}
	conf := &wire.Confirm{Tx: req.Tx, Hash: hash, Decision: d, Method: wire.MethodPhone}
	c.cfg.Key.SignConfirm(conf)
	if err := c.send(ctx, c.cfg.NewID(), conf); err != nil {
		return fmt.Errorf("client: approve: %w", err)
	}
	return nil
}

// ConfirmPIN answers a prompt that offers wire.MethodPIN with the user's decision and
// the PIN the user typed. It checks the prompt as Confirm does, refuses a prompt that
// does not offer the PIN (ErrMethodNotOffered) or carries no PINSalt (ErrBadPrompt) and
// a PIN that is not 4 to 12 digits (identity.ErrBadPIN); then it derives the PIN key
// from the PIN and the salt, signs the confirm with it (PINSig) and with the device
// key, method pin. Neither the PIN nor its key is kept or sent. A wrong PIN is
// answered with an error event: bad_pin (the message says how many tries are left),
// or pin_locked when the transaction closed.
func (c *Client) ConfirmPIN(ctx context.Context, req *wire.ConfirmRequest, d wire.Decision, pin string) error {
	hash, err := c.checkPrompt(req, true)
	if err != nil {
		return err
	}
	switch {
	case !slices.Contains(req.Methods, wire.MethodPIN):
		return fmt.Errorf("%w: %q, offered %v", ErrMethodNotOffered, wire.MethodPIN, req.Methods)
	case req.PINSalt == "":
		return fmt.Errorf("%w: a PIN prompt without pin_salt", ErrBadPrompt)
	}
	// scrypt takes about 125 ms: derived before anything waits on the connection.
	key, err := identity.PINKey(pin, req.PINSalt)
	if err != nil {
		return fmt.Errorf("client: confirm: %w", err)
	}
	conf := &wire.Confirm{Tx: req.Tx, Hash: hash, Decision: d, Method: wire.MethodPIN}
	identity.SignPIN(conf, c.device, key)
	clear(key)
	c.cfg.Key.SignConfirm(conf)
	if err := c.send(ctx, c.cfg.NewID(), conf); err != nil {
		return fmt.Errorf("client: confirm: %w", err)
	}
	return nil
}

// SetPIN sets the user's PIN, from the user's phone: it draws a fresh salt, derives
// the PIN key and sends pin.set with only the salt and the key's public half. It
// returns the message id; the answer is a pin.set.ok event (Event.PINSetOK) whose Ref
// is that id, or an error event with that Ref (bad_request from a device that is not
// a phone). A PIN that is not 4 to 12 digits is refused (identity.ErrBadPIN) and
// nothing is sent.
func (c *Client) SetPIN(ctx context.Context, pin string) (msgID string, err error) {
	ps, err := identity.NewPIN(pin, nil) // scrypt, before waiting on the connection
	if err != nil {
		return "", fmt.Errorf("client: set pin: %w", err)
	}
	id := c.cfg.NewID()
	if err := c.send(ctx, id, ps); err != nil {
		return "", fmt.Errorf("client: set pin: %w", err)
	}
	return id, nil
}
