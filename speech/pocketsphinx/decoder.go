//go:build pocketsphinx

package pocketsphinx

/*
#cgo pkg-config: pocketsphinx sphinxbase
#include <stdlib.h>
#include <string.h>
#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/fe.h>
#include <sphinxbase/ckd_alloc.h>

static cmd_ln_t *ep_parse(int argc, char **argv) {
	return cmd_ln_parse_r(NULL, ps_args(), argc, argv, TRUE);
}

// ep_fe makes a front end from the decoder's arguments (with their own -warp_params)
// and the model's feat.params, in the order ps_init reads them.
static fe_t *ep_fe(int argc, char **argv, const char *featparams) {
	cmd_ln_t *c = cmd_ln_parse_r(NULL, ps_args(), argc, argv, TRUE);
	if (c == NULL) {
		return NULL;
	}
	if (cmd_ln_parse_file_r(c, ps_args(), featparams, FALSE) == NULL) {
		return NULL;
	}
	fe_t *fe = fe_init_auto_r(c);
	cmd_ln_free_r(c);
	return fe;
}

// ep_process_fe runs a whole utterance through fe and feeds its cepstra to the decoder,
// as ps_process_raw does with the decoder's own front end in full-utterance mode.
static int ep_process_fe(ps_decoder_t *ps, fe_t *fe, const int16 *pcm, size_t n) {
	int32 nfr = 0, tail = 0;
	size_t left = n;
	const int16 *p = pcm;
	if (fe_process_frames(fe, NULL, &left, NULL, &nfr, NULL) < 0) {
		return -1;
	}
	mfcc_t **cep = (mfcc_t **)ckd_calloc_2d(nfr + 1, fe_get_output_size(fe), sizeof(mfcc_t));
	fe_start_utt(fe);
	left = n;
	if (fe_process_frames(fe, &p, &left, cep, &nfr, NULL) < 0) {
		ckd_free_2d(cep);
		return -1;
	}
	fe_end_utt(fe, cep[nfr], &tail);
	int rv = ps_process_cep(ps, cep, nfr + tail, FALSE, TRUE);
	ckd_free_2d(cep);
	return rv;
}

static void ep_quiet(void) { err_set_logfp(NULL); }

*/
import "C"

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

var quietOnce sync.Once

// frontMu serialises the making of front ends: sphinxbase keeps the frequency warp's
// parameters in static variables, read while a front end builds its filter bank. Every
// front end is given its warp explicitly (NeutralWarp included), so none inherits the
// previous one's.
var frontMu sync.Mutex

// Available reports whether the package was built with the pocketsphinx tag.
func Available() bool { return true }

// Decoder is one PocketSphinx decoder with its searches. Not safe for concurrent use.
type Decoder struct {
	mu       sync.Mutex
	ps       *C.ps_decoder_t
	config   *C.cmd_ln_t
	searches map[string]bool
	fronts   map[float64]*C.fe_t // by warp; the decoder's own front end is NeutralWarp
}

