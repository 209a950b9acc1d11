// Package scenario runs scripted purchases against a gateway with simulated devices
// (firmware-sim/sim) and checks what happens: conformance scenarios a device maker or
// an operator can read.
//
// A scenario is a YAML file:
//
//	name: glasses-buy-coffee
//	device: {kind: glasses, user: alice}     # kind glasses|kiosk|phone; default glasses, alice
//	                                         # audio: true speaks (voice, speed, noise_snr)
//	                                         # pin: "2468" is what the user types at a PIN prompt
//	phone: {answer: approve, set_pin: "2468"} # optional: the user's phone, beside the device
//	steps:
//	  - say: "buy two oat lattes"
//	  - expect_prompt: {merchant: "Earshot Coffee", total: 1100, currency: USD,
//	                    items: [{sku: latte-oat, qty: 2}]}
//	  - confirm: approve                     # or decline, or {decision: approve, method: voice}
//	  - expect_result: {state: redeemed}     # waits for that state or a final one
//	  - cancel: "cancel my order"            # after paying: tx.cancel
//	  - expect_result: {state: cancelled}
//
// Steps: say (text), expect_prompt (merchant, total, currency, kind, items with sku, qty,
// unit_amount, name; methods, the exact set the prompt offers, in any order, such as
// [phone] or [pin]; text, a part of what the prompt says, any case; all optional),
// confirm (approve or decline, optional method, optional pin), expect_result (state
// required; code, amount, mandate; reason, a part of the result's reason, any case),
// expect_no_prompt (the turn's transaction is mandated or ends without a prompt;
// optional timeout), price (sku and amount required: sets the price in the gateway's
// catalogue through its admin API), wait_expiry (leave the prompt unanswered and
// expect the transaction to expire), status (send tx.status, expect a tx.result;
// optional state), expect_speech (outcome required: accepted,
// not_understood, no_speech or cancelled; optional text: the speech.result of the last
// spoken say), expect_error (code required, a wire code name such as bad_pin or
// not_cancellable; optional message, a part of the error's text: the gateway's refusal
// of the last confirm or cancel), cancel (the reason the user gave, text, may be "":
// sends tx.cancel for the turn's transaction). Every waiting step takes an optional
// timeout ("20s"); the default is the runner's StepTimeout (10 s), or
// DefaultExpiryTimeout for wait_expiry. Amounts are integer minor units; PINs are 4 to
// 12 digits in quotes ("0123"). Unknown steps or fields, and missing required fields,
// are refused with the file and line.
//
// Step-up. A purchase over the gateway's step-up limit needs the user's phone (glasses)
// or PIN (kiosk). phone starts the user's phone (the device's user, kind phone) before
// the first step: it sets the PIN when set_pin is given, then answers every prompt it
// gets with answer (approve, the default, or decline) until the scenario ends. On
// glasses, confirm: approve of a prompt that needs the phone signs nothing: the phone
// approves, and expect_result waits for the outcome. On a kiosk, a confirm whose method
// is pin, or that names none at a prompt that offers only pin, types pin (the step's,
// else the device's). A refused answer (expect_error, for example bad_pin) leaves the
// prompt open for another confirm:
//
//	device: {kind: kiosk, user: erin}
//	phone: {set_pin: "2468"}
//	steps:
//	  - say: "buy the black leggings"
//	  - expect_prompt: {methods: [pin]}
//	  - confirm: {decision: approve, pin: "1111"}
//	  - expect_error: {code: bad_pin, message: "2 tries left"}
//
// Consents that outlive their prompt. A price target is approved once and stays
// mandated until the merchant's price meets it: price changes the catalogue price of
// the gateway's embedded agent (PUT /admin/v1/catalog/prices/{sku}, with the admin
// token in the device configuration's DataDir, as enrolment reads it), and the result
// that follows belongs to the same transaction. price needs no say before it and does
// not end a turn. The price is the gateway's, shared by every scenario run against it:
// a scenario that changes it sets it back. A tip within the cap the user allowed with
// its order is granted without a prompt; expect_no_prompt fails at once if a prompt
// comes, and leaves the results for the expect_result steps after it:
//
//	device: {kind: glasses, user: gina}
//	phone: {answer: approve}
//	steps:
//	  - say: "buy the black leggings when they drop under 85 dollars"
//	  - expect_prompt: {kind: price_target, total: 8499}
//	  - confirm: approve
//	  - expect_result: {state: mandated}
//	  - price: {sku: leggings-black, amount: 7900}
//	  - expect_result: {state: redeemed, amount: 7900, reason: "price target was met"}
//	  - price: {sku: leggings-black, amount: 8900}
//	  - say: "add a two dollar tip"            # after an order whose prompt allowed a tip
//	  - expect_no_prompt: {}
//	  - expect_result: {state: redeemed, amount: 200}
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
