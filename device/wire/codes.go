package wire

import "fmt"

// Code is an error or disconnect code. Its range tells a device what to do:
//
//	1000-1999  request refused; do not retry it unchanged (fix the request first)
//	2000-2999  temporary; retry the same request later with backoff
//	4000-4499  disconnect; reconnect with backoff and resume
//	4500-4999  disconnect; do not reconnect until the cause is fixed (new token,
//	           re-enrolment, firmware update)
//
// The 4000-4999 range is the WebSocket application range (RFC 6455 section 7.4.2), so
// a disconnect code is also the WebSocket close code.
type Code uint16

// Request errors (1000-1999): not retryable as they are.
const (
	CodeUnknown             Code = 0
	CodeBadRequest          Code = 1000 // malformed frame or body
	CodeUnsupportedVersion  Code = 1001 // envelope version not spoken by this gateway
	CodeTooLarge            Code = 1002 // a field or frame is over its size limit
	CodeNotAuthenticated    Code = 1003 // message before a successful hello
	CodeUnknownTx           Code = 1010 // no such transaction for this device
	CodeChallengeMismatch   Code = 1011 // the confirm's hash is not the pending challenge's
	CodeBadSignature        Code = 1012 // the confirm's signature does not verify
	CodeChallengeExpired    Code = 1013 // the prompt expired before the confirm arrived
	CodeAlreadyDecided      Code = 1014 // the transaction was already confirmed or declined
	CodeWrongDevice         Code = 1015 // the challenge belongs to another device or session
	CodeMethodNotAllowed    Code = 1016 // this verification method is not allowed for the prompt
	CodeNotCancellable      Code = 1017 // the transaction cannot be cancelled (any more)
	CodeBadPIN              Code = 1018 // the PIN was wrong; the error says how many tries are left
	CodePINLocked           Code = 1019 // the PIN was wrong too often: the transaction is closed
	CodeNotUnderstood       Code = 1020 // the utterance did not parse into a purchase
	CodeRefused             Code = 1021 // a risk rule refused the purchase
	CodeBadAmount           Code = 1022 // an amount is not an integer in minor units
	CodeUnsupportedCurrency Code = 1023 // not an ISO 4217 code
	CodeSpeechUnavailable   Code = 1024 // the gateway has no speech recogniser: send text
	CodeNoStream            Code = 1025 // an audio frame or audio.end for a stream that is not open
	CodeNoPIN               Code = 1026 // the prompt needs a PIN and the user has none: set one on the phone
	CodeNoPhone             Code = 1027 // the prompt needs the user's phone and none is enrolled
)

// Temporary errors (2000-2999): retry later.
const (
	CodeInternal         Code = 2000 // the gateway failed; the request may be retried
	CodeUnavailable      Code = 2001 // a dependency (agent, store) is unavailable
	CodeRateLimited      Code = 2002 // too many requests; back off
	CodeAgentUnavailable Code = 2003 // the agent did not answer; the request is kept
)

// Disconnect codes, reconnect allowed (4000-4499).
const (
	CodeShutdown      Code = 4000 // the gateway is shutting down
	CodeSlowConsumer  Code = 4001 // the device did not read fast enough; its queue overflowed
	CodeHeartbeatLost Code = 4002 // no pong or traffic within the deadline
	CodeReplaced      Code = 4003 // a newer connection of the same device took over
	CodeServerError   Code = 4004 // an internal error ended the connection
	CodeHelloTimeout  Code = 4005 // no hello within the deadline after connecting
	CodeNoSession     Code = 4006 // a message on a link without a session (MQTT): send hello
)

// Disconnect codes, do not reconnect as is (4500-4999).
const (
	CodeInvalidToken      Code = 4500 // malformed or badly signed device token
	CodeTokenExpired      Code = 4501 // mint a fresh token, then reconnect
	CodeUnknownDevice     Code = 4502 // the device is not enrolled
	CodeDeviceRevoked     Code = 4503 // the device was revoked; re-enrol
	CodeProtocolViolation Code = 4504 // the device broke the protocol
	CodeFrameTooLarge     Code = 4505 // a frame exceeded MaxFrameBytes
	CodeTokenReplayed     Code = 4506 // the token's nonce was already used
)

var codeNames = map[Code]string{
	CodeUnknown: "unknown", CodeBadRequest: "bad_request", CodeUnsupportedVersion: "unsupported_version",
	CodeTooLarge: "too_large", CodeNotAuthenticated: "not_authenticated", CodeUnknownTx: "unknown_tx",
	CodeChallengeMismatch: "challenge_mismatch", CodeBadSignature: "bad_signature",
	CodeChallengeExpired: "challenge_expired", CodeAlreadyDecided: "already_decided",
	CodeWrongDevice: "wrong_device", CodeMethodNotAllowed: "method_not_allowed",
	CodeNotCancellable: "not_cancellable", CodeBadPIN: "bad_pin", CodePINLocked: "pin_locked",
	CodeNoPIN: "no_pin", CodeNoPhone: "no_phone",
	CodeNotUnderstood: "not_understood", CodeRefused: "refused", CodeBadAmount: "bad_amount",
	CodeUnsupportedCurrency: "unsupported_currency", CodeSpeechUnavailable: "speech_unavailable", CodeNoStream: "no_stream",
	CodeInternal:    "internal",
	CodeUnavailable: "unavailable", CodeRateLimited: "rate_limited", CodeAgentUnavailable: "agent_unavailable",
	CodeShutdown: "shutdown", CodeSlowConsumer: "slow_consumer", CodeHeartbeatLost: "heartbeat_lost",
	CodeReplaced: "replaced", CodeServerError: "server_error", CodeHelloTimeout: "hello_timeout",
	CodeNoSession:    "no_session",
	CodeInvalidToken: "invalid_token", CodeTokenExpired: "token_expired", CodeUnknownDevice: "unknown_device",
	CodeDeviceRevoked: "device_revoked", CodeProtocolViolation: "protocol_violation",
	CodeFrameTooLarge: "frame_too_large", CodeTokenReplayed: "token_replayed",
}

// String returns the code's stable snake_case name, or "code_N" for codes this version
// does not know.
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code_%d", uint16(c))
}

// Retryable reports whether the same request may be retried later unchanged.
func (c Code) Retryable() bool { return c >= 2000 && c < 3000 }

// Disconnect reports whether the code ends the connection.
func (c Code) Disconnect() bool { return c >= 4000 && c < 5000 }

// Reconnect reports whether a device disconnected with this code should reconnect
// (with backoff). Codes outside the disconnect ranges are treated as reconnectable, so
// an older device survives a newer gateway's codes in the 4000-4499 sense.
func (c Code) Reconnect() bool { return !(c >= 4500 && c < 5000) }

// Error is a code with device-visible text. It is the body of an "error" message and
// implements error so gateway code can return it as a value.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Retry repeats Code.Retryable for devices that do not keep a code table.
	Retry bool `json:"retry"`
	// Ref is the id of the uplink message this error answers, if any.
	Ref string `json:"ref,omitempty"`
	// Tx is the transaction concerned, if any.
	Tx string `json:"tx,omitempty"`
}

// NewError returns an Error with Retry derived from the code.
func NewError(code Code, message string) *Error {
	return &Error{Code: code, Message: message, Retry: code.Retryable()}
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d): %s", e.Code, uint16(e.Code), e.Message) }
