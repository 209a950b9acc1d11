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

// Rejection holds the thresholds of out-of-grammar rejection: the grammar decoder maps
// any speech onto some in-grammar sentence, so every hypothesis is compared with a free
// all-phone decode of the same audio, and accepted only when its score reaches the
// threshold of its mode.
type Rejection struct {
	// Command and Confirm are the thresholds of the two modes.
	Command, Confirm Threshold
	// Garbage, when positive, adds a garbage alternative to the grammars: the decoder
	// chooses between the best in-grammar sentence and a free loop of phone words
	// paying Garbage per phone (smaller accepts more). Off by default: measured here,
	// it made decoding ~30 times slower (real-time factor ~9 at 1e-5 with the default
	// beams) and rejected most in-grammar commands at that weight; the phone-loop
	// signals give the same information cheaply.
	Garbage float64
	// Agree requires a second decode of the audio shifted by half a frame to hear the
	// same sentence: out-of-grammar speech fits no in-grammar sentence well, so the
	// best one changes with small perturbations. Off by default (it cost 3-5 points of
	// accuracy for little gain).
	Agree bool
	// Disabled accepts every hypothesis that parses (for measuring the signals).
	Disabled bool
}

// Threshold is the rejection rule of one mode. The score of a hypothesis combines the
// signals (see Signals), centred so that it reads like PhoneRatio:
//
//	score = PhoneRatio - PhoneErrWeight*(PhoneErr-0.75) + WordWeight*(WordRatio+50)
//
// and the hypothesis is accepted when score >= MinScore.
type Threshold struct {
	MinScore       float64 // log base 1.0001 per speech frame, < 0; 0 disables the mode's rejection
	PhoneErrWeight float64 // >= 0
	WordWeight     float64 // >= 0
}

// score returns the rejection score of sig under t.
func (t Threshold) score(sig Signals) float64 {
	return sig.PhoneRatio - t.PhoneErrWeight*(sig.PhoneErr-0.75) + t.WordWeight*(sig.WordRatio+50)
}

// DefaultRejection holds the thresholds measured with the accuracy harness: for seeds
// 1, 2 and 3, earshot-speech-eval -n 150 -oog 48 -seed N -no-reject -dump (and
// -confirm 40 for seeds 1 to 4), then every threshold and weight applied to the dumped
// signals, choosing the most accurate rule that accepts at most 2% of out-of-grammar
// commands (5% of chatter while a prompt is pending: an answer still needs the device's
// signature to pay). espeak-ng voices en-us, en-gb, en-us+f3, en-us+m3, en-gb-x-rp+f2 at
// 140-190 wpm, clean and pink noise at 20 dB; 900 commands, 288 out-of-grammar
// utterances, 320 answers, 160 chatter. Intent accuracy clean / 20 dB, false accepts:
//
//	no rejection:                commands 91.3% / 90.7%, out-of-grammar 67% / 69% accepted
//	PhoneRatio alone >= -37:     commands 86.7% / 85.1%, out-of-grammar 7.6% / 8.3%
//	PhoneRatio alone >= -26:     commands 65.8% / 63.1%, out-of-grammar 1.4% / 0%
//	PhoneErr weight 30, >= -30:  commands 74.2% / 73.6%, out-of-grammar 1.4% / 0% (chosen)
//	answers, no rejection:       96.2%, chatter 100% accepted
//	answers, PhoneRatio >= -36:  91.9%, chatter 22.5%
//	answers, WordRatio weight 0.3, >= -27: 89.4%, chatter 3.8% (chosen)
//
// The phone error separates commands from out-of-grammar speech that happens to score
// well per frame: the phones of a wrong sentence differ from what the phone loop heard.
// What the rejection still costs is mostly short commands ("espresso", "order status"),
// whose phone-loop decode is least reliable.
var DefaultRejection = Rejection{
	Command: Threshold{MinScore: -30, PhoneErrWeight: 30},
	Confirm: Threshold{MinScore: -27, WordWeight: 0.3},
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
	PhoneErr     float64 // edit distance from the hypothesis's phones to the phone loop's, per phone
	Score        float64 // the rejection score (see Threshold)
}
