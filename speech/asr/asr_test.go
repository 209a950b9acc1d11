package asr_test

import (
	"context"
	"errors"
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech/asr"
	"github.com/earshot/earshot/speech/grammar/grammartest"
)

func TestText(t *testing.T) {
	r := asr.NewText(grammartest.Grammar(t))
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
