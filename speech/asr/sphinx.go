//go:build pocketsphinx

package asr

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/grammar"
	"github.com/earshot/earshot/speech/pocketsphinx"
)

// grammarLW is the language weight of the grammars' probabilities (see scaleWeights),
// measured with the accuracy harness (150 commands, seed 2, clean, no rejection):
// intent accuracy 93.3% at 1 and 2, 94.0% at 4. Answers (seeds 1 and 7, 80 each,
// default rejection): 91.2% / 86.2% at 1, 90.0% / 87.5% at 4, chatter alike.
const grammarLW = 4

// minAudio is the shortest utterance decoded: 150 ms.
const minAudio = 16000 * 150 / 1000

// maxDictBytes bounds the pronunciation dictionary read at start.
const maxDictBytes = 64 << 20

// decoderArgs are the decoder settings measured with the accuracy harness (40 commands,
// clean / 20 dB): a context-independent phone loop (4x faster than the triphone one,
// ~0.04 real time) and a lower word insertion penalty than the default 0.65, which
// stopped most inserted "a"/"uh": 0.65 gave 80% / 85% intent accuracy, 0.2 82.5% /
// 92.5%, 0.05 85% / 92.5%. Narrower beams (-beam 1e-30 -wbeam 1e-20) were 3x faster
// but lost 10-15 points.
//
// The n-gram decode (a vocabulary of ~150 words) runs its flat-lexicon pass alone
// (-fwdtree no): seed 1 gave commands 84.7% / 88.0% with it, 84.0% / 86.0% with both
// passes, and the decode took ~20% less time. Without the flat pass (-fwdflat no) the
// decode took ~30% less time but its hypotheses agreed less often with right grammar
// ones: commands 77.3% / 80.0%. The flags only concern n-gram searches.
//
// Wider beams than the defaults (1e-48, 1e-48, 7e-29), re-measured with learnt warps
// (seeds 2 and 3, 300 commands each clean and at 20 dB, no rejection): 93.7% at the
// defaults, 95.3% at -beam 1e-60 -pbeam 1e-60 -wbeam 1e-45 for 14% more time; 1e-80 /
// 1e-60 gained nothing on seed 2 and took 2.4 times as long.
var decoderArgs = []string{"-allphone_ci", "yes", "-wip", "0.05", "-fwdtree", "no",
	"-beam", "1e-60", "-pbeam", "1e-60", "-wbeam", "1e-45"}

// DefaultWarps are the frequency warps of vocal tract length normalisation tried on a
// speaker (see Speaker and decode): the warp whose grammar paths fit best relative to
// the free phones over the speaker's first accepted utterances is kept.
// The model's speakers are adults of both sexes; voices whose formants sit higher
// (warp > 1) are heard better compressed. Measured with the accuracy harness (seed 3,
// 150 commands, no rejection), clean / 20 dB: en-us+f3 at one fixed warp 1.0 70% / 70%,
// 1.1 77% / 80%, 1.2 82% / 80%, 1.3 85% / 85%; but 1.3 costs the male voices 5-20
// points, so no fixed warp suits everyone. Warps below 1 only lost.
var DefaultWarps = []float64{pocketsphinx.NeutralWarp, 1.15, 1.3}

type sphinx struct {
	warps []float64
	g     *grammar.Grammar
	rej   Rejection
	log   *slog.Logger
	prons map[string]string // word -> phones, for the phone error
	pool  chan *pocketsphinx.Decoder

	mu     sync.Mutex
	all    []*pocketsphinx.Decoder
	closed bool
	done   chan struct{}
}

var (
	_ Recognizer = (*sphinx)(nil)
	_ Analyzer   = (*sphinx)(nil)
)

// NewSphinx returns the PocketSphinx recogniser of the commerce grammar with Pool
// decoders. It logs the grammar's words missing from the dictionary, derives the
// pronunciation of missing plurals, and fails if another word is missing.
func NewSphinx(cfg SphinxConfig) (Recognizer, error) {
	if cfg.Grammar == nil {
		return nil, fmt.Errorf("%w: sphinx: no grammar", ErrConfig)
	}
	if cfg.Pool <= 0 {
		cfg.Pool = 2
	}
	if cfg.Dict == "" {
		cfg.Dict = pocketsphinx.DefaultDict
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Warps == nil {
		cfg.Warps = DefaultWarps
	}
	if len(cfg.Warps) == 0 || cfg.Warps[0] != pocketsphinx.NeutralWarp {
		return nil, fmt.Errorf("%w: sphinx: warps %v must start with the neutral warp 1", ErrConfig, cfg.Warps)
	}
	s := &sphinx{warps: cfg.Warps, g: cfg.Grammar, rej: cfg.Rejection.withDefaults(),
		log: cfg.Logger.With("component", "asr.sphinx"), done: make(chan struct{})}
	pcfg, err := s.decoderConfig(cfg)
	if err != nil {
		return nil, err
	}
	s.pool = make(chan *pocketsphinx.Decoder, cfg.Pool)
	for range cfg.Pool {
		d, err := pocketsphinx.NewDecoder(pcfg)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("asr: sphinx: %w", err)
		}
		s.all = append(s.all, d)
		s.pool <- d
	}
	return s, nil
}

