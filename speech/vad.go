package speech

import "math"

// The voice activity detector works on 10 ms frames. For each frame it
// measures the energy (dB re one LSB², after a DC-blocking high-pass) and the
// zero-crossing rate, and compares the energy with an adaptive noise floor
// (minimum statistics: the quietest smoothed frame of the last second, with a
// bias). Loud frames are well above the floor; soft frames are a little above
// it, or a little above it with a zero-crossing rate unlike the noise's (voiced
// speech in hiss crosses zero less often, fricatives more often).
const (
	vadFrame     = Rate / 100 // 10 ms
	histFrames   = 256        // frame features kept (2.56 s)
	floorWindow  = 100        // minimum statistics over the last second
	floorBiasDB  = 1.0        // the noise mean sits above its smoothed minimum
	floorRiseDB  = 0.1        // per frame while in speech (10 dB/s)
	absMinDB     = 25.0       // below this (-65 dBFS) a frame is never speech
	loudDB       = 9.0        // loud: this far above the floor
	softDB       = 5.0        // soft: this far above the floor
	zcrSoftDB    = 3.0        // soft with an unusual zero-crossing rate
	zcrVoicedDB  = 4.0        // loud when clearly voiced in hiss
	zcrDelta     = 0.15       // "unlike the noise" in crossings per sample
	zcrVoicedMax = 0.25       // voiced speech crosses zero less than this
	noiseZCRRate = 0.05       // EMA weight of the noise's zero-crossing rate
)

// frameClass is a frame's classification against the current floor.
type frameClass uint8

const (
	classQuiet frameClass = iota
	classSoft
	classLoud
)

// frameFeat is what the detector keeps per frame.
type frameFeat struct {
	e   float64 // energy, dB
	es  float64 // energy smoothed over 3 frames, dB
	zcr float64 // zero crossings per sample
}

// vad holds the detector's state. Frame f (counted from 0) lives in
// hist[f%histFrames] while f > n-histFrames.
type vad struct {
	hist     [histFrames]frameFeat
	n        int64 // frames measured
	p1, p2   float64
	floor    float64
	noiseZCR float64
	// DC blocker state.
	xPrev, yPrev float64
}

func (v *vad) reset() { *v = vad{} }

// measure adds one 10 ms frame and updates the floor. inSpeech slows the
// floor's rise.
func (v *vad) measure(fr []int16, inSpeech bool) frameFeat {
	var pow float64
	var zc int
	prevPos := v.yPrev >= 0
	for i, s := range fr {
		x := float64(s)
		y := x - v.xPrev + 0.97*v.yPrev
		v.xPrev, v.yPrev = x, y
		pow += y * y
		pos := y >= 0
		if i > 0 && pos != prevPos && y != 0 {
			zc++
		}
		prevPos = pos
	}
	pow /= float64(len(fr))
	f := frameFeat{e: 10 * math.Log10(pow+1), zcr: float64(zc) / float64(len(fr))}
	if v.n == 0 {
		v.p1, v.p2 = pow, pow
		v.noiseZCR = f.zcr
	}
	f.es = 10 * math.Log10((pow+v.p1+v.p2)/3+1)
	v.p2, v.p1 = v.p1, pow
	v.hist[v.n%histFrames] = f
	v.n++

	// Minimum statistics.
	m := math.Inf(1)
	for i := max(int64(0), v.n-floorWindow); i < v.n; i++ {
		m = min(m, v.hist[i%histFrames].es)
	}
	m += floorBiasDB
	switch {
	case v.n == 1:
		v.floor = m
	case inSpeech:
		v.floor = min(m, v.floor+floorRiseDB)
	default:
		v.floor = m
	}
	if f.e-v.floor < zcrSoftDB {
		v.noiseZCR += noiseZCRRate * (f.zcr - v.noiseZCR)
	}
	return f
}

// class classifies f against the current floor.
func (v *vad) class(f frameFeat) frameClass {
	if f.e < absMinDB {
		return classQuiet
	}
	d := f.e - v.floor
	zdiff := f.zcr - v.noiseZCR
	switch {
	case d >= loudDB:
		return classLoud
	case d >= zcrVoicedDB && zdiff <= -zcrDelta && f.zcr < zcrVoicedMax:
		return classLoud
	case d >= softDB:
		return classSoft
	case d >= zcrSoftDB && math.Abs(zdiff) >= zcrDelta:
		return classSoft
	}
	return classQuiet
}

// frame returns frame f's features; ok is false once it left the history.
func (v *vad) frame(f int64) (frameFeat, bool) {
	if f < 0 || f >= v.n || f <= v.n-histFrames {
		return frameFeat{}, false
	}
	return v.hist[f%histFrames], true
}

// oldest is the first frame still in the history.
func (v *vad) oldest() int64 { return max(0, v.n-histFrames+1) }
