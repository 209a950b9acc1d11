// Package scenario runs scripted purchases against a gateway with simulated devices
// (firmware-sim/sim) and checks what happens: conformance scenarios a device maker or
// an operator can read.
//
// A scenario is a YAML file:
//
//	name: glasses-buy-coffee
//	device: {kind: glasses, user: alice}     # kind glasses|kiosk; default glasses, alice
//	                                         # audio: true speaks (voice, speed, noise_snr)
//	steps:
//	  - say: "buy two oat lattes"
//	  - expect_prompt: {merchant: "Earshot Coffee", total: 1100, currency: USD,
//	                    items: [{sku: latte-oat, qty: 2}]}
//	  - confirm: approve                     # or decline, or {decision: approve, method: voice}
//	  - expect_result: {state: redeemed}     # waits for that state or a final one
//
// Steps: say (text), expect_prompt (merchant, total, currency, kind, items with sku, qty,
// unit_amount, name; all optional), confirm (approve or decline, optional method),
// expect_result (state required; code, amount, mandate), wait_expiry (leave the prompt
// unanswered and expect the transaction to expire), status (send tx.status, expect a
// tx.result; optional state), expect_speech (outcome required: accepted, not_understood,
// no_speech or cancelled; optional text: the speech.result of the last spoken say).
// Every waiting step takes an optional timeout ("20s");
// the default is the runner's StepTimeout (10 s), or DefaultExpiryTimeout for
// wait_expiry. Amounts are integer minor units. Unknown steps or fields, and missing
// required fields, are refused with the file and line.
//
// A scenario does not name a transport: the runner's device configuration does
// (sim.Config.Transport), so every scenario runs over WebSocket, MQTT and WebRTC alike.
//
// A speaking scenario (device audio: true, or every scenario when the runner's
// sim.Config.Audio is set) says each say with the simulated user's voice, and a confirm
// with method voice by saying "confirm" or "cancel". It needs audio on the transport
// and a recogniser at the gateway: over MQTT, or against a gateway whose recogniser is
// "none", it is skipped ("SKIP name: skipped: audio needs ws or webrtc"). A spoken say
// that is not understood ends its turn without a transaction; an expect_result of
// state rejected (code not_understood) accepts that, so text scenarios also run spoken.
package scenario
