package risk

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// ErrBadPolicy reports a rule file or Policy that does not hold: bad YAML, an unknown
// field, a value of the wrong type or out of range. The errors are *PolicyError values.
var ErrBadPolicy = errors.New("risk: bad policy")

// PolicyError says what is wrong with a rule file or Policy, and where. It matches
// ErrBadPolicy with errors.Is.
type PolicyError struct {
	File string // the file given to Load; "" otherwise
	Path string // the field path in the rule file, such as rules.daily_cap.USD
	Line int    // the line in the file; 0 when not known (Policy.Validate)
	Msg  string // what is wrong
}

// Error reads "risk: bad policy: risk.yaml: rules.daily_cap.USD (line 4): must be
// positive, got 0".
func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString(ErrBadPolicy.Error())
	b.WriteString(": ")
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	switch {
	case e.Path != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s (line %d): ", e.Path, e.Line)
	case e.Path != "":
		b.WriteString(e.Path + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports whether target is ErrBadPolicy.
func (e *PolicyError) Is(target error) bool { return target == ErrBadPolicy }

// MaxFileBytes bounds a rule file.
const MaxFileBytes = 1 << 20

// Limits on a policy's shape.
const (
	maxLevels    = 4 // step-up levels per device kind
	maxMethods   = 5 // methods per level, as wire.ConfirmRequest allows
	maxVelocity  = 1_000_000
	maxListItems = 10_000 // merchants in an allow or deny list
)

// Method is a consent method a decision may require. It is wire.Method, so that
// Decision.Methods goes into wire.ConfirmRequest.Methods as it is: wire.MethodTap,
// wire.MethodVoice, wire.MethodButton, wire.MethodPIN, wire.MethodPhone.
type Method = wire.Method

// Action is what a rule that may either refuse or step up does when it fires.
type Action string

// Actions. ActionDefault, the zero value, means the rule's documented default.
const (
	ActionDefault Action = ""
	ActionRefuse  Action = "refuse"
	ActionStepUp  Action = "step_up"
)

// String returns the action's name, "default" for the zero value.
func (a Action) String() string {
	if a == ActionDefault {
		return "default"
	}
	return string(a)
}

// or resolves the default. Decide treats an action it does not know as refuse.
func (a Action) or(def Action) Action {
	switch a {
	case ActionDefault:
		return def
	case ActionStepUp:
		return ActionStepUp
	}
	return ActionRefuse
}

// Policy is a parsed rule file. The zero Policy allows everything with tap or voice.
// Every field's zero value turns its rule off, unless its comment says otherwise.
// Money is in integer minor units of the currency the map key names (ISO 4217). A
// Policy must not be modified while Decide uses it; Decide itself only reads it.
type Policy struct {
	// TxCap is rule 1, the most one purchase may be (inclusive). A non-empty TxCap is
	// also the list of accepted currencies: a purchase in a currency it does not name
	// is refused. Empty: no cap and every currency accepted.
	TxCap map[string]int64
	// DailyCap is rule 2, the most a user may spend in the 24 hours before
	// Request.Now (a rolling window), this purchase included. A currency absent: no
	// daily cap for it.
	DailyCap map[string]int64
	// Velocity is rule 3.
	Velocity Velocity
	// Merchants is rule 4.
	Merchants Merchants
	// Kinds are the consent kinds accepted (rule 4, too). Empty: all.
	Kinds []wire.Kind
	// SaidMismatch is what rule 5 does when the proposal differs from what the user
	// said. Zero: ActionStepUp.
	SaidMismatch Action
	// NewDevice is rule 6.
	NewDevice NewDevice
	// StepUp is rule 7: per device kind ("glasses", "kiosk", "phone"), the ladder of
	// consent methods, weakest first. Empty: every device kind gets tap or voice.
	// Non-empty: a device kind it does not name is refused.
	StepUp map[string][]Level
}

// Velocity limits how many purchase requests one device makes.
type Velocity struct {
	// Max is the most purchase requests a device may make in Window, the one being
	// decided included. Zero: no limit.
	Max int
	// Window is the rolling window. Zero: 10 minutes.
	Window time.Duration
	// Action is what happens over Max. Zero: ActionRefuse.
	Action Action
}

// DefaultVelocityWindow is Velocity.Window's zero-value default.
const DefaultVelocityWindow = 10 * time.Minute

// Merchants are the allow and deny lists, by merchant id.
type Merchants struct {
	// Allow, when non-empty, is the only merchants accepted.
	Allow []string
	// Deny are merchants always refused.
	Deny []string
}

// NewDevice is the cool-down of a newly enrolled device.
type NewDevice struct {
	// Cooldown is how long after enrolment a device is new. Zero: rule off.
	Cooldown time.Duration
	// Limit is the most a new device may buy without the rule firing, per currency
	// (inclusive). A currency absent: 0, so every purchase fires the rule.
	Limit map[string]int64
	// Action is what happens over Limit. Zero: ActionStepUp.
	Action Action
}

// Level is one rung of a device kind's step-up ladder.
type Level struct {
	// Methods are the consent methods accepted at this level, 1 to 5.
	Methods []Method
	// Above is the amount over which a purchase needs this level, per currency. The
	// first level has none. A currency absent from a non-empty Above: the level
	// applies (an amount in an unknown currency is not judged small). Empty on a
	// level after the first: the level is reached only by a step-up.
	Above map[string]int64
}

var kindName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Validate checks a Policy built in code the way Parse checks a file. Errors are
// *PolicyError values naming the field by its path in the rule file. Decide does not
// call it; a Policy that fails it still decides, failing safe where it can (an
// unknown action refuses, a level without methods refuses).
func (p *Policy) Validate() error {
	if p == nil {
		return nil // the zero Policy
	}
	if err := validateMoney("rules.tx_cap", p.TxCap, 1); err != nil {
		return err
	}
	if err := validateMoney("rules.daily_cap", p.DailyCap, 1); err != nil {
		return err
	}
	if err := p.covers("rules.daily_cap", p.DailyCap); err != nil {
		return err
	}
	v := p.Velocity
	if v.Max < 0 || v.Max > maxVelocity {
		return bad("rules.velocity.max", "%d, want 0 to %d", v.Max, maxVelocity)
	}
	if v.Window < 0 {
		return bad("rules.velocity.window", "%v must not be negative", v.Window)
	}
	if err := validateAction("rules.velocity.action", v.Action); err != nil {
		return err
	}
	if err := validateMerchants(p.Merchants); err != nil {
		return err
	}
	for i, k := range p.Kinds {
		switch k {
		case wire.KindOneOff, wire.KindPriceTarget, wire.KindRecurring, wire.KindTip:
		default:
			return bad(fmt.Sprintf("rules.kinds[%d]", i), "unknown kind %q", k)
		}
	}
	if err := validateAction("rules.said_mismatch.action", p.SaidMismatch); err != nil {
		return err
	}
	nd := p.NewDevice
	if nd.Cooldown < 0 {
		return bad("rules.new_device.cooldown", "%v must not be negative", nd.Cooldown)
	}
	if err := validateMoney("rules.new_device.limit", nd.Limit, 0); err != nil {
		return err
	}
	if err := p.covers("rules.new_device.limit", nd.Limit); err != nil {
		return err
	}
	if err := validateAction("rules.new_device.action", nd.Action); err != nil {
		return err
	}
	for _, kind := range slices.Sorted(maps.Keys(p.StepUp)) {
		if err := p.validateLadder("rules.step_up."+kind, kind, p.StepUp[kind]); err != nil {
			return err
		}
	}
	return nil
}

func (p *Policy) validateLadder(path, kind string, ladder []Level) error {
	if !kindName.MatchString(kind) {
		return bad(path, "device kind must be 1 to 32 of a-z, 0-9, _ and -, starting with a letter")
	}
	if len(ladder) == 0 || len(ladder) > maxLevels {
		return bad(path, "%d levels, want 1 to %d", len(ladder), maxLevels)
	}
	for i, l := range ladder {
		lp := fmt.Sprintf("%s[%d]", path, i)
		if len(l.Methods) == 0 || len(l.Methods) > maxMethods {
			return bad(lp+".methods", "%d given, want 1 to %d", len(l.Methods), maxMethods)
		}
		for j, m := range l.Methods {
			switch m {
			case wire.MethodTap, wire.MethodVoice, wire.MethodButton, wire.MethodPIN, wire.MethodPhone:
			default:
				return bad(fmt.Sprintf("%s.methods[%d]", lp, j), "unknown method %q", m)
			}
			if slices.Contains(l.Methods[:j], m) {
				return bad(fmt.Sprintf("%s.methods[%d]", lp, j), "%q listed twice", m)
			}
		}
		if i == 0 {
			if len(l.Above) > 0 {
				return bad(lp+".above", "the first level applies to every amount; it takes no threshold")
			}
			continue
		}
		if err := validateMoney(lp+".above", l.Above, 0); err != nil {
			return err
		}
		if err := p.covers(lp+".above", l.Above); err != nil {
			return err
		}
		for j := i - 1; j > 0; j-- { // thresholds rise with the levels
			for _, c := range slices.Sorted(maps.Keys(l.Above)) {
				if prev, ok := ladder[j].Above[c]; ok && l.Above[c] < prev {
					return bad(lp+".above."+c, "%d is below level %d's %d", l.Above[c], j, prev)
				}
			}
		}
	}
	return nil
}

// covers checks that a non-empty per-currency map names exactly the currencies TxCap
// accepts, when TxCap is set, so that no accepted currency escapes a rule by omission.
func (p *Policy) covers(path string, m map[string]int64) error {
	if len(p.TxCap) == 0 || len(m) == 0 {
		return nil
	}
	for _, c := range slices.Sorted(maps.Keys(m)) {
		if _, ok := p.TxCap[c]; !ok {
			return bad(path+"."+c, "currency not accepted by rules.tx_cap")
		}
	}
	for _, c := range slices.Sorted(maps.Keys(p.TxCap)) {
		if _, ok := m[c]; !ok {
			return bad(path, "no entry for %s, which rules.tx_cap accepts", c)
		}
	}
	return nil
}

func validateMoney(path string, m map[string]int64, least int64) error {
	for _, c := range slices.Sorted(maps.Keys(m)) {
		if err := wire.ValidCurrency(c); err != nil {
			return bad(path+"."+c, "not an ISO 4217 code")
		}
		switch v := m[c]; {
		case v < least && least > 0:
			return bad(path+"."+c, "must be positive, got %d", v)
		case v < least:
			return bad(path+"."+c, "must not be negative, got %d", v)
		case v > int64(wire.MaxAmount):
			return bad(path+"."+c, "%d is over the largest amount %d", v, int64(wire.MaxAmount))
		}
	}
	return nil
}

func validateAction(path string, a Action) error {
	switch a {
	case ActionDefault, ActionRefuse, ActionStepUp:
		return nil
	}
	return bad(path, "unknown action %q, want refuse or step_up", a)
}

func validateMerchants(m Merchants) error {
	for _, l := range []struct {
		path string
		ids  []string
	}{{"rules.merchants.allow", m.Allow}, {"rules.merchants.deny", m.Deny}} {
		if len(l.ids) > maxListItems {
			return bad(l.path, "%d merchants, limit %d", len(l.ids), maxListItems)
		}
		for i, id := range l.ids {
			if id == "" || len(id) > wire.MaxIDBytes {
				return bad(fmt.Sprintf("%s[%d]", l.path, i), "merchant id must be 1 to %d bytes", wire.MaxIDBytes)
			}
		}
	}
	for i, id := range m.Deny {
		if slices.Contains(m.Allow, id) {
			return bad(fmt.Sprintf("rules.merchants.deny[%d]", i), "%q is also in rules.merchants.allow", id)
		}
	}
	return nil
}

func bad(path, format string, args ...any) error {
	return &PolicyError{Path: path, Msg: fmt.Sprintf(format, args...)}
}