// decoderConfig prepares the pruned dictionary and the grammars with their garbage
// alternative.
func (s *sphinx) decoderConfig(cfg SphinxConfig) (pocketsphinx.Config, error) {
	words := append(s.g.Words(), grammar.ConfirmWords()...)
	want := make(map[string]bool, 3*len(words))
	for _, w := range words {
		want[w] = true
		want[strings.TrimSuffix(w, "s")] = true
		want[strings.TrimSuffix(w, "es")] = true
	}
	prons, err := pronunciations(cfg.Dict, want, maxDictBytes)
	if err != nil {
		return pocketsphinx.Config{}, err
	}
	has := func(w string) bool { _, ok := prons[w]; return ok }
	missing := s.g.Missing(has)
	for _, w := range grammar.ConfirmWords() {
		if !has(w) {
			missing = append(missing, w)
		}
	}
	extra, failed := derive(missing, prons)
	if len(missing) > 0 {
		s.log.Info("grammar words missing from the dictionary", "missing", missing, "derived", len(extra))
	}
	if len(failed) > 0 {
		return pocketsphinx.Config{}, fmt.Errorf("%w: sphinx: words missing from %s with no derivable pronunciation: %q",
			ErrConfig, cfg.Dict, failed)
	}
	s.prons = make(map[string]string, len(words))
	for _, w := range words {
		if p, ok := prons[w]; ok {
			s.prons[w] = p
		} else if p, ok := extra[w]; ok {
			s.prons[w] = p
		}
	}
	if short := shortNames(s.g.Names(), s.prons); len(short) > 0 {
		s.log.Warn("item names of one syllable are easily heard in other speech; prefer longer aliases", "names", short)
	}
	for w, p := range garbageWords() {
		extra[w] = p
	}
	command, confirm := scaleWeights(s.g.CommandJSGF(), grammarLW), scaleWeights(grammar.ConfirmJSGF(), grammarLW)
	if s.rej.Garbage > 0 {
		if command, err = withGarbage(command, s.rej.Garbage); err != nil {
			return pocketsphinx.Config{}, err
		}
		if confirm, err = withGarbage(confirm, s.rej.Garbage); err != nil {
			return pocketsphinx.Config{}, err
		}
	}
	var lms map[string]string
	if s.rej.Command.LMWeight > 0 {
		lms = map[string]string{lmSearch: commandLM(s.g)}
	}
	return pocketsphinx.Config{
		LMs:      lms,
		ModelDir: cfg.ModelDir,
		Dict:     cfg.Dict,
		Words:    words,
		Extra:    extra,
		Grammars: map[string]string{string(wire.ModeCommand): command, string(wire.ModeConfirm): confirm},
		PhoneLM:  "-",
		Args:     append(append([]string{}, decoderArgs...), cfg.Args...),
		Warps:    cfg.Warps,
	}, nil
}

func (s *sphinx) Name() string { return "pocketsphinx" }

func (s *sphinx) Recognize(ctx context.Context, req Request) (Result, error) {
	r, _, err := s.Analyze(ctx, req)
	return r, err
}

