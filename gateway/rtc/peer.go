package rtc

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/voice"
)

// Data channel flow control: the writer stops while more than highWater bytes wait
// in SCTP, and resumes when they drop under lowWater.
const (
	highWater = 1 << 20
	lowWater  = 256 << 10
)

// finalWait bounds the wait for the final error event to be delivered before the
// peer connection closes; drainWait bounds writing what was queued before it.
const (
	finalWait = time.Second
	drainWait = 200 * time.Millisecond
)

// outMsg is one queued data channel message.
type outMsg struct {
	data   []byte
	binary bool
}

// peer is one device's peer connection. It implements voice.Transport.
type peer struct {
	srv *Server
	id  string
	dev registry.Device
	pc  *webrtc.PeerConnection
	log *slog.Logger

	ctx    context.Context // the peer's lifetime, for voice's work on its messages
	cancel context.CancelFunc

	send     chan outMsg   // bounded; see the package doc for the overflow policy
	binSlots chan struct{} // binary messages queued or being written: at most half the queue
	low      chan struct{} // the data channel's buffered amount went under lowWater
	done     chan struct{} // closed by Close

	once   sync.Once
	code   wire.Code // why the gateway closed it; set once before done is closed
	reason string

	mu         sync.Mutex
	dc         *webrtc.DataChannel // the "earshot" channel, once the device opened it
	vc         *voice.Conn
	hello      bool // a first message arrived
	ending     bool // torn down: no new attachments or readers
	helloTimer *time.Timer
	discTimer  *time.Timer
	readers    sync.WaitGroup // audio track readers
}

var _ voice.Transport = (*peer)(nil)

func newPeer(s *Server, dev registry.Device, pc *webrtc.PeerConnection) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{
		srv: s, id: newID(), dev: dev, pc: pc, ctx: ctx, cancel: cancel,
		log:      s.log.With("device", dev.ID),
		send:     make(chan outMsg, s.cfg.SendQueue),
		binSlots: make(chan struct{}, s.cfg.SendQueue/2),
		low:      make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	pc.OnDataChannel(p.onDataChannel)
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(p.onState)
	return p
}

func (p *peer) Kind() string { return "webrtc" }

// Send queues an event (a text message) without blocking.
func (p *peer) Send(frame []byte) error {
	select {
	case <-p.done:
		return ErrClosed
	default:
	}
	select {
	case p.send <- outMsg{data: frame}:
		return nil
	case <-p.done:
		return ErrClosed
	default:
		p.srv.m.Overflow.Inc()
		p.Close(wire.CodeSlowConsumer, "send queue overflowed")
		return ErrQueueFull
	}
}

// SendBinary queues an audio frame (a binary message), waiting for room until ctx is
// done or the peer closes.
func (p *peer) SendBinary(ctx context.Context, frame []byte) error {
	select {
	case p.binSlots <- struct{}{}:
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case p.send <- outMsg{data: frame, binary: true}:
		return nil
	case <-p.done:
		<-p.binSlots
		return ErrClosed
	case <-ctx.Done():
		<-p.binSlots
		return ctx.Err()
	}
}

// Close ends the peer: a final error event with the code (unless it is
// wire.CodeUnknown), then the peer connection closes. Idempotent.
func (p *peer) Close(code wire.Code, reason string) {
	p.once.Do(func() {
		p.code, p.reason = code, reason
		close(p.done)
	})
}

func (p *peer) closed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// start runs the peer once the answer is out: the writer goroutine (counted in the
// server's WaitGroup by admit) and the hello timer.
func (p *peer) start() {
	p.mu.Lock()
	p.helloTimer = time.AfterFunc(p.srv.cfg.HelloTimeout, func() {
		p.mu.Lock()
		hello := p.hello
		p.mu.Unlock()
		if !hello {
			p.Close(wire.CodeHelloTimeout, "no hello in time")
		}
	})
	p.mu.Unlock()
	go p.run()
}

