package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/earshot/earshot/device/wire"
)

// WebRTC settings of the protocol.
const (
	// rtcLabel is the data channel that carries the events.
	rtcLabel = "earshot"
	// rtcInbox bounds the data channel messages received and not yet read. When it
	// is full pion's reader waits, and SCTP flow control holds the gateway back, as a
	// WebSocket stops being read; nothing is dropped.
	rtcInbox = 32
	// rtcGoodbye bounds the DELETE that ends the WHIP session on close.
	rtcGoodbye = 2 * time.Second
	// rtcMaxAnswer bounds the answer SDP.
	rtcMaxAnswer = 64 << 10
)

// webrtcDialer sets up a peer connection with the gateway by WHIP (RFC 9725), without
// trickle ICE: POST the offer with every candidate, with the device token as bearer;
// the 201 answer carries the gateway's candidates and the session's Location, which
// close DELETEs (with a fresh token: tokens are single-use). The peer connection has
// an Opus track for the microphone and the "earshot" data channel for the events.
type webrtcDialer struct {
	url   string // http:// or https://
	api   *webrtc.API
	http  *http.Client
	open  time.Duration
	token func() (string, error)
	log   *slog.Logger
}

var _ dialer = (*webrtcDialer)(nil)

func newWebRTCDialer(u *url.URL, cfg *Config, log *slog.Logger) (*webrtcDialer, error) {
	hu := *u
	hu.Scheme = "http"
	if u.Scheme == "whips" {
		hu.Scheme = "https"
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(cfg.WebRTC.Loopback)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("client: webrtc: %w", err)
	}
	return &webrtcDialer{
		url: hu.String(),
		api: webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me)),
		http: &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSClientConfig: cfg.TLS, DisableKeepAlives: true,
		}},
		open:  cfg.WebRTC.OpenTimeout,
		token: func() (string, error) { return cfg.Key.Token(cfg.Audience, cfg.Now(), 0) },
		log:   log,
	}, nil
}

func (d *webrtcDialer) dial(ctx context.Context, token string) (link, error) {
	pc, err := d.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("client: webrtc: %w", err)
	}
	l := &rtcLink{d: d, pc: pc, ctx: context.WithoutCancel(ctx), msgs: make(chan webrtc.DataChannelMessage, rtcInbox),
		opened: make(chan struct{}), gone: make(chan struct{}), quit: make(chan struct{})}
	if err := l.setUp(ctx, token); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// rtcLink is one peer connection: events on the data channel, one envelope per
// text message; prompt speech in binary messages; the microphone on the track.
type rtcLink struct {
	d        *webrtcDialer
	pc       *webrtc.PeerConnection
	dc       *webrtc.DataChannel
	track    *webrtc.TrackLocalStaticSample
	resource string // the WHIP session's URL, once created
	// ctx is the dial's context without its cancellation: its values, for the
	// DELETE at close.
	ctx context.Context

	msgs   chan webrtc.DataChannelMessage
	opened chan struct{}
	quit   chan struct{} // closed by close: pion's reader stops waiting for room

	mu        sync.Mutex
	gone      chan struct{} // the data channel or the peer connection ended
	goneErr   error
	ended     bool // the gateway ended the session (a final error): no DELETE
	openOnce  sync.Once
	closeOnce sync.Once
}

var (
	_ link     = (*rtcLink)(nil)
	_ opusLink = (*rtcLink)(nil)
)

func (l *rtcLink) setUp(ctx context.Context, token string) error {
	track, err := webrtc.NewTrackLocalStaticSample(
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "microphone", "earshot")
	if err != nil {
		return fmt.Errorf("client: webrtc: %w", err)
	}
	if _, err := l.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		return fmt.Errorf("client: webrtc: %w", err)
	}
	l.track = track
	ordered := true
	dc, err := l.pc.CreateDataChannel(rtcLabel, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return fmt.Errorf("client: webrtc: %w", err)
	}
	l.dc = dc
	dc.OnOpen(func() { l.openOnce.Do(func() { close(l.opened) }) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case l.msgs <- m:
		case <-l.quit:
		}
	})
	dc.OnClose(func() { l.fail(errors.New("client: webrtc: the data channel closed")) })
	l.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed:
			l.fail(errors.New("client: webrtc: the peer connection failed"))
		case webrtc.PeerConnectionStateClosed:
			l.fail(errors.New("client: webrtc: the peer connection closed"))
		}
	})

	offer, err := l.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("client: webrtc: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("client: webrtc: %w", err)
	}
	timer := time.NewTimer(l.d.open)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("client: dial: %w", ctx.Err())
	case <-timer.C:
		return errors.New("client: dial: ICE gathering timed out")
	}
	answer, err := l.post(ctx, token, l.pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%w: the gateway's answer: %w", ErrProtocol, err)
	}
	select {
	case <-l.opened:
		return nil
	case <-l.gone:
		return fmt.Errorf("client: dial: %w", l.goneErr)
	case <-ctx.Done():
		return fmt.Errorf("client: dial: %w", ctx.Err())
	case <-timer.C:
		return errors.New("client: dial: the data channel did not open in time")
	}
}

