package client

import (
	"errors"
	"fmt"

	"github.com/earshot/earshot/device/wire"
)

// Errors.
var (
	// ErrClosed is returned by calls on a Client after Close.
	ErrClosed = errors.New("client: closed")
	// ErrDisconnected is returned by calls on a Client whose connection ended for good
	// (Reconnect is off, or the close code forbids reconnecting).
	ErrDisconnected = errors.New("client: disconnected")
	// ErrHashMismatch reports a prompt whose hash is not the hash of its terms: what
	// would be displayed is not what would be signed, so it is refused and not signed.
	ErrHashMismatch = errors.New("client: prompt hash does not match its terms")
	// ErrBadPrompt reports a prompt that is malformed or bound to another transaction
	// or device. It is refused and not signed.
	ErrBadPrompt = errors.New("client: prompt refused")
	// ErrMethodNotOffered reports a verification method the prompt does not accept.
	ErrMethodNotOffered = errors.New("client: verification method not offered by the prompt")
	// ErrRefused is wrapped by DialError and EnrollError: the gateway answered, and
	// said no.
	ErrRefused = errors.New("client: refused by the gateway")
	// ErrProtocol reports a gateway that broke the protocol during the handshake.
	ErrProtocol = errors.New("client: protocol error")
)

// DialError reports a WebSocket upgrade the gateway refused with an HTTP status and an
// RFC 9457 problem. Code is the problem's code, the name of a wire.Code such as
// "invalid_token" or "device_revoked".
type DialError struct {
	Status int
	Code   string
	Detail string
}

func (e *DialError) Error() string {
	return fmt.Sprintf("client: dial refused: %d %s: %s", e.Status, e.Code, e.Detail)
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *DialError) Unwrap() error { return ErrRefused }

// WireCode returns the wire.Code named by Code, or wire.CodeUnknown.
func (e *DialError) WireCode() wire.Code { return codeByName(e.Code) }

// retryable reports whether dialling again (with a fresh token) may succeed.
func (e *DialError) retryable() bool {
	switch e.WireCode() {
	case wire.CodeTokenExpired, wire.CodeTokenReplayed:
		return true // every connection mints a fresh token
	}
	return e.Status >= 500 || e.Status == 429
}

// EnrollError reports an enrolment the gateway refused, with the problem's code (for
// example "invalid_pairing_code").
type EnrollError struct {
	Status int
	Code   string
	Detail string
}

func (e *EnrollError) Error() string {
	return fmt.Sprintf("client: enrolment refused: %d %s: %s", e.Status, e.Code, e.Detail)
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *EnrollError) Unwrap() error { return ErrRefused }

var codesByName = func() map[string]wire.Code {
	m := make(map[string]wire.Code)
	for i := 1; i < 5000; i++ {
		c := wire.Code(i)
		if n := c.String(); n != fmt.Sprintf("code_%d", i) {
			m[n] = c
		}
	}
	return m
}()

func codeByName(name string) wire.Code { return codesByName[name] }