// onDataChannel takes the device's "earshot" channel and attaches the peer to voice.
// pion calls it before any message of the channel is delivered.
func (p *peer) onDataChannel(dc *webrtc.DataChannel) {
	if dc.Label() != Label || !dc.Ordered() || dc.MaxRetransmits() != nil || dc.MaxPacketLifeTime() != nil {
		p.log.Info("data channel refused", "label", dc.Label(), "ordered", dc.Ordered())
		_ = dc.Close() // not ours; the device's own channel, if any, carries on
		return
	}
	p.mu.Lock()
	if p.dc != nil || p.ending {
		p.mu.Unlock()
		_ = dc.Close() // one "earshot" channel per peer
		return
	}
	p.dc = dc
	p.mu.Unlock()

	vc, err := p.srv.cfg.Voice.Attach(p.dev, p)
	if err != nil {
		p.log.Info("attach refused", "err", err)
		p.Close(wire.CodeShutdown, "the gateway is shutting down")
		return
	}
	p.mu.Lock()
	if p.ending {
		p.mu.Unlock()
		vc.Detach() // teardown already ran without it
		return
	}
	p.vc = vc
	p.mu.Unlock()

	dc.SetBufferedAmountLowThreshold(lowWater)
	dc.OnBufferedAmountLow(func() {
		select {
		case p.low <- struct{}{}:
		default:
		}
	})
	dc.OnMessage(p.onMessage)
	dc.OnClose(func() { p.Close(wire.CodeUnknown, "the device closed the data channel") })
}

// onMessage handles one message of the data channel, on pion's reader goroutine.
func (p *peer) onMessage(msg webrtc.DataChannelMessage) {
	if p.closed() {
		return
	}
	p.mu.Lock()
	vc, first := p.vc, !p.hello
	p.hello = true
	if first && p.helloTimer != nil {
		p.helloTimer.Stop()
	}
	p.mu.Unlock()
	p.srv.m.message(true, !msg.IsString)
	if len(msg.Data) > 2*wire.MaxFrameBytes {
		p.Close(wire.CodeFrameTooLarge, "message too large")
		return
	}
	var err error
	if msg.IsString {
		err = vc.Handle(p.ctx, msg.Data)
	} else {
		err = vc.HandleAudio(p.ctx, msg.Data)
	}
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			p.log.Info("closing peer", "code", we.Code.String(), "reason", we.Message)
			p.Close(we.Code, we.Message)
		} else {
			p.Close(wire.CodeServerError, "internal error")
		}
	}
}

// onTrack starts a reader for the device's microphone track.
func (p *peer) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if !strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeOpus) {
		p.log.Info("track ignored", "codec", tr.Codec().MimeType)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ending {
		return
	}
	p.readers.Add(1)
	go p.readTrack(tr)
}

// readTrack feeds the track's Opus payloads to voice, in the order they arrive, until
// the peer connection closes. Gaps and reordering are counted, not repaired.
func (p *peer) readTrack(tr *webrtc.TrackRemote) {
	defer p.readers.Done()
	var last uint16
	have := false
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		m := p.srv.m
		m.RTPPackets.Inc()
		if have {
			switch d := pkt.SequenceNumber - last; {
			case d == 0 || d >= 0x8000:
				m.RTPLate.Inc()
			case d > 1:
				m.RTPLost.Add(float64(d - 1))
			}
		}
		if !have || pkt.SequenceNumber-last < 0x8000 {
			last, have = pkt.SequenceNumber, true
		}
		if len(pkt.Payload) == 0 {
			continue
		}
		p.mu.Lock()
		vc := p.vc
		p.mu.Unlock()
		if vc != nil {
			vc.HandleOpus(p.ctx, pkt.Payload)
		}
	}
}

// onState closes the peer when ICE fails, or stays disconnected for
// DisconnectTimeout.
func (p *peer) onState(s webrtc.PeerConnectionState) {
	switch s {
	case webrtc.PeerConnectionStateConnected:
		p.mu.Lock()
		if p.discTimer != nil {
			p.discTimer.Stop()
			p.discTimer = nil
		}
		p.mu.Unlock()
	case webrtc.PeerConnectionStateDisconnected:
		p.mu.Lock()
		if p.discTimer == nil && !p.ending {
			p.discTimer = time.AfterFunc(DisconnectTimeout, func() {
				if p.pc.ConnectionState() == webrtc.PeerConnectionStateDisconnected {
					p.Close(wire.CodeHeartbeatLost, "the peer stayed disconnected")
				}
			})
		}
		p.mu.Unlock()
	case webrtc.PeerConnectionStateFailed:
		p.Close(wire.CodeHeartbeatLost, "ICE failed")
	case webrtc.PeerConnectionStateClosed:
		p.Close(wire.CodeUnknown, "the peer connection closed")
	}
}

