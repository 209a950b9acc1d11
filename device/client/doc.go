// Package client is earshot's reference device client: what smart-glasses, kiosk or
// phone firmware runs to talk to a gateway (protocol v1, see device/wire and
// docs/protocol.md), over WebSocket, MQTT 3.1.1 or WebRTC. Config.URL's scheme picks
// the transport (ws://, wss://; mqtt:// or tcp://, mqtts:// or ssl://; whip://,
// whips://; Discover asks a gateway which it offers); everything else behaves the same
// on all of them.
//
// A device (glasses, kiosk or phone) enrols once with a pairing code the user created
// (Enroll), keeps its key and the returned audience, then connects with Dial. Dial
// mints a fresh device token for every connection (the upgrade's bearer token; the
// MQTT password), sends hello and waits for hello.ok. From then on:
//
//	Say(text)                -> utterance{text, ptt}
//	                         <- confirm.request          (Events: TypeConfirmRequest)
//	Confirm(req, decision)   -> confirm{tx, hash, sig}   (only if req.Hash matches the terms)
//	                         <- tx.result mandated, then redeemed (Events: TypeTxResult)
//	Status(tx)               -> tx.status
//	                         <- tx.result
//	Cancel(tx, reason)       -> tx.cancel                (after the redemption too)
//	                         <- tx.result cancelling, then cancelled (or an error)
//
// Step-up (docs/protocol.md, "Step-up: the phone and the PIN"). A purchase the
// gateway's risk rules find large needs a stronger method. On glasses the prompt
// offers only "phone" and carries a binding code: the glasses show "approve on your
// phone, code NNNN" and may only decline (Confirm refuses wire.MethodPhone). The user's
// phone, a device of kind "phone" enrolled to the same user, gets the same
// confirm.request:
//
//	                         <- confirm.request          (terms of the glasses; binding)
//	Approve(req, decision)   -> confirm{method: phone}   (only if the hash and binding match)
//	                         <- tx.result                (a copy; the glasses get theirs)
//	SetPIN(pin)              -> pin.set{salt, pub}       (the PIN never leaves the phone)
//	                         <- pin.set.ok{ref}          (Events: TypePINSetOK)
//
// On a kiosk the prompt offers "pin" with the user's PIN salt:
//
//	ConfirmPIN(req, d, pin)  -> confirm{method: pin, pin_sig, sig}
//	                         <- error bad_pin (tries left), pin_locked (closed), or tx.result
//
// ConfirmPIN derives the PIN key (scrypt, about 125 ms) before it waits on the
// connection, and keeps neither the PIN nor the key.
//
// Every downlink message is delivered to Events once, then acknowledged (ack is
// cumulative). A seq already handled is dropped and re-acknowledged; a confirm.request
// for a transaction already delivered is dropped too; so is anything that arrives
// before hello.ok (the gateway re-sends it after). Events is bounded: while it is full
// the client stops reading (and acknowledging), so the gateway keeps what was not
// delivered and sends it again; nothing is dropped to make room.
//
// A session ends when the connection drops, when the gateway closes it with a code (a
// WebSocket close code; over MQTT an error with a code in 4000-4999 on the device's
// down topic), and over MQTT when the gateway's status goes offline or shows a new
// epoch. Each end is one EventDisconnected. With Config.Reconnect the client then
// starts a new session when the code allows it (wire.Code.Reconnect), after jittered
// exponential backoff: over MQTT with a new hello on the same connection while it is
// up, else on a new connection. hello presents the resume token and the last
// acknowledged seq, and the gateway re-sends what was not acknowledged. A message the
// gateway answered with no_session is sent again in the new session. A refused
// connection is reported as a *DialError.
//
// Over MQTT (docs/protocol.md §2) the client connects with username and client id =
// the device id, password = the token, clean session false, keepalive 30 s and a
// retained offline status as its will; subscribes to its down topic and the
// gateway's status, publishes its online status and hello on its up topic. Its status
// messages carry a per-connection epoch, so that a late will of an older connection
// cannot be mistaken for the current one's. Close publishes the offline status before
// it disconnects. paho does not reconnect by itself: every attempt is a new paho
// client with a new token, and the client's own loop reconnects, so events, backoff
// and refusals are the same as over WebSocket. MQTT 3.1.1 cannot say why a CONNECT
// was refused (return code 4 or 5): the client tries again with fresh tokens a few
// times, then stops.
//
// Speech (WebSocket and WebRTC): Speak streams an utterance (16 kHz samples) as
// audio.start, 20 ms frames and audio.end; the gateway answers with speech.result
// (Events: TypeSpeechResult), then as for Say, and turn.metrics. Over WebSocket the
// frames are binary frames (PCM at any wire rate, or Opus with the libopus build
// tag); over WebRTC the audio is Opus on the microphone track (libopus tag) and the
// events travel on the "earshot" data channel. With Config.PromptAudio every prompt
// also arrives spoken: one TypePromptAudio event with its 16 kHz samples, after the
// confirm.request (at most 30 s a prompt, two prompts assembling at once).
//
// Over WebRTC the client sets the peer connection up by WHIP (RFC 9725, no trickle
// ICE): POST of the offer with the device token as bearer, 201 with the answer and
// the session's Location, DELETE of it (with a fresh token) on close. The gateway
// ends a session with an error event carrying a disconnect code, which the client
// treats as a WebSocket close code.
//
// The client owns one goroutine per Client, plus over MQTT paho's and an uplink
// writer per connection, stopped and waited for by Close.
package client
