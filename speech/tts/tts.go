// Package tts speaks prompts with espeak-ng, run as a separate process, and
// returns 16 kHz mono samples (package speech's canonical format). Results
// are kept in a small LRU cache, since prompts repeat.
//
// The text reaches espeak-ng on its standard input, never through a shell or
// the argument list; it is checked first (UTF-8, at most MaxText bytes, no
// control characters). A Synth is safe for concurrent use.
package tts

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/earshot/earshot/speech"
)

// MaxText is the longest text accepted, in bytes.
const MaxText = 1024

// Limits of espeak-ng's options.
const (
	MinSpeed = 80
	MaxSpeed = 450
	maxVoice = 64
	// maxOutputSeconds bounds what one synthesis may return (1024 bytes at
	// the slowest speed take about two minutes).
	maxOutputSeconds = 240
	maxStderr        = 4096
)

var (
	// ErrUnavailable reports that the espeak-ng binary cannot be found.
	ErrUnavailable = errors.New("tts: espeak-ng is not installed")
	// ErrText reports text that cannot be spoken (empty, too long, not
	// UTF-8, control characters); wrapped with the reason.
	ErrText = errors.New("tts: bad text")
	// ErrVoice reports a bad voice name, speed or pitch.
	ErrVoice = errors.New("tts: bad voice")
)

// Config configures a Synth. Every field has a usable zero value.
type Config struct {
	Binary    string        // default "espeak-ng" (found on PATH)
	Voice     string        // default "en-us"
	Speed     int           // words per minute, 80..450; default 165
	Pitch     int           // 0-99; default 50 (espeak's own default)
	Timeout   time.Duration // per synthesis; default 5s
	CacheSize int           // LRU entries keyed by (voice, speed, pitch, text); default 64; <0 disables
	MaxProcs  int           // espeak-ng processes running at once; default 4
}

// Synth speaks text with espeak-ng.
type Synth struct {
	cfg  Config
	bin  string
	sem  chan struct{}
	mu   sync.Mutex
	lru  *list.List // of *entry, most recent first
	byKy map[key]*list.Element
}

type key struct {
	voice        string
	speed, pitch int
	text         string
}

type entry struct {
	k   key
	pcm []int16
}

// New returns a Synth after checking that the binary exists (an error
// wrapping [ErrUnavailable] if not) and that the default voice, speed and
// pitch are valid.
func New(cfg Config) (*Synth, error) {
	if cfg.Binary == "" {
		cfg.Binary = "espeak-ng"
	}
	if cfg.Voice == "" {
		cfg.Voice = "en-us"
	}
	if cfg.Speed == 0 {
		cfg.Speed = 165
	}
	if cfg.Pitch == 0 {
		cfg.Pitch = 50
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 64
	}
	if cfg.MaxProcs <= 0 {
		cfg.MaxProcs = 4
	}
	if err := checkVoice(cfg.Voice, cfg.Speed, cfg.Pitch); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return &Synth{
		cfg:  cfg,
		bin:  bin,
		sem:  make(chan struct{}, cfg.MaxProcs),
		lru:  list.New(),
		byKy: make(map[key]*list.Element),
	}, nil
}

// Name returns "espeak-ng <voice>".
func (s *Synth) Name() string { return "espeak-ng " + s.cfg.Voice }

// Say speaks text with the configured voice, speed and pitch.
func (s *Synth) Say(ctx context.Context, text string) ([]int16, error) {
	return s.SayWith(ctx, text, s.cfg.Voice, s.cfg.Speed, s.cfg.Pitch)
}

// SayWith speaks text with the given voice (an espeak-ng voice name such as
// "en-gb" or a variant such as "en-us+f3"), speed (words per minute) and
// pitch (0-99). The result is a fresh slice of 16 kHz mono samples.
func (s *Synth) SayWith(ctx context.Context, text string, voice string, speed, pitch int) ([]int16, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	if err := checkVoice(voice, speed, pitch); err != nil {
		return nil, err
	}
	k := key{voice: voice, speed: speed, pitch: pitch, text: text}
	if pcm, ok := s.cached(k); ok {
		return pcm, nil
	}
	pcm, err := s.run(ctx, k)
	if err != nil {
		return nil, err
	}
	s.store(k, pcm)
	return append([]int16(nil), pcm...), nil
}

