//go:build !pocketsphinx

package pocketsphinx_test

import (
	"errors"
	"testing"

	"github.com/earshot/earshot/speech/pocketsphinx"
)

func TestUnavailable(t *testing.T) {
	if pocketsphinx.Available() {
		t.Error("available without the build tag")
	}
	if _, err := pocketsphinx.NewDecoder(pocketsphinx.Config{}); !errors.Is(err, pocketsphinx.ErrUnavailable) {
		t.Errorf("NewDecoder: %v, want ErrUnavailable", err)
	}
}
