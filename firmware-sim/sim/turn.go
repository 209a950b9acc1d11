package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/wire"
)

// Errors.
var (
	// ErrNoPrompt reports a transaction that ended (for example rejected as not
	// understood) without a prompt; Turn.Final holds the result.
	ErrNoPrompt = errors.New("sim: no prompt")
	// ErrMethod reports a verification method the device does not have.
	ErrMethod = errors.New("sim: verification method not available on this device")
	// ErrStopped reports a device whose connection ended for good.
	ErrStopped = errors.New("sim: device stopped")
	// ErrNoPIN reports a prompt that asks for the PIN on a device whose simulated
	// user has none (Config.PIN).
	ErrNoPIN = errors.New("sim: the prompt asks for a PIN and the simulated user has none")
	// ErrNotPhone reports something only a phone does (SetPIN, ServePhone) asked of
	// another kind of device.
	ErrNotPhone = errors.New("sim: only a phone does that")
	// ErrPrompted reports a prompt for a transaction that was to go through without
	// one (AwaitNoPrompt).
	ErrPrompted = errors.New("sim: the transaction asked for approval")
)

// Turn is one utterance and the transaction that answers it.
type Turn struct {
	d *Device
	// Text is what was said; Ref is the utterance's message id.
	Text, Ref string
	// Tx is the transaction, once a prompt or a result named it.
	Tx string
	// Prompt is the prompt, once it arrived.
	Prompt *wire.ConfirmRequest
	// Results are the tx.results of the transaction, in arrival order.
	Results []*wire.TxResult
	// Final is the latest final result, once one arrived: redeemed, then cancelled
	// when the purchase was cancelled after it.
	Final *wire.TxResult
	// Errors are the gateway's errors about the turn (its utterance or its
	// transaction), in arrival order: a refused confirm (bad_pin, pin_locked,
	// method_not_allowed) or cancel (not_cancellable).
	Errors []*wire.Error

	// Spoken turns (Config.Audio) also record what the gateway heard and said.
	// Speech is the speech.result of the utterance, once it arrived.
	Speech *wire.SpeechResult
	// PromptAudio is the spoken prompt (or the spoken apology for a command that was
	// not understood), once it arrived whole.
	PromptAudio *client.PromptSpeech
	// Metrics are the timings of the utterance's turn, once they arrived.
	Metrics *wire.TurnMetrics
	// Answer and AnswerMetrics are the speech.result and timings of the last spoken
	// answer to the prompt (Confirm with wire.MethodVoice).
	Answer        *wire.SpeechResult
	AnswerMetrics *wire.TurnMetrics

	cursor   int             // Results before it were returned by NextResult
	errSeen  int             // Errors before it were returned by AwaitError
	stale    map[string]bool // transactions seen before the utterance was sent
	sessions []string        // the session when the utterance was sent
	answers  map[string]bool // the message ids of the spoken answers
}

// Say sends an utterance and starts a Turn to follow what answers it: as text, or,
// on a device started with Config.Audio, spoken (push-to-talk). Prompts for
// transactions the device had seen before are not taken for this turn's.
func (d *Device) Say(ctx context.Context, text string) (*Turn, error) {
	d.drain()
	session, _ := d.client.Session()
	t := &Turn{d: d, Text: text, stale: make(map[string]bool, len(d.seenTx)), sessions: []string{session}, answers: map[string]bool{}}
	for tx := range d.seenTx {
		t.stale[tx] = true
	}
	var ref string
	var err error
	if d.cfg.Audio {
		ref, err = d.speak(ctx, text, client.SpeakOptions{Mode: wire.ModeCommand})
	} else if ref, err = d.client.Say(ctx, text); err != nil {
		err = fmt.Errorf("sim: %w", err)
	}
	if err != nil {
		return nil, err
	}
	t.Ref = ref
	d.log.Debug("said", "ref", ref)
	return t, nil
}

// AwaitPrompt waits for the turn's prompt. When the transaction ends first it returns
// ErrNoPrompt (wrapped) and sets Final; when the gateway did not understand a spoken
// utterance it returns a *SpeechError (ErrNotUnderstood) and sets Speech; an error from
// the gateway about the utterance is returned as a *wire.Error (wrapped).
func (t *Turn) AwaitPrompt(ctx context.Context) (*wire.ConfirmRequest, error) {
	if t.Prompt != nil {
		return t.Prompt, nil
	}
	if t.Final != nil {
		return nil, t.noPrompt()
	}
	if err := t.unheard(); err != nil {
		return nil, err
	}
	err := t.d.await(ctx, func(ev client.Event) (verdict, error) {
		if v, err := t.claim(ev); v != consume || err != nil {
			return v, err
		}
		switch {
		case t.Prompt != nil:
			return finish, nil
		case t.Final != nil:
			return finish, t.noPrompt()
		}
		return consume, nil
	})
	if err != nil {
		return nil, err
	}
	return t.Prompt, nil
}

