// Package wire is earshot's device protocol, version 1: the one JSON envelope every
// transport carries, the closed set of message bodies, the error and disconnect codes
// that tell a device whether to retry, the size limits, and the consent terms a device
// displays and signs.
//
// The message flow of one purchase, device on the left:
//
//	hello{token?, resume, last_ack}   ->
//	                                  <- hello.ok{session, resume, heartbeat}
//	utterance{id, text}               ->
//	                                  <- confirm.request{tx, terms (with expires_at), hash, text}
//	ack{seq}                          ->
//	confirm{tx, hash, decision, method, sig} ->
//	                                  <- tx.result{tx, state, mandate?}
//	ack{seq}                          ->
//
// Every downlink (gateway -> device) message carries a seq that grows by one per device;
// the device acknowledges cumulatively with ack and presents its last acknowledged seq in
// hello after a reconnect, and the gateway re-sends everything after it, in order. A
// device drops a downlink whose seq it has already seen. Uplink messages carry an id the
// gateway uses to drop duplicates. Unknown message types decode without error
// (Envelope.Known reports false) so old devices survive new gateways.
//
// This package imports nothing but the standard library: device makers can vendor it.
package wire
