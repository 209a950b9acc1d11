package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/asr"
	"github.com/earshot/earshot/speech/grammar"
	"github.com/earshot/earshot/speech/tts"
)

// ErrConfig reports a bad Config.
var ErrConfig = errors.New("eval: bad config")

// DefaultVoices are espeak-ng voices of Debian 12's espeak-ng-data.
var DefaultVoices = []string{"en-us", "en-gb", "en-us+f3", "en-us+m3", "en-gb-x-rp+f2"}

// Speed range of the generated speech, words per minute.
const (
	MinSpeed = 140
	MaxSpeed = 190
)

// pad is the silence (or noise) around each utterance.
const pad = 300 * time.Millisecond

// Config configures a Run.
type Config struct {
	Recognizer asr.Recognizer   // required
	Grammar    *grammar.Grammar // required
	Synth      *tts.Synth       // required
	// InGrammar is the number of sampled commands; default 150.
	InGrammar int
	// OutOfGrammar is the number of out-of-grammar sentences (from OutOfGrammar,
	// cycled over voices); default len(OutOfGrammar).
	OutOfGrammar int
	// Confirm is the number of sampled answers; default 40. Negative: none (and no
	// confirm chatter either).
	Confirm int
	// Chatter is the number of chatter sentences in confirm mode (from ConfirmChatter);
	// default all of them.
	Chatter int
	// Seed of the sampling, voices and speeds; the noise too.
	Seed int64
	// Voices; default DefaultVoices.
	Voices []string
	// SNRs of the noisy conditions (pink noise), dB; default [20]. Every set is run
	// clean and at each SNR.
	SNRs []float64
	// Workers recognising in parallel; default 2.
	Workers int
	// Log receives one line per wrong or falsely accepted utterance; nil: none.
	Log io.Writer
	// Alone recognises every utterance on its own, without speaker normalisation. By default each voice is one
	// speaker (asr.Speaker), as the wearer of one device is: what the recogniser learns
	// from a voice's first utterances serves its later ones.
	Alone bool
}

// utt is one utterance to generate and recognise.
type utt struct {
	index  int    // in the plan
	cond   string // condition name
	set    string // SetCommand, SetOOG, SetConfirm, SetChatter
	mode   wire.SpeechMode
	text   string
	want   grammar.Intent
	answer wire.Answer
	pin    string
	voice  string
	speed  int
	snr    float64 // 0: clean
	seed   int64
}

// Sets.
const (
	SetCommand = "command"     // in-grammar commands
	SetOOG     = "oog"         // out-of-grammar speech in command mode
	SetConfirm = "confirm"     // in-grammar answers
	SetChatter = "confirm-oog" // chatter in confirm mode
)