func (t *Turn) noPrompt() error {
	return fmt.Errorf("%w: transaction %s ended %s %s", ErrNoPrompt, t.Final.Tx, t.Final.State, t.Final.Code)
}

// Confirm answers the prompt (AwaitPrompt first) with the user's decision, verified
// with method m. With m empty an approval uses the profile's default method when the
// prompt offers it, else the first of the profile's methods the prompt offers; a
// decline uses the default method (any method may decline).
//
// On a device started with Config.Audio, wire.MethodVoice means the user says
// "confirm" (or "cancel"), again if the gateway did not understand it, and the device
// signs the decision once the gateway heard it as such (ErrAnswer otherwise).
// wire.MethodPIN signs with the PIN of Config.PIN (ErrNoPIN without one; see
// ConfirmPIN). wire.MethodPhone on glasses approves on the user's phone:
// the device signs nothing and the result arrives when the phone has answered (a
// decline is signed here, with the default method); on a phone it answers another
// device's prompt (client.Approve).
func (t *Turn) Confirm(ctx context.Context, decision wire.Decision, m wire.Method) error {
	if t.Prompt == nil {
		return fmt.Errorf("%w: nothing to confirm yet", ErrNoPrompt)
	}
	m = t.Method(decision, m)
	if !t.d.profile.Supports(m) {
		return fmt.Errorf("%w: %s on %s", ErrMethod, m, t.d.profile.Kind)
	}
	var err error
	switch {
	case m == wire.MethodPIN:
		return t.ConfirmPIN(ctx, decision, t.d.cfg.PIN)
	case m == wire.MethodPhone && t.d.profile.Kind == KindPhone:
		err = t.d.client.Approve(ctx, t.Prompt, decision)
	case m == wire.MethodPhone && !slices.Contains(t.Prompt.Methods, wire.MethodPhone):
		return fmt.Errorf("sim: %w: the prompt offers %v", client.ErrMethodNotOffered, t.Prompt.Methods)
	case m == wire.MethodPhone && decision == wire.DecisionApprove:
		t.d.log.Info("approve on the phone", "tx", t.Tx)
		return nil
	case m == wire.MethodPhone:
		err = t.d.client.Confirm(ctx, t.Prompt, decision, t.d.profile.DefaultMethod)
	default:
		if m == wire.MethodVoice && t.d.cfg.Audio {
			if err := t.answer(ctx, decision); err != nil {
				return err
			}
		}
		err = t.d.client.Confirm(ctx, t.Prompt, decision, m)
	}
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

// Method is the verification method Confirm uses for decision when asked for m.
func (t *Turn) Method(decision wire.Decision, m wire.Method) wire.Method {
	p := t.d.profile
	switch {
	case m != "":
		return m
	case decision == wire.DecisionDecline || t.Prompt == nil || slices.Contains(t.Prompt.Methods, p.DefaultMethod):
		return p.DefaultMethod
	}
	for _, x := range p.Methods {
		if slices.Contains(t.Prompt.Methods, x) {
			return x
		}
	}
	return p.DefaultMethod
}

// OnPhone reports whether the prompt needs the user's phone and the device is not
// the phone: the glasses show the binding code and wait.
func (t *Turn) OnPhone() bool {
	return t.Prompt != nil && t.d.profile.Kind != KindPhone && slices.Contains(t.Prompt.Methods, wire.MethodPhone)
}

// ConfirmPIN answers the prompt with decision and the PIN the user typed (pin, not
// Config.PIN: a scenario types a wrong one on purpose). A wrong PIN is answered with
// an error (AwaitError): bad_pin, or pin_locked on the third, which closes the
// transaction.
func (t *Turn) ConfirmPIN(ctx context.Context, decision wire.Decision, pin string) error {
	switch {
	case t.Prompt == nil:
		return fmt.Errorf("%w: nothing to confirm yet", ErrNoPrompt)
	case !t.d.profile.Supports(wire.MethodPIN):
		return fmt.Errorf("%w: %s on %s", ErrMethod, wire.MethodPIN, t.d.profile.Kind)
	case pin == "":
		return ErrNoPIN
	}
	if err := t.d.client.ConfirmPIN(ctx, t.Prompt, decision, pin); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

// Cancel sends the user's "cancel my order" for the turn's transaction (tx.cancel,
// after the redemption too). The outcome arrives as results (cancelling, then
// cancelled, or redeemed again when the merchant refuses) or as an error
// (not_cancellable; AwaitError).
func (t *Turn) Cancel(ctx context.Context, reason string) error {
	if t.Tx == "" {
		return fmt.Errorf("%w: no transaction to cancel", ErrNoPrompt)
	}
	if err := t.d.client.Cancel(ctx, t.Tx, reason); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

// AwaitNoPrompt waits until the turn's transaction is mandated, or ends, without a
// prompt: a purchase the user already consented to, such as a tip within the cap
// approved with its order. It returns that result, or ErrPrompted (wrapped) when a
// prompt comes first. The results stay for NextResult.
func (t *Turn) AwaitNoPrompt(ctx context.Context) (*wire.TxResult, error) {
	done := func() (*wire.TxResult, error) {
		if t.Prompt != nil {
			return nil, fmt.Errorf("%w: transaction %s prompted for %s", ErrPrompted, t.Tx, wire.Money(t.Prompt.Terms.Total, t.Prompt.Terms.Currency))
		}
		for _, r := range t.Results {
			if r.State == wire.TxMandated || r.State.Final() {
				return r, nil
			}
		}
		return nil, nil
	}
	if r, err := done(); r != nil || err != nil {
		return r, err
	}
	if err := t.unheard(); err != nil {
		return nil, err
	}
	var r *wire.TxResult
	err := t.d.await(ctx, func(ev client.Event) (verdict, error) {
		v, err := t.claim(ev)
		if err != nil || v != consume {
			return v, err
		}
		var derr error
		if r, derr = done(); r != nil || derr != nil {
			return finish, derr
		}
		return consume, nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// AwaitError returns the gateway's next error about the turn that AwaitError has not
// returned before, waiting for it; results that arrive meanwhile stay for NextResult.
func (t *Turn) AwaitError(ctx context.Context) (*wire.Error, error) {
	if t.errSeen < len(t.Errors) {
		t.errSeen++
		return t.Errors[t.errSeen-1], nil
	}
	if err := t.unheard(); err != nil {
		return nil, err
	}
	err := t.d.await(ctx, func(ev client.Event) (verdict, error) {
		v, err := t.claim(ev)
		if t.errSeen < len(t.Errors) {
			return finish, nil
		}
		return v, err
	})
	if err != nil {
		return nil, err
	}
	t.errSeen++
	return t.Errors[t.errSeen-1], nil
}

// NextResult returns the turn's next tx.result not returned before, waiting for it.
func (t *Turn) NextResult(ctx context.Context) (*wire.TxResult, error) {
	if t.cursor < len(t.Results) {
		t.cursor++
		return t.Results[t.cursor-1], nil
	}
	if err := t.unheard(); err != nil {
		return nil, err
	}
	err := t.d.await(ctx, func(ev client.Event) (verdict, error) {
		v, err := t.claim(ev)
		if err == nil && v == consume && t.cursor < len(t.Results) {
			return finish, nil
		}
		return v, err
	})
	if err != nil {
		return nil, err
	}
	t.cursor++
	return t.Results[t.cursor-1], nil
}

// AwaitResult returns the first result not returned before whose state is want, or
// the final result if it comes first. With want empty it waits for the final result.
func (t *Turn) AwaitResult(ctx context.Context, want wire.TxState) (*wire.TxResult, error) {
	for {
		r, err := t.NextResult(ctx)
		if err != nil {
			return nil, err
		}
		if r.State == want || r.State.Final() {
			return r, nil
		}
	}
}

// Status asks for the transaction's state and returns the next result that arrives
// for it, first waiting for the transaction to be known. The result also stays in Results for NextResult.
func (t *Turn) Status(ctx context.Context) (*wire.TxResult, error) {
	if t.Tx == "" { // wait until a prompt or a result names the transaction
		if err := t.unheard(); err != nil {
			return nil, err
		}
		err := t.d.await(ctx, func(ev client.Event) (verdict, error) {
			v, err := t.claim(ev)
			if err == nil && v == consume && t.Tx != "" {
				return finish, nil
			}
			return v, err
		})
		if err != nil {
			return nil, err
		}
	}
	n := len(t.Results)
	if err := t.d.client.Status(ctx, t.Tx); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	err := t.d.await(ctx, func(ev client.Event) (verdict, error) {
		v, err := t.claim(ev)
		if err == nil && v == consume && len(t.Results) > n {
			return finish, nil
		}
		return v, err
	})
	if err != nil {
		return nil, err
	}
	return t.Results[len(t.Results)-1], nil
}

// claim takes ev for the turn (consume) when it belongs to it, recording it, or leaves
// it for another turn (keep). An error from the gateway about the turn fails it.
func (t *Turn) claim(ev client.Event) (verdict, error) {
	switch {
	case ev.ConfirmRequest != nil:
		req := ev.ConfirmRequest
		if req.Tx != t.Tx && (t.Tx != "" || t.stale[req.Tx] || !t.fromSession(req.Terms.Session)) {
			return keep, nil
		}
		t.Tx, t.Prompt = req.Tx, req
		return consume, nil
	case ev.TxResult != nil:
		r := ev.TxResult
		if r.Tx != t.Tx && (t.Ref == "" || r.Ref != t.Ref || t.Tx != "") {
			return keep, nil
		}
		t.Tx = r.Tx
		t.Results = append(t.Results, r)
		if r.State.Final() {
			t.Final = r
		}
		return consume, nil
	case ev.Error != nil:
		e := ev.Error
		if (t.Ref != "" && e.Ref == t.Ref) || (t.Tx != "" && e.Tx == t.Tx) {
			t.Errors = append(t.Errors, e)
			return finish, fmt.Errorf("sim: gateway error for %q: %w", t.Text, e)
		}
		return keep, nil
	case ev.Err != nil && ev.Type == wire.TypeConfirmRequest && t.Prompt == nil:
		return finish, fmt.Errorf("sim: invalid prompt from the gateway: %w", ev.Err)
	}
	return t.claimSpeech(ev)
}

// fromSession reports whether a prompt's terms were made in a session this turn ran
// in. A prompt re-sent from an older session belongs to an older turn.
func (t *Turn) fromSession(s string) bool {
	if current, _ := t.d.client.Session(); current != t.sessions[len(t.sessions)-1] {
		t.sessions = append(t.sessions, current)
	}
	for _, x := range t.sessions {
		if x == s {
			return true
		}
	}
	return false
}

type verdict int

const (
	keep    verdict = iota // not this waiter's: leave it in the backlog
	consume                // taken; keep waiting
	finish                 // taken; stop waiting
)

// await offers the backlog, then new events, to match until it says finish.
func (d *Device) await(ctx context.Context, match func(client.Event) (verdict, error)) error {
	for i := 0; i < len(d.backlog); {
		v, err := match(d.backlog[i])
		if v == keep && err == nil {
			i++
			continue
		}
		d.backlog = append(d.backlog[:i], d.backlog[i+1:]...)
		if v == finish || err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("sim: waiting for the gateway: %w", ctx.Err())
		case ev, ok := <-d.client.Events():
			if !ok {
				return ErrStopped
			}
			if done, err := d.note(ev); done {
				return err
			}
			v, err := match(ev)
			if v == finish || err != nil {
				return err
			}
			if v == keep {
				d.keep(ev)
			}
		}
	}
}

// drain moves the events waiting in the client into the backlog.
func (d *Device) drain() {
	for {
		select {
		case ev, ok := <-d.client.Events():
			if !ok {
				return
			}
			if done, _ := d.note(ev); !done {
				d.keep(ev)
			}
		default:
			return
		}
	}
}

// note records what an event says about the connection and the transactions seen.
// It reports done (with an error) when the device has stopped.
func (d *Device) note(ev client.Event) (bool, error) {
	switch {
	case ev.ConfirmRequest != nil:
		d.seenTx[ev.ConfirmRequest.Tx] = true
	case ev.TxResult != nil:
		d.seenTx[ev.TxResult.Tx] = true
	case ev.Disconnected != nil:
		info := ev.Disconnected
		d.log.Info("disconnected", "code", info.Code, "reconnecting", info.Reconnecting)
		if !info.Reconnecting {
			return true, fmt.Errorf("%w: %s: %v", ErrStopped, info.Code, info.Err)
		}
	}
	return false, nil
}

func (d *Device) keep(ev client.Event) {
	switch ev.Type {
	case wire.TypeHelloOK, client.EventDisconnected:
		return // about the connection, not a turn
	case wire.TypePromptAudio:
		return // up to 30 s of audio that no turn took when it came: not kept
	}
	if len(d.backlog) == maxBacklog {
		d.backlog = d.backlog[1:]
		d.dropped++
	}
	d.backlog = append(d.backlog, ev)
}
