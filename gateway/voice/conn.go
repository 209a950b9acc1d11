package voice

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
	"github.com/earshot/earshot/speech/asr"
)

// Conn is one device connection with speech. Handle, HandleAudio and HandleOpus are
// called from the transport's reader goroutine(s); the core's sends come through
// downlink from any goroutine.
type Conn struct {
	svc *Service
	sc  *session.Conn
	t   Transport
	dev registry.Device
	log *slog.Logger
	// voice is what the recogniser learns about the wearer's voice, for the
	// connection's lifetime: a new session starts afresh.
	voice *asr.Speaker

	ctx    context.Context // the connection's lifetime: recognitions and prompt speech
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	stream   *stream // the open uplink stream, if any
	ended    uint32  // the last stream the endpointer ended (a late audio.end is quiet)
	busy     bool    // a recognition of this connection is queued or running
	speak    bool    // the device asked for prompt audio in hello
	turns    turns   // recognised commands waiting for their prompt, by ref
	prompts  []prompt
	spoken   spoken // the last prompts' texts, for "repeat"
	speaking bool   // the speaker goroutine runs
	outID    uint32 // the last downlink audio stream id
	gone     bool
}

// prompt is a prompt to speak.
type prompt struct {
	tx, ref, text string
	at            time.Time // when the core sent it
	turn          *turn     // the turn whose metrics wait for its first audio, if any
}

// maxPrompts bounds the prompts waiting to be spoken on one connection; when it is
// exceeded the oldest waiting prompt loses its audio (its text was sent) and the drop
// is counted.
const maxPrompts = 4

func (s *Service) attach(d registry.Device, t Transport) (*Conn, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{svc: s, t: t, dev: d, ctx: ctx, cancel: cancel, voice: asr.NewSpeaker(),
		log: s.log.With("device", d.ID, "transport", t.Kind())}
	sc, err := s.cfg.Core.Attach(d, downlink{c})
	if err != nil {
		cancel()
		return nil, err
	}
	c.sc = sc
	return c, nil
}

func (c *Conn) detach() {
	c.mu.Lock()
	c.gone = true
	c.stream = nil
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.sc.Detach()
}

// handle peeks at event frames: the audio stream events are voice's, and hello says
// whether the device wants prompts spoken; everything goes on to the core except the
// audio events.
func (c *Conn) handle(ctx context.Context, frame []byte) error {
	if !bytes.Contains(frame, []byte(`"audio.`)) && !bytes.Contains(frame, []byte(`"hello"`)) {
		return c.sc.Handle(ctx, frame)
	}
	env, err := wire.Decode(frame)
	if err != nil {
		return c.sc.Handle(ctx, frame) // the core answers malformed frames
	}
	switch env.Type {
	case wire.TypeHello:
		var h wire.Hello
		if json.Unmarshal(env.Body, &h) == nil {
			c.mu.Lock()
			c.speak = h.PromptAudio && c.svc.cfg.Speaker != nil
			c.mu.Unlock()
		}
		return c.sc.Handle(ctx, frame)
	case wire.TypeAudioStart, wire.TypeAudioEnd:
	default:
		return c.sc.Handle(ctx, frame)
	}
	if !c.sc.Ready() {
		return wire.NewError(wire.CodeProtocolViolation, "the first message must be hello")
	}
	body := wire.NewBody(env.Type)
	if err := wire.DecodeBody(env, body); err != nil {
		c.svc.m.refused(wire.CodeBadRequest)
		c.reply(env.ID, wire.NewError(wire.CodeBadRequest, err.Error()))
		return nil
	}
	var werr *wire.Error
	switch b := body.(type) {
	case *wire.AudioStart:
		werr = c.start(env.ID, b)
	case *wire.AudioEnd:
		werr = c.end(b)
	}
	if werr != nil {
		c.svc.m.refused(werr.Code)
		c.reply(env.ID, werr)
	}
	return nil
}

// reply sends an error event that answers the uplink message ref. It is not durable:
// like every answer to a request, it is for this connection only.
func (c *Conn) reply(ref string, e *wire.Error) {
	e.Ref = ref
	c.sendEvent(e)
}

// sendEvent sends a non-durable event (no seq) to the device.
func (c *Conn) sendEvent(b wire.Body) {
	frame, err := wire.Encode(wire.Envelope{Device: c.dev.ID, TS: c.svc.cfg.Now().UnixMilli()}, b)
	if err != nil {
		c.log.Error("encoding an event", "type", b.Type(), "err", err)
		return
	}
	if err := c.t.Send(frame); err != nil {
		c.log.Debug("event not sent", "type", b.Type(), "err", err)
	}
}

// downlink is the transport the core sees: it forwards every frame and notices the
// prompts (to speak them) and the transaction results (to finish turn metrics). Send
// runs under the core's flush lock: it must not block or call into the core.
type downlink struct{ c *Conn }

func (d downlink) Send(frame []byte) error {
	if err := d.c.t.Send(frame); err != nil {
		return err
	}
	if bytes.Contains(frame, []byte(`"confirm.request"`)) || bytes.Contains(frame, []byte(`"tx.result"`)) {
		d.c.observe(frame)
	}
	return nil
}

func (d downlink) Close(code wire.Code, reason string) { d.c.t.Close(code, reason) }
func (d downlink) Kind() string                        { return d.c.t.Kind() }

var _ session.Transport = downlink{}

// observe looks at a downlink frame the device was just sent.
func (c *Conn) observe(frame []byte) {
	env, err := wire.Decode(frame)
	if err != nil {
		return
	}
	now := c.svc.cfg.Now()
	switch env.Type {
	case wire.TypeConfirmRequest:
		var cr wire.ConfirmRequest
		if wire.DecodeBody(env, &cr) != nil {
			return
		}
		c.mu.Lock()
		t := c.turns.take(cr.Ref)
		if t != nil {
			t.tx, t.agentAt = cr.Tx, now
		}
		speak := c.speak && !c.gone
		if speak {
			c.queuePrompt(prompt{tx: cr.Tx, ref: cr.Ref, text: cr.Text, at: now}, t)
		}
		c.mu.Unlock()
		if t != nil && !speak {
			c.finishTurn(t)
		}
	case wire.TypeTxResult:
		var r wire.TxResult
		if wire.DecodeBody(env, &r) != nil || r.Ref == "" || !r.State.Final() {
			return
		}
		c.mu.Lock()
		t := c.turns.take(r.Ref)
		c.mu.Unlock()
		if t != nil {
			t.tx, t.agentAt = r.Tx, now
			c.finishTurn(t)
		}
	}
}
