package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/wire"
)

// SetPIN sets the user's PIN from the phone (pin.set: only a salt and a public key
// travel) and waits for the gateway's pin.set.ok. The PIN is not kept or logged.
func (d *Device) SetPIN(ctx context.Context, pin string) error {
	if d.profile.Kind != KindPhone {
		return fmt.Errorf("%w: set the PIN (a %s)", ErrNotPhone, d.profile.Kind)
	}
	id, err := d.client.SetPIN(ctx, pin)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	err = d.await(ctx, func(ev client.Event) (verdict, error) {
		switch {
		case ev.PINSetOK != nil && ev.PINSetOK.Ref == id:
			return finish, nil
		case ev.Error != nil && ev.Error.Ref == id:
			return finish, fmt.Errorf("sim: pin.set refused: %w", ev.Error)
		}
		return keep, nil
	})
	if err == nil {
		d.log.Info("PIN set", "ref", id)
	}
	return err
}

// PhoneConfig says how a phone answers the prompts it gets (ServePhone). The zero
// value approves every prompt until the context ends.
type PhoneConfig struct {
	// Decision is the simulated user's answer to every prompt. Default: approve.
	Decision wire.Decision
	// Count stops the loop after that many answers, once the gateway replied to the
	// last (its copy of the result, or an error). Default: 0, until ctx ends.
	Count int
	// Out receives what the phone shows: each prompt with its code (FormatApproval),
	// the answer, and the results and errors that follow. Default: discard.
	Out io.Writer
	// ReplyTimeout bounds the wait for the gateway's reply to the last answer when
	// Count is reached. Default: 10 s.
	ReplyTimeout time.Duration
}

// ServePhone is the phone's approval loop: it shows every confirm.request the phone
// gets (the prompts of the user's other devices that need the phone, with their binding
// code) and answers it with the configured decision, signed by the phone
// (client.Approve: a prompt whose hash or code does not check out is shown as refused
// and not answered). Results and errors from the gateway are shown as they arrive. It
// returns the number of prompts answered when ctx ends or, with Count, once the
// gateway replied to the last answer (or ReplyTimeout passed); an error only when the
// device stopped. The caller owns the goroutine it runs on and stops it with ctx.
func (d *Device) ServePhone(ctx context.Context, cfg PhoneConfig) (int, error) {
	if d.profile.Kind != KindPhone {
		return 0, fmt.Errorf("%w: approve prompts (a %s)", ErrNotPhone, d.profile.Kind)
	}
	if cfg.Decision == "" {
		cfg.Decision = wire.DecisionApprove
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.ReplyTimeout <= 0 {
		cfg.ReplyTimeout = 10 * time.Second
	}
	var n int
	var last string // the transaction of the Count-th answer
	show := func(ev client.Event) {
		switch {
		case ev.TxResult != nil:
			fmt.Fprintln(cfg.Out, FormatResult(ev.TxResult))
		case ev.Error != nil:
			fmt.Fprintln(cfg.Out, FormatError(ev.Error))
		}
	}
	err := d.await(ctx, func(ev client.Event) (verdict, error) {
		req := ev.ConfirmRequest
		if req == nil {
			show(ev)
			return consume, nil
		}
		fmt.Fprint(cfg.Out, FormatApproval(req, d.cfg.Now()))
		if err := d.client.Approve(ctx, req, cfg.Decision); err != nil {
			fmt.Fprintf(cfg.Out, "not answered: %v\n", err)
			d.log.Warn("prompt not answered", "tx", req.Tx, "err", err)
			return consume, nil
		}
		n++
		fmt.Fprintf(cfg.Out, "< %s (phone, code %s)\n", cfg.Decision, req.Binding)
		d.log.Info("answered on the phone", "tx", req.Tx, "device", req.Terms.Device, "decision", cfg.Decision)
		if cfg.Count > 0 && n >= cfg.Count {
			last = req.Tx
			return finish, nil
		}
		return consume, nil
	})
	switch {
	case ctx.Err() != nil:
		return n, nil
	case err != nil || last == "":
		return n, err
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.ReplyTimeout)
	defer cancel()
	err = d.await(rctx, func(ev client.Event) (verdict, error) {
		if ev.ConfirmRequest != nil {
			return keep, nil // for a later loop
		}
		show(ev)
		if (ev.TxResult != nil && ev.TxResult.Tx == last) || (ev.Error != nil && ev.Error.Tx == last) {
			return finish, nil
		}
		return consume, nil
	})
	if errors.Is(err, ErrStopped) {
		return n, err
	}
	if err != nil {
		fmt.Fprintf(cfg.Out, "(no reply from the gateway within %s)\n", cfg.ReplyTimeout)
	}
	return n, nil
}