// post sends the offer and returns the answer.
func (l *rtcLink) post(ctx context.Context, token, offer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.d.url, bytes.NewReader([]byte(offer)))
	if err != nil {
		return "", fmt.Errorf("client: dial: %w", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := l.d.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("client: dial: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", dialError(resp)
	}
	defer resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("%w: WHIP answer without a Location: %w", ErrProtocol, err)
	}
	l.resource = loc.String()
	body, err := io.ReadAll(io.LimitReader(resp.Body, rtcMaxAnswer))
	if err != nil {
		return "", fmt.Errorf("client: dial: reading the answer: %w", err)
	}
	return string(body), nil
}

// fail marks the link as gone; read returns err once the messages already received
// are read.
func (l *rtcLink) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.gone:
	default:
		l.goneErr = err
		close(l.gone)
	}
}

func (l *rtcLink) write(_ context.Context, frame []byte) error {
	if !l.alive() {
		return fmt.Errorf("write: %w", errLinkClosed)
	}
	if err := l.dc.SendText(string(frame)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (l *rtcLink) writeAudio(_ context.Context, frame []byte) error {
	if !l.alive() {
		return fmt.Errorf("write: %w", errLinkClosed)
	}
	if err := l.dc.Send(frame); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (l *rtcLink) writeOpus(packet []byte) error {
	if !l.alive() {
		return fmt.Errorf("write: %w", errLinkClosed)
	}
	if err := l.track.WriteSample(media.Sample{Data: packet, Duration: frameDur}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (l *rtcLink) read(deadline time.Time) (wire.Envelope, error) {
	select {
	case m := <-l.msgs:
		return l.decode(m)
	default:
	}
	var tc <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		tc = t.C
	}
	select {
	case m := <-l.msgs:
		return l.decode(m)
	case <-l.gone:
		select {
		case m := <-l.msgs:
			return l.decode(m)
		default:
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return wire.Envelope{}, l.goneErr
	case <-l.quit:
		return wire.Envelope{}, errLinkClosed
	case <-tc:
		return wire.Envelope{}, errTimeout
	}
}

// decode turns a data channel message into an envelope: a binary message is an
// audio frame; an error with a disconnect code is the gateway's end of the session
// (the counterpart of a WebSocket close code).
func (l *rtcLink) decode(m webrtc.DataChannelMessage) (wire.Envelope, error) {
	if !m.IsString {
		return wire.Envelope{Type: typeAudioFrame, Body: m.Data}, nil
	}
	env, err := wire.Decode(m.Data)
	if err != nil {
		return env, &undecodable{bytes: len(m.Data), err: err}
	}
	if env.Type == wire.TypeError {
		e := new(wire.Error)
		if wire.DecodeBody(env, e) == nil && e.Code.Disconnect() {
			l.mu.Lock()
			l.ended = true
			l.mu.Unlock()
			return env, &sessionEnd{code: e.Code, reason: e.Message, ref: e.Ref}
		}
	}
	return env, nil
}

func (l *rtcLink) helloReady() error     { return nil }
func (l *rtcLink) helloSent()            {}
func (l *rtcLink) started(*wire.HelloOK) {} // ICE consent checks keep watch
func (l *rtcLink) persistent() bool      { return false }

func (l *rtcLink) alive() bool {
	select {
	case <-l.gone:
		return false
	default:
		return true
	}
}

// close ends the WHIP session (DELETE, unless the gateway ended it) and closes the
// peer connection, waiting for pion's goroutines.
func (l *rtcLink) close() {
	l.closeOnce.Do(func() {
		close(l.quit)
		l.mu.Lock()
		bye := l.resource != "" && !l.ended
		l.mu.Unlock()
		if bye && l.alive() {
			l.delete()
		}
		if err := l.pc.GracefulClose(); err != nil {
			l.d.log.Debug("closing the peer connection", "err", err)
		}
	})
}

// delete ends the WHIP session, best effort: the gateway also notices the peer
// connection closing.
func (l *rtcLink) delete() {
	token, err := l.d.token()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, rtcGoodbye)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, l.resource, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := l.d.http.Do(req)
	if err != nil {
		l.d.log.Debug("WHIP DELETE failed", "err", err)
		return
	}
	_ = resp.Body.Close() // nothing in it we need
}

// abort breaks the link at once, unblocking read.
func (l *rtcLink) abort() {
	l.fail(errors.New("client: webrtc: aborted"))
	_ = l.pc.Close() // close waits for pion's goroutines later
}