// run executes espeak-ng once.
func (s *Synth) run(ctx context.Context, k key) ([]int16, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("tts: waiting for a free synthesiser: %w", ctx.Err())
	}
	defer func() { <-s.sem }()

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	// -b 1: the input is UTF-8; --stdin: the whole input is one text; no -m,
	// so markup is read as text.
	cmd := exec.CommandContext(ctx, s.bin,
		"-v", k.voice, "-s", strconv.Itoa(k.speed), "-p", strconv.Itoa(k.pitch),
		"-b", "1", "--stdout", "--stdin")
	cmd.Stdin = bytes.NewReader([]byte(k.text))
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("tts: espeak-ng stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("tts: start espeak-ng: %w", err)
	}
	pcm, rate, rerr := speech.ReadWAV(out, 48000*maxOutputSeconds)
	if rerr != nil {
		// Let the process finish or be killed before reporting.
		_, _ = io.Copy(io.Discard, out) // the read error is the one to report
	}
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("tts: espeak-ng %q: %w", k.voice, ctx.Err())
	case werr != nil && bytes.Contains(stderr.Bytes(), []byte("voice does not exist")):
		return nil, fmt.Errorf("%w: espeak-ng has no voice %q", ErrVoice, k.voice)
	case werr != nil:
		return nil, fmt.Errorf("tts: espeak-ng %q: %w: %s", k.voice, werr, bytes.TrimSpace(stderr.Bytes()))
	case rerr != nil:
		return nil, fmt.Errorf("tts: espeak-ng %q output: %w", k.voice, rerr)
	case len(pcm) == 0:
		// espeak-ng exits 0 and prints an error for an unknown voice.
		return nil, fmt.Errorf("%w: espeak-ng %q produced no audio: %s", ErrVoice, k.voice, bytes.TrimSpace(stderr.Bytes()))
	}
	if rate != speech.Rate {
		if pcm, err = speech.Resample(pcm, rate, speech.Rate); err != nil {
			return nil, fmt.Errorf("tts: espeak-ng output: %w", err)
		}
	}
	return pcm, nil
}

func (s *Synth) cached(k key) ([]int16, bool) {
	if s.cfg.CacheSize < 0 {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byKy[k]
	if !ok {
		return nil, false
	}
	s.lru.MoveToFront(el)
	return append([]int16(nil), el.Value.(*entry).pcm...), true
}

func (s *Synth) store(k key, pcm []int16) {
	if s.cfg.CacheSize < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKy[k]; ok {
		s.lru.MoveToFront(el)
		return
	}
	s.byKy[k] = s.lru.PushFront(&entry{k: k, pcm: pcm})
	for s.lru.Len() > s.cfg.CacheSize {
		last := s.lru.Back()
		s.lru.Remove(last)
		delete(s.byKy, last.Value.(*entry).k)
	}
}

func checkText(text string) error {
	switch {
	case len(text) == 0:
		return fmt.Errorf("%w: empty", ErrText)
	case len(text) > MaxText:
		return fmt.Errorf("%w: %d bytes (max %d)", ErrText, len(text), MaxText)
	case !utf8.ValidString(text):
		return fmt.Errorf("%w: not UTF-8", ErrText)
	}
	for i, r := range text {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: control character %U at byte %d", ErrText, r, i)
		}
	}
	return nil
}

// checkVoice accepts espeak-ng voice names: letters, digits, '-', '_' and
// one '+' before a variant, starting with a letter (so never an option).
func checkVoice(voice string, speed, pitch int) error {
	if voice == "" || len(voice) > maxVoice {
		return fmt.Errorf("%w: voice name of %d bytes (want 1..%d)", ErrVoice, len(voice), maxVoice)
	}
	plus := 0
	for i, r := range voice {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '_'):
		case i > 0 && r == '+' && plus == 0:
			plus++
		default:
			return fmt.Errorf("%w: voice %q has %q at byte %d", ErrVoice, voice, r, i)
		}
	}
	if speed < MinSpeed || speed > MaxSpeed {
		return fmt.Errorf("%w: speed %d words per minute (want %d..%d)", ErrVoice, speed, MinSpeed, MaxSpeed)
	}
	if pitch < 0 || pitch > 99 {
		return fmt.Errorf("%w: pitch %d (want 0..99)", ErrVoice, pitch)
	}
	return nil
}

// limitedBuffer keeps the first maxStderr bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxStderr - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
