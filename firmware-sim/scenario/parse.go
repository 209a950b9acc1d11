package scenario

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/firmware-sim/sim"
)

// DefaultExpiryTimeout is how long wait_expiry waits when its timeout is not given; it
// must exceed the gateway's prompt lifetime.
const DefaultExpiryTimeout = 2 * time.Minute

// StepKind names a step.
type StepKind int

// Step kinds.
const (
	StepUnknown StepKind = iota
	StepSay
	StepExpectPrompt
	StepConfirm
	StepExpectResult
	StepWaitExpiry
	StepStatus
	StepExpectSpeech
	StepExpectError
	StepCancel
	StepPrice
	StepExpectNoPrompt
)

var stepNames = []string{"unknown", "say", "expect_prompt", "confirm", "expect_result", "wait_expiry", "status", "expect_speech",
	"expect_error", "cancel", "price", "expect_no_prompt"}

func (k StepKind) String() string {
	if k < 0 || int(k) >= len(stepNames) {
		return "unknown"
	}
	return stepNames[k]
}

// Scenario is a parsed scenario file.
type Scenario struct {
	Name        string
	Description string
	File        string
	Device      DeviceSpec
	// Phone, when set, is the user's phone, running beside Device for the whole
	// scenario.
	Phone *PhoneSpec
	Steps []Step
}

// PhoneSpec is the user's phone (sim.KindPhone, enrolled to the device's user). It
// connects before the first step, sets the user's PIN when SetPIN is given, then
// answers every prompt it gets (a prompt of the device that needs the phone) with
// Answer, until the scenario ends.
type PhoneSpec struct {
	Answer wire.Decision `yaml:"answer"`  // approve (default) or decline
	SetPIN PIN           `yaml:"set_pin"` // empty: the PIN is left as it is
}

// PIN is a PIN in a scenario file: 4 to 12 digits, quoted ("0000"), so that YAML keeps
// its leading zeros.
type PIN string

// UnmarshalYAML takes a quoted string of 4 to 12 digits.
func (p *PIN) UnmarshalYAML(n *yaml.Node) error {
	ok := n.Kind == yaml.ScalarNode && n.Tag == "!!str" && len(n.Value) >= identity.MinPINDigits && len(n.Value) <= identity.MaxPINDigits
	for i := 0; ok && i < len(n.Value); i++ {
		ok = n.Value[i] >= '0' && n.Value[i] <= '9'
	}
	if !ok {
		return &ParseError{Line: n.Line, Msg: fmt.Sprintf("PIN %s: want %d to %d digits in quotes, like \"0000\"", n.Value,
			identity.MinPINDigits, identity.MaxPINDigits)}
	}
	*p = PIN(n.Value)
	return nil
}

// DeviceSpec says which simulated device runs a scenario.
type DeviceSpec struct {
	Kind sim.Kind
	User string
	// Audio makes the device speak (sim.Config.Audio); the runner can also make every
	// scenario speak. Voice, Speed and NoiseSNR, when set, replace the runner's.
	Audio    bool
	Voice    string
	Speed    int
	NoiseSNR float64
	// PIN is what the user types at a PIN prompt (sim.Config.PIN); a confirm step may
	// give another.
	PIN PIN
}

// Step is one step; the field matching Kind is set.
type Step struct {
	Kind StepKind
	Line int
	// Timeout bounds a waiting step; zero means the runner's default.
	Timeout time.Duration
	Say     string        // StepSay
	Prompt  *PromptExpect // StepExpectPrompt
	Confirm *ConfirmStep  // StepConfirm
	Result  *ResultExpect // StepExpectResult, StepWaitExpiry (state expired), StepStatus (optional)
	Speech  *SpeechExpect // StepExpectSpeech
	Error   *ErrorExpect  // StepExpectError
	Cancel  string        // StepCancel: the reason, what the user said
	Price   *PriceStep    // StepPrice
}

