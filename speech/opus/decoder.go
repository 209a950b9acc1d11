package opus

import (
	"errors"
	"fmt"

	pionopus "github.com/pion/opus"

	"github.com/earshot/earshot/speech"
)

// MaxPacketSize is the largest packet Decode accepts: three maximal frames
// (RFC 6716 section 3.2.1: 1275 bytes each); WebRTC packets are far smaller.
const MaxPacketSize = 3 * 1275

// maxPacketSamples is the most one packet decodes to: 120 ms at 16 kHz
// (RFC 6716 section 3.2.5).
const maxPacketSamples = speech.Rate * 120 / 1000

// Encoder parameters: 48 kHz mono, 20 ms frames, as a browser sends them.
const (
	// EncodeRate is the sample rate Encoder.Encode takes.
	EncodeRate = 48000
	// EncodeFrame is the number of samples Encoder.Encode takes: 20 ms.
	EncodeFrame = EncodeRate / 50
	// DefaultBitrate is what NewEncoder uses for bitrate 0.
	DefaultBitrate = 32000
)

var (
	// ErrPacket reports a packet that is empty, too large or malformed; it
	// is wrapped with the reason.
	ErrPacket = errors.New("opus: bad packet")
	// ErrNoEncoder is returned by NewEncoder in builds without libopus.
	ErrNoEncoder = errors.New("opus: built without libopus (build tag libopus)")
)

// Decoder decodes one stream of Opus packets (SILK, CELT or hybrid, mono or
// stereo, any bandwidth) to 16 kHz mono. pion/opus produces the 16 kHz
// output itself, as libopus does when asked for it: SILK is resampled with
// the reference decoder's resampler and CELT is synthesised at 16 kHz, so
// no extra resampling happens here.
type Decoder struct {
	dec pionopus.Decoder
	out []int16
}

// NewDecoder returns a decoder for one stream.
func NewDecoder() (*Decoder, error) {
	dec, err := pionopus.NewDecoderWithOutput(speech.Rate, 1)
	if err != nil {
		return nil, fmt.Errorf("opus: new decoder: %w", err)
	}
	return &Decoder{dec: dec, out: make([]int16, maxPacketSamples)}, nil
}

// Decode decodes one packet and appends its 16 kHz mono samples to dst. An
// empty, oversized or malformed packet is an error wrapping [ErrPacket];
// dst is then returned unchanged and the decoder stays usable.
func (d *Decoder) Decode(dst []int16, packet []byte) ([]int16, error) {
	switch {
	case len(packet) == 0:
		return dst, fmt.Errorf("%w: empty", ErrPacket)
	case len(packet) > MaxPacketSize:
		return dst, fmt.Errorf("%w: %d bytes (max %d)", ErrPacket, len(packet), MaxPacketSize)
	}
	n, err := d.dec.DecodeToInt16(packet, d.out)
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrPacket, err)
	}
	if n < 0 || n > len(d.out) {
		return dst, fmt.Errorf("%w: decoder returned %d samples", ErrPacket, n)
	}
	return append(dst, d.out[:n]...), nil
}
