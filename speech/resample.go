package speech

import (
	"fmt"
	"math"
	"sync"
)

// Resampler limits.
const (
	minRate = 4000
	maxRate = 192000
	// maxPhases bounds the polyphase table: from/to reduced by their gcd must
	// give an upsampling factor of at most this (44100->16000 needs 160).
	maxPhases = 1024
	// maxCoefs bounds the table's size (4 MiB of float32).
	maxCoefs = 1 << 20
)

// Filter design. The pass band ends at passFraction of the lower Nyquist
// frequency (7 kHz when either side is 16 kHz) and the stop band starts at
// that Nyquist frequency, attenuated by stopbandDB (Kaiser window).
const (
	passFraction = 0.875
	stopbandDB   = 75.0
)

// Resampler converts a stream of samples from one rate to another with a
// windowed-sinc polyphase low-pass filter (Kaiser window, ~75 dB stop band,
// pass band to 7/8 of the lower Nyquist frequency). It keeps state between
// calls, so a stream cut into chunks of any size gives exactly the output of
// the whole stream, and it is aligned: output sample n is the input at time
// n*from/to (no filter delay), which is why the last few output samples only
// come out of [Resampler.Flush].
type Resampler struct {
	from, to int
	up, down int // to/gcd, from/gcd: output n is input position n*down/up
	k        int // taps per phase
	coef     []float32

	buf     []float32 // input history; buf[pos] is the first tap of the next output
	pos     int
	phase   int   // (n*down) % up for the next output n
	nIn     int64 // input samples taken
	nOut    int64 // output samples produced
	passAll bool  // from == to
}

// NewResampler returns a resampler from rate from to rate to. Both must be in
// 4000..192000 Hz and their ratio reducible to small integers (8000, 16000,
// 22050, 24000, 32000, 44100, 48000 all combine); otherwise the error wraps
// [ErrRate].
func NewResampler(from, to int) (*Resampler, error) {
	if from < minRate || from > maxRate || to < minRate || to > maxRate {
		return nil, fmt.Errorf("%w: %d Hz -> %d Hz (rates must be %d..%d Hz)", ErrRate, from, to, minRate, maxRate)
	}
	r := &Resampler{from: from, to: to}
	if from == to {
		r.passAll = true
		r.up, r.down = 1, 1
		return r, nil
	}
	g := gcd(from, to)
	r.up, r.down = to/g, from/g
	if r.up > maxPhases {
		return nil, fmt.Errorf("%w: %d Hz -> %d Hz needs %d filter phases (max %d)", ErrRate, from, to, r.up, maxPhases)
	}
	if n := r.up * taps(from, to); n > maxCoefs {
		return nil, fmt.Errorf("%w: %d Hz -> %d Hz needs a filter of %d coefficients (max %d)", ErrRate, from, to, n, maxCoefs)
	}
	t := filterFor(from, to, r.up)
	r.k, r.coef = t.k, t.coef
	r.reset()
	return r, nil
}

// reset empties the history: K/2-1 zeros precede the first input sample so
// that output 0 is centred on input 0.
func (r *Resampler) reset() {
	r.buf = r.buf[:0]
	for range r.k/2 - 1 {
		r.buf = append(r.buf, 0)
	}
	r.pos, r.phase, r.nIn, r.nOut = 0, 0, 0, 0
}

// Process resamples in and appends the output to dst. The output lags the
// input by the filter's half-length (a few milliseconds), which [Resampler.Flush]
// drains at the end of the stream.
func (r *Resampler) Process(dst, in []int16) []int16 {
	if r.passAll {
		return append(dst, in...)
	}
	for _, v := range in {
		r.buf = append(r.buf, float32(v))
	}
	r.nIn += int64(len(in))
	return r.run(dst, -1)
}

// Flush drains the filter tail (the input is taken to be followed by
// silence), appends it to dst, and resets the resampler for a new stream.
// After Flush the stream has produced ceil(inputs*to/from) samples.
func (r *Resampler) Flush(dst []int16) []int16 {
	if r.passAll {
		return dst
	}
	want := (r.nIn*int64(r.up) + int64(r.down) - 1) / int64(r.down)
	for range r.k/2 + 1 {
		r.buf = append(r.buf, 0)
	}
	dst = r.run(dst, want)
	r.reset()
	return dst
}