// PriceStep changes a price in the catalogue of the gateway's embedded agent through
// the admin API: the merchant's price drop that redeems a price target.
type PriceStep struct {
	SKU    string       `yaml:"sku"`
	Amount *wire.Amount `yaml:"amount"` // minor units, more than 0
}

// ErrorExpect is the gateway's refusal the last confirm or cancel must get: Code (a
// wire.Code name, required) and, when given, a part of its message (any case).
type ErrorExpect struct {
	Code    string   `yaml:"code"`
	Message string   `yaml:"message"`
	Timeout Duration `yaml:"timeout"`
}

// SpeechExpect is what the speech.result of the last spoken say must say. Outcome is
// required; Text, when given, is compared without regard to case.
type SpeechExpect struct {
	Outcome wire.SpeechOutcome `yaml:"outcome"`
	Text    string             `yaml:"text"`
	Timeout Duration           `yaml:"timeout"`
}

// PromptExpect is what a prompt must show. Empty fields are not checked.
type PromptExpect struct {
	Merchant string       `yaml:"merchant"`
	Total    *wire.Amount `yaml:"total"`
	Currency string       `yaml:"currency"`
	Kind     wire.Kind    `yaml:"kind"`
	Items    []ItemExpect `yaml:"items"`
	// Methods are the verification methods the prompt must offer, in any order:
	// [phone] for a purchase approved on the phone, [pin] for one that needs the PIN.
	Methods []wire.Method `yaml:"methods"`
	// Text is a part of what the prompt says (any case), such as the tip the user
	// allows with the order.
	Text    string   `yaml:"text"`
	Timeout Duration `yaml:"timeout"`
}

// ItemExpect is what one line of a prompt must show, in order. SKU is required.
type ItemExpect struct {
	SKU        string       `yaml:"sku"`
	Name       string       `yaml:"name"`
	Qty        int          `yaml:"qty"`
	UnitAmount *wire.Amount `yaml:"unit_amount"`
}

// ConfirmStep is the simulated user's answer.
type ConfirmStep struct {
	Decision wire.Decision `yaml:"decision"`
	Method   wire.Method   `yaml:"method"` // empty: as sim.Turn.Method picks
	// PIN is the PIN the user types this time (method pin), instead of the
	// device's.
	PIN PIN `yaml:"pin"`
}

// ResultExpect is what a tx.result must say. State is required.
type ResultExpect struct {
	State   wire.TxState `yaml:"state"`
	Code    string       `yaml:"code"`    // a wire.Code name, e.g. not_understood
	Amount  *wire.Amount `yaml:"amount"`  // the redeemed amount
	Mandate *bool        `yaml:"mandate"` // whether a mandate id is present
	Reason  string       `yaml:"reason"`  // a part of the result's reason (any case)
	Timeout Duration     `yaml:"timeout"`
}

// Duration is a YAML duration such as "20s" or "1m30s".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v <= 0 {
		return &ParseError{Line: n.Line, Msg: fmt.Sprintf("timeout %q: want a positive duration like 20s", n.Value)}
	}
	*d = Duration(v)
	return nil
}

// ParseError reports what is wrong in a scenario file, and where.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadFiles parses scenario files. It returns the scenarios that parsed and every
// error, joined.
func LoadFiles(paths ...string) ([]*Scenario, error) {
	var out []*Scenario
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("scenario: %w", err))
			continue
		}
		s, err := Parse(p, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// Parse parses and validates one scenario; file names it in errors.
func Parse(file string, data []byte) (*Scenario, error) {
	p := parser{file: file}
	s, err := p.scenario(data)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.File = file
			return nil, pe
		}
		return nil, &ParseError{File: file, Msg: err.Error()}
	}
	s.File = file
	return s, nil
}

