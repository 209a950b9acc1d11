// Package pocketsphinx is a small cgo wrapper over Debian's libpocketsphinx
// (0.8+5prealpha, `pkg-config pocketsphinx sphinxbase`).
//
// A Decoder owns one ps_decoder_t with several named searches: JSGF grammars given in
// Config.Grammars, n-gram models given in Config.LMs, and an all-phone search
// (PhoneSearch) used to score out-of-grammar speech. Decode runs one whole utterance (16 kHz mono) through one search and returns
// the hypothesis with the signals a rejection needs: the path score, per-word acoustic
// scores and lattice posteriors.
//
// Each utterance is decoded in one call with full-utterance processing, so cepstral mean
// normalisation is computed over that utterance alone ("batch"); noise estimation is off.
// Nothing learned from one utterance carries over to the next, which matters because
// pooled decoders serve many devices.
//
// A Decoder is not safe for concurrent use: pool them. The package needs the build tag
// `pocketsphinx`; without it every constructor returns ErrUnavailable.
package pocketsphinx

import (
	"errors"
	"time"
)

// ErrUnavailable is returned when the package was built without the pocketsphinx tag.
var ErrUnavailable = errors.New("pocketsphinx: not built in (build tag pocketsphinx)")

// Errors.
var (
	ErrClosed = errors.New("pocketsphinx: decoder closed")
	ErrSearch = errors.New("pocketsphinx: unknown search")
	ErrInit   = errors.New("pocketsphinx: init failed")
	ErrDecode = errors.New("pocketsphinx: decode failed")
	ErrWarp   = errors.New("pocketsphinx: unknown warp")
)

// Default model paths (Debian pocketsphinx-en-us).
const (
	DefaultModelDir = "/usr/share/pocketsphinx/model/en-us/en-us"
	DefaultDict     = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"
	DefaultPhoneLM  = "/usr/share/pocketsphinx/model/en-us/en-us-phone.lm.bin"
)

// PhoneSearch is the name of the all-phone search every decoder has.
const PhoneSearch = "phones"

// SampleRate is the only input rate: 16 kHz mono.
const SampleRate = 16000

// FrameRate is the decoder's frame rate (100 frames per second).
const FrameRate = 100

// MaxSamples bounds one utterance: 30 s.
const MaxSamples = 30 * SampleRate

// Config configures a Decoder.
type Config struct {
	// ModelDir is the acoustic model directory; default DefaultModelDir.
	ModelDir string
	// Dict is the pronunciation dictionary; default DefaultDict.
	Dict string
	// Words, when set, prunes the dictionary to these words (all their variants) before
	// loading it: a few hundred words load in milliseconds where the whole CMU
	// dictionary takes longer and ~20 MB more. Words missing from Dict are left out (the
	// grammar that uses them then fails to load: check with grammar.Missing first).
	Words []string
	// Extra adds pronunciations (word -> space-separated phones), e.g. filler words of
	// a garbage model. Only used together with Words.
	Extra map[string]string
	// Grammars are named JSGF grammars loaded as searches ("command", "confirm").
	Grammars map[string]string
	// LMs are named n-gram language models in ARPA text form loaded as searches. The
	// library skips their words missing from the (pruned) dictionary. None by default.
	LMs map[string]string
	// PhoneLM is the phone language model of the all-phone search; default
	// DefaultPhoneLM; "-" for a flat phone loop.
	PhoneLM string
	// Args are extra decoder arguments ("-beam", "1e-60"), applied last. The frequency
	// warp is set by Warps, not here.
	Args []string
	// Warps are frequency warps (vocal tract length normalisation) for DecodeWarp, in
	// (0.5, 2): the decoder gets one extra front end per warp, each scaling the mel
	// filter bank's frequencies by 1/warp (inverse linear), so that a voice whose
	// formants sit higher than the model's speakers (warp > 1) is heard as if lower.
	// The acoustic model is shared; a front end costs a few kilobytes.
	Warps []float64
}

// NeutralWarp is the decoder's own front end, no frequency warp.
const NeutralWarp = 1.0

// Word is one word of a hypothesis.
type Word struct {
	Text       string // the word, without its pronunciation variant ("can", not "can(2)")
	Start, End int    // frames, inclusive
	Acoustic   int32  // acoustic score (log base 1.0001, negative)
	Filler     bool   // silence or noise word (<s>, </s>, <sil>, [NOISE], ...)
}

// Hyp is the result of decoding one utterance.
type Hyp struct {
	Text     string // best hypothesis, words separated by spaces; "" when none
	Score    int32  // path score of the best hypothesis (log base 1.0001)
	Acoustic int32  // sum of the words' acoustic scores
	Frames   int    // frames decoded
	Words    []Word // segments of the best path, fillers included
	Elapsed  time.Duration
}
