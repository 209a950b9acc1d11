package asr

import (
	"log/slog"

	"github.com/earshot/earshot/speech/grammar"
)

// SphinxConfig configures the PocketSphinx recogniser.
type SphinxConfig struct {
	// Grammar is the commerce grammar. Required.
	Grammar *grammar.Grammar
	// Pool is the number of decoders kept (each ~15 MB with the pruned dictionary);
	// Recognize waits for a free one, bounded by its context. Default 2.
	Pool int
	// ModelDir and Dict: defaults as in package pocketsphinx.
	ModelDir, Dict string
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Args are extra decoder arguments ("-beam", "1e-40"), for tuning.
	Args []string
	// Rejection thresholds; the zero value means DefaultRejection.
	Rejection Rejection
}

// Rejection holds the thresholds of out-of-grammar rejection. Every signal is computed
// for each utterance; an utterance is accepted only when all pass.
type Rejection struct {
	// Garbage, when positive, adds a garbage alternative to the grammars: the decoder
	// chooses between the best in-grammar sentence and a free loop of phone words
	// paying Garbage per phone (smaller accepts more). Off by default: measured here,
	// it made decoding ~30 times slower (real-time factor ~9 at 1e-5 with the default
	// beams) and rejected most in-grammar commands at that weight; the phone-loop ratio
	// computed from a separate all-phone decode gives the same information cheaply.
	Garbage float64
	// MinPhoneRatio is the least acoustic score per speech frame of the grammar
	// hypothesis relative to a free all-phone decode of the same audio (log base 1.0001,
	// < 0; 0 disables), for commands. More negative accepts more. This is the signal
	// that separates best (see DefaultRejection).
	MinPhoneRatio float64
	// MinConfirmRatio is MinPhoneRatio for answers (confirm mode).
	MinConfirmRatio float64
	// MaxFramesPerPhone and MinFramesPerPhone bound the speaking rate of the hypothesis:
	// speech frames (10 ms) divided by the phones of its words. A short in-grammar
	// sentence stretched over a long utterance is a typical out-of-grammar mapping.
	// 0 disables.
	MaxFramesPerPhone, MinFramesPerPhone float64
	// Agree requires a second decode of the audio shifted by half a frame to hear the
	// same sentence: out-of-grammar speech fits no in-grammar sentence well, so the
	// best one changes with small perturbations.
	Agree bool
	// MinWordRatio is the least phone-loop ratio of each single word (words of at least
	// 5 frames). More negative accepts more; 0 disables.
	MinWordRatio float64
	// Disabled accepts every hypothesis that parses (for measuring the signals).
	Disabled bool
}

// DefaultRejection holds the thresholds measured with the accuracy harness
// (earshot-speech-eval -n 150 -oog 48 -confirm 40 -seed 1 -no-reject, then every
// combination of thresholds applied to the signals; espeak-ng voices en-us, en-gb,
// en-us+f3, en-us+m3, en-gb-x-rp+f2 at 140-190 wpm; clean and pink noise at 20 dB).
// Intent accuracy / false accepts:
//
//	no rejection:          commands 82.0% / 92.0%, out-of-grammar 58% / 60% accepted;
//	                       answers 95% / 95%, chatter 100% / 100% accepted
//	agreement alone:       commands 77.3% / 87.3%, out-of-grammar 25% / 37.5%
//	ratio >= -40:          commands 79.3% / 87.3%, out-of-grammar 6.2% / 10.4%
//	ratio >= -37 (chosen): commands 78.0% / 85.3%, out-of-grammar 0% / 8.3%
//	ratio >= -30:          commands 66.7% / 74.7%, out-of-grammar 0% / 6.2%
//	ratio >= -28:          commands 60.7% / 70.0%, out-of-grammar 0% / 2.1%
//	answers, ratio >= -36 (chosen): 92.5% / 92.5%, chatter 5% / 5% accepted
//
// Adding the agreement pass to a ratio threshold cost 3-5 points of accuracy for little
// gain (chatter at 20 dB 15% -> 5% at -38); the word-level ratio and the speaking rate
// bounds only cost accuracy. They are off by default.
var DefaultRejection = Rejection{
	MinPhoneRatio:   -37,
	MinConfirmRatio: -36,
}

func (r Rejection) withDefaults() Rejection {
	if r == (Rejection{}) {
		return DefaultRejection
	}
	return r
}

// Signals are the measurements the rejection is based on (exported for the accuracy
// harness and logs).
type Signals struct {
	Text         string  // the grammar hypothesis, fillers removed
	Garbage      bool    // the garbage alternative won
	SpeechFrames int     // non-silence frames of the hypothesis
	Phones       int     // phones of the hypothesis's words
	PhoneRatio   float64 // (grammar acoustic - phone-loop acoustic) / speech frames
	WordRatio    float64 // the least PhoneRatio of one word (words of >= 5 frames)
	Agree        bool    // a second decode of the audio shifted by 5 ms heard the same
	Parsed       bool    // Text parses in the grammar of the mode
}
