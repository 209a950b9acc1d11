//go:build !pocketsphinx

package asr_test

import (
	"errors"
	"testing"

	"github.com/earshot/earshot/speech/asr"
)

func TestSphinxUnavailable(t *testing.T) {
	if _, err := asr.NewSphinx(asr.SphinxConfig{Grammar: testGrammar(t)}); !errors.Is(err, asr.ErrUnavailable) {
		t.Errorf("NewSphinx: %v, want ErrUnavailable", err)
	}
}
