// Package rtc is the WebRTC transport: a device opens a peer connection with one WHIP
// exchange (RFC 9725) and then talks to the gateway as over WebSocket, with its
// microphone on an Opus track. It is the only importer of pion/webrtc on the gateway
// side.
//
// The exchange, as the device sees it:
//
//	POST /v1/whip                  Content-Type: application/sdp
//	Authorization: Bearer <token>  body: the offer (one Opus audio m-line the device
//	                               sends, one m=application for the data channel),
//	                               with its ICE candidates (no trickle)
//	<- 201 Created                 Location: /v1/whip/{id}, body: the answer, with the
//	                               gateway's candidates (it waits for gathering)
//	ICE, DTLS, SCTP                the device's data channel "earshot" opens
//	"earshot" text messages  <->   event envelopes, exactly as WebSocket text frames
//	                               (hello first, within Config.HelloTimeout)
//	"earshot" binary messages <->  audio frames with a wire.AudioHeader, as WebSocket
//	                               binary frames (device -> gateway: allowed; gateway
//	                               -> device: prompt speech)
//	audio track (Opus RTP)    ->   the device's microphone; audio.start/audio.end on the
//	                               data channel say which packets are speech
//	DELETE /v1/whip/{id}           ends the session (a fresh token of the same device)
//
// Trickle ICE and ICE restarts are not supported: PATCH on a session is answered with
// 405 Method Not Allowed and no Accept-Patch header. Device tokens are single-use, so
// the DELETE carries a fresh one; a token of another device gets 404.
//
// Prompt speech goes back as binary data-channel messages (16 kHz PCM in the same
// frames as over WebSocket), not as an outbound Opus track, on purpose. Consent-critical
// audio must arrive whole: the data channel is SCTP, reliable and ordered, while RTP
// drops packets and pion/opus has no packet-loss concealment to hide the gaps. Sending
// Opus would need the cgo libopus encoder in the gateway. A device can replay or cache
// a prompt it received as a message. And firmware keeps one player path for both
// transports. The cost is about 256 kbit/s during a 3-4 s prompt, nothing on a LAN.
//
// Each peer has one goroutine that writes the bounded send queue to the data channel
// and tears the peer down, and one that reads the audio track; pion's own goroutines
// are ended by PeerConnection.GracefulClose, which the first one calls. The overflow
// policy is the WebSocket transport's: an event that finds the queue full closes the
// peer with wire.CodeSlowConsumer (reconnectable; the session resumes), while binary
// frames (SendBinary) wait for room and may hold at most half of the queue, so audio
// never crowds events out. Close sends a final error event carrying the code (the
// device treats it as a WebSocket close code), waits briefly for it to be delivered,
// then closes the peer connection. A peer whose ICE state is disconnected for
// DisconnectTimeout, or failed, is closed.
package rtc
