package scenario

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/earshot/earshot/device/wire"
)

// strictOrNull is strict, accepting an empty value as the zero value.
func (p *parser) strictOrNull(n *yaml.Node, v any, what string) error {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "") {
		return nil
	}
	return p.strict(n, v, what)
}

// strict decodes n into v after checking that every key it holds is a field of v.
func (p *parser) strict(n *yaml.Node, v any, what string) error {
	if err := p.checkFields(n, reflect.TypeOf(v), what); err != nil {
		return err
	}
	if err := n.Decode(v); err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.Msg = what + ": " + pe.Msg
			return pe
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = yamlLine.ReplaceAllString(m, "")
			}
			return p.errorf(n, "%s: %s", what, strings.Join(msgs, "; "))
		}
		return p.errorf(n, "%s: %v", what, err)
	}
	return nil
}

var (
	yamlLine   = regexp.MustCompile(`^line \d+: `)
	nodeType   = reflect.TypeOf(yaml.Node{})
	amountType = reflect.TypeOf(wire.Amount(0))
)

func (p *parser) checkFields(n *yaml.Node, t reflect.Type, what string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == nodeType:
		return nil
	case t == amountType:
		// yaml.v3 would take 11.00 as 11: amounts are minor units, integers only.
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			return p.errorf(n, "%s: %q: want an integer amount in minor units (1100 for USD 11.00)", what, n.Value)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return p.errorf(n, "%s: want a mapping", what)
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" {
				fields[name] = t.Field(i).Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				known := make([]string, 0, len(fields))
				for f := range fields {
					known = append(known, f)
				}
				sort.Strings(known)
				return p.errorf(k, "%s: unknown field %q (known: %s)", what, k.Value, strings.Join(known, ", "))
			}
			if err := p.checkFields(n.Content[i+1], ft, what+": "+k.Value); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, e := range n.Content {
			if err := p.checkFields(e, t.Elem(), fmt.Sprintf("%s[%d]", what, i)); err != nil {
				return err
			}
		}
	}
	return nil
}
