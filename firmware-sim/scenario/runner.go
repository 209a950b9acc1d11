package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/firmware-sim/sim"
)

// Config configures a Runner. Zero values are working defaults.
type Config struct {
	// Device is the base configuration of the simulated devices (gateway, data and
	// state directories, pairing code, transport); each scenario sets Kind and User. A
	// scenario run enrols a device only if StateDir has no enrolment for it. With
	// Device.Audio every scenario speaks; otherwise only those whose device says
	// audio: true. A speaking scenario is skipped over a transport that carries no
	// audio (MQTT) and against a gateway that recognises no speech.
	Device sim.Config
	// StepTimeout bounds a waiting step that gives no timeout. Default: 10 s.
	StepTimeout time.Duration
	// Logger receives the runner's logs. Default: Device.Logger, else discard.
	Logger *slog.Logger
	// Now measures elapsed time. Default: time.Now.
	Now func() time.Time
}

// Runner runs scenarios one after the other.
type Runner struct {
	cfg Config
	log *slog.Logger
	// gw is what the gateway offers, asked once, for the first speaking scenario.
	gw *sim.Transports
}

// NewRunner returns a Runner.
func NewRunner(cfg Config) *Runner {
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = cfg.Device.Logger
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Device.Logger == nil {
		cfg.Device.Logger = cfg.Logger
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Runner{cfg: cfg, log: cfg.Logger.With("component", "scenario")}
}

// Result is the outcome of one scenario.
type Result struct {
	Name    string
	File    string
	Elapsed time.Duration
	// Err says why the scenario failed; nil when it passed or was skipped.
	Err error
	// Skip says why the scenario was not run; empty when it ran.
	Skip string
}

// Passed reports whether the scenario ran and passed.
func (r Result) Passed() bool { return r.Err == nil && r.Skip == "" }

// Skipped reports whether the scenario was not run.
func (r Result) Skipped() bool { return r.Err == nil && r.Skip != "" }

// String returns the result line: "PASS name (1.2s)", "FAIL name (1.2s): reason" or
// "SKIP name: reason".
func (r Result) String() string {
	if r.Skipped() {
		return fmt.Sprintf("SKIP %s: skipped: %s", r.Name, r.Skip)
	}
	if r.Err == nil {
		return fmt.Sprintf("PASS %s (%.1fs)", r.Name, r.Elapsed.Seconds())
	}
	return fmt.Sprintf("FAIL %s (%.1fs): %v", r.Name, r.Elapsed.Seconds(), r.Err)
}

// RunAll runs the scenarios in order, writes one result line each to w, and returns
// the results.
func (r *Runner) RunAll(ctx context.Context, w io.Writer, scenarios []*Scenario) []Result {
	out := make([]Result, 0, len(scenarios))
	for _, s := range scenarios {
		res := r.Run(ctx, s)
		fmt.Fprintln(w, res)
		out = append(out, res)
	}
	return out
}

// Summary returns the summary line of results: "3 passed, 1 failed", with
// ", 2 skipped" when some were skipped.
func Summary(results []Result) string {
	var passed, failed, skipped int
	for _, r := range results {
		switch {
		case r.Passed():
			passed++
		case r.Skipped():
			skipped++
		default:
			failed++
		}
	}
	s := fmt.Sprintf("%d passed, %d failed", passed, failed)
	if skipped > 0 {
		s += fmt.Sprintf(", %d skipped", skipped)
	}
	return s
}

// Run runs one scenario with a fresh connection of its device.
func (r *Runner) Run(ctx context.Context, s *Scenario) Result {
	start := r.cfg.Now()
	res := Result{Name: s.Name, File: s.File}
	cfg := r.deviceConfig(s)
	if res.Skip, res.Err = r.skip(ctx, cfg); res.Skip == "" && res.Err == nil {
		res.Err = r.run(ctx, s, cfg)
	}
	res.Elapsed = r.cfg.Now().Sub(start)
	r.log.Info("scenario done", "name", s.Name, "passed", res.Passed(), "skipped", res.Skip, "elapsed", res.Elapsed)
	return res
}

// deviceConfig is the runner's device configuration with the scenario's device.
func (r *Runner) deviceConfig(s *Scenario) sim.Config {
	cfg := r.cfg.Device
	cfg.Kind, cfg.User, cfg.PIN = s.Device.Kind, s.Device.User, string(s.Device.PIN)
	if s.Device.Audio {
		cfg.Audio = true
	}
	if s.Device.Voice != "" {
		cfg.Voice = s.Device.Voice
	}
	if s.Device.Speed != 0 {
		cfg.Speed = s.Device.Speed
	}
	if s.Device.NoiseSNR != 0 {
		cfg.NoiseSNR = s.Device.NoiseSNR
	}
	return cfg
}

// skip says why a speaking scenario cannot run: its transport carries no audio, or
// the gateway recognises no speech.
func (r *Runner) skip(ctx context.Context, cfg sim.Config) (string, error) {
	if !cfg.Audio {
		return "", nil
	}
	if !cfg.Transport.CarriesAudio() {
		return "audio needs ws or webrtc", nil
	}
	if r.gw == nil {
		dctx, cancel := context.WithTimeout(ctx, r.cfg.StepTimeout)
		gw, err := sim.Discover(dctx, cfg)
		cancel()
		if err != nil {
			return "", err
		}
		r.gw = &gw
	}
	if !r.gw.Speech() {
		return "audio needs a speech recogniser; the gateway has none", nil
	}
	return "", nil
}

func (r *Runner) run(ctx context.Context, s *Scenario, cfg sim.Config) (err error) {
	if s.Phone != nil {
		stop, err := r.phone(ctx, s, cfg)
		if err != nil {
			return err
		}
		defer func() {
			if perr := stop(); perr != nil && err == nil {
				err = perr
			}
		}()
	}
	sctx, cancel := context.WithTimeout(ctx, r.cfg.StepTimeout)
	dev, err := sim.Start(sctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("device %s (%s): %w", s.Device.Kind, s.Device.User, err)
	}
	defer dev.Close()
	var turn *sim.Turn
	for i, st := range s.Steps {
		if err := r.step(ctx, dev, &turn, st); err != nil {
			return fmt.Errorf("step %d (%s, line %d): %w", i+1, st.Kind, st.Line, err)
		}
	}
	return nil
}

// phone starts the scenario's phone: it connects (a gateway sends prompts only to a
// phone it has seen), sets the PIN, and answers prompts on a goroutine until stop,
// which waits for it, closes the phone and says whether the phone failed.
func (r *Runner) phone(ctx context.Context, s *Scenario, cfg sim.Config) (stop func() error, err error) {
	cfg.Kind, cfg.Audio, cfg.PIN = sim.KindPhone, false, ""
	cfg.Name = ""
	sctx, cancel := context.WithTimeout(ctx, r.cfg.StepTimeout)
	defer cancel()
	phone, err := sim.Start(sctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("phone (%s): %w", cfg.User, err)
	}
	if s.Phone.SetPIN != "" {
		if err := phone.SetPIN(sctx, string(s.Phone.SetPIN)); err != nil {
			_ = phone.Close() // always nil
			return nil, fmt.Errorf("phone (%s): setting the PIN: %w", cfg.User, timeoutHint(err, r.cfg.StepTimeout, "pin.set.ok"))
		}
	}
	lctx, stopLoop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := phone.ServePhone(lctx, sim.PhoneConfig{Decision: s.Phone.Answer})
		done <- err
	}()
	return func() error {
		stopLoop()
		err := <-done
		_ = phone.Close() // always nil
		if err != nil {
			return fmt.Errorf("phone (%s): %w", cfg.User, err)
		}
		return nil
	}, nil
}

