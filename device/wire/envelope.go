package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the protocol version this package speaks.
const Version = 1

// Subprotocol is the WebSocket subprotocol that selects this version.
const Subprotocol = "earshot.v1"

// Size limits. A frame over a limit is refused before it is parsed further.
const (
	MaxFrameBytes = 32 << 10 // one encoded event frame
	MaxIDBytes    = 64       // message, device, session and transaction ids
	MaxTextBytes  = 1024     // utterance and prompt text
	MaxTokenBytes = 2048     // device token, resume token
	MaxItems      = 32       // line items in one set of terms
	MaxNameBytes  = 128      // merchant and item names, skus, options
)

// Decoding errors.
var (
	// ErrTooLarge reports a frame or field over its size limit.
	ErrTooLarge = errors.New("wire: too large")
	// ErrFrameTooLarge reports a whole frame over MaxFrameBytes; it wraps ErrTooLarge.
	ErrFrameTooLarge = fmt.Errorf("%w: frame", ErrTooLarge)
	// ErrVersion reports an envelope of a protocol version this package does not speak.
	ErrVersion = errors.New("wire: unsupported version")
)

// Type names a message. The zero value is not a valid type.
type Type string

// The message set of protocol v1.
const (
	TypeHello          Type = "hello"           // device -> gateway, first message
	TypeHelloOK        Type = "hello.ok"        // gateway -> device
	TypeUtterance      Type = "utterance"       // device -> gateway
	TypeConfirmRequest Type = "confirm.request" // gateway -> device, the consent prompt
	TypeConfirm        Type = "confirm"         // device -> gateway, the signed decision
	TypeTxResult       Type = "tx.result"       // gateway -> device, a transaction's state
	TypeTxStatus       Type = "tx.status"       // device -> gateway, query a transaction
	TypeTxCancel       Type = "tx.cancel"       // device -> gateway, "cancel my order"
	TypeAck            Type = "ack"             // device -> gateway, cumulative downlink ack
	TypeError          Type = "error"           // gateway -> device
	TypePing           Type = "ping"            // either way
	TypePong           Type = "pong"            // either way
	TypePINSet         Type = "pin.set"         // device (phone) -> gateway, the user's PIN key
	TypePINSetOK       Type = "pin.set.ok"      // gateway -> device
	TypeNotice         Type = "notice"          // gateway -> device, a message from the user's agent
)

var knownTypes = map[Type]bool{
	TypeHello: true, TypeHelloOK: true, TypeUtterance: true, TypeConfirmRequest: true,
	TypeConfirm: true, TypeTxResult: true, TypeTxStatus: true, TypeTxCancel: true, TypeAck: true,
	TypeError: true, TypePing: true, TypePong: true, TypePINSet: true, TypePINSetOK: true, TypeNotice: true,
	TypeAudioStart: true, TypeAudioEnd: true, TypeSpeechResult: true, TypePromptAudio: true, TypeTurnMetrics: true,
}

// Known reports whether t is part of protocol v1.
func (t Type) Known() bool { return knownTypes[t] }

func (t Type) String() string { return string(t) }

// Envelope is the frame every message travels in, on every transport.
type Envelope struct {
	V    int    `json:"v"`
	Type Type   `json:"type"`
	ID   string `json:"id,omitempty"` // sender-chosen message id; uplink duplicates are dropped by it
	// Device and Session are filled in by the gateway on downlink messages; a device
	// may leave them empty on uplink (the connection already says who it is).
	Device  string          `json:"device,omitempty"`
	Session string          `json:"session,omitempty"`
	Seq     uint64          `json:"seq,omitempty"` // downlink sequence number, from 1
	TS      int64           `json:"ts,omitempty"`  // sender's clock, Unix milliseconds
	Body    json.RawMessage `json:"body,omitempty"`
}

// Known reports whether the envelope's type is part of protocol v1. Unknown types are
// to be ignored, not treated as errors.
func (e *Envelope) Known() bool { return e.Type.Known() }

// Decode parses one frame. It checks the frame size, the version and the shape of the
// envelope, not the body: call DecodeBody for that.
func Decode(frame []byte) (Envelope, error) {
	var e Envelope
	if len(frame) > MaxFrameBytes {
		return e, fmt.Errorf("%w of %d bytes, limit %d", ErrFrameTooLarge, len(frame), MaxFrameBytes)
	}
	if len(bytes.TrimSpace(frame)) == 0 {
		return e, errors.New("wire: empty frame")
	}
	if err := json.Unmarshal(frame, &e); err != nil {
		return e, fmt.Errorf("wire: envelope: %w", err)
	}
	if e.V != Version {
		return e, fmt.Errorf("%w: %d, want %d", ErrVersion, e.V, Version)
	}
	if e.Type == "" {
		return e, errors.New("wire: envelope without type")
	}
	for _, f := range []struct{ name, v string }{{"type", string(e.Type)}, {"id", e.ID}, {"device", e.Device}, {"session", e.Session}} {
		if len(f.v) > MaxIDBytes {
			return e, fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, f.name, len(f.v), MaxIDBytes)
		}
	}
	return e, nil
}

// DecodeBody parses the envelope's body into b and validates it. The envelope's type
// must match the body's.
func DecodeBody(e Envelope, b Body) error {
	if e.Type != b.Type() {
		return fmt.Errorf("wire: body for %q in a %q envelope", b.Type(), e.Type)
	}
	raw := e.Body
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if err := json.Unmarshal(raw, b); err != nil {
		return fmt.Errorf("wire: %s body: %w", e.Type, err)
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("wire: %s body: %w", e.Type, err)
	}
	return nil
}

// Encode builds a frame from header fields and a body. V and Type are set from the
// body; the result is checked against MaxFrameBytes.
func Encode(h Envelope, b Body) ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", b.Type(), err)
	}
	raw, err := marshal(b)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", b.Type(), err)
	}
	h.V, h.Type, h.Body = Version, b.Type(), raw
	frame, err := marshal(h)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", b.Type(), err)
	}
	if len(frame) > MaxFrameBytes {
		return nil, fmt.Errorf("%w: %s frame of %d bytes, limit %d", ErrFrameTooLarge, b.Type(), len(frame), MaxFrameBytes)
	}
	return frame, nil
}

// marshal is json.Marshal without HTML escaping: "<" stays one byte, so a frame that
// decodes within the limits re-encodes within them too.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Body is a message body of protocol v1.
type Body interface {
	Type() Type
	// Validate checks sizes and shapes and says what is wrong.
	Validate() error
}

// NewBody returns an empty body for a known type, or nil.
func NewBody(t Type) Body {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeHelloOK:
		return new(HelloOK)
	case TypeUtterance:
		return new(Utterance)
	case TypeConfirmRequest:
		return new(ConfirmRequest)
	case TypeConfirm:
		return new(Confirm)
	case TypeTxResult:
		return new(TxResult)
	case TypeTxStatus:
		return new(TxStatus)
	case TypeTxCancel:
		return new(TxCancel)
	case TypePINSet:
		return new(PINSet)
	case TypePINSetOK:
		return new(PINSetOK)
	case TypeNotice:
		return new(Notice)
	case TypeAck:
		return new(Ack)
	case TypeError:
		return new(Error)
	case TypePing:
		return new(Ping)
	case TypePong:
		return new(Pong)
	case TypeAudioStart:
		return new(AudioStart)
	case TypeAudioEnd:
		return new(AudioEnd)
	case TypeSpeechResult:
		return new(SpeechResult)
	case TypePromptAudio:
		return new(PromptAudio)
	case TypeTurnMetrics:
		return new(TurnMetrics)
	}
	return nil
}