// run writes the send queue to the data channel until the peer closes, then tears
// it down.
func (p *peer) run() {
	defer p.srv.wg.Done()
	for {
		select {
		case m := <-p.send:
			if err := p.write(m); err != nil && !p.closed() {
				p.log.Debug("write failed", "err", err)
				p.Close(wire.CodeServerError, "write failed")
			}
		case <-p.done:
			p.teardown()
			return
		}
	}
}

// write sends one message, waiting while SCTP holds more than highWater bytes.
func (p *peer) write(m outMsg) error {
	if m.binary {
		defer func() { <-p.binSlots }()
	}
	p.mu.Lock()
	dc := p.dc
	p.mu.Unlock()
	if dc == nil {
		return errors.New("rtc: no data channel")
	}
	for dc.BufferedAmount() > highWater {
		t := time.NewTimer(250 * time.Millisecond) // a re-check, should a signal be missed
		select {
		case <-p.low:
		case <-t.C:
		case <-p.done:
			t.Stop()
			return ErrClosed
		}
		t.Stop()
	}
	p.srv.m.message(false, m.binary)
	if m.binary {
		return dc.Send(m.data)
	}
	return dc.SendText(string(m.data))
}

// teardown says why (a final error event), closes the peer connection, waits for
// the track readers and detaches from voice.
func (p *peer) teardown() {
	p.mu.Lock()
	p.ending = true
	dc, vc := p.dc, p.vc
	for _, t := range []*time.Timer{p.helloTimer, p.discTimer} {
		if t != nil {
			t.Stop()
		}
	}
	p.mu.Unlock()
	p.srv.m.Closed.WithLabelValues(p.code.String()).Inc()
	if dc != nil && p.code != wire.CodeUnknown && dc.ReadyState() == webrtc.DataChannelStateOpen {
		if p.code != wire.CodeSlowConsumer {
			p.drain(dc)
		}
		p.sayGoodbye(dc)
	}
	p.cancel()
	if err := p.pc.GracefulClose(); err != nil {
		p.log.Debug("closing the peer connection", "err", err)
	}
	p.readers.Wait()
	if vc != nil {
		vc.Detach()
	}
	p.srv.untrack(p)
}

// drain writes the events already queued (a final tx.result, say) within drainWait.
func (p *peer) drain(dc *webrtc.DataChannel) {
	deadline := time.Now().Add(drainWait)
	for time.Now().Before(deadline) {
		select {
		case m := <-p.send:
			if m.binary {
				<-p.binSlots
				continue
			}
			if dc.BufferedAmount() > highWater || dc.SendText(string(m.data)) != nil {
				return
			}
			p.srv.m.message(false, false)
		default:
			return
		}
	}
}

// sayGoodbye sends the error event that tells the device why the gateway closed the
// peer, and waits (at most finalWait) until SCTP has delivered it.
func (p *peer) sayGoodbye(dc *webrtc.DataChannel) {
	e := wire.NewError(p.code, p.reason)
	frame, err := wire.Encode(wire.Envelope{Device: p.dev.ID, TS: time.Now().UnixMilli()}, e)
	if err != nil || dc.SendText(string(frame)) != nil {
		return
	}
	p.srv.m.message(false, false)
	deadline := time.Now().Add(finalWait)
	for dc.BufferedAmount() > 0 && dc.ReadyState() == webrtc.DataChannelStateOpen && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// abort ends a peer whose goroutines never started (the answer failed, or the server
// closed while it was being answered).
func (p *peer) abort() {
	p.Close(wire.CodeUnknown, "aborted")
	p.mu.Lock()
	p.ending = true
	vc := p.vc
	p.mu.Unlock()
	p.cancel()
	if err := p.pc.GracefulClose(); err != nil {
		p.log.Debug("closing the peer connection", "err", err)
	}
	p.readers.Wait()
	if vc != nil {
		vc.Detach()
	}
}
