package speech

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// DefaultMaxWAVSamples is the limit [ReadWAV] applies when maxSamples <= 0:
// ten minutes at 48 kHz.
const DefaultMaxWAVSamples = 48000 * 600

// WAV format codes (RIFF/WAVE "fmt " chunk).
const (
	wavFormatPCM        = 1
	wavFormatExtensible = 0xFFFE
)

// maxWAVChunk bounds a non-data chunk that ReadWAV skips over.
const maxWAVChunk = 1 << 20

// ReadWAV reads a RIFF/WAVE stream of 16-bit PCM, mono or stereo (stereo is
// downmixed to mono by averaging), and returns its samples and sample rate.
// It accepts streaming writers' placeholder lengths (espeak-ng --stdout
// writes 0x7ffff000, others 0x7fffffff, 0xffffffff or 0) by reading the
// data chunk to EOF. More than maxSamples samples per channel (maxSamples <= 0 means
// [DefaultMaxWAVSamples]) is an error wrapping [ErrTooLong]; anything else
// that is not 16-bit PCM WAV wraps [ErrFormat]. The sample rate is returned
// as found (1..384000 Hz); resampling is the caller's business.
func ReadWAV(r io.Reader, maxSamples int) (samples []int16, rate int, err error) {
	if maxSamples <= 0 {
		maxSamples = DefaultMaxWAVSamples
	}
	br := bufio.NewReader(r)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: wav header: %v", ErrFormat, err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("%w: not a RIFF/WAVE stream (starts %q)", ErrFormat, hdr[:4])
	}
	var (
		haveFmt  bool
		channels int
	)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(br, ch[:]); err != nil {
			return nil, 0, fmt.Errorf("%w: no data chunk: %v", ErrFormat, err)
		}
		id, size := string(ch[0:4]), binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if haveFmt {
				return nil, 0, fmt.Errorf("%w: two fmt chunks", ErrFormat)
			}
			channels, rate, err = readWAVFormat(br, size)
			if err != nil {
				return nil, 0, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, 0, fmt.Errorf("%w: data chunk before fmt chunk", ErrFormat)
			}
			samples, err = readWAVData(br, size, channels, maxSamples)
			if err != nil {
				return nil, 0, err
			}
			return samples, rate, nil
		default:
			if size > maxWAVChunk {
				return nil, 0, fmt.Errorf("%w: %q chunk of %d bytes (max %d)", ErrFormat, id, size, maxWAVChunk)
			}
			// Chunks are padded to an even size.
			if _, err := io.CopyN(io.Discard, br, int64(size)+int64(size&1)); err != nil {
				return nil, 0, fmt.Errorf("%w: %q chunk: %v", ErrFormat, id, err)
			}
		}
	}
}

func readWAVFormat(r io.Reader, size uint32) (channels, rate int, err error) {
	if size < 16 || size > 256 {
		return 0, 0, fmt.Errorf("%w: fmt chunk of %d bytes (want 16..256)", ErrFormat, size)
	}
	b := make([]byte, int(size)+int(size&1))
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, 0, fmt.Errorf("%w: fmt chunk: %v", ErrFormat, err)
	}
	format := binary.LittleEndian.Uint16(b[0:2])
	channels = int(binary.LittleEndian.Uint16(b[2:4]))
	rate = int(binary.LittleEndian.Uint32(b[4:8]))
	blockAlign := int(binary.LittleEndian.Uint16(b[12:14]))
	bits := int(binary.LittleEndian.Uint16(b[14:16]))
	if format == wavFormatExtensible {
		// WAVEFORMATEXTENSIBLE: the sub-format GUID starts with the real code.
		if size < 40 {
			return 0, 0, fmt.Errorf("%w: extensible fmt chunk of %d bytes (want 40)", ErrFormat, size)
		}
		format = binary.LittleEndian.Uint16(b[24:26])
	}
	switch {
	case format != wavFormatPCM:
		return 0, 0, fmt.Errorf("%w: wav format code %#x (want 1, PCM)", ErrFormat, format)
	case bits != 16:
		return 0, 0, fmt.Errorf("%w: %d bits per sample (want 16)", ErrFormat, bits)
	case channels != 1 && channels != 2:
		return 0, 0, fmt.Errorf("%w: %d channels (want 1 or 2)", ErrFormat, channels)
	case blockAlign != 2*channels:
		return 0, 0, fmt.Errorf("%w: block align %d for %d channels of 16 bits", ErrFormat, blockAlign, channels)
	case rate < 1 || rate > 384000:
		return 0, 0, fmt.Errorf("%w: %d Hz (want 1..384000)", ErrRate, rate)
	}
	return channels, rate, nil
}

// isPlaceholder reports the data sizes streaming producers write before
// they know the length: 0, 0xffffffff, 0x7fffffff, and espeak-ng's
// 0x7ffff000 (0x7fffffff less its header, rounded down to 4 KiB).
func isPlaceholder(size uint32) bool {
	return size == 0 || size >= 0x7ffff000
}

func readWAVData(r io.Reader, size uint32, channels, maxSamples int) ([]int16, error) {
	limit := int64(maxSamples) * int64(channels) * 2
	want := int64(size)
	// A size beyond the limit is read like a placeholder: ErrTooLong if the
	// data really is that long, else it was a placeholder we did not know.
	toEOF := isPlaceholder(size) || want > limit
	if !toEOF {
		if want%int64(2*channels) != 0 {
			return nil, fmt.Errorf("%w: data chunk of %d bytes is not whole %d-channel frames", ErrFormat, size, channels)
		}
	}
	var raw []byte
	if toEOF {
		b, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			return nil, fmt.Errorf("%w: wav data: %v", ErrFormat, err)
		}
		if int64(len(b)) > limit {
			return nil, fmt.Errorf("%w: more than %d samples", ErrTooLong, maxSamples)
		}
		// A streaming producer may be cut mid-frame: drop the partial frame.
		raw = b[:len(b)-len(b)%(2*channels)]
	} else {
		// Read rather than allocate what the header claims: it may lie.
		b, err := io.ReadAll(io.LimitReader(r, want))
		if err != nil {
			return nil, fmt.Errorf("%w: wav data: %v", ErrFormat, err)
		}
		if int64(len(b)) != want {
			return nil, fmt.Errorf("%w: data chunk truncated at %d of %d bytes", ErrFormat, len(b), want)
		}
		raw = b
	}
	pcm, err := DecodePCM(raw)
	if err != nil {
		return nil, err
	}
	if channels == 1 {
		return pcm, nil
	}
	mono := pcm[:len(pcm)/2]
	for i := range mono {
		mono[i] = int16((int32(pcm[2*i]) + int32(pcm[2*i+1])) / 2)
	}
	return mono, nil
}

// WriteWAV writes samples as a mono 16-bit PCM RIFF/WAVE stream at rate.
func WriteWAV(w io.Writer, samples []int16, rate int) error {
	if rate < 1 || rate > 384000 {
		return fmt.Errorf("%w: %d Hz (want 1..384000)", ErrRate, rate)
	}
	dataLen := int64(len(samples)) * 2
	if dataLen > 0xffffffff-36 {
		return fmt.Errorf("%w: %d samples do not fit a WAV file", ErrTooLong, len(samples))
	}
	h := make([]byte, 44, 44+dataLen)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+dataLen))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], wavFormatPCM)
	binary.LittleEndian.PutUint16(h[22:], 1)
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(dataLen))
	h = AppendPCM(h, samples)
	if _, err := w.Write(h); err != nil {
		return fmt.Errorf("speech: write wav: %w", err)
	}
	return nil
}