// Run generates the sets, recognises them and tallies the results.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Recognizer == nil || cfg.Grammar == nil || cfg.Synth == nil {
		return Report{}, fmt.Errorf("%w: Recognizer, Grammar and Synth are required", ErrConfig)
	}
	if cfg.InGrammar == 0 {
		cfg.InGrammar = 150
	}
	if cfg.OutOfGrammar == 0 {
		cfg.OutOfGrammar = len(OutOfGrammar)
	}
	if cfg.Confirm == 0 {
		cfg.Confirm = 40
	}
	if cfg.Chatter <= 0 || cfg.Chatter > len(ConfirmChatter) {
		cfg.Chatter = len(ConfirmChatter)
	}
	if len(cfg.Voices) == 0 {
		cfg.Voices = DefaultVoices
	}
	if cfg.SNRs == nil {
		cfg.SNRs = []float64{20}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	utts := plan(cfg)
	speakers := map[string]*asr.Speaker{}
	if !cfg.Alone {
		for _, v := range cfg.Voices {
			speakers[v] = asr.NewSpeaker()
		}
	}
	rep := newReport(cfg.Recognizer.Name())
	results := make(chan Utterance, cfg.Workers)
	jobs := make(chan utt)
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range jobs {
				r, err := run(ctx, cfg, u, speakers[u.voice])
				if err != nil {
					errs <- err
					cancel()
					return
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, u := range utts {
			select {
			case jobs <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	for r := range results {
		rep.add(r)
		if cfg.Log != nil && !r.OK() {
			fmt.Fprintln(cfg.Log, r)
		}
	}
	select {
	case err := <-errs:
		return rep, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.finish()
	return rep, nil
}

// plan lists the utterances, deterministically from the seed.
func plan(cfg Config) []utt {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed))
	conds := []float64{0}
	conds = append(conds, cfg.SNRs...)
	var base []utt
	for range cfg.InGrammar {
		text, in := cfg.Grammar.Sample(r)
		base = append(base, utt{set: SetCommand, mode: wire.ModeCommand, text: text, want: in})
	}
	for i := range cfg.OutOfGrammar {
		base = append(base, utt{set: SetOOG, mode: wire.ModeCommand, text: OutOfGrammar[i%len(OutOfGrammar)]})
	}
	if cfg.Confirm > 0 {
		for range cfg.Confirm {
			text, a, pin := grammar.SampleAnswer(r)
			base = append(base, utt{set: SetConfirm, mode: wire.ModeConfirm, text: text, answer: a, pin: pin})
		}
		for _, t := range ConfirmChatter[:cfg.Chatter] {
			base = append(base, utt{set: SetChatter, mode: wire.ModeConfirm, text: t})
		}
	}
	for i := range base {
		base[i].voice = cfg.Voices[i%len(cfg.Voices)]
		base[i].speed = MinSpeed + r.IntN(MaxSpeed-MinSpeed+1)
		base[i].seed = r.Int64()
	}
	var out []utt
	for _, snr := range conds {
		for _, u := range base {
			u.snr = snr
			u.cond = condName(u.set, snr)
			u.index = len(out)
			out = append(out, u)
		}
	}
	return out
}

func condName(set string, snr float64) string {
	if snr == 0 {
		return set + " clean"
	}
	return fmt.Sprintf("%s %gdB", set, snr)
}

// run synthesises and recognises one utterance.
func run(ctx context.Context, cfg Config, u utt, sp *asr.Speaker) (Utterance, error) {
	pcm, err := cfg.Synth.SayWith(ctx, u.text, u.voice, u.speed, 50)
	if err != nil {
		return Utterance{}, fmt.Errorf("eval: synthesising %q (%s): %w", u.text, u.voice, err)
	}
	pcm = speech.Pad(pcm, pad, pad)
	if u.snr != 0 {
		pcm = speech.MixAtSNR(pcm, speech.PinkNoise(len(pcm), u.seed), u.snr)
	}
	req := asr.Request{Mode: u.mode, Audio: pcm, Lang: "en", Speaker: sp}
	start := time.Now()
	var res asr.Result
	var sig asr.Signals
	if a, ok := cfg.Recognizer.(asr.Analyzer); ok {
		res, sig, err = a.Analyze(ctx, req)
	} else {
		res, err = cfg.Recognizer.Recognize(ctx, req)
	}
	if err != nil {
		return Utterance{}, fmt.Errorf("eval: recognising %q: %w", u.text, err)
	}
	out := Utterance{
		Index: u.index, Condition: u.cond, Set: u.set, Voice: u.voice, Speed: u.speed, Text: u.text,
		Result: res, Signals: sig,
		Audio: time.Duration(len(pcm)) * time.Second / speech.Rate, Took: time.Since(start),
	}
	switch u.set {
	case SetCommand:
		out.Want = u.want.String()
		if res.Accepted {
			got, err := cfg.Grammar.Parse(res.Text)
			out.Correct = err == nil && got.Equal(u.want)
		}
	case SetConfirm:
		out.Want = string(u.answer) + " " + u.pin
		if res.Accepted {
			a, pin, err := grammar.ParseAnswer(res.Text)
			out.Correct = err == nil && a == u.answer && pin == u.pin
		}
	}
	return out, nil
}
