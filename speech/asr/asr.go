package asr

import (
	"context"
	"errors"
	"fmt"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech/grammar"
	"github.com/earshot/earshot/speech/pocketsphinx"
)

// ErrUnavailable: the recogniser was not built in (PocketSphinx without its build tag).
var ErrUnavailable = pocketsphinx.ErrUnavailable

// Errors.
var (
	ErrBadRequest = errors.New("asr: bad request")
	ErrConfig     = errors.New("asr: bad config")
	ErrService    = errors.New("asr: transcription service")
	ErrClosed     = errors.New("asr: recogniser closed")
)

// Reject reasons.
const (
	RejectOutOfGrammar  = "out_of_grammar"
	RejectNoSpeech      = "no_speech"
	RejectLowConfidence = "low_confidence"
)

// MaxAudio bounds one utterance: 30 s at 16 kHz.
const MaxAudio = 30 * 16000

// Request is one utterance to recognise.
type Request struct {
	Mode  wire.SpeechMode // wire.ModeCommand or wire.ModeConfirm
	Audio []int16         // 16 kHz mono, the endpointed utterance
	Text  string          // for the Text recogniser: what the device's own ASR heard
	Lang  string          // BCP 47; "" means "en"
	// Speaker, when set, carries what was learnt from the same speaker's earlier
	// utterances (see Speaker); nil for an utterance on its own.
	Speaker *Speaker
}

// Result is what was recognised.
type Result struct {
	Text       string  // transcript ("" when nothing)
	Accepted   bool    // in grammar and confident enough
	Reject     string  // why not accepted: RejectOutOfGrammar, RejectNoSpeech, RejectLowConfidence
	Confidence float64 // 0..1, recogniser-specific
}

// Recognizer turns an utterance into text and says whether it is in the grammar.
type Recognizer interface {
	Name() string // "pocketsphinx", "openai:whisper-1", "text"
	Recognize(ctx context.Context, req Request) (Result, error)
	Close() error
}

func checkMode(m wire.SpeechMode) error {
	if m != wire.ModeCommand && m != wire.ModeConfirm {
		return fmt.Errorf("%w: mode %q, want %q or %q", ErrBadRequest, m, wire.ModeCommand, wire.ModeConfirm)
	}
	return nil
}

// judge accepts a transcript iff it parses in the grammar of the mode.
func judge(g *grammar.Grammar, mode wire.SpeechMode, text string) Result {
	r := Result{Text: text}
	if text == "" {
		r.Reject = RejectNoSpeech
		return r
	}
	var err error
	if mode == wire.ModeConfirm {
		_, _, err = grammar.ParseAnswer(text)
	} else {
		_, err = g.Parse(text)
	}
	if err != nil {
		r.Reject = RejectOutOfGrammar
		return r
	}
	r.Accepted, r.Confidence = true, 1
	return r
}

// Analyzer is implemented by recognisers that can report the signals behind their
// decision (Sphinx); the accuracy harness uses it to measure the rejection.
type Analyzer interface {
	Analyze(ctx context.Context, req Request) (Result, Signals, error)
}
