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
	// Warps are the frequency warps tried on a speaker, the neutral 1 first; nil means
	// DefaultWarps, and []float64{1} turns the normalisation off.
	Warps []float64
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
//	score = PhoneRatio - PhoneErrWeight*(PhoneErr-0.75) + WordWeight*(WordRatio+50) - LMWeight*LMErr
//
// and the hypothesis is accepted when score >= MinScore.
type Threshold struct {
	MinScore       float64 // log base 1.0001 per speech frame, < 0; 0 disables the mode's rejection
	PhoneErrWeight float64 // >= 0
	WordWeight     float64 // >= 0
	// LMWeight weighs the disagreement of a second decode with a domain n-gram model
	// sampled from the grammar (command mode only; 0: no such decode, nor its model).
	LMWeight float64 // >= 0
	// Sure, when not 0, is the score at and above which a command is accepted without
	// the n-gram decode: well above every out-of-grammar utterance measured, where the
	// decode only costs time (it is half the recogniser's time).
	Sure float64
}

// score returns the rejection score of sig under t.
func (t Threshold) score(sig Signals) float64 {
	return sig.PhoneRatio - t.PhoneErrWeight*(sig.PhoneErr-0.75) + t.WordWeight*(sig.WordRatio+50) - t.LMWeight*sig.LMErr
}

// DefaultRejection holds the thresholds measured with the accuracy harness.
//
// Commands (2026-11-22, grammar with articles and probabilities at language weight 4):
// earshot-speech-eval -n 150 -oog 100 -confirm 40 -seed N -no-reject -dump for seeds 2
// and 3 (600 commands, 400 out-of-grammar utterances: the first 48 sentences of
// OutOfGrammar and 52 more), then every weight and threshold applied to the dumped
// signals, choosing the most accurate rule that accepted (about) none of the
// out-of-grammar utterances. Intent accuracy clean / 20 dB, seeds 2 and 3 together;
// false accepts:
//
//	no rejection:                             commands 90.3% / 91.3%, out-of-grammar 62% / 64% accepted
//	the former rule (PhoneErr 30, >= -30):    commands 75.7% / 75.0%, out-of-grammar 1.0% / 1.5%
//	PhoneErr 30, LMWeight 150, >= -52:        commands 83.7% / 83.3%, out-of-grammar 0% / 0.5% (chosen)
//	PhoneErr 10, LMWeight 100, >= -46:        commands 84.3% / 84.3%, out-of-grammar 0.5% / 0.5%
//
// (WordWeight 0.1 in the last two.) The n-gram disagreement is what separates: an
// in-grammar command decodes to the same command with the grammar and with the n-gram
// model (80% of them exactly), while out-of-grammar speech, forced into the grammar,
// comes out of the freer n-gram model as other words (none of the 400 agreed; the
// closest were near misses such as "what's the status of my flight", heard as "... of
// my order" and "... of my like").
//
// (Measured with the n-gram decode's two passes; with its flat pass alone, as now,
// seed 2 gave commands 85.3% / 86.0%, out-of-grammar 0% / 0%.)
//
// Re-measured the same way with speakers' warps learnt (DefaultWarps) and the n-gram
// disagreement counting a quarter when the n-gram hypothesis is an order too: seeds 2
// and 3 without rejection 92.8% of commands, 62% of out-of-grammar utterances
// accepted; this rule 88.7% of commands, none of the 400 out-of-grammar utterances
// (the full disagreement: 87.5%); PhoneErr 30, WordWeight 0.3, LMWeight 100, >= -50:
// 89.7%, 2 of 400. Held out, seed 1 (150 commands, 100 out-of-grammar, 40 answers):
// commands 87.3% / 88.7%, out-of-grammar 2% / 1%, answers 87.5% / 85.0%, chatter 0%.
//
// With the wider beams of decoderArgs (and no "oat" alias in the demo catalogue) the
// same rule, re-measured on seeds 2 and 3 (with a French "croissant" variant since
// dropped: it changed one utterance): commands 91.3% / 91.7% (no rejection 95.5%),
// out-of-grammar 1.0% / 1.0% (4 of 400: "can i get a glass of wine" heard as "... a
// flat white", which the n-gram decode hears too). Looser or stricter thresholds trade
// about a point of commands per out-of-grammar utterance: >= -46.5 with PhoneErr 10,
// WordWeight 0.3: 90.0%, 2 of 400; none of 400 at best 87.0%.
//
// Sure: no out-of-grammar utterance of those 400 scored above -28.8 before the n-gram
// decode; 204 of the 600 commands scored -20 or more, and skip it.
//
// Answers (seeds 2 and 3, 160 answers and 40 chatter sentences each, clean and at 20
// dB, wide beams, warps): WordRatio weight 0.5, >= -31: answers 95.0%, chatter 0% (no
// rejection: 97.5%, 100%; the former rule, weight 0.3, >= -27: 87.8%, 0%). Held out,
// seed 4: answers 90.0% (no rejection 93.8%, former rule 87.5%), chatter 2.5% (0%). An
// answer still needs the device's signature to pay, so up to 5% of chatter is allowed
// there.
var DefaultRejection = Rejection{
	Command: Threshold{MinScore: -52, PhoneErrWeight: 30, WordWeight: 0.1, LMWeight: 150, Sure: -20},
	Confirm: Threshold{MinScore: -31, WordWeight: 0.5},
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
	Warp         float64 // the frequency warp decoded through (see DefaultWarps)
	Garbage      bool    // the garbage alternative won
	SpeechFrames int     // non-silence frames of the hypothesis
	Phones       int     // phones of the hypothesis's words
	PhoneRatio   float64 // (grammar acoustic - phone-loop acoustic) / speech frames
	WordRatio    float64 // the least PhoneRatio of one word (words of >= 5 frames)
	Agree        bool    // a second decode of the audio shifted by 5 ms heard the same
	Parsed       bool    // Text parses in the grammar of the mode
	PhoneErr     float64 // edit distance from the hypothesis's phones to the phone loop's, per phone
	Score        float64 // the rejection score (see Threshold)
	LMText       string  // command mode: the hypothesis of the domain n-gram model (when Threshold.LMWeight > 0)
	LMErr        float64 // 0 when LMText means the same command as Text, else their word edit distance per word of Text (fillers and plurals aside)
	LMGain       float64 // (n-gram acoustic - grammar acoustic) / speech frames: how much better the n-gram's words fit the sound
}
