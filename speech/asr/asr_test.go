package asr_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech/asr"
	"github.com/earshot/earshot/speech/grammar"
)

// testGrammar builds the grammar of the reference agent's demo catalogue (read from
// its YAML file: speech must not import gateway packages).
func testGrammar(t testing.TB) *grammar.Grammar {
	t.Helper()
	raw, err := os.ReadFile("../../gateway/agent/refagent/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Merchants []struct {
			Currency string
			Items    []struct {
				SKU, Name, Plural, Unit string
				Aliases, Options        []string
				Sizes                   map[string]int64
			}
		}
	}
	if err := yaml.Unmarshal(raw, &cat); err != nil {
		t.Fatal(err)
	}
	var src grammar.Source
	for _, m := range cat.Merchants {
		for _, it := range m.Items {
			si := grammar.Item{SKU: it.SKU, Name: it.Name, Plural: it.Plural, Unit: it.Unit,
				Aliases: it.Aliases, Options: it.Options, Currency: m.Currency}
			for s := range it.Sizes {
				si.Sizes = append(si.Sizes, s)
			}
			src.Items = append(src.Items, si)
		}
	}
	g, err := grammar.Build(src)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestText(t *testing.T) {
	r := asr.NewText(testGrammar(t))
	if r.Name() != "text" {
		t.Errorf("name %q", r.Name())
	}
	for _, c := range []struct {
		mode     wire.SpeechMode
		text     string
		accepted bool
		reject   string
	}{
		{wire.ModeCommand, "buy two oat lattes", true, ""},
		{wire.ModeCommand, "  Can I get a large iced latte, please?  ", true, ""},
		{wire.ModeCommand, "play some music", false, asr.RejectOutOfGrammar},
		{wire.ModeCommand, "two lattes and a rocket", false, asr.RejectOutOfGrammar},
		{wire.ModeCommand, "", false, asr.RejectNoSpeech},
		{wire.ModeConfirm, "yes", true, ""},
		{wire.ModeConfirm, "one two three four", true, ""},
		{wire.ModeConfirm, "i like turtles", false, asr.RejectOutOfGrammar},
		{wire.ModeConfirm, "buy two oat lattes", false, asr.RejectOutOfGrammar},
	} {
		got, err := r.Recognize(context.Background(), asr.Request{Mode: c.mode, Text: c.text})
		if err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		if got.Accepted != c.accepted || got.Reject != c.reject {
			t.Errorf("%s %q: accepted %v reject %q, want %v %q", c.mode, c.text, got.Accepted, got.Reject, c.accepted, c.reject)
		}
	}
	for name, req := range map[string]asr.Request{
		"bad mode": {Mode: "shout", Text: "yes"},
		"too long": {Mode: wire.ModeConfirm, Text: string(make([]byte, asr.MaxText+1))},
	} {
		if _, err := r.Recognize(context.Background(), req); !errors.Is(err, asr.ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}
}
