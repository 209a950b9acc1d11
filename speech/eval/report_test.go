package eval_test

import (
	"context"
	"errors"
	"github.com/earshot/earshot/speech/grammar/grammartest"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech/asr"
	"github.com/earshot/earshot/speech/eval"
	"github.com/earshot/earshot/speech/tts"
)

// yesMan accepts everything as one fixed sentence per mode.
type yesMan struct{}

func (yesMan) Name() string { return "yes-man" }
func (yesMan) Close() error { return nil }
func (yesMan) Recognize(_ context.Context, req asr.Request) (asr.Result, error) {
	if len(req.Audio) == 0 {
		return asr.Result{}, errors.New("no audio")
	}
	if req.Mode == wire.ModeConfirm {
		return asr.Result{Text: "yes", Accepted: true}, nil
	}
	return asr.Result{Text: "cancel my order", Accepted: true}, nil
}

func TestRunTallies(t *testing.T) {
	synth, err := tts.New(tts.Config{})
	if errors.Is(err, tts.ErrUnavailable) {
		t.Skip("espeak-ng not installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	g := grammartest.Grammar(t)
	cfg := eval.Config{Recognizer: yesMan{}, Grammar: g, Synth: synth, InGrammar: 6, OutOfGrammar: 3,
		Confirm: 4, Chatter: 2, Seed: 3, SNRs: []float64{20}, Voices: []string{"en-us", "en-gb"}}
	rep, err := eval.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Utterances) != 2*(6+3+4+2) {
		t.Fatalf("%d utterances", len(rep.Utterances))
	}
	want := map[string]int{"command clean": 6, "command 20dB": 6, "oog clean": 3, "oog 20dB": 3,
		"confirm clean": 4, "confirm 20dB": 4, "confirm-oog clean": 2, "confirm-oog 20dB": 2}
	for name, n := range want {
		c, ok := rep.Condition(name)
		if !ok || c.N != n || c.Accepted != n {
			t.Errorf("%s: %+v, want %d all accepted", name, c, n)
		}
		if !c.InGrammar && c.FalseAcceptRate != 1 {
			t.Errorf("%s: false accepts %v, want 1", name, c.FalseAcceptRate)
		}
	}
	if rep.RTF <= 0 || rep.Audio <= 0 {
		t.Errorf("rtf %v audio %v", rep.RTF, rep.Audio)
	}
	var b strings.Builder
	rep.WriteText(&b)
	for _, s := range []string{"yes-man", "command clean", "confirm-oog 20dB", "by voice", "en-gb", "real-time factor"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
	// Same seed, same plan.
	again, err := eval.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rep.Utterances {
		if rep.Utterances[i].Text != again.Utterances[i].Text || rep.Utterances[i].Index != i {
			t.Fatalf("run %d differs: %q vs %q", i, rep.Utterances[i].Text, again.Utterances[i].Text)
		}
	}
	if _, err := eval.Run(context.Background(), eval.Config{}); !errors.Is(err, eval.ErrConfig) {
		t.Errorf("empty config: %v", err)
	}
}
