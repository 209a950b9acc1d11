//go:build !pocketsphinx

package asr

import "fmt"

// NewSphinx returns ErrUnavailable: the package was built without the pocketsphinx tag.
func NewSphinx(SphinxConfig) (Recognizer, error) {
	return nil, fmt.Errorf("asr: sphinx: %w", ErrUnavailable)
}
