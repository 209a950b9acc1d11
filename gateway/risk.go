package gateway

import (
	"fmt"

	"github.com/earshot/earshot/authz/risk"
	"github.com/earshot/earshot/gateway/agent/refagent"
	"github.com/earshot/earshot/speech/grammar"
)

// riskPolicy is the configured risk policy: Config.Risk, the rule file, or the
// embedded defaults.
func (s *Server) riskPolicy() (*risk.Policy, error) {
	switch {
	case s.cfg.Risk != nil:
		if err := s.cfg.Risk.Validate(); err != nil {
			return nil, fmt.Errorf("gateway: risk policy: %w", err)
		}
		return s.cfg.Risk, nil
	case s.cfg.RiskFile != "":
		p, err := risk.Load(s.cfg.RiskFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		return p, nil
	}
	return risk.Default(), nil
}

// saidFrom reads what a user asked for from an utterance, with the commerce grammar
// of the agent's catalogue: the spoken price limit and the items, for the risk rule
// that compares them with the agent's proposal (text the grammar does not parse as a
// purchase says nothing), and whether it is "cancel my order".
func saidFrom(cat *refagent.Catalog) (said func(string) *risk.Said, isCancel func(string) bool, err error) {
	if cat == nil {
		if cat, err = refagent.DefaultCatalog(); err != nil {
			return nil, nil, err
		}
	}
	g, err := grammar.Build(cat.GrammarSource())
	if err != nil {
		return nil, nil, fmt.Errorf("gateway: grammar: %w", err)
	}
	isCancel = func(text string) bool {
		in, err := g.Parse(text)
		return err == nil && in.Action == grammar.ActionCancel
	}
	said = func(text string) *risk.Said {
		in, err := g.Parse(text)
		if err != nil || in.Action != grammar.ActionBuy || len(in.Lines) == 0 {
			return nil
		}
		said := &risk.Said{MaxAmount: in.Under, Qty: make(map[string]int, len(in.Lines))}
		for _, l := range in.Lines {
			if _, seen := said.Qty[l.SKU]; !seen {
				said.SKUs = append(said.SKUs, l.SKU)
			}
			said.Qty[l.SKU] += l.Qty
		}
		return said
	}
	return said, isCancel, nil
}
