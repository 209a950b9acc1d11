//go:build libopus && nolibopusfile

package opus

import (
	"fmt"

	hraban "gopkg.in/hraban/opus.v2"
)

const maxEncoded = 1275 // RFC 6716 section 3.2.1

// Encoder encodes 48 kHz mono audio with libopus in its VOIP mode (libopus
// chooses SILK, hybrid or CELT, as WebRTC browsers let it).
type Encoder struct {
	enc *hraban.Encoder
	buf []byte
}

// NewEncoder returns an encoder at bitrate bits per second (0 means
// DefaultBitrate; otherwise 6000..510000).
func NewEncoder(bitrate int) (*Encoder, error) {
	if bitrate == 0 {
		bitrate = DefaultBitrate
	}
	if bitrate < 6000 || bitrate > 510000 {
		return nil, fmt.Errorf("opus: bitrate %d (want 6000..510000)", bitrate)
	}
	enc, err := hraban.NewEncoder(EncodeRate, 1, hraban.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("opus: new encoder: %w", err)
	}
	if err := enc.SetBitrate(bitrate); err != nil {
		return nil, fmt.Errorf("opus: set bitrate %d: %w", bitrate, err)
	}
	return &Encoder{enc: enc, buf: make([]byte, maxEncoded)}, nil
}

// Encode encodes exactly one 20 ms frame (960 samples at 48 kHz) into a new
// packet.
func (e *Encoder) Encode(pcm48 []int16) ([]byte, error) {
	if len(pcm48) != EncodeFrame {
		return nil, fmt.Errorf("opus: encode %d samples (want %d: 20 ms at 48 kHz)", len(pcm48), EncodeFrame)
	}
	n, err := e.enc.Encode(pcm48, e.buf)
	if err != nil {
		return nil, fmt.Errorf("opus: encode: %w", err)
	}
	return append([]byte(nil), e.buf[:n]...), nil
}

// EncoderAvailable reports whether this build can encode (it can).
func EncoderAvailable() bool { return true }
