//go:build !(libopus && nolibopusfile)

package opus

// Encoder is unavailable in this build: see [EncoderAvailable].
type Encoder struct{}

// NewEncoder returns [ErrNoEncoder]: this build has no libopus.
func NewEncoder(bitrate int) (*Encoder, error) { return nil, ErrNoEncoder }

// Encode returns [ErrNoEncoder].
func (e *Encoder) Encode(pcm48 []int16) ([]byte, error) { return nil, ErrNoEncoder }

// EncoderAvailable reports whether this build can encode (it cannot).
func EncoderAvailable() bool { return false }