// NewDecoder loads the acoustic model, the (pruned) dictionary, the grammars and the
// all-phone search.
func NewDecoder(cfg Config) (*Decoder, error) {
	quietOnce.Do(func() { C.ep_quiet() })
	if cfg.ModelDir == "" {
		cfg.ModelDir = DefaultModelDir
	}
	if cfg.Dict == "" {
		cfg.Dict = DefaultDict
	}
	if cfg.PhoneLM == "" {
		cfg.PhoneLM = DefaultPhoneLM
	}
	if _, err := os.Stat(cfg.ModelDir); err != nil {
		return nil, fmt.Errorf("%w: model: %w", ErrInit, err)
	}
	dict := cfg.Dict
	if len(cfg.Words) > 0 {
		p, err := pruneDict(cfg.Dict, cfg.Words, cfg.Extra)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInit, err)
		}
		defer os.Remove(p) // loaded by ps_init below; a leftover temp file is harmless
		dict = p
	}
	args, err := arguments(cfg, dict)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warps {
		if !(w > 0.5 && w < 2) {
			return nil, fmt.Errorf("%w: warp %v outside (0.5, 2)", ErrInit, w)
		}
	}
	cargs := cStrings(append(args, "-warp_type", "inverse_linear", "-warp_params", warpParam(NeutralWarp)))
	defer freeStrings(cargs)
	config := C.ep_parse(C.int(len(cargs)), &cargs[0])
	if config == nil {
		return nil, fmt.Errorf("%w: bad arguments %q", ErrInit, args[1:])
	}
	frontMu.Lock()
	ps := C.ps_init(config)
	frontMu.Unlock()
	if ps == nil {
		C.cmd_ln_free_r(config)
		return nil, fmt.Errorf("%w: ps_init (model %s, dict %s)", ErrInit, cfg.ModelDir, cfg.Dict)
	}
	d := &Decoder{ps: ps, config: config, searches: map[string]bool{}, fronts: map[float64]*C.fe_t{}}
	for _, w := range cfg.Warps {
		if w == NeutralWarp || d.fronts[w] != nil {
			continue
		}
		if err := d.addFront(args, cfg.ModelDir, w); err != nil {
			d.Close()
			return nil, err
		}
	}
	names := make([]string, 0, len(cfg.Grammars))
	for name := range cfg.Grammars {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := d.addJSGF(name, cfg.Grammars[name]); err != nil {
			d.Close()
			return nil, err
		}
	}
	names = names[:0]
	for name := range cfg.LMs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := d.addLM(name, cfg.LMs[name]); err != nil {
			d.Close()
			return nil, err
		}
	}
	if err := d.addPhones(cfg.PhoneLM); err != nil {
		d.Close()
		return nil, err
	}
	runtime.SetFinalizer(d, (*Decoder).Close)
	return d, nil
}

// addFront makes the front end of one warp.
func (d *Decoder) addFront(args []string, modelDir string, warp float64) error {
	cargs := cStrings(append(args, "-warp_type", "inverse_linear", "-warp_params", warpParam(warp)))
	defer freeStrings(cargs)
	cfp := C.CString(filepath.Join(modelDir, "feat.params"))
	defer C.free(unsafe.Pointer(cfp))
	frontMu.Lock()
	fe := C.ep_fe(C.int(len(cargs)), &cargs[0], cfp)
	frontMu.Unlock()
	if fe == nil {
		return fmt.Errorf("%w: front end of warp %v", ErrInit, warp)
	}
	d.fronts[warp] = fe
	return nil
}

func warpParam(w float64) string { return strconv.FormatFloat(w, 'f', -1, 64) }

func cStrings(ss []string) []*C.char {
	out := make([]*C.char, len(ss))
	for i, s := range ss {
		out[i] = C.CString(s)
	}
	return out
}

func freeStrings(cs []*C.char) {
	for _, c := range cs {
		C.free(unsafe.Pointer(c))
	}
}

// Warps lists the decoder's frequency warps, NeutralWarp first.
func (d *Decoder) Warps() []float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []float64{NeutralWarp}
	for w := range d.fronts {
		out = append(out, w)
	}
	sort.Float64s(out[1:])
	return out
}

func (d *Decoder) addJSGF(name, jsgf string) error {
	if name == "" || name == PhoneSearch {
		return fmt.Errorf("%w: grammar name %q", ErrInit, name)
	}
	cname, cjsgf := C.CString(name), C.CString(jsgf)
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(cjsgf))
	if C.ps_set_jsgf_string(d.ps, cname, cjsgf) != 0 {
		return fmt.Errorf("%w: grammar %q does not load (syntax, or a word missing from the dictionary)", ErrInit, name)
	}
	d.searches[name] = true
	return nil
}

