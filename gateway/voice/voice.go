// Package voice puts speech between a device transport and the session core. It takes
// a device's audio streams (binary frames on WebSocket, an Opus track on WebRTC),
// finds the end of speech, recognises it against the commerce grammar and hands a
// command to the core as an utterance, or tells the device what it answered to a
// prompt; on the way down it speaks every prompt after its text, to devices that asked
// for it in hello. It is transport-agnostic: gateway/ws and gateway/rtc call it.
//
// One turn, as the device sees it:
//
//	audio.start{stream, mode: command}  ->
//	binary frames / Opus track          ->   endpointer finds the end of speech
//	                                    <-   speech.result{outcome, text}
//	                                    <-   confirm.request (from the core, durable)
//	                                    <-   prompt.audio{stream'} + binary frames
//	                                    <-   turn.metrics
//	audio.start{mode: confirm, tx}      ->
//	frames                              ->
//	                                    <-   speech.result{answer: approve}
//	confirm{method: voice, sig}         ->   (the device signs; the gateway never does)
//
// Recognition runs off the transport's reader, in at most Config.Workers goroutines
// shared by all devices; a device has at most one stream open and one waiting for
// recognition. Prompt speech runs in one goroutine per connection, started on demand.
package voice

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
	"github.com/earshot/earshot/speech/asr"
	"github.com/earshot/earshot/speech/grammar"
)

// Transport is what voice needs from a device connection: the session transport for
// event frames, and binary frames for audio to the device (prompt speech).
type Transport interface {
	session.Transport
	// SendBinary queues one binary audio frame (wire.AudioHeader and payload). Unlike
	// Send it may wait for room in the connection's queue, until ctx is done: audio is
	// bulk and paced by the reader, never worth a disconnect.
	SendBinary(ctx context.Context, frame []byte) error
}

// Speaker synthesises prompt text as 16 kHz mono speech (speech/tts.Synth).
type Speaker interface {
	Say(ctx context.Context, text string) ([]int16, error)
}

// Config configures a Service.
type Config struct {
	Core *session.Core // required
	// Recognizer recognises endpointed speech. Nil: the gateway takes text only, and
	// audio.start is answered with wire.CodeSpeechUnavailable.
	Recognizer asr.Recognizer
	// Grammar parses transcripts into intents; required with a Recognizer.
	Grammar *grammar.Grammar
	// Speaker speaks prompts. Nil: prompts are text only.
	Speaker Speaker
	// Workers bounds concurrent recognitions across all devices; default 2.
	Workers int
	// Queue bounds the recognitions waiting for a worker; beyond it a stream is
	// answered with wire.CodeRateLimited. Default 64.
	Queue int
	// RecognizeTimeout bounds one recognition, waiting included; default 15 s.
	RecognizeTimeout time.Duration
	// PromptFrame is the length of one prompt audio frame; default 100 ms.
	PromptFrame time.Duration
	Logger      *slog.Logger // default slog.Default()
	Metrics     *Metrics     // default: a fresh set (see Service.Metrics)
	Now         func() time.Time
}

// Service is the speech layer shared by every device connection.
type Service struct {
	cfg   Config
	log   *slog.Logger
	m     *Metrics
	slots chan struct{} // recognition workers
	queue chan struct{} // recognitions admitted (waiting or running)
}

// ErrConfig reports a Config that New refuses.
var ErrConfig = errors.New("voice: bad config")

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Core == nil {
		return nil, errors.Join(ErrConfig, errors.New("voice: Core is required"))
	}
	if cfg.Recognizer != nil && cfg.Grammar == nil {
		return nil, errors.Join(ErrConfig, errors.New("voice: a Recognizer needs a Grammar"))
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 64
	}
	if cfg.RecognizeTimeout <= 0 {
		cfg.RecognizeTimeout = 15 * time.Second
	}
	if cfg.PromptFrame <= 0 {
		cfg.PromptFrame = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		cfg: cfg, log: cfg.Logger.With("component", "voice"), m: cfg.Metrics,
		slots: make(chan struct{}, cfg.Workers), queue: make(chan struct{}, cfg.Queue+cfg.Workers),
	}, nil
}

// Metrics returns the service's Prometheus metrics.
func (s *Service) Metrics() *Metrics { return s.m }

// Recognizer names the recogniser, or "none".
func (s *Service) Recognizer() string {
	if s.cfg.Recognizer == nil {
		return "none"
	}
	return s.cfg.Recognizer.Name()
}

// Attach registers a device connection with the core, with speech in between. The
// returned Conn takes the place of the session.Conn.
func (s *Service) Attach(d registry.Device, t Transport) (*Conn, error) { return s.attach(d, t) }

// Handle processes one uplink event frame, like session.Conn.Handle, and takes the
// audio stream events (audio.start, audio.end) for itself.
func (c *Conn) Handle(ctx context.Context, frame []byte) error { return c.handle(ctx, frame) }

// HandleAudio processes one binary audio frame. A malformed frame or one for a stream
// that is not open is answered with an error event; the returned error, if any, is a
// *wire.Error with a disconnect code.
func (c *Conn) HandleAudio(ctx context.Context, frame []byte) error { return c.handleAudio(ctx, frame) }

// HandleOpus processes one Opus packet (48 kHz) from a WebRTC audio track. Packets
// outside an open opus stream are counted and dropped: a WebRTC microphone track runs
// all the time, the device marks the speech with audio.start and audio.end.
func (c *Conn) HandleOpus(ctx context.Context, packet []byte) { c.handleOpus(ctx, packet) }

// Detach ends the connection's speech work and unregisters it from the core; call it
// once when the transport ends. It waits for the connection's goroutines.
func (c *Conn) Detach() { c.detach() }

// Session returns the core's connection, for transports that need it.
func (c *Conn) Session() *session.Conn { return c.sc }
