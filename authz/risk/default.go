package risk

import (
	"bytes"
	_ "embed"
	"time"

	"github.com/earshot/earshot/device/wire"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultFile returns the rule file that Default is, with comments: a starting point
// for an operator's own file.
func DefaultFile() []byte { return bytes.Clone(defaultYAML) }

// Default returns the built-in policy, a new copy on each call; it is DefaultFile
// parsed (a test keeps the two equal). In words:
//
//   - currencies USD, EUR, GBP and JPY only;
//   - at most 250.00 (JPY 30000) a purchase and 500.00 (JPY 60000) a rolling day;
//   - at most 10 purchase requests a device in 10 minutes, else refused;
//   - no merchant or kind lists;
//   - a mismatch with what was said steps up;
//   - for 24 h after enrolment, a purchase over 15.00 (JPY 2000) steps up;
//   - glasses: tap or voice up to 20.00 (JPY 3000), the paired phone above;
//     kiosk: tap up to 20.00, PIN above; phone: tap. A step-up on glasses asks for
//     the phone, on a kiosk for the PIN; a phone stays at tap, its approval being the
//     strongest the user has.
func Default() *Policy {
	four := func(usd, jpy int64) map[string]int64 {
		return map[string]int64{"USD": usd, "EUR": usd, "GBP": usd, "JPY": jpy}
	}
	return &Policy{
		TxCap:        four(25000, 30000),
		DailyCap:     four(50000, 60000),
		Velocity:     Velocity{Max: 10, Window: 10 * time.Minute, Action: ActionRefuse},
		SaidMismatch: ActionStepUp,
		NewDevice:    NewDevice{Cooldown: 24 * time.Hour, Limit: four(1500, 2000), Action: ActionStepUp},
		StepUp: map[string][]Level{
			"glasses": {
				{Methods: []Method{wire.MethodTap, wire.MethodVoice, wire.MethodButton}},
				{Methods: []Method{wire.MethodPhone}, Above: four(2000, 3000)},
			},
			"kiosk": {
				{Methods: []Method{wire.MethodTap, wire.MethodButton}},
				{Methods: []Method{wire.MethodPIN}, Above: four(2000, 3000)},
			},
			"phone": {{Methods: []Method{wire.MethodTap}}},
		},
	}
}
