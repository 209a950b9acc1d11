// Command earshot-speech-eval measures a speech recogniser on generated speech: intent
// accuracy on sampled in-grammar commands (clean and in pink noise), false accepts on
// out-of-grammar speech, the confirm grammar, and the real-time factor.
//
//	earshot-speech-eval -n 150 -oog 48 -seed 1 -workers 2 -recognizer pocketsphinx
//	earshot-speech-eval -recognizer openai -openai-url http://127.0.0.1:8000
//
// The grammar is built from the reference agent's demo catalogue.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/earshot/earshot/gateway/agent/refagent"
	"github.com/earshot/earshot/speech/asr"
	"github.com/earshot/earshot/speech/eval"
	"github.com/earshot/earshot/speech/grammar"
	"github.com/earshot/earshot/speech/tts"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "earshot-speech-eval:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		n          = flag.Int("n", 150, "in-grammar commands")
		oog        = flag.Int("oog", len(eval.OutOfGrammar), "out-of-grammar utterances")
		confirm    = flag.Int("confirm", 40, "confirm-mode answers (negative: none)")
		seed       = flag.Int64("seed", 1, "seed of the sampling and the noise")
		workers    = flag.Int("workers", 2, "utterances recognised in parallel")
		recognizer = flag.String("recognizer", "pocketsphinx", "pocketsphinx or openai")
		openaiURL  = flag.String("openai-url", "", "base URL of an OpenAI-compatible transcription service (with -recognizer openai)")
		openaiKey  = flag.String("openai-key-env", "OPENAI_API_KEY", "environment variable holding the API key")
		model      = flag.String("openai-model", "whisper-1", "transcription model")
		voices     = flag.String("voices", strings.Join(eval.DefaultVoices, ","), "espeak-ng voices, comma-separated")
		snrs       = flag.String("snr", "20", "SNRs of the noisy conditions in dB, comma-separated")
		garbage    = flag.Float64("garbage", 0, "sphinx: garbage weight per phone (0: default)")
		minScore   = flag.Float64("min-score", 0, "sphinx: least rejection score of a command (0: default)")
		lmWeight   = flag.Float64("lm-weight", 0, "sphinx: weight of the n-gram disagreement in a command's score (0: default, negative: no n-gram decode)")
		psArgs     = flag.String("sphinx-args", "", "sphinx: extra decoder arguments (\"-beam 1e-30 ...\")")
		alone      = flag.Bool("alone", false, "recognise every utterance on its own, no speaker normalisation (default: each voice is one speaker)")
		warps      = flag.String("warps", "", "sphinx: frequency warps tried, comma-separated (\"1\": none; empty: the default)")
		noReject   = flag.Bool("no-reject", false, "sphinx: accept every hypothesis that parses (to measure the signals)")
		verbose    = flag.Bool("v", false, "print every wrong or falsely accepted utterance")
		dump       = flag.Bool("dump", false, "print every utterance with its signals")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	cat, err := refagent.DefaultCatalog()
	if err != nil {
		return err
	}
	g, err := grammar.Build(cat.GrammarSource())
	if err != nil {
		return err
	}
	synth, err := tts.New(tts.Config{CacheSize: -1})
	if err != nil {
		return err
	}
	var rec asr.Recognizer
	switch *recognizer {
	case "pocketsphinx":
		rej := asr.DefaultRejection
		if *garbage != 0 {
			rej.Garbage = *garbage
		}
		if *minScore != 0 {
			rej.Command.MinScore = *minScore
		}
		if *lmWeight != 0 {
			rej.Command.LMWeight = max(*lmWeight, 0)
		}
		rej.Disabled = *noReject
		var ws []float64
		if *warps != "" {
			if ws, err = floats(*warps); err != nil {
				return fmt.Errorf("-warps: %w", err)
			}
		}
		rec, err = asr.NewSphinx(asr.SphinxConfig{Grammar: g, Pool: *workers, Rejection: rej, Args: strings.Fields(*psArgs), Warps: ws,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	case "openai":
		rec, err = asr.NewOpenAI(asr.OpenAIConfig{BaseURL: *openaiURL, Model: *model, APIKey: os.Getenv(*openaiKey), Grammar: g})
	default:
		err = fmt.Errorf("-recognizer %q: want pocketsphinx or openai", *recognizer)
	}
	if err != nil {
		return err
	}
	defer rec.Close()
	cfg := eval.Config{Recognizer: rec, Grammar: g, Synth: synth, InGrammar: *n, OutOfGrammar: *oog,
		Confirm: *confirm, Seed: *seed, Workers: *workers, Voices: strings.Split(*voices, ","), Alone: *alone}
	if cfg.SNRs, err = floats(*snrs); err != nil {
		return fmt.Errorf("-snr: %w", err)
	}
	if *verbose {
		cfg.Log = os.Stdout
	}
	rep, err := eval.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *dump {
		for _, u := range rep.Utterances {
			fmt.Println(u)
		}
	}
	rep.WriteText(os.Stdout)
	return nil
}

func floats(s string) ([]float64, error) {
	out := []float64{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		x, err := strconv.ParseFloat(f, 64)
		if err != nil || x <= 0 {
			return nil, fmt.Errorf("%q: want positive numbers", s)
		}
		out = append(out, x)
	}
	return out, nil
}