// Analyze recognises req and returns the rejection's signals too.
func (s *sphinx) Analyze(ctx context.Context, req Request) (Result, Signals, error) {
	if err := checkMode(req.Mode); err != nil {
		return Result{}, Signals{}, err
	}
	if len(req.Audio) > MaxAudio {
		return Result{}, Signals{}, fmt.Errorf("%w: %d samples, max %d", ErrBadRequest, len(req.Audio), MaxAudio)
	}
	if len(req.Audio) < minAudio {
		return Result{Reject: RejectNoSpeech}, Signals{}, nil
	}
	d, err := s.acquire(ctx)
	if err != nil {
		return Result{}, Signals{}, err
	}
	defer func() { s.pool <- d }()
	audio := speech.RaiseFloor(req.Audio, floorSNR)
	var sig Signals
	h, p, fits, err := s.decode(d, req, audio, &sig)
	if err != nil {
		return Result{}, Signals{}, err
	}
	words := s.words(h, &sig)
	if sig.Garbage {
		return Result{Text: "", Reject: RejectOutOfGrammar}, sig, nil
	}
	sig.Text = strings.Join(words, " ")
	if sig.Text == "" {
		// No in-grammar sentence fits at all: speech that is out of the grammar, or no
		// speech. The phone loop tells which.
		if speechFrames(p) >= minSpeechFrames {
			return Result{Reject: RejectOutOfGrammar}, sig, nil
		}
		return Result{Reject: RejectNoSpeech}, sig, nil
	}
	res := judge(s.g, req.Mode, sig.Text)
	sig.Parsed = res.Accepted
	if !res.Accepted {
		return res, sig, nil
	}
	sig.PhoneRatio = float64(h.Acoustic-p.Acoustic) / float64(max(sig.SpeechFrames, 1))
	sig.WordRatio = wordRatio(h, p)
	sig.PhoneErr = s.phoneErr(words, p)
	t := s.rej.threshold(req.Mode)
	sig.Score = t.score(sig)
	// The n-gram decode only lowers the score: it is spent on hypotheses the other
	// signals would accept but are not sure of (all of them when measuring).
	sure := t.Sure != 0 && sig.Score >= t.Sure
	if req.Mode == wire.ModeCommand && t.LMWeight > 0 && (sig.Score >= t.MinScore && !sure || s.rej.Disabled) {
		l, err := d.DecodeWarp(lmSearch, sig.Warp, audio)
		if err != nil {
			return Result{}, Signals{}, fmt.Errorf("asr: sphinx: %w", err)
		}
		var sigl Signals
		sig.LMText = strings.Join(s.words(l, &sigl), " ")
		sig.LMErr = lmDisagreement(s.g, sig.Text, sig.LMText)
		sig.LMGain = float64(l.Acoustic-h.Acoustic) / float64(max(sig.SpeechFrames, 1))
		sig.Score = t.score(sig)
	}
	res.Confidence = 1 / (1 + math.Exp(-(sig.Score-t.MinScore)/4))
	if t.MinScore < 0 && sig.Score < t.MinScore && !s.rej.Disabled {
		res.Accepted, res.Reject = false, RejectLowConfidence
		return res, sig, nil
	}
	if s.rej.Agree {
		// The second pass costs a grammar decode: only for hypotheses still accepted.
		const shift = 80 // 5 ms: half a frame
		h2, err := d.DecodeWarp(string(req.Mode), sig.Warp, audio[shift:])
		if err != nil {
			return Result{}, Signals{}, fmt.Errorf("asr: sphinx: %w", err)
		}
		var sig2 Signals
		sig.Agree = strings.Join(s.words(h2, &sig2), " ") == sig.Text
		if s.rej.Agree && !sig.Agree && !s.rej.Disabled {
			res.Accepted, res.Reject = false, RejectOutOfGrammar
		}
	}
	if res.Accepted && fits != nil {
		// Only what was understood teaches the voice: a path forced through
		// speech that is not in the grammar says nothing about the warp.
		req.Speaker.learn(s.warps, fits)
	}
	return res, sig, nil
}

// decode runs the grammar of the mode and the phone loop through the speaker's warp.
// While that is not settled, the utterance is heard through the neutral warp, as the
// model's speakers, and also decoded through each other warp to measure how well its
// grammar path fits relative to the free phones there (per frame: the warps' own
// likelihoods are not comparable, since a warp also changes how much spectrum each
// frame holds). It returns the fits for the speaker to learn from, nil when there is
// nothing to learn (a settled speaker, or a warp under which no sentence fitted).
//
// Choosing each learning utterance's warp by its own fit was as accurate on average
// (the harness, seed 3, no rejection: 92.0% / 92.0% both ways) but less predictable:
// "buy a croissant" fitted "buy a bottle" best at 1.3 by 2 points per frame.
func (s *sphinx) decode(d *pocketsphinx.Decoder, req Request, audio []int16, sig *Signals) (h, p pocketsphinx.Hyp, fits []float64, err error) {
	warps := s.warps
	if w := req.Speaker.Warp(); w != 0 {
		warps = []float64{w}
	} else if req.Speaker == nil {
		warps = warps[:1] // nobody to learn for
	}
	h, err = d.DecodeWarp(string(req.Mode), warps[0], audio)
	if err == nil {
		p, err = d.DecodeWarp(pocketsphinx.PhoneSearch, warps[0], audio)
	}
	if err != nil {
		return h, p, nil, fmt.Errorf("asr: sphinx: %w", err)
	}
	sig.Warp = warps[0]
	if len(warps) == 1 || h.Text == "" {
		return h, p, nil, nil
	}
	fits = make([]float64, len(warps))
	fits[0] = fit(h, p)
	for i, w := range warps[1:] {
		hw, err := d.DecodeWarp(string(req.Mode), w, audio)
		if err != nil {
			return h, p, nil, fmt.Errorf("asr: sphinx: %w", err)
		}
		if hw.Text == "" {
			return h, p, nil, nil
		}
		pw, err := d.DecodeWarp(pocketsphinx.PhoneSearch, w, audio)
		if err != nil {
			return h, p, nil, fmt.Errorf("asr: sphinx: %w", err)
		}
		fits[i+1] = fit(hw, pw)
	}
	return h, p, fits, nil
}

