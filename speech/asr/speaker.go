package asr

import "sync"

// Speaker is what a recogniser learns about one speaker across utterances, kept by the
// caller for as long as the same person speaks (a device's session) and dropped with
// it. The PocketSphinx recogniser learns the frequency warp that fits the voice (vocal
// tract length normalisation): until it has settled, every utterance is heard through
// the neutral warp and also decoded through each other warp, and each warp's fit is
// added up (accepted utterances only); after settleAfter of them the warp with the best
// total is kept and only it is decoded.
// With a nil *Speaker the neutral warp alone is decoded. Safe for concurrent use.
type Speaker struct {
	mu      sync.Mutex
	fits    map[float64]float64
	n       int
	settled float64
}

// NewSpeaker returns a speaker nothing is known about.
func NewSpeaker() *Speaker { return &Speaker{} }

// settleAfter is the number of utterances a speaker's warp is learnt from.
const settleAfter = 5

// Warp returns the settled warp, or 0 while it is still being learnt (and always for a
// nil speaker).
func (s *Speaker) Warp() float64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settled
}

// learn adds the fit of each warp for one utterance (higher is better); ties go to the
// warp earliest in order, the neutral one first.
func (s *Speaker) learn(warps, fits []float64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settled != 0 {
		return
	}
	if s.fits == nil {
		s.fits = map[float64]float64{}
	}
	for i, w := range warps {
		s.fits[w] += fits[i]
	}
	if s.n++; s.n < settleAfter {
		return
	}
	best := warps[0]
	for _, w := range warps[1:] {
		if s.fits[w] > s.fits[best] {
			best = w
		}
	}
	s.settled = best
}
