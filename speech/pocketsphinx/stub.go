//go:build !pocketsphinx

package pocketsphinx

// Available reports whether the package was built with the pocketsphinx tag.
func Available() bool { return false }

// Decoder is unavailable without the pocketsphinx build tag.
type Decoder struct{}

// NewDecoder returns ErrUnavailable.
func NewDecoder(Config) (*Decoder, error) { return nil, ErrUnavailable }

// Decode returns ErrUnavailable.
func (d *Decoder) Decode(string, []int16) (Hyp, error) { return Hyp{}, ErrUnavailable }

// DecodeWarp returns ErrUnavailable.
func (d *Decoder) DecodeWarp(string, float64, []int16) (Hyp, error) { return Hyp{}, ErrUnavailable }

// Warps returns nil.
func (d *Decoder) Warps() []float64 { return nil }

// Searches returns nil.
func (d *Decoder) Searches() []string { return nil }

// Close does nothing.
func (d *Decoder) Close() {}
