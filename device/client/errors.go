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
	// ErrStepUpMethod reports Confirm called with wire.MethodPIN or wire.MethodPhone:
	// a PIN approval is signed with ConfirmPIN, a phone approval on the phone with
	// Approve.
	ErrStepUpMethod = errors.New("client: pin and phone are signed with ConfirmPIN and Approve, not Confirm")
	// ErrBindingMismatch reports a prompt on the phone whose binding code is not the
	// code of its hash (wire.BindingCode): the code the user compares with the other
	// device would not prove it is the same purchase, so it is refused and not signed.
	ErrBindingMismatch = errors.New("client: prompt binding code does not match its hash")
	// ErrRefused is wrapped by DialError and EnrollError: the gateway answered, and
	// said no.
	ErrRefused = errors.New("client: refused by the gateway")
	// ErrProtocol reports a gateway that broke the protocol during the handshake.
	ErrProtocol = errors.New("client: protocol error")
	// ErrGatewayOffline reports, over MQTT, a broker whose gateway status is offline
	// when Dial tries to connect. (A client that is already connected waits for the
	// gateway instead.)
	ErrGatewayOffline = errors.New("client: the gateway is offline")
	// ErrAudioUnsupported reports speech on a transport that carries no audio (MQTT),
	// or a SpeakOptions the link cannot send.
	ErrAudioUnsupported = errors.New("client: audio is not supported")
	// ErrLinkChanged reports an utterance cut short because the connection it started
	// on ended; speak it again.
	ErrLinkChanged = errors.New("client: the connection changed during the utterance")
)

// DialError reports a connection the gateway (or its broker) refused:
//
//   - over WebSocket, a refused upgrade: Status is the HTTP status and Code the RFC
//     9457 problem's code, the name of a wire.Code such as "invalid_token";
//   - over MQTT, a refused CONNECT: ReturnCode is the CONNACK return code (4, bad user
//     name or password, or 5, not authorised, for any token or device problem: MQTT
//     3.1.1 cannot say which), Status and Code are empty;
//   - over MQTT, a refused hello: Code names the error's wire.Code (for example
//     "unknown_device" or "device_revoked"), Status and ReturnCode are zero.
type DialError struct {
	Status     int
	Code       string
	ReturnCode byte
	Detail     string
}

func (e *DialError) Error() string {
	switch {
	case e.ReturnCode != 0:
		return fmt.Sprintf("client: mqtt connect refused: return code %d: %s", e.ReturnCode, e.Detail)
	case e.Status == 0:
		return fmt.Sprintf("client: hello refused: %s: %s", e.Code, e.Detail)
	}
	return fmt.Sprintf("client: dial refused: %d %s: %s", e.Status, e.Code, e.Detail)
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *DialError) Unwrap() error { return ErrRefused }

// WireCode returns the wire.Code named by Code, or wire.CodeUnknown.
func (e *DialError) WireCode() wire.Code { return codeByName(e.Code) }

// MQTT CONNACK return codes (MQTT-3.2.2.3).
const (
	connackServerUnavailable = 3
	connackBadCredentials    = 4
	connackNotAuthorised     = 5
)

// tokenRefused reports a CONNACK refusal of the device's credentials.
func (e *DialError) tokenRefused() bool {
	return e.ReturnCode == connackBadCredentials || e.ReturnCode == connackNotAuthorised
}

// retryable reports whether dialling again (with a fresh token) may succeed.
func (e *DialError) retryable() bool {
	switch c := e.WireCode(); {
	case c == wire.CodeTokenExpired, c == wire.CodeTokenReplayed:
		return true // every connection mints a fresh token
	case c.Disconnect():
		return c.Reconnect()
	}
	return e.Status >= 500 || e.Status == 429 || e.ReturnCode == connackServerUnavailable || e.tokenRefused()
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