// addLM loads an ARPA n-gram model through a temporary file (the only way the library
// reads one).
func (d *Decoder) addLM(name, arpa string) error {
	if name == "" || name == PhoneSearch || d.searches[name] {
		return fmt.Errorf("%w: language model name %q", ErrInit, name)
	}
	f, err := os.CreateTemp("", "earshot-lm-*.arpa")
	if err != nil {
		return fmt.Errorf("%w: language model %q: %w", ErrInit, name, err)
	}
	defer os.Remove(f.Name()) // read by ps_set_lm_file below
	_, err = f.WriteString(arpa)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: language model %q: %w", ErrInit, name, err)
	}
	cname, cpath := C.CString(name), C.CString(f.Name())
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(cpath))
	if C.ps_set_lm_file(d.ps, cname, cpath) != 0 {
		return fmt.Errorf("%w: language model %q does not load (not ARPA text)", ErrInit, name)
	}
	d.searches[name] = true
	return nil
}

func (d *Decoder) addPhones(lm string) error {
	cname := C.CString(PhoneSearch)
	defer C.free(unsafe.Pointer(cname))
	var rc C.int
	if lm == "-" {
		rc = C.ps_set_allphone(d.ps, cname, nil)
	} else {
		clm := C.CString(lm)
		defer C.free(unsafe.Pointer(clm))
		rc = C.ps_set_allphone_file(d.ps, cname, clm)
	}
	if rc != 0 {
		return fmt.Errorf("%w: all-phone search (phone LM %s)", ErrInit, lm)
	}
	d.searches[PhoneSearch] = true
	return nil
}

// Searches lists the decoder's searches, sorted.
func (d *Decoder) Searches() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.searches))
	for s := range d.searches {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Decode runs one whole utterance (16 kHz mono) through the named search.
func (d *Decoder) Decode(search string, pcm []int16) (Hyp, error) {
	return d.DecodeWarp(search, NeutralWarp, pcm)
}

// DecodeWarp is Decode through the front end of one of Config.Warps (or NeutralWarp).
func (d *Decoder) DecodeWarp(search string, warp float64, pcm []int16) (Hyp, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ps == nil {
		return Hyp{}, ErrClosed
	}
	if !d.searches[search] {
		return Hyp{}, fmt.Errorf("%w: %q", ErrSearch, search)
	}
	fe := d.fronts[warp]
	if fe == nil && warp != NeutralWarp {
		return Hyp{}, fmt.Errorf("%w: %v", ErrWarp, warp)
	}
	if len(pcm) > MaxSamples {
		return Hyp{}, fmt.Errorf("%w: %d samples, max %d", ErrDecode, len(pcm), MaxSamples)
	}
	start := time.Now()
	cs := C.CString(search)
	defer C.free(unsafe.Pointer(cs))
	if C.ps_set_search(d.ps, cs) != 0 {
		return Hyp{}, fmt.Errorf("%w: set search %q", ErrDecode, search)
	}
	if C.ps_start_utt(d.ps) != 0 {
		return Hyp{}, fmt.Errorf("%w: start utterance", ErrDecode)
	}
	if len(pcm) > 0 {
		// Go memory without Go pointers, used only during the call: allowed by cgo.
		raw := (*C.int16)(unsafe.Pointer(&pcm[0]))
		var rc C.int
		if fe != nil {
			rc = C.ep_process_fe(d.ps, fe, raw, C.size_t(len(pcm)))
		} else {
			rc = C.ps_process_raw(d.ps, raw, C.size_t(len(pcm)), 0, 1)
		}
		if rc < 0 {
			C.ps_end_utt(d.ps)
			return Hyp{}, fmt.Errorf("%w: process", ErrDecode)
		}
	}
	if C.ps_end_utt(d.ps) != 0 {
		return Hyp{}, fmt.Errorf("%w: end utterance", ErrDecode)
	}
	h := Hyp{Frames: int(C.ps_get_n_frames(d.ps))}
	var score C.int32
	if txt := C.ps_get_hyp(d.ps, &score); txt != nil {
		h.Text = C.GoString(txt)
		h.Score = int32(score)
	}
	for seg := C.ps_seg_iter(d.ps); seg != nil; seg = C.ps_seg_next(seg) {
		var sf, ef C.int
		var ascr, lscr, lback C.int32
		C.ps_seg_frames(seg, &sf, &ef)
		C.ps_seg_prob(seg, &ascr, &lscr, &lback)
		w := baseWord(C.GoString(C.ps_seg_word(seg)))
		if w == "(NULL)" || w == "" { // a null transition of the grammar
			continue
		}
		h.Words = append(h.Words, Word{Text: w, Start: int(sf), End: int(ef), Acoustic: int32(ascr),
			Filler: isFiller(w)})
		h.Acoustic += int32(ascr)
	}
	h.Elapsed = time.Since(start)
	return h, nil
}

// Close frees the decoder. Idempotent.
func (d *Decoder) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ps == nil {
		return
	}
	for _, fe := range d.fronts {
		C.fe_free(fe)
	}
	C.ps_free(d.ps)
	C.cmd_ln_free_r(d.config)
	d.ps, d.config, d.fronts = nil, nil, nil
	runtime.SetFinalizer(d, nil)
}

