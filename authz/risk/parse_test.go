package risk

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		file string
		want *Policy
	}{
		{"empty rules", "rules: {}", &Policy{}},
		{"null rules", "version: 1\nrules:", &Policy{}},
		{"some rules", `
rules:
  tx_cap: {USD: 5000, JPY: 5000}
  daily_cap: {USD: 1_0000, JPY: 20000}
  velocity: {max: 3}
  merchants: {deny: [m_bad, "123"]}
  kinds: [one_off, tip]
  said_mismatch: {action: refuse}
  new_device: {cooldown: 90m}
  step_up:
    kiosk:
      - methods: [button]
      - methods: [pin]
`, &Policy{
			TxCap:        map[string]int64{"USD": 5000, "JPY": 5000},
			DailyCap:     map[string]int64{"USD": 10000, "JPY": 20000},
			Velocity:     Velocity{Max: 3},
			Merchants:    Merchants{Deny: []string{"m_bad", "123"}},
			Kinds:        []wire.Kind{wire.KindOneOff, wire.KindTip},
			SaidMismatch: ActionRefuse,
			NewDevice:    NewDevice{Cooldown: 90 * time.Minute},
			StepUp:       map[string][]Level{"kiosk": {{Methods: []Method{wire.MethodButton}}, {Methods: []Method{wire.MethodPIN}}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Errorf("got %+v\nwant %+v", p, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	ladder := func(above string) string {
		return "rules:\n  step_up:\n    glasses:\n      - methods: [tap]\n      - methods: [phone]\n        above: " + above + "\n"
	}
	tests := []struct {
		name, file, want string
		line             int
	}{
		{"empty", "", "empty file", 0},
		{"comment only", "# nothing\n", "empty file", 0},
		{"no rules", "version: 1\n", "rules: missing", 0},
		{"bad yaml", "rules: {tx_cap: [}\n", "yaml:", 0},
		{"two documents", "rules: {}\n---\nrules: {}\n", "more than one YAML document", 0},
		{"not a mapping", "- rules\n", "want a mapping", 1},
		{"version 2", "version: 2\nrules: {}\n", "version (line 1): 2, this gateway reads version 1", 1},
		{"unknown top field", "rules: {}\nrulez: {}\n", "rulez (line 2): unknown field (known: rules, version)", 2},
		{"unknown nested field", "rules:\n  velocity:\n    windw: 10m\n", "rules.velocity.windw (line 3): unknown field", 3},
		{"repeated field", "rules:\n  tx_cap: {USD: 1}\n  tx_cap: {USD: 2}\n", "rules.tx_cap (line 3): given twice", 3},
		{"alias", "rules:\n  tx_cap: &c {USD: 1}\n  daily_cap: *c\n", "rules.daily_cap (line 3): aliases are not supported", 3},
		{"merge key", "rules:\n  tx_cap: {USD: 1}\n  velocity:\n    <<: {max: 1}\n", "rules.velocity.<< (line 4): unknown field", 4},
		{"negative cap", "rules:\n  daily_cap: {USD: -5}\n", "rules.daily_cap.USD: must be positive, got -5", 0},
		{"zero cap", "rules:\n  tx_cap: {USD: 0}\n", "rules.tx_cap.USD: must be positive", 0},
		{"cap too large", "rules:\n  tx_cap: {USD: 9007199254740992}\n", "rules.tx_cap.USD: 9007199254740992 is over the largest amount", 0},
		{"cap overflows", "rules:\n  tx_cap: {USD: 99999999999999999999}\n", "rules.tx_cap.USD (line 2): want an integer in minor units", 2},
		{"decimal amount", "rules:\n  tx_cap: {USD: 25.00}\n", `rules.tx_cap.USD (line 2): want an integer in minor units (write 2500 for 25.00), got "25.00"`, 2},
		{"string amount", "rules:\n  tx_cap: {USD: \"2500\"}\n", "want an integer in minor units", 2},
		{"bad currency", "rules:\n  tx_cap: {usd: 2500}\n", "rules.tx_cap.usd (line 2): not an ISO 4217 code", 2},
		{"long currency", "rules:\n  daily_cap: {USDT: 2500}\n", "rules.daily_cap.USDT (line 2): not an ISO 4217 code", 2},
		{"list for a map", "rules:\n  tx_cap: [USD]\n", "rules.tx_cap (line 2): want a mapping of ISO 4217 code", 2},
		{"negative limit", "rules:\n  new_device: {cooldown: 1h, limit: {USD: -1}}\n", "rules.new_device.limit.USD: must not be negative", 0},
		{"missing value", "rules:\n  velocity: {max: }\n", "rules.velocity.max (line 2): missing value", 2},
		{"negative velocity", "rules:\n  velocity: {max: -1}\n", "rules.velocity.max: -1, want 0 to", 0},
		{"huge velocity", "rules:\n  velocity: {max: 100000000}\n", "rules.velocity.max (line 2): 100000000 out of range", 2},
		{"bad duration", "rules:\n  velocity: {max: 1, window: 10}\n", `rules.velocity.window (line 2): want a duration such as 10m or 72h, got "10"`, 2},
		{"negative duration", "rules:\n  new_device: {cooldown: -1h}\n", "rules.new_device.cooldown: -1h0m0s must not be negative", 0},
		{"bad action", "rules:\n  said_mismatch: {action: shrug}\n", `rules.said_mismatch.action (line 2): want refuse or step_up, got "shrug"`, 2},
		{"bad kind", "rules:\n  kinds: [one_off, layaway]\n", `rules.kinds[1]: unknown kind "layaway"`, 0},
		{"list of lists", "rules:\n  kinds: [[one_off]]\n", "rules.kinds[0] (line 2): want a single value", 2},
		{"both lists", "rules:\n  merchants: {allow: [a, b], deny: [b]}\n", `rules.merchants.deny[0]: "b" is also in rules.merchants.allow`, 0},
		{"empty merchant", "rules:\n  merchants: {deny: [\"\"]}\n", "rules.merchants.deny[0]: merchant id must be 1 to 64 bytes", 0},
		{"bad method", "rules:\n  step_up:\n    glasses:\n      - methods: [wink]\n", `rules.step_up.glasses[0].methods[0]: unknown method "wink"`, 0},
		{"repeated method", "rules:\n  step_up:\n    glasses:\n      - methods: [tap, tap]\n", `rules.step_up.glasses[0].methods[1]: "tap" listed twice`, 0},
		{"no methods", "rules:\n  step_up:\n    glasses:\n      - methods: []\n", "rules.step_up.glasses[0].methods: 0 given, want 1 to 5", 0},
		{"no levels", "rules:\n  step_up:\n    glasses: []\n", "rules.step_up.glasses: 0 levels, want 1 to 4", 0},
		{"levels not a list", "rules:\n  step_up:\n    glasses: {methods: [tap]}\n", "rules.step_up.glasses (line 3): want a list of levels", 3},
		{"bad device kind", "rules:\n  step_up:\n    Glasses:\n      - methods: [tap]\n", "rules.step_up.Glasses: device kind must be", 0},
		{"first level threshold", "rules:\n  step_up:\n    glasses:\n      - methods: [tap]\n        above: {USD: 1}\n", "rules.step_up.glasses[0].above: the first level", 0},
		{"level field", "rules:\n  step_up:\n    glasses:\n      - methods: [tap]\n        below: {USD: 1}\n", "rules.step_up.glasses[0].below (line 5): unknown field (known: above, methods)", 5},
		{"threshold negative", ladder("{USD: -1}"), "rules.step_up.glasses[1].above.USD: must not be negative", 0},
		{"thresholds fall", "rules:\n  step_up:\n    kiosk:\n      - methods: [tap]\n      - methods: [pin]\n        above: {USD: 2000}\n      - methods: [phone]\n        above: {USD: 1000}\n",
			"rules.step_up.kiosk[2].above.USD: 1000 is below level 1's 2000", 0},
		{"coverage: missing", "rules:\n  tx_cap: {USD: 1, EUR: 1}\n  daily_cap: {USD: 1}\n", "rules.daily_cap: no entry for EUR, which rules.tx_cap accepts", 0},
		{"coverage: extra", "rules:\n  tx_cap: {USD: 1}\n  new_device: {limit: {USD: 1, GBP: 1}}\n", "rules.new_device.limit.GBP: currency not accepted by rules.tx_cap", 0},
		{"coverage: threshold", "rules:\n  tx_cap: {USD: 1, EUR: 1}\n" + ladder("{USD: 1}")[len("rules:\n"):], "rules.step_up.glasses[1].above: no entry for EUR", 0},
		{"too big", "rules: {}\n" + strings.Repeat("#", MaxFileBytes), "file larger than 1048576 bytes", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file))
			checkPolicyError(t, err, tt.want, tt.line)
		})
	}
}

func checkPolicyError(t *testing.T, err error, want string, line int) {
	t.Helper()
	if !errors.Is(err, ErrBadPolicy) || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want ErrBadPolicy with %q", err, want)
	}
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Line != line {
		t.Errorf("error %#v, want a *PolicyError at line %d", err, line)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p, err := Load(write("ok.yaml", string(DefaultFile())))
	if err != nil || !reflect.DeepEqual(p, Default()) {
		t.Fatalf("Load(default) = %+v, %v", p, err)
	}

	bad := write("bad.yaml", "rules:\n  daily_cap: {USD: 0}\n")
	_, err = Load(bad)
	checkPolicyError(t, err, "risk: bad policy: "+bad+": rules.daily_cap.USD: must be positive, got 0", 0)

	unknown := write("unknown.yaml", "rules:\n  dialy_cap: {USD: 1}\n")
	_, err = Load(unknown)
	checkPolicyError(t, err, "risk: bad policy: "+unknown+": rules.dialy_cap (line 2): unknown field", 2)

	_, err = Load(write("big.yaml", "rules: {}\n"+strings.Repeat("#", MaxFileBytes)))
	checkPolicyError(t, err, "file larger than", 0)

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "risk: load") {
		t.Errorf("Load(missing) error %v, want a wrapped os.ErrNotExist", err)
	}
}
