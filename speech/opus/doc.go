// Package opus decodes the Opus audio of devices (WebRTC and the binary
// audio frames of the other transports) to the canonical 16 kHz mono
// samples of package speech, in pure Go (github.com/pion/opus). It also has
// an encoder for the simulator and tests, which needs libopus through cgo:
// it exists only when built with the tags libopus and nolibopusfile
// ([EncoderAvailable] says which build this is).
//
// Neither Decoder nor Encoder is safe for concurrent use: one per stream.
package opus