// fit is how much worse per frame the grammar path h scores than the free phones p.
func fit(h, p pocketsphinx.Hyp) float64 {
	return float64(h.Acoustic-p.Acoustic) / float64(max(h.Frames, 1))
}

// threshold returns the rejection threshold of the mode.
func (r Rejection) threshold(mode wire.SpeechMode) Threshold {
	if mode == wire.ModeConfirm {
		return r.Confirm
	}
	return r.Command
}

// minSpeechFrames is the least speech in an utterance: 200 ms of phones.
const minSpeechFrames = 20

// speechFrames counts the frames of a phone-loop hypothesis that are not silence.
func speechFrames(p pocketsphinx.Hyp) int {
	n := 0
	for _, w := range p.Words {
		if !w.Filler && w.Text != "SIL" {
			n += w.End - w.Start + 1
		}
	}
	return n
}

// words returns the words of a hypothesis without fillers and variants, and fills the
// frame and phone counts of sig.
func (s *sphinx) words(h pocketsphinx.Hyp, sig *Signals) []string {
	var words []string
	for _, w := range h.Words {
		if w.Filler {
			continue
		}
		base := w.Text
		if i := strings.IndexByte(base, '('); i > 0 {
			base = base[:i]
		}
		if strings.HasPrefix(base, garbagePrefix) {
			sig.Garbage = true
		}
		words = append(words, base)
		sig.SpeechFrames += w.End - w.Start + 1
		sig.Phones += len(strings.Fields(s.prons[base]))
	}
	return words
}

// wordRatio returns the least per-frame acoustic score of a word of h relative to the
// phone loop p over the same frames (words of at least 5 frames; 0 if none).
func wordRatio(h, p pocketsphinx.Hyp) float64 {
	least, found := 0.0, false
	for _, w := range h.Words {
		n := w.End - w.Start + 1
		if w.Filler || n < 5 {
			continue
		}
		var ps float64
		for _, q := range p.Words {
			lo, hi := max(w.Start, q.Start), min(w.End, q.End)
			if hi < lo {
				continue
			}
			ps += float64(q.Acoustic) * float64(hi-lo+1) / float64(q.End-q.Start+1)
		}
		r := (float64(w.Acoustic) - ps) / float64(n)
		if !found || r < least {
			least, found = r, true
		}
	}
	return least
}

// floorSNR is the least distance, in dB, between the speech and the noise floor of an
// utterance: quieter floors are raised with pink noise before decoding. The acoustic
// model was trained on recordings with room noise; digital silence between words (as in
// synthesised, padded or DTX-decoded audio) drags the cepstral mean and the silence
// model, and noise this far down does not mask speech. Measured with the accuracy
// harness (no rejection, 150 commands): intent accuracy clean / 20 dB went from
// 82% / 90% (a fixed -59 dBFS dither) to 92% / 92%; 25 and 30 dB gave 88% / 90%.
const floorSNR = 20

func (s *sphinx) acquire(ctx context.Context) (*pocketsphinx.Decoder, error) {
	select {
	case <-s.done:
		return nil, ErrClosed
	default:
	}
	select {
	case d := <-s.pool:
		return d, nil
	case <-s.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("asr: sphinx: waiting for a decoder: %w", ctx.Err())
	}
}

// Close frees the decoders. Idempotent; Recognize calls in flight finish first.
func (s *sphinx) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	all := s.all
	s.mu.Unlock()
	for range all {
		d := <-s.pool // waits for decoders in use to come back
		d.Close()
	}
	return nil
}

// phoneErr returns the edit distance between the phones of words and the phones the
// phone loop p heard (silence and fillers left out), per phone of words.
func (s *sphinx) phoneErr(words []string, p pocketsphinx.Hyp) float64 {
	var want, got []string
	for _, w := range words {
		want = append(want, strings.Fields(s.prons[w])...)
	}
	for _, w := range p.Words {
		if !w.Filler && w.Text != "SIL" {
			got = append(got, w.Text)
		}
	}
	if len(want) == 0 {
		return 1
	}
	prev := make([]int, len(got)+1)
	cur := make([]int, len(got)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(want); i++ {
		cur[0] = i
		for j := 1; j <= len(got); j++ {
			sub := prev[j-1]
			if want[i-1] != got[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return float64(prev[len(got)]) / float64(len(want))
}
