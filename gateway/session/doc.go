// Package session is the gateway's transport-agnostic core: one durable session per
// device, the downlink outbox with seq and ack, resume after a reconnect, and the
// per-transaction state machine from utterance to redemption.
//
// A transport (gateway/ws, later MQTT and WebRTC) authenticates a device, calls
// Core.Attach with a Transport, and feeds every uplink frame to Conn.Handle. The core
// never blocks on a device: downlink frames are first written to the device's outbox in
// the store (in the same transaction as the state change they report), then flushed in
// seq order to the live connection, if any. What the device acknowledges is deleted;
// what it does not is sent again after it reconnects, in order, with the same seq.
//
// Transactions move through these states (wire.TxState); every transition is written
// with the outbox frame that reports it, in one durable transaction:
//
//	from       to                        on
//	received   requested -> prompted     the agent's purchase request (challenge issued)
//	received   requested -> mandated     a tip inside the tip cap agreed on its order
//	received   rejected                  the agent did not understand, or a risk rule
//	                                     refused (or asked for a phone or PIN the user
//	                                     does not have)
//	prompted   confirmed -> mandated     a verified approval (mandate signed and recorded),
//	                                     from the device or, stepped up, the user's phone
//	prompted   rejected                  the third wrong PIN
//	prompted   declined                  a verified decline
//	prompted   expired                   the challenge's expiry passed unanswered
//	mandated   redeemed                  the agent redeemed the mandate (ledger, same txn);
//	                                     a subscription stays mandated until its last payment
//	mandated   cancelled                 the device's tx.cancel or the agent revoked it
//	redeemed   cancelling                the device's tx.cancel inside the cancel window
//	cancelling cancelled | redeemed      the agent accepted or refused the cancellation
//	redeemed   settled                   the cancel window closed (settlement loop)
//	any open   failed                    an internal failure after consent
//
// The ledger drives the states after mandated (onTransition, lifecycle.go), and every
// consent decision and mandate transition is appended to the audit trail in the same
// transaction. docs/mandates.md has the mandate's own table.
//
// Before a prompt the risk rules (Config.Risk, authz/risk) decide, inside the purchase
// request's transaction and over the spend and request indexes it keeps (risk.go):
// refuse, or which methods the prompt asks for. A prompt that needs the phone also goes
// to the user's phones with a binding code; a PIN prompt carries the user's PIN salt
// (stepup.go). "Cancel my order", said, cancels the device's latest order
// (Config.IsCancel).
//
// After a restart, Start re-arms expiry timers for open prompts and hands intents and
// mandates that the agent had not finished with back to it (agents key work by tx and
// redeem idempotently, so a repeat is harmless).
package session