type parser struct{ file string }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) error {
	return &ParseError{File: p.file, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) scenario(data []byte) (*Scenario, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("empty file")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root, "want a mapping with name, device and steps")
	}
	var raw struct {
		Name        string    `yaml:"name"`
		Description string    `yaml:"description"`
		Device      yaml.Node `yaml:"device"`
		Phone       yaml.Node `yaml:"phone"`
		Steps       yaml.Node `yaml:"steps"`
	}
	if err := p.strict(root, &raw, "scenario"); err != nil {
		return nil, err
	}
	s := &Scenario{Name: strings.TrimSpace(raw.Name), Description: raw.Description, Device: DeviceSpec{Kind: sim.KindGlasses, User: "alice"}}
	if s.Name == "" {
		return nil, p.errorf(root, "name is required")
	}
	if raw.Device.Kind != 0 {
		var dev struct {
			Kind     string  `yaml:"kind"`
			User     string  `yaml:"user"`
			Audio    bool    `yaml:"audio"`
			Voice    string  `yaml:"voice"`
			Speed    int     `yaml:"speed"`
			NoiseSNR float64 `yaml:"noise_snr"`
			PIN      PIN     `yaml:"pin"`
		}
		if err := p.strict(&raw.Device, &dev, "device"); err != nil {
			return nil, err
		}
		if dev.Kind != "" {
			k, err := sim.ParseKind(dev.Kind)
			if err != nil {
				return nil, p.errorf(&raw.Device, "device: kind %q: want glasses, kiosk or phone", dev.Kind)
			}
			s.Device.Kind = k
		}
		s.Device.PIN = dev.PIN
		if dev.User != "" {
			s.Device.User = dev.User
		}
		if dev.Speed < 0 {
			return nil, p.errorf(&raw.Device, "device: speed %d: want words per minute (espeak-ng takes 80-450)", dev.Speed)
		}
		s.Device.Audio, s.Device.Voice, s.Device.Speed, s.Device.NoiseSNR = dev.Audio, dev.Voice, dev.Speed, dev.NoiseSNR
	}
	if raw.Phone.Kind != 0 {
		s.Phone = new(PhoneSpec)
		if err := p.strictOrNull(&raw.Phone, s.Phone, "phone"); err != nil {
			return nil, err
		}
		switch s.Phone.Answer {
		case "":
			s.Phone.Answer = wire.DecisionApprove
		case wire.DecisionApprove, wire.DecisionDecline:
		default:
			return nil, p.errorf(&raw.Phone, "phone: answer %q: want approve or decline", s.Phone.Answer)
		}
		if s.Device.Kind == sim.KindPhone {
			return nil, p.errorf(&raw.Phone, "phone: the device is a phone already")
		}
	}
	if raw.Steps.Kind != yaml.SequenceNode || len(raw.Steps.Content) == 0 {
		return nil, p.errorf(root, "steps: want a list of at least one step")
	}
	profile, err := sim.ProfileFor(s.Device.Kind)
	if err != nil {
		return nil, err
	}
	var turn turnState
	for i, n := range raw.Steps.Content {
		st, err := p.step(n, i+1, profile)
		if err != nil {
			return nil, err
		}
		if err := turn.check(st); err != nil {
			return nil, p.errorf(n, "step %d (%s): %v", i+1, st.Kind, err)
		}
		s.Steps = append(s.Steps, st)
	}
	return s, nil
}

// turnState checks the order of steps within each say.
type turnState struct{ said, answered, expired bool }

func (t *turnState) check(st Step) error {
	switch st.Kind {
	case StepSay:
		*t = turnState{said: true}
		return nil
	case StepPrice: // the merchant's, not the user's: anywhere, and the turn goes on
		return nil
	}
	if !t.said {
		return errors.New("needs a say before it")
	}
	switch st.Kind {
	case StepConfirm:
		if t.answered || t.expired {
			return errors.New("the prompt was already answered or left to expire")
		}
		t.answered = true
	case StepExpectNoPrompt:
		if t.answered || t.expired {
			return errors.New("the prompt was already answered or left to expire")
		}
		t.answered = true // nothing is left to answer
	case StepWaitExpiry:
		if t.answered {
			return errors.New("the prompt was already answered")
		}
		t.expired = true
	case StepExpectError:
		t.answered = false // a refused answer (bad_pin) leaves the prompt open
	}
	return nil
}

