package client

import "github.com/earshot/earshot/device/wire"

// EventDisconnected is the Event type the client uses to report a lost connection. It
// is not a wire type: it never travels.
const EventDisconnected wire.Type = "client.disconnected"

// Event is one thing that happened on the connection, in the order it happened.
// Exactly one of the pointer fields is set, matching Type, except when Err is set.
type Event struct {
	Type wire.Type
	// Seq is the downlink seq of the message, 0 for messages without one.
	Seq            uint64
	HelloOK        *wire.HelloOK        // TypeHelloOK, after every (re)connection
	ConfirmRequest *wire.ConfirmRequest // TypeConfirmRequest
	TxResult       *wire.TxResult       // TypeTxResult
	Error          *wire.Error          // TypeError; Ref names the uplink message
	Disconnected   *DisconnectInfo      // EventDisconnected
	SpeechResult   *wire.SpeechResult   // TypeSpeechResult: what the gateway heard
	TurnMetrics    *wire.TurnMetrics    // TypeTurnMetrics
	// PINSetOK answers SetPIN (TypePINSetOK): Ref is the message id SetPIN returned.
	PINSetOK *wire.PINSetOK
	// Notice is a message from the user's agent (TypeNotice) to show or speak.
	Notice *wire.Notice
	// PromptAudio is a spoken prompt, delivered once its last frame arrived
	// (TypePromptAudio; Config.PromptAudio).
	PromptAudio *PromptSpeech
	// Err is set when a downlink message of a known type could not be decoded or
	// validated; the message was acknowledged and its body is missing.
	Err error
}

// DisconnectInfo describes a lost connection.
type DisconnectInfo struct {
	// Code is the WebSocket close code the gateway sent, as a wire.Code (4000-4999 are
	// earshot's); zero when the connection dropped without a close frame.
	Code wire.Code
	// Reason is the close frame's text, if any.
	Reason string
	// Reconnecting is true when the client is about to reconnect; false means the
	// client has stopped and Events will be closed.
	Reconnecting bool
	// Err is the underlying read or dial error.
	Err error
}

// PromptSpeech is a prompt the gateway spoke: its prompt.audio announcement and the
// audio of the stream that followed, as 16 kHz mono samples. It is at most
// MaxPromptAudio long; longer streams are cut (and the frames counted in
// Stats.AudioDropped).
type PromptSpeech struct {
	wire.PromptAudio
	PCM []int16 // 16 kHz mono
}
