package speech_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os/exec"
	"slices"
	"testing"

	"github.com/earshot/earshot/speech"
)

func TestPCM(t *testing.T) {
	s := []int16{0, 1, -1, 32767, -32768, 258}
	b := speech.AppendPCM([]byte{9}, s)
	want := []byte{9, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0x80, 2, 1}
	if !bytes.Equal(b, want) {
		t.Fatalf("AppendPCM: % x, want % x", b, want)
	}
	got, err := speech.DecodePCM(b[1:])
	if err != nil || !slices.Equal(got, s) {
		t.Fatalf("DecodePCM: %v %v, want %v", got, err, s)
	}
	if _, err := speech.DecodePCM([]byte{1, 2, 3}); !errors.Is(err, speech.ErrFormat) {
		t.Errorf("odd length: %v, want ErrFormat", err)
	}
}

func TestWAVRoundTrip(t *testing.T) {
	for _, rate := range []int{8000, 16000, 22050, 48000} {
		s := speech.WhiteNoise(rate/10, int64(rate))
		var b bytes.Buffer
		if err := speech.WriteWAV(&b, s, rate); err != nil {
			t.Fatal(err)
		}
		if b.Len() != 44+2*len(s) {
			t.Errorf("%d bytes, want %d", b.Len(), 44+2*len(s))
		}
		got, r, err := speech.ReadWAV(&b, 0)
		if err != nil || r != rate || !slices.Equal(got, s) {
			t.Errorf("rate %d: read back %d samples at %d Hz, err %v", rate, len(got), r, err)
		}
	}
	if err := speech.WriteWAV(&bytes.Buffer{}, nil, 0); !errors.Is(err, speech.ErrRate) {
		t.Errorf("rate 0: %v, want ErrRate", err)
	}
}

// wavBytes builds a WAV stream by hand: fmt fields, extra chunks, data size.
type wavSpec struct {
	riff      string
	format    uint16
	channels  uint16
	rate      uint32
	align     uint16
	bits      uint16
	fmtSize   uint32
	extra     []byte // chunks before data
	dataSize  uint32
	data      []byte
	noFmt     bool
	dataFirst bool
}

func (w wavSpec) bytes() []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(w.riff)
	_ = binary.Write(&b, le, uint32(0x7ffff024))
	b.WriteString("WAVE")
	var fmtc bytes.Buffer
	if !w.noFmt {
		fmtc.WriteString("fmt ")
		_ = binary.Write(&fmtc, le, w.fmtSize)
		for _, v := range []any{w.format, w.channels, w.rate, w.rate * uint32(w.align), w.align, w.bits} {
			_ = binary.Write(&fmtc, le, v)
		}
		fmtc.Write(make([]byte, w.fmtSize-16))
	}
	var data bytes.Buffer
	data.WriteString("data")
	_ = binary.Write(&data, le, w.dataSize)
	data.Write(w.data)
	if w.dataFirst {
		b.Write(data.Bytes())
		b.Write(fmtc.Bytes())
		return b.Bytes()
	}
	b.Write(fmtc.Bytes())
	b.Write(w.extra)
	b.Write(data.Bytes())
	return b.Bytes()
}

func mono(data []byte, size uint32) wavSpec {
	return wavSpec{riff: "RIFF", format: 1, channels: 1, rate: 16000, align: 2, bits: 16, fmtSize: 16, dataSize: size, data: data}
}

