package risk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/earshot/earshot/device/wire"
)

// Parse reads a rule file (the format is in the package documentation) and validates
// it (see Policy.Validate). Errors wrap ErrBadPolicy and say what was wrong and where:
// the field path and the line.
func Parse(b []byte) (*Policy, error) { return parse(b, "") }

// Load reads and parses the rule file at path, refusing one over MaxFileBytes.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("risk: load: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("risk: load %s: %w", path, err)
	}
	return parse(b, path)
}

func parse(b []byte, src string) (*Policy, error) {
	w := walker{src: src}
	if len(b) > MaxFileBytes {
		return nil, w.errf(nil, "", "file larger than %d bytes", MaxFileBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, w.errf(nil, "", "empty file")
		}
		return nil, w.errf(nil, "", "%v", err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, w.errf(nil, "", "more than one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, w.errf(nil, "", "not a YAML document")
	}
	p := &Policy{}
	sawRules := false
	err := w.mapping(doc.Content[0], "", fields{
		"version": func(n *yaml.Node, path string) error {
			v, err := w.int(n, path)
			if err == nil && v != 1 {
				err = w.errf(n, path, "%d, this gateway reads version 1", v)
			}
			return err
		},
		"rules": func(n *yaml.Node, path string) error { sawRules = true; return w.rules(n, path, p) },
	})
	if err != nil {
		return nil, err
	}
	if !sawRules {
		return nil, w.errf(nil, "rules", "missing (write rules: {} to allow everything)")
	}
	if err := p.Validate(); err != nil {
		var pe *PolicyError
		if errors.As(err, &pe) {
			pe.File = src
		}
		return nil, err
	}
	return p, nil
}

func (w walker) rules(n *yaml.Node, path string, p *Policy) error {
	return w.mapping(n, path, fields{
		"tx_cap":    func(n *yaml.Node, path string) (err error) { p.TxCap, err = w.money(n, path); return },
		"daily_cap": func(n *yaml.Node, path string) (err error) { p.DailyCap, err = w.money(n, path); return },
		"velocity": func(n *yaml.Node, path string) error {
			return w.mapping(n, path, fields{
				"max":    func(n *yaml.Node, path string) (err error) { p.Velocity.Max, err = w.int(n, path); return },
				"window": func(n *yaml.Node, path string) (err error) { p.Velocity.Window, err = w.duration(n, path); return },
				"action": func(n *yaml.Node, path string) (err error) { p.Velocity.Action, err = w.action(n, path); return },
			})
		},
		"merchants": func(n *yaml.Node, path string) error {
			return w.mapping(n, path, fields{
				"allow": func(n *yaml.Node, path string) (err error) { p.Merchants.Allow, err = w.strings(n, path); return },
				"deny":  func(n *yaml.Node, path string) (err error) { p.Merchants.Deny, err = w.strings(n, path); return },
			})
		},
		"kinds": func(n *yaml.Node, path string) error {
			s, err := w.strings(n, path)
			for _, k := range s {
				p.Kinds = append(p.Kinds, wire.Kind(k))
			}
			return err
		},
		"said_mismatch": func(n *yaml.Node, path string) error {
			return w.mapping(n, path, fields{
				"action": func(n *yaml.Node, path string) (err error) { p.SaidMismatch, err = w.action(n, path); return },
			})
		},
		"new_device": func(n *yaml.Node, path string) error {
			return w.mapping(n, path, fields{
				"cooldown": func(n *yaml.Node, path string) (err error) { p.NewDevice.Cooldown, err = w.duration(n, path); return },
				"limit":    func(n *yaml.Node, path string) (err error) { p.NewDevice.Limit, err = w.money(n, path); return },
				"action":   func(n *yaml.Node, path string) (err error) { p.NewDevice.Action, err = w.action(n, path); return },
			})
		},
		"step_up": func(n *yaml.Node, path string) error { return w.stepUp(n, path, p) },
	})
}

func (w walker) stepUp(n *yaml.Node, path string, p *Policy) error {
	if err := w.kind(n, path, yaml.MappingNode, "a mapping of device kind to levels"); err != nil || isNull(n) {
		return err
	}
	p.StepUp = map[string][]Level{}
	return w.each(n, path, func(key string, v *yaml.Node, path string) error {
		if err := w.kind(v, path, yaml.SequenceNode, "a list of levels"); err != nil {
			return err
		}
		ladder := []Level{}
		for i, ln := range v.Content {
			var l Level
			err := w.mapping(ln, fmt.Sprintf("%s[%d]", path, i), fields{
				"methods": func(n *yaml.Node, path string) error {
					s, err := w.strings(n, path)
					for _, m := range s {
						l.Methods = append(l.Methods, Method(m))
					}
					return err
				},
				"above": func(n *yaml.Node, path string) (err error) { l.Above, err = w.money(n, path); return },
			})
			if err != nil {
				return err
			}
			ladder = append(ladder, l)
		}
		p.StepUp[key] = ladder
		return nil
	})
}

// walker decodes a yaml.Node tree by hand, so that every error has a field path and a
// line, unknown and repeated fields are refused, and aliases are never expanded.
type walker struct{ src string }

type fields map[string]func(n *yaml.Node, path string) error

func (w walker) errf(n *yaml.Node, path, format string, args ...any) error {
	e := &PolicyError{File: w.src, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
	}
	return e
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// kind checks a node's kind; a null stands for an empty mapping or list.
func (w walker) kind(n *yaml.Node, path string, k yaml.Kind, want string) error {
	switch {
	case n.Kind == yaml.AliasNode:
		return w.errf(n, path, "aliases are not supported")
	case n.Kind == k || k != yaml.ScalarNode && isNull(n):
		return nil
	}
	return w.errf(n, path, "want %s", want)
}

// each calls fn for every entry of a mapping, refusing non-scalar and repeated keys.
func (w walker) each(n *yaml.Node, path string, fn func(key string, v *yaml.Node, path string) error) error {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			return w.errf(k, path, "keys must be plain strings")
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if seen[k.Value] {
			return w.errf(k, p, "given twice")
		}
		seen[k.Value] = true
		if err := fn(k.Value, v, p); err != nil {
			return err
		}
	}
	return nil
}

func (w walker) mapping(n *yaml.Node, path string, f fields) error {
	if err := w.kind(n, path, yaml.MappingNode, "a mapping"); err != nil {
		return err
	}
	return w.each(n, path, func(key string, v *yaml.Node, p string) error {
		fn, ok := f[key]
		if !ok {
			return w.errf(v, p, "unknown field (known: %s)", strings.Join(slices.Sorted(maps.Keys(f)), ", "))
		}
		return fn(v, p)
	})
}

func (w walker) scalar(n *yaml.Node, path string) error {
	if err := w.kind(n, path, yaml.ScalarNode, "a single value"); err != nil {
		return err
	}
	if isNull(n) {
		return w.errf(n, path, "missing value")
	}
	return nil
}

func (w walker) int64(n *yaml.Node, path, what string) (int64, error) {
	if err := w.scalar(n, path); err != nil {
		return 0, err
	}
	var v int64
	if n.Tag != "!!int" || n.Decode(&v) != nil {
		return 0, w.errf(n, path, "want %s, got %q", what, n.Value)
	}
	return v, nil
}

func (w walker) int(n *yaml.Node, path string) (int, error) {
	v, err := w.int64(n, path, "an integer")
	if err == nil && (v < -maxVelocity || v > maxVelocity) {
		return 0, w.errf(n, path, "%d out of range", v)
	}
	return int(v), err
}

// money reads a mapping of ISO 4217 code to an integer amount in minor units.
func (w walker) money(n *yaml.Node, path string) (map[string]int64, error) {
	if err := w.kind(n, path, yaml.MappingNode, "a mapping of ISO 4217 code to amount in minor units"); err != nil {
		return nil, err
	}
	m := map[string]int64{}
	err := w.each(n, path, func(key string, v *yaml.Node, path string) error {
		if wire.ValidCurrency(key) != nil {
			return w.errf(v, path, "not an ISO 4217 code (three upper-case letters)")
		}
		a, err := w.int64(v, path, "an integer in minor units (write 2500 for 25.00)")
		m[key] = a
		return err
	})
	return m, err
}

func (w walker) duration(n *yaml.Node, path string) (time.Duration, error) {
	if err := w.scalar(n, path); err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, w.errf(n, path, "want a duration such as 10m or 72h, got %q", n.Value)
	}
	return d, nil
}

func (w walker) action(n *yaml.Node, path string) (Action, error) {
	if err := w.scalar(n, path); err != nil {
		return "", err
	}
	a := Action(n.Value)
	if a != ActionRefuse && a != ActionStepUp {
		return "", w.errf(n, path, "want refuse or step_up, got %q", n.Value)
	}
	return a, nil
}

func (w walker) strings(n *yaml.Node, path string) ([]string, error) {
	if err := w.kind(n, path, yaml.SequenceNode, "a list"); err != nil {
		return nil, err
	}
	if len(n.Content) > maxListItems {
		return nil, w.errf(n, path, "%d entries, limit %d", len(n.Content), maxListItems)
	}
	var s []string
	for i, v := range n.Content {
		if err := w.scalar(v, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return nil, err
		}
		s = append(s, v.Value)
	}
	return s, nil
}
