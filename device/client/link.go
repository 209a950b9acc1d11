package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// link is one transport connection to the gateway. The client's core (session.go)
// drives every link the same way: hello, then the session's downlinks and uplinks;
// what differs between transports lives behind this interface, one file each
// (link_ws.go, link_mqtt.go).
type link interface {
	// write sends one uplink frame. Safe for concurrent use.
	write(ctx context.Context, frame []byte) error
	// writeAudio sends one binary audio frame (wire.AudioHeader and payload), or
	// ErrAudioUnsupported on a transport without binary messages (MQTT). Safe for
	// concurrent use.
	writeAudio(ctx context.Context, frame []byte) error
	// read returns the next downlink envelope, waiting until deadline (zero: no
	// deadline beyond the link's own liveness rules). It is called by one goroutine
	// at a time. Besides link failures it returns errTimeout, an *undecodable frame,
	// a *sessionEnd, errGatewayRestarted and errGatewayOffline (see below). A binary
	// audio frame comes back as an envelope of typeAudioFrame with the frame as Body.
	read(deadline time.Time) (wire.Envelope, error)
	// helloReady reports whether a hello can be sent now: errGatewayOffline while
	// the gateway is known to be away (MQTT).
	helloReady() error
	// helloSent tells the link that a hello went out.
	helloSent()
	// started tells the link that a session started (WebSocket arms its heartbeat).
	started(ok *wire.HelloOK)
	// persistent reports whether the link outlives a session (MQTT): hello is re-sent
	// when no hello.ok comes in time, and a session that ends with a reconnect code
	// is resumed on the same link while it is up.
	persistent() bool
	// alive reports whether the link can still carry messages.
	alive() bool
	// close ends the link, saying goodbye when it still can (a WebSocket close frame;
	// MQTT's offline status, then DISCONNECT). Idempotent; safe from any goroutine;
	// returns when the link's resources are released.
	close()
	// abort breaks the link at once, unblocking read (a cancelled handshake).
	abort()
}

// typeAudioFrame is the envelope type read gives a binary audio frame (prompt
// speech), so that frames stay in order with the events around them. It never
// travels.
const typeAudioFrame wire.Type = "client.audio_frame"

// opusLink is a link with an Opus media track for the microphone (WebRTC).
type opusLink interface {
	link
	// writeOpus sends one 20 ms Opus packet on the track.
	writeOpus(packet []byte) error
}

// dialer makes the links of one Client.
type dialer interface {
	// dial opens a link authenticated with token (a fresh device token), ready for
	// hello. A refusal is a *DialError.
	dial(ctx context.Context, token string) (link, error)
}

// Signals a link returns from read. They are not failures of the link.
var (
	// errTimeout: the deadline passed. A WebSocket is broken after it; MQTT is not.
	errTimeout = errors.New("client: no message before the deadline")
	// errGatewayRestarted: the gateway's status shows an epoch the last hello did not
	// go to (MQTT): the gateway restarted or reconnected and may not hold the session.
	errGatewayRestarted = errors.New("client: the gateway restarted (new epoch)")
	// errGatewayOffline: the gateway's status went offline (MQTT).
	errGatewayOffline = errors.New("client: the gateway went offline")
	// errLinkClosed: the link was closed by this side.
	errLinkClosed = errors.New("client: link closed")
)

// sessionEnd is a session ended by the gateway while the link stays up: over MQTT an
// error with a disconnect code (4000-4999) on the device's down topic, the
// counterpart of a WebSocket close code.
type sessionEnd struct {
	code   wire.Code
	reason string
	ref    string // the uplink message the error answers (no_session names it)
}

func (e *sessionEnd) Error() string {
	return fmt.Sprintf("client: session ended by the gateway: %s (%d): %s", e.code, uint16(e.code), e.reason)
}

// undecodable is a downlink frame that is not a valid envelope. It is dropped.
type undecodable struct {
	bytes int
	err   error
}

func (e *undecodable) Error() string {
	return fmt.Sprintf("client: undecodable frame of %d bytes: %v", e.bytes, e.err)
}

func (e *undecodable) Unwrap() error { return e.err }

// signal reports whether err is one of the link signals rather than a failure.
func signal(err error) bool {
	var se *sessionEnd
	var ud *undecodable
	return errors.Is(err, errTimeout) || errors.Is(err, errGatewayRestarted) ||
		errors.Is(err, errGatewayOffline) || errors.As(err, &se) || errors.As(err, &ud)
}