var stepKinds = map[string]StepKind{
	"say": StepSay, "expect_prompt": StepExpectPrompt, "confirm": StepConfirm,
	"expect_result": StepExpectResult, "wait_expiry": StepWaitExpiry, "status": StepStatus,
	"expect_speech": StepExpectSpeech, "expect_error": StepExpectError, "cancel": StepCancel,
	"price": StepPrice, "expect_no_prompt": StepExpectNoPrompt,
}

func (p *parser) step(n *yaml.Node, num int, profile sim.Profile) (Step, error) {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return Step{}, p.errorf(n, "step %d: want exactly one of %s", num, strings.Join(stepNames[1:], ", "))
	}
	key, val := n.Content[0], n.Content[1]
	st := Step{Kind: stepKinds[key.Value], Line: key.Line}
	what := fmt.Sprintf("step %d (%s)", num, key.Value)
	switch st.Kind {
	case StepSay:
		if val.Kind != yaml.ScalarNode || strings.TrimSpace(val.Value) == "" {
			return st, p.errorf(val, "%s: want the text to say", what)
		}
		st.Say = val.Value
	case StepExpectPrompt:
		st.Prompt = new(PromptExpect)
		if err := p.strictOrNull(val, st.Prompt, what); err != nil {
			return st, err
		}
		for i, it := range st.Prompt.Items {
			if it.SKU == "" {
				return st, p.errorf(val, "%s: items[%d]: sku is required", what, i)
			}
		}
		if c := st.Prompt.Currency; c != "" && wire.ValidCurrency(c) != nil {
			return st, p.errorf(val, "%s: currency %q is not an ISO 4217 code", what, c)
		}
		for _, m := range st.Prompt.Methods {
			if !contains(methods, m) {
				return st, p.errorf(val, "%s: method %q: want one of %v", what, m, methods)
			}
		}
		st.Timeout = time.Duration(st.Prompt.Timeout)
	case StepConfirm:
		st.Confirm = new(ConfirmStep)
		if val.Kind == yaml.ScalarNode {
			st.Confirm.Decision = wire.Decision(val.Value)
		} else if err := p.strict(val, st.Confirm, what); err != nil {
			return st, err
		}
		switch st.Confirm.Decision {
		case wire.DecisionApprove, wire.DecisionDecline:
		case "":
			return st, p.errorf(val, "%s: decision is required (approve or decline)", what)
		default:
			return st, p.errorf(val, "%s: decision %q: want approve or decline", what, st.Confirm.Decision)
		}
		if m := st.Confirm.Method; m != "" && !profile.Supports(m) {
			return st, p.errorf(val, "%s: method %q: a %s offers %v", what, m, profile.Kind, profile.Methods)
		}
		if st.Confirm.PIN != "" && (!profile.Supports(wire.MethodPIN) || (st.Confirm.Method != "" && st.Confirm.Method != wire.MethodPIN)) {
			return st, p.errorf(val, "%s: a pin needs method pin on a device that has it (a %s offers %v)", what, profile.Kind, profile.Methods)
		}
	case StepExpectResult, StepWaitExpiry, StepStatus:
		st.Result = new(ResultExpect)
		if err := p.strictOrNull(val, st.Result, what); err != nil {
			return st, err
		}
		st.Timeout = time.Duration(st.Result.Timeout)
		switch st.Kind {
		case StepWaitExpiry:
			if *st.Result != (ResultExpect{Timeout: st.Result.Timeout}) {
				return st, p.errorf(val, "%s: only timeout may be given", what)
			}
			st.Result.State = wire.TxExpired
			if st.Timeout == 0 {
				st.Timeout = DefaultExpiryTimeout
			}
		case StepExpectResult:
			if st.Result.State == "" {
				return st, p.errorf(val, "%s: state is required", what)
			}
		}
		if err := validResult(st.Result); err != nil {
			return st, p.errorf(val, "%s: %v", what, err)
		}
	case StepExpectSpeech:
		st.Speech = new(SpeechExpect)
		if err := p.strict(val, st.Speech, what); err != nil {
			return st, err
		}
		switch st.Speech.Outcome {
		case wire.SpeechAccepted, wire.SpeechNotUnderstood, wire.SpeechNoSpeech, wire.SpeechCancelled:
		case "":
			return st, p.errorf(val, "%s: outcome is required", what)
		default:
			return st, p.errorf(val, "%s: outcome %q: want one of %v", what, st.Speech.Outcome, speechOutcomes)
		}
		st.Timeout = time.Duration(st.Speech.Timeout)
	case StepExpectError:
		st.Error = new(ErrorExpect)
		if err := p.strict(val, st.Error, what); err != nil {
			return st, err
		}
		switch {
		case st.Error.Code == "":
			return st, p.errorf(val, "%s: code is required (for example bad_pin)", what)
		case codeByName(st.Error.Code) == wire.CodeUnknown:
			return st, p.errorf(val, "%s: code %q is not a wire code name (for example bad_pin)", what, st.Error.Code)
		}
		st.Timeout = time.Duration(st.Error.Timeout)
	case StepCancel:
		if val.Kind != yaml.ScalarNode {
			return st, p.errorf(val, "%s: want the reason the user gave, as text (may be empty: \"\")", what)
		}
		if val.Tag != "!!null" {
			st.Cancel = val.Value
		}
	case StepPrice:
		st.Price = new(PriceStep)
		if err := p.strict(val, st.Price, what); err != nil {
			return st, err
		}
		switch {
		case strings.TrimSpace(st.Price.SKU) == "":
			return st, p.errorf(val, "%s: sku is required", what)
		case st.Price.Amount == nil:
			return st, p.errorf(val, "%s: amount is required (minor units, such as 7900 for USD 79.00)", what)
		case *st.Price.Amount <= 0:
			return st, p.errorf(val, "%s: amount %d: want more than 0 (minor units)", what, *st.Price.Amount)
		}
	case StepExpectNoPrompt:
		var opt struct {
			Timeout Duration `yaml:"timeout"`
		}
		if err := p.strictOrNull(val, &opt, what); err != nil {
			return st, err
		}
		st.Timeout = time.Duration(opt.Timeout)
	default:
		return st, p.errorf(key, "step %d: unknown step %q (want one of %s)", num, key.Value, strings.Join(stepNames[1:], ", "))
	}
	return st, nil
}

var knownStates = []wire.TxState{wire.TxReceived, wire.TxRequested, wire.TxPrompted, wire.TxConfirmed,
	wire.TxMandated, wire.TxRedeemed, wire.TxDeclined, wire.TxExpired, wire.TxRejected, wire.TxFailed,
	wire.TxCancelling, wire.TxCancelled, wire.TxSettled}

var methods = []wire.Method{wire.MethodTap, wire.MethodVoice, wire.MethodButton, wire.MethodPIN, wire.MethodPhone}

var speechOutcomes = []wire.SpeechOutcome{wire.SpeechAccepted, wire.SpeechNotUnderstood, wire.SpeechNoSpeech, wire.SpeechCancelled}

func validResult(r *ResultExpect) error {
	if r.State != "" && !contains(knownStates, r.State) {
		return fmt.Errorf("state %q: want one of %v", r.State, knownStates)
	}
	if r.Code != "" && codeByName(r.Code) == wire.CodeUnknown {
		return fmt.Errorf("code %q is not a wire code name (for example not_understood)", r.Code)
	}
	return nil
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func codeByName(name string) wire.Code {
	for c := wire.Code(1); c < 5000; c++ {
		if c.String() == name {
			return c
		}
	}
	return wire.CodeUnknown
}