// arguments returns the decoder's argv: our defaults, overridden by cfg.Args.
func arguments(cfg Config, dict string) ([]string, error) {
	if len(cfg.Args)%2 != 0 {
		return nil, fmt.Errorf("%w: Args must be name/value pairs: %q", ErrInit, cfg.Args)
	}
	args := []string{
		"-hmm", cfg.ModelDir,
		"-dict", dict,
		"-logfn", "/dev/null",
		"-cmn", "batch", // whole-utterance CMN: no state carried between utterances
		"-remove_noise", "no", // the spectral-subtraction noise estimate would carry over
		"-remove_silence", "no", // our own endpointer cuts the utterance
		"-bestpath", "no",
	}
	for i := 0; i < len(cfg.Args); i += 2 {
		name, val := cfg.Args[i], cfg.Args[i+1]
		if !strings.HasPrefix(name, "-") {
			return nil, fmt.Errorf("%w: argument %q does not start with '-'", ErrInit, name)
		}
		if strings.HasPrefix(name, "-warp_") {
			return nil, fmt.Errorf("%w: argument %q: frequency warps are set by Config.Warps", ErrInit, name)
		}
		found := false
		for j := 0; j < len(args); j += 2 {
			if args[j] == name {
				args[j+1], found = val, true
			}
		}
		if !found {
			args = append(args, name, val)
		}
	}
	return append([]string{"pocketsphinx"}, args...), nil
}

// baseWord strips a pronunciation variant: "read(2)" -> "read".
func baseWord(w string) string {
	if i := strings.IndexByte(w, '('); i > 0 {
		return w[:i]
	}
	return w
}

func isFiller(w string) bool {
	return w == "<s>" || w == "</s>" || w == "<sil>" || strings.HasPrefix(w, "[") || strings.HasPrefix(w, "+")
}

// pruneDict writes the entries of dict for words (and their variants) plus extra to a
// temporary file and returns its path.
func pruneDict(dict string, words []string, extra map[string]string) (string, error) {
	want := make(map[string]bool, len(words))
	for _, w := range words {
		want[strings.ToLower(w)] = true
	}
	f, err := os.Open(dict)
	if err != nil {
		return "", fmt.Errorf("dictionary: %w", err)
	}
	defer f.Close()
	out, err := os.CreateTemp("", "earshot-dict-*.dict")
	if err != nil {
		return "", fmt.Errorf("dictionary: %w", err)
	}
	bw := bufio.NewWriter(out)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	for sc.Scan() {
		line := sc.Text()
		sp := strings.IndexAny(line, " \t")
		if sp <= 0 || !want[baseWord(line[:sp])] {
			continue
		}
		bw.WriteString(line)
		bw.WriteByte('\n')
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(bw, "%s %s\n", k, extra[k])
	}
	err = sc.Err()
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", fmt.Errorf("dictionary: %w", err)
	}
	return out.Name(), nil
}
