//go:build !pocketsphinx

package asr_test

import (
	"errors"
	"github.com/earshot/earshot/speech/grammar/grammartest"
	"testing"

	"github.com/earshot/earshot/speech/asr"
)

func TestSphinxUnavailable(t *testing.T) {
	if _, err := asr.NewSphinx(asr.SphinxConfig{Grammar: grammartest.Grammar(t)}); !errors.Is(err, asr.ErrUnavailable) {
		t.Errorf("NewSphinx: %v, want ErrUnavailable", err)
	}
}