func (r *Runner) step(ctx context.Context, dev *sim.Device, turn **sim.Turn, st Step) error {
	timeout := st.Timeout
	if timeout <= 0 {
		timeout = r.cfg.StepTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := *turn
	switch st.Kind {
	case StepSay:
		nt, err := dev.Say(ctx, st.Say)
		if err != nil {
			return err
		}
		*turn = nt
		return nil
	case StepExpectPrompt:
		req, err := awaitPrompt(ctx, t, timeout)
		if err != nil {
			return err
		}
		return checkPrompt(req, st.Prompt)
	case StepConfirm:
		if _, err := awaitPrompt(ctx, t, timeout); err != nil {
			return err
		}
		if st.Confirm.PIN != "" {
			return t.ConfirmPIN(ctx, st.Confirm.Decision, string(st.Confirm.PIN))
		}
		return t.Confirm(ctx, st.Confirm.Decision, st.Confirm.Method)
	case StepExpectError:
		e, err := t.AwaitError(ctx)
		if err != nil {
			return timeoutHint(err, timeout, "error "+st.Error.Code)
		}
		return checkError(e, st.Error)
	case StepCancel:
		return t.Cancel(ctx, st.Cancel)
	case StepPrice:
		admin, err := sim.NewAdmin(r.cfg.Device)
		if err != nil {
			return err
		}
		return timeoutHint(admin.SetPrice(ctx, st.Price.SKU, *st.Price.Amount), timeout, "answer from the admin API")
	case StepExpectNoPrompt:
		_, err := t.AwaitNoPrompt(ctx)
		if err != nil {
			return timeoutHint(err, timeout, "mandate or final tx.result")
		}
		return nil
	case StepExpectResult, StepWaitExpiry:
		res, err := t.AwaitResult(ctx, st.Result.State)
		var se *sim.SpeechError
		if errors.As(err, &se) {
			return checkUnheard(se, st.Result)
		}
		if err != nil {
			return timeoutHint(err, timeout, "tx.result "+string(st.Result.State))
		}
		return checkResult(res, st.Result)
	case StepExpectSpeech:
		res, err := t.AwaitSpeech(ctx)
		if err != nil {
			return timeoutHint(err, timeout, "speech.result")
		}
		return checkSpeech(res, st.Speech)
	case StepStatus:
		res, err := t.Status(ctx)
		if err != nil {
			return timeoutHint(err, timeout, "answer to tx.status")
		}
		return checkResult(res, st.Result)
	}
	return fmt.Errorf("unknown step %s", st.Kind)
}

func awaitPrompt(ctx context.Context, t *sim.Turn, timeout time.Duration) (*wire.ConfirmRequest, error) {
	req, err := t.AwaitPrompt(ctx)
	var se *sim.SpeechError
	if errors.As(err, &se) {
		return nil, fmt.Errorf("no prompt: %w", err)
	}
	if errors.Is(err, sim.ErrNoPrompt) {
		return nil, fmt.Errorf("no prompt: the transaction ended %s", describe(t.Final))
	}
	if err != nil {
		return nil, timeoutHint(err, timeout, "prompt")
	}
	return req, nil
}

func timeoutHint(err error, timeout time.Duration, what string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no %s within %s", what, timeout)
	}
	return err
}

