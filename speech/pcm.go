package speech

import (
	"errors"
	"fmt"
	"time"
)

// Rate is the canonical sample rate: 16 kHz mono signed 16-bit samples.
const Rate = 16000

// FrameMS is the duration of the canonical frame in milliseconds.
const FrameMS = 20

// FrameSamples is the number of samples in the canonical 20 ms frame at [Rate].
const FrameSamples = Rate * FrameMS / 1000

var (
	// ErrRate reports a sample rate the code cannot handle; it is wrapped
	// with the offending rate.
	ErrRate = errors.New("speech: unsupported sample rate")
	// ErrFormat reports malformed or unsupported audio data (odd PCM length,
	// a WAV that is not 16-bit PCM, a truncated header); wrapped with details.
	ErrFormat = errors.New("speech: bad audio format")
	// ErrTooLong reports audio longer than the caller's limit.
	ErrTooLong = errors.New("speech: audio too long")
)

// DecodePCM decodes signed 16-bit little-endian samples. An odd number of
// bytes is an error wrapping [ErrFormat].
func DecodePCM(b []byte) ([]int16, error) {
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("%w: pcm length %d bytes is odd", ErrFormat, len(b))
	}
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
	}
	return s, nil
}

// AppendPCM appends s to dst as signed 16-bit little-endian samples.
func AppendPCM(dst []byte, s []int16) []byte {
	for _, v := range s {
		dst = append(dst, byte(v), byte(uint16(v)>>8))
	}
	return dst
}

// clip16 rounds f to the nearest int16, saturating.
func clip16(f float64) int16 {
	switch {
	case f >= 32767:
		return 32767
	case f <= -32768:
		return -32768
	case f >= 0:
		return int16(f + 0.5)
	default:
		return int16(f - 0.5)
	}
}

// samplesFor converts a duration to a sample count at [Rate] (negative -> 0).
func samplesFor(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(d * Rate / time.Second)
}

// durationOf converts a sample count at [Rate] to a duration.
func durationOf(n int64) time.Duration {
	return time.Duration(n) * time.Second / Rate
}
