package gateway

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/earshot/earshot/gateway/agent/refagent"
	"github.com/earshot/earshot/gateway/session"
	"github.com/earshot/earshot/gateway/voice"
	"github.com/earshot/earshot/speech/asr"
	"github.com/earshot/earshot/speech/grammar"
	"github.com/earshot/earshot/speech/tts"
)

// SpeechConfig configures speech: the recogniser of device audio and the voice that
// speaks prompts.
type SpeechConfig struct {
	// Recognizer picks the recogniser: "" or "auto" (the embedded PocketSphinx when
	// the binary was built with it, else none), "pocketsphinx", "openai" (an
	// OpenAI-compatible transcription server at OpenAIURL), or "none" (text
	// utterances only).
	Recognizer string
	// OpenAIURL is the transcription server's base URL (POST
	// {OpenAIURL}/v1/audio/transcriptions); OpenAIModel its model (default
	// "whisper-1"); OpenAIKeyFile a file holding its API key, if it needs one.
	OpenAIURL, OpenAIModel, OpenAIKeyFile string
	// Decoders is the number of PocketSphinx decoders, and of concurrent
	// recognitions; default 2.
	Decoders int
	// Voice is the espeak-ng voice that speaks prompts; default "en-us". NoTTS turns
	// prompt speech off (prompts stay text).
	Voice string
	NoTTS bool
}

// buildVoice makes the speech layer: the grammar from the agent's catalogue, the
// recogniser and the prompt voice. What is missing is said at start-up, never fatal
// unless it was asked for explicitly.
func (s *Server) buildVoice(core *session.Core, cat *refagent.Catalog) (*voice.Service, error) {
	sc := s.cfg.Speech
	if cat == nil {
		var err error
		if cat, err = refagent.DefaultCatalog(); err != nil {
			return nil, err
		}
	}
	// The recogniser gives the words its dictionary lacks (plurals such as "lattes")
	// pronunciations of their own; the accuracy harness measures this same grammar.
	g, err := grammar.Build(cat.GrammarSource())
	if err != nil {
		return nil, fmt.Errorf("gateway: speech grammar: %w", err)
	}
	vc := voice.Config{Core: core, Grammar: g, Workers: sc.Decoders, Logger: s.cfg.Logger}
	switch strings.ToLower(sc.Recognizer) {
	case "", "auto":
		rec, err := asr.NewSphinx(asr.SphinxConfig{Grammar: g, Pool: sc.Decoders, Logger: s.cfg.Logger})
		switch {
		case err == nil:
			vc.Recognizer = rec
		case errors.Is(err, asr.ErrUnavailable):
			s.speechNote = "none: built without PocketSphinx (make build adds it); devices must send text"
		default:
			s.speechNote = "none: PocketSphinx failed to start (" + err.Error() + "); devices must send text"
		}
	case "pocketsphinx":
		if vc.Recognizer, err = asr.NewSphinx(asr.SphinxConfig{Grammar: g, Pool: sc.Decoders, Logger: s.cfg.Logger}); err != nil {
			return nil, fmt.Errorf("gateway: speech: %w", err)
		}
	case "openai":
		key := ""
		if sc.OpenAIKeyFile != "" {
			b, err := os.ReadFile(sc.OpenAIKeyFile)
			if err != nil {
				return nil, fmt.Errorf("gateway: speech: transcription API key: %w", err)
			}
			key = strings.TrimSpace(string(b))
		}
		model := sc.OpenAIModel
		if model == "" {
			model = "whisper-1"
		}
		if vc.Recognizer, err = asr.NewOpenAI(asr.OpenAIConfig{BaseURL: sc.OpenAIURL, Model: model, APIKey: key, Grammar: g}); err != nil {
			return nil, fmt.Errorf("gateway: speech: %w", err)
		}
	case "none":
		s.speechNote = "none: turned off; devices must send text"
	default:
		return nil, fmt.Errorf("gateway: speech: unknown recogniser %q (auto, pocketsphinx, openai, none)", sc.Recognizer)
	}
	if !sc.NoTTS {
		voiceName := sc.Voice
		if voiceName == "" {
			voiceName = "en-us"
		}
		synth, err := tts.New(tts.Config{Voice: voiceName})
		if err != nil {
			s.log.Warn("prompts will not be spoken", "err", err)
		} else {
			vc.Speaker = synth
		}
	}
	if vc.Recognizer != nil {
		s.recognizer = vc.Recognizer
	}
	return voice.New(vc)
}