func describe(r *wire.TxResult) string {
	s := string(r.State)
	if r.Code != wire.CodeUnknown {
		s += " (" + r.Code.String() + ")"
	}
	return s
}

func checkPrompt(req *wire.ConfirmRequest, want *PromptExpect) error {
	t := req.Terms
	switch {
	case want.Merchant != "" && t.Merchant.Name != want.Merchant:
		return fmt.Errorf("merchant %q, want %q", t.Merchant.Name, want.Merchant)
	case want.Total != nil && t.Total != *want.Total:
		return fmt.Errorf("total %d (%s), want %d", t.Total, wire.Money(t.Total, t.Currency), *want.Total)
	case want.Currency != "" && t.Currency != want.Currency:
		return fmt.Errorf("currency %s, want %s", t.Currency, want.Currency)
	case want.Kind != "" && t.Kind != want.Kind:
		return fmt.Errorf("kind %s, want %s", t.Kind, want.Kind)
	case want.Items != nil && len(t.Items) != len(want.Items):
		return fmt.Errorf("%d items, want %d", len(t.Items), len(want.Items))
	case want.Methods != nil && !sameMethods(req.Methods, want.Methods):
		return fmt.Errorf("methods %v, want %v", req.Methods, want.Methods)
	case want.Text != "" && !strings.Contains(strings.ToLower(req.Text), strings.ToLower(want.Text)):
		return fmt.Errorf("prompt says %q, want it to say %q", req.Text, want.Text)
	}
	for i, w := range want.Items {
		got := t.Items[i]
		switch {
		case got.SKU != w.SKU:
			return fmt.Errorf("items[%d]: sku %q, want %q", i, got.SKU, w.SKU)
		case w.Qty != 0 && got.Qty != w.Qty:
			return fmt.Errorf("items[%d] (%s): qty %d, want %d", i, got.SKU, got.Qty, w.Qty)
		case w.UnitAmount != nil && got.UnitAmount != *w.UnitAmount:
			return fmt.Errorf("items[%d] (%s): unit_amount %d, want %d", i, got.SKU, got.UnitAmount, *w.UnitAmount)
		case w.Name != "" && got.Name != w.Name:
			return fmt.Errorf("items[%d] (%s): name %q, want %q", i, got.SKU, got.Name, w.Name)
		}
	}
	return nil
}

