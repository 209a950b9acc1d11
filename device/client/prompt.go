package client

import (
	"log/slog"
	"slices"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/opus"
)

// maxPromptSamples is MaxPromptAudio at 16 kHz.
const maxPromptSamples = int(MaxPromptAudio/frameDur) * speech.FrameSamples

// assembler collects the frames of prompt speech streams (prompt.audio, then binary
// frames, the last with wire.FlagEnd). It is owned by the client's reading goroutine.
// At most maxAssembling streams are collected at once; a newer announcement evicts the
// oldest.
type assembler struct {
	list []*assembly
}

type assembly struct {
	info  wire.PromptAudio
	codec wire.Codec
	res   *speech.Resampler // PCM not at 16 kHz
	dec   *opus.Decoder     // Opus
	pcm   []int16
}

// begin starts collecting the stream pa announces.
func (a *assembler) begin(pa *wire.PromptAudio, st *counters) {
	codec, _ := wire.ParseCodec(pa.Codec) // validated with the body
	as := &assembly{info: *pa, codec: codec}
	var err error
	switch {
	case codec == wire.CodecOpus:
		as.dec, err = opus.NewDecoder()
	case pa.Rate != speech.Rate:
		as.res, err = speech.NewResampler(pa.Rate, speech.Rate)
	}
	if err != nil {
		st.audioDropped.Add(1)
		return
	}
	a.list = slices.DeleteFunc(a.list, func(x *assembly) bool { return x.info.Stream == pa.Stream })
	if len(a.list) == maxAssembling {
		st.audioDropped.Add(1)
		a.list = a.list[1:]
	}
	a.list = append(a.list, as)
}

// frame adds one binary frame to its stream, and returns the stream's speech when
// the frame was its last.
func (a *assembler) frame(data []byte, st *counters, log *slog.Logger) *PromptSpeech {
	h, payload, err := wire.DecodeAudioFrame(data)
	if err != nil {
		st.audioDropped.Add(1)
		log.Debug("bad audio frame dropped", "err", err)
		return nil
	}
	i := slices.IndexFunc(a.list, func(x *assembly) bool { return x.info.Stream == h.Stream })
	if i < 0 {
		st.audioDropped.Add(1)
		return nil
	}
	as := a.list[i]
	if h.Codec != as.codec || h.Rate != as.info.Rate {
		st.audioDropped.Add(1)
		log.Debug("audio frame of another format dropped", "stream", h.Stream, "codec", h.Codec, "rate", h.Rate)
		return nil
	}
	var samples []int16
	switch {
	case as.dec != nil:
		samples, err = as.dec.Decode(nil, payload)
	default:
		samples, err = speech.DecodePCM(payload)
		if err == nil && as.res != nil {
			samples = as.res.Process(nil, samples)
		}
	}
	if err != nil {
		st.audioDropped.Add(1)
	} else {
		as.add(samples, st)
	}
	if h.Flags&wire.FlagEnd == 0 {
		return nil
	}
	a.list = slices.Delete(a.list, i, i+1)
	if as.res != nil {
		as.add(as.res.Flush(nil), nil)
	}
	return &PromptSpeech{PromptAudio: as.info, PCM: as.pcm}
}

// add appends samples up to maxPromptSamples.
func (as *assembly) add(samples []int16, st *counters) {
	room := maxPromptSamples - len(as.pcm)
	if len(samples) > room {
		samples = samples[:room]
		if st != nil {
			st.audioDropped.Add(1)
		}
	}
	as.pcm = append(as.pcm, samples...)
}