// run produces every output whose taps are all in the history, at most up to
// a total of limit outputs when limit >= 0.
func (r *Resampler) run(dst []int16, limit int64) []int16 {
	k := r.k
	for r.pos+k <= len(r.buf) && (limit < 0 || r.nOut < limit) {
		dst = append(dst, clip16(float64(dot(r.coef[r.phase*k:r.phase*k+k], r.buf[r.pos:r.pos+k]))))
		r.nOut++
		r.phase += r.down
		r.pos += r.phase / r.up
		r.phase %= r.up
	}
	// Drop consumed history once it is large enough to be worth a copy.
	if r.pos > 4096 && r.pos > len(r.buf)/2 {
		n := copy(r.buf, r.buf[r.pos:])
		r.buf = r.buf[:n]
		r.pos = 0
	}
	return dst
}

// dot returns the dot product of c and x (len(x) >= len(c), len(c) even),
// with four accumulators to shorten the dependency chain.
func dot(c, x []float32) float32 {
	x = x[:len(c)]
	var a0, a1, a2, a3 float32
	i := 0
	for ; i+4 <= len(c); i += 4 {
		a0 += c[i] * x[i]
		a1 += c[i+1] * x[i+1]
		a2 += c[i+2] * x[i+2]
		a3 += c[i+3] * x[i+3]
	}
	for ; i < len(c); i++ {
		a0 += c[i] * x[i]
	}
	return (a0 + a1) + (a2 + a3)
}

// Resample converts a whole buffer from rate from to rate to (see
// [NewResampler] for the rates accepted).
func Resample(in []int16, from, to int) ([]int16, error) {
	r, err := NewResampler(from, to)
	if err != nil {
		return nil, err
	}
	out := make([]int16, 0, int64(len(in))*int64(to)/int64(from)+2)
	out = r.Process(out, in)
	return r.Flush(out), nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// filterTable is a designed polyphase filter: coef[p*k+i] is tap i of phase p.
type filterTable struct {
	k    int
	coef []float32
}

// tables caches designed filters by rate pair; it is bounded because rates
// may come from devices.
var tables struct {
	sync.Mutex
	m map[[2]int]filterTable
}

const maxCachedTables = 16

func filterFor(from, to, up int) filterTable {
	key := [2]int{from, to}
	tables.Lock()
	t, ok := tables.m[key]
	tables.Unlock()
	if ok {
		return t
	}
	t = designFilter(from, to, up)
	tables.Lock()
	if tables.m == nil {
		tables.m = make(map[[2]int]filterTable)
	}
	if len(tables.m) < maxCachedTables {
		tables.m[key] = t
	}
	tables.Unlock()
	return t
}

// designFilter builds the Kaiser-windowed sinc low-pass for from -> to with
// up phases. The kernel h(t), t in input samples, has K taps; output n at
// input position i0+frac (frac = p/up) uses input i0+j-(K/2-1), j in [0,K),
// with weight h(frac + K/2-1 - j).
func designFilter(from, to, up int) filterTable {
	nyq := float64(min(from, to)) / 2
	pass := passFraction * nyq
	cutoff := (pass + nyq) / 2 / float64(from) // cycles per input sample
	k := taps(from, to)
	beta := 0.1102 * (stopbandDB - 8.7)
	i0beta := besselI0(beta)
	half := float64(k) / 2
	coef := make([]float32, up*k)
	for p := range up {
		frac := float64(p) / float64(up)
		row := coef[p*k : p*k+k]
		var sum float64
		vals := make([]float64, k)
		for j := range k {
			t := frac + half - 1 - float64(j)
			x := t / half
			w := 0.0
			if x > -1 && x < 1 {
				w = besselI0(beta*math.Sqrt(1-x*x)) / i0beta
			}
			v := 2 * cutoff * sinc(2*cutoff*t) * w
			vals[j] = v
			sum += v
		}
		// Normalise every phase to unit DC gain so a constant stays constant.
		for j, v := range vals {
			row[j] = float32(v / sum)
		}
	}
	return filterTable{k: k, coef: coef}
}

// taps returns the (even) number of taps per phase for from -> to: Kaiser's
// estimate for the stop band attenuation and the transition width.
func taps(from, to int) int {
	nyq := float64(min(from, to)) / 2
	width := (1 - passFraction) * nyq / float64(from) // cycles per input sample
	k := int(math.Ceil((stopbandDB - 8) / (2.285 * 2 * math.Pi * width)))
	return k + k%2
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the zeroth-order modified Bessel function of the first kind.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < sum*1e-12 {
			break
		}
	}
	return sum
}
