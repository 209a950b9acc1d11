// Package client is earshot's reference device client: what smart-glasses or kiosk
// firmware runs to talk to a gateway over WebSocket (protocol v1, see device/wire).
//
// A device enrols once with a pairing code the user created (Enroll), keeps its key and
// the returned audience, then connects with Dial. Dial mints a fresh device token for
// every connection, upgrades with the earshot.v1 subprotocol, sends hello and waits for
// hello.ok. From then on:
//
//	Say(text)                -> utterance{text, ptt}
//	                         <- confirm.request          (Events: TypeConfirmRequest)
//	Confirm(req, decision)   -> confirm{tx, hash, sig}   (only if req.Hash matches the terms)
//	                         <- tx.result mandated, then redeemed (Events: TypeTxResult)
//	Status(tx)               -> tx.status
//	                         <- tx.result
//
// Every downlink message is delivered to Events once, then acknowledged (ack is
// cumulative). A seq already handled is dropped and re-acknowledged; a confirm.request
// for a transaction already delivered is dropped too. Events is bounded: while it is
// full the client stops reading (and acknowledging), so the gateway keeps what was not
// delivered and sends it again; nothing is dropped to make room.
//
// With Config.Reconnect the client reconnects after a disconnect whose close code allows
// it (wire.Code.Reconnect), with jittered exponential backoff, presents its resume token
// and last acknowledged seq in hello, and the gateway re-sends what was not acknowledged.
// A refused connection is reported as a *DialError carrying the gateway's problem code.
//
// The client owns one goroutine per Client, stopped and waited for by Close.
package client