// sameMethods reports whether a and b hold the same methods, in any order.
func sameMethods(a, b []wire.Method) bool {
	if len(a) != len(b) {
		return false
	}
	for _, m := range a {
		if !contains(b, m) {
			return false
		}
	}
	return true
}

func checkError(e *wire.Error, want *ErrorExpect) error {
	switch {
	case e.Code.String() != want.Code:
		return fmt.Errorf("error %s (%q), want %s", e.Code, e.Message, want.Code)
	case want.Message != "" && !strings.Contains(strings.ToLower(e.Message), strings.ToLower(want.Message)):
		return fmt.Errorf("error %s says %q, want it to say %q", e.Code, e.Message, want.Message)
	}
	return nil
}

func checkResult(r *wire.TxResult, want *ResultExpect) error {
	switch {
	case want.State != "" && r.State != want.State:
		return fmt.Errorf("state %s, want %s", describe(r), want.State)
	case want.Code != "" && r.Code.String() != want.Code:
		return fmt.Errorf("code %s, want %s", r.Code, want.Code)
	case want.Amount != nil && r.Amount != *want.Amount:
		return fmt.Errorf("amount %d, want %d", r.Amount, *want.Amount)
	case want.Mandate != nil && (r.Mandate != "") != *want.Mandate:
		return fmt.Errorf("mandate %q, want present=%v", r.Mandate, *want.Mandate)
	case want.Reason != "" && !strings.Contains(strings.ToLower(r.Reason), strings.ToLower(want.Reason)):
		return fmt.Errorf("reason %q, want it to say %q", r.Reason, want.Reason)
	}
	return nil
}

// checkUnheard checks a spoken utterance the gateway did not take against an expected
// tx.result: an utterance not understood ends a spoken turn as the rejection
// (not_understood) ends a text one, without a transaction.
func checkUnheard(se *sim.SpeechError, want *ResultExpect) error {
	nu := se.Result.Outcome == wire.SpeechNotUnderstood
	if want.State == wire.TxRejected && (want.Code == "" || (nu && want.Code == wire.CodeNotUnderstood.String())) && want.Amount == nil && want.Reason == "" && (want.Mandate == nil || !*want.Mandate) {
		return nil
	}
	return fmt.Errorf("no tx.result %s: %w", want.State, se)
}

func checkSpeech(r *wire.SpeechResult, want *SpeechExpect) error {
	switch {
	case r.Outcome != want.Outcome:
		return fmt.Errorf("speech outcome %s (heard %q), want %s", r.Outcome, r.Text, want.Outcome)
	case want.Text != "" && !strings.EqualFold(strings.TrimSpace(r.Text), strings.TrimSpace(want.Text)):
		return fmt.Errorf("heard %q, want %q", r.Text, want.Text)
	}
	return nil
}