func TestReadWAV(t *testing.T) {
	pcm := speech.AppendPCM(nil, []int16{1, -2, 3, -4})
	stereo := speech.AppendPCM(nil, []int16{100, 300, -100, -301})
	list := append([]byte("LIST\x05\x00\x00\x00abcde\x00"), []byte("fact\x04\x00\x00\x00\x01\x02\x03\x04")...)
	ext := mono(pcm, 8)
	ext.format, ext.fmtSize = 0xFFFE, 40
	extBytes := ext.bytes()
	binary.LittleEndian.PutUint16(extBytes[12+8+24:], 1) // sub-format: PCM
	extFloat := ext.bytes()
	binary.LittleEndian.PutUint16(extFloat[12+8+24:], 3)
	withList := mono(pcm, 8)
	withList.extra = list
	st := mono(stereo, 8)
	st.channels, st.align = 2, 4
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    []int16
		wantErr error
	}{
		{"plain", mono(pcm, 8).bytes(), 0, []int16{1, -2, 3, -4}, nil},
		{"espeak placeholder", mono(pcm, 0x7ffff000).bytes(), 0, []int16{1, -2, 3, -4}, nil},
		{"0x7fffffff placeholder", mono(pcm, 0x7fffffff).bytes(), 0, []int16{1, -2, 3, -4}, nil},
		{"0xffffffff placeholder", mono(pcm, 0xffffffff).bytes(), 0, []int16{1, -2, 3, -4}, nil},
		{"zero placeholder", mono(pcm, 0).bytes(), 0, []int16{1, -2, 3, -4}, nil},
		{"placeholder cut mid-sample", mono(pcm[:7], 0xffffffff).bytes(), 0, []int16{1, -2, 3}, nil},
		{"other chunks skipped", withList.bytes(), 0, []int16{1, -2, 3, -4}, nil},
		{"extensible", extBytes, 0, []int16{1, -2, 3, -4}, nil},
		{"stereo downmixed", st.bytes(), 0, []int16{200, -200}, nil},
		{"empty data", mono(nil, 0).bytes(), 0, []int16{}, nil},
		{"at the limit", mono(pcm, 8).bytes(), 4, []int16{1, -2, 3, -4}, nil},
		{"over the limit", mono(pcm, 8).bytes(), 3, nil, speech.ErrTooLong},
		{"placeholder over the limit", mono(pcm, 0xffffffff).bytes(), 3, nil, speech.ErrTooLong},
		{"empty input", nil, 0, nil, speech.ErrFormat},
		{"not RIFF", func() []byte { w := mono(pcm, 8); w.riff = "RIFX"; return w.bytes() }(), 0, nil, speech.ErrFormat},
		{"garbage", []byte("this is not audio at all, just some text"), 0, nil, speech.ErrFormat},
		{"8-bit", func() []byte { w := mono(pcm, 8); w.bits, w.align = 8, 1; return w.bytes() }(), 0, nil, speech.ErrFormat},
		{"float", func() []byte { w := mono(pcm, 8); w.format, w.bits, w.align = 3, 32, 4; return w.bytes() }(), 0, nil, speech.ErrFormat},
		{"extensible float", extFloat, 0, nil, speech.ErrFormat},
		{"three channels", func() []byte { w := mono(pcm, 8); w.channels, w.align = 3, 6; return w.bytes() }(), 0, nil, speech.ErrFormat},
		{"bad block align", func() []byte { w := mono(pcm, 8); w.align = 4; return w.bytes() }(), 0, nil, speech.ErrFormat},
		{"rate 0", func() []byte { w := mono(pcm, 8); w.rate = 0; return w.bytes() }(), 0, nil, speech.ErrRate},
		{"no fmt", func() []byte { w := mono(pcm, 8); w.noFmt = true; return w.bytes() }(), 0, nil, speech.ErrFormat},
		{"data before fmt", func() []byte { w := mono(pcm, 8); w.dataFirst = true; return w.bytes() }(), 0, nil, speech.ErrFormat},
		{"truncated data", mono(pcm, 100).bytes(), 0, nil, speech.ErrFormat},
		{"odd data size", mono(pcm[:7], 7).bytes(), 0, nil, speech.ErrFormat},
		{"truncated header", mono(pcm, 8).bytes()[:30], 0, nil, speech.ErrFormat},
		{"huge chunk", append(mono(nil, 0).bytes()[:36], []byte("junk\xff\xff\xff\x7f")...), 0, nil, speech.ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rate, err := speech.ReadWAV(bytes.NewReader(tt.in), tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rate != 16000 || !slices.Equal(got, tt.want) {
				t.Errorf("got %v at %d Hz, want %v at 16000", got, rate, tt.want)
			}
		})
	}
}

// TestReadWAVEspeak reads espeak-ng's --stdout output, whose lengths are
// placeholders, straight from the process.
func TestReadWAVEspeak(t *testing.T) {
	out, err := exec.Command("espeak-ng", "-v", "en-us", "-s", "160", "--stdout", "buy two oat lattes").Output()
	if err != nil {
		t.Fatalf("espeak-ng: %v", err)
	}
	s, rate, err := speech.ReadWAV(bytes.NewReader(out), 0)
	if err != nil {
		t.Fatal(err)
	}
	if rate != 22050 || len(s) != (len(out)-44)/2 || len(s) < rate/2 {
		t.Errorf("%d samples at %d Hz from %d bytes", len(s), rate, len(out))
	}
}

func FuzzReadWAV(f *testing.F) {
	var b bytes.Buffer
	_ = speech.WriteWAV(&b, []int16{1, 2, 3, -4}, 16000)
	f.Add(b.Bytes())
	f.Add(mono(speech.AppendPCM(nil, []int16{5, 6}), 0x7ffff000).bytes())
	st := mono(speech.AppendPCM(nil, []int16{1, 2, 3, 4}), 8)
	st.channels, st.align = 2, 4
	st.extra = []byte("LIST\x04\x00\x00\x00abcd")
	f.Add(st.bytes())
	f.Add([]byte("RIFF"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, rate, err := speech.ReadWAV(bytes.NewReader(in), 1000)
		if err != nil {
			if s != nil || rate != 0 {
				t.Fatalf("error %v with %d samples at %d Hz", err, len(s), rate)
			}
			return
		}
		if len(s) > 1000 || rate < 1 || len(s) > len(in)/2 {
			t.Fatalf("%d samples at %d Hz from %d bytes", len(s), rate, len(in))
		}
	})
}

func FuzzDecodePCM(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Add(speech.AppendPCM(nil, []int16{-32768, 32767, 0}))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := speech.DecodePCM(in)
		if len(in)%2 != 0 {
			if err == nil {
				t.Fatal("odd length accepted")
			}
			return
		}
		if err != nil || !bytes.Equal(speech.AppendPCM(nil, s), in) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}
