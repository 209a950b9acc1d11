package speech

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// noiseRMS is the RMS level of generated noise: -20 dBFS.
const noiseRMS = 3277.0

// WhiteNoise returns n samples of Gaussian white noise at -20 dBFS RMS,
// the same for the same seed.
func WhiteNoise(n int, seed int64) []int16 {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	out := make([]int16, max(n, 0))
	for i := range out {
		out[i] = clip16(rng.NormFloat64() * noiseRMS)
	}
	return out
}

// PinkNoise returns n samples of pink (1/f) noise at -20 dBFS RMS, the same
// for the same seed (Paul Kellet's refined filter over Gaussian white noise).
func PinkNoise(n int, seed int64) []int16 {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9141))
	f := make([]float64, max(n, 0))
	var b0, b1, b2, b3, b4, b5, b6 float64
	var sum float64
	for i := range f {
		w := rng.NormFloat64()
		b0 = 0.99886*b0 + w*0.0555179
		b1 = 0.99332*b1 + w*0.0750759
		b2 = 0.96900*b2 + w*0.1538520
		b3 = 0.86650*b3 + w*0.3104856
		b4 = 0.55000*b4 + w*0.5329522
		b5 = -0.7616*b5 - w*0.0168980
		f[i] = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w*0.5362
		b6 = w * 0.115926
		sum += f[i] * f[i]
	}
	out := make([]int16, len(f))
	if len(f) == 0 {
		return out
	}
	g := noiseRMS / math.Sqrt(sum/float64(len(f)))
	for i, v := range f {
		out[i] = clip16(v * g)
	}
	return out
}

// activePower returns the mean power of speech's active part: the 20 ms
// frames within 30 dB of the loudest frame (a simple stand-in for ITU-T
// P.56 active speech level). It is 0 for silence.
func activePower(speech []int16) float64 {
	var powers []float64
	var peak float64
	for i := 0; i < len(speech); i += FrameSamples {
		fr := speech[i:min(i+FrameSamples, len(speech))]
		var s float64
		for _, v := range fr {
			s += float64(v) * float64(v)
		}
		p := s / float64(len(fr))
		powers = append(powers, p)
		peak = max(peak, p)
	}
	if peak == 0 {
		return 0
	}
	var sum float64
	var n int
	for _, p := range powers {
		if p >= peak/1000 {
			sum += p
			n++
		}
	}
	return sum / float64(n)
}

// MixAtSNR returns speech plus noise scaled so that the speech's active
// level (see activePower) is snrDB above the noise's mean power. The noise
// is looped if shorter than speech; the result has speech's length. If the
// mixture would clip, the whole of it is scaled down (the SNR is kept). With
// silent speech or silent noise it returns a copy of speech.
func MixAtSNR(speech, noise []int16, snrDB float64) []int16 {
	out := make([]int16, len(speech))
	ps := activePower(speech)
	var pn float64
	for _, v := range noise {
		pn += float64(v) * float64(v)
	}
	if len(noise) > 0 {
		pn /= float64(len(noise))
	}
	if ps == 0 || pn == 0 {
		copy(out, speech)
		return out
	}
	g := math.Sqrt(ps / (pn * math.Pow(10, snrDB/10)))
	mix := make([]float64, len(speech))
	var peak float64
	for i, v := range speech {
		mix[i] = float64(v) + g*float64(noise[i%len(noise)])
		peak = max(peak, math.Abs(mix[i]))
	}
	scale := 1.0
	if peak > 32767 {
		scale = 32767 / peak
	}
	for i, v := range mix {
		out[i] = clip16(v * scale)
	}
	return out
}

// Pad returns s with before and after of digital silence added at [Rate]
// (negative durations count as zero).
func Pad(s []int16, before, after time.Duration) []int16 {
	nb, na := samplesFor(before), samplesFor(after)
	out := make([]int16, nb+len(s)+na)
	copy(out[nb:], s)
	return out
}

// RaiseFloor returns pcm with its noise floor raised to snrDB below its active speech
// level (see MixAtSNR), by adding pink noise, or pcm itself when the floor is already
// there or there is no speech. The floor is the 10th percentile of the 20 ms frames'
// power, so digital silence between words counts as a floor of zero. The added noise is
// the same for the same input length.
func RaiseFloor(pcm []int16, snrDB float64) []int16 {
	n := len(pcm) / FrameSamples
	if n < 5 {
		return pcm
	}
	powers := make([]float64, n)
	for i := range powers {
		var s float64
		for _, v := range pcm[i*FrameSamples : (i+1)*FrameSamples] {
			s += float64(v) * float64(v)
		}
		powers[i] = s / FrameSamples
	}
	active := activePower(pcm)
	slices.Sort(powers)
	floor, target := powers[n/10], active/math.Pow(10, snrDB/10)
	if active == 0 || floor >= target {
		return pcm
	}
	noise := PinkNoise(len(pcm), 1)
	g := math.Sqrt(target-floor) / noiseRMS
	out := make([]int16, len(pcm))
	for i, v := range pcm {
		out[i] = clip16(float64(v) + g*float64(noise[i]))
	}
	return out
}
