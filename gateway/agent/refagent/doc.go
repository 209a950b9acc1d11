// Package refagent is earshot's embedded reference agent: the default shopping agent,
// so that a gateway works out of the box, and the first client of the gateway's REST
// API (gateway/api), which it uses exactly as an external agent or merchant would.
//
// It has three parts:
//
//   - a catalogue (catalog.go, catalog.yaml): merchants and their items, with the
//     phrases people use for them, prices in integer minor units, sizes and options;
//   - a rule-based parser (parse.go) that turns commerce text ("get me an espresso and
//     two croissants") into an Order, and refuses everything else with
//     ErrNotUnderstood;
//   - the agent (refagent.go), which implements agent.Agent and also plays the
//     merchant that redeems the mandate.
//
// The flow of one transaction:
//
//	gateway -> OnIntent(tx, text)                 queued; a worker parses the text
//	agent   -> POST /v1/purchase-requests         the order, total and summary, or
//	agent   -> POST /v1/transactions/{tx}/reject  code not_understood, device-visible reason
//	gateway -> OnMandate(tx, mandate)             queued; a worker checks payee, currency
//	                                              and cap against its proposal
//	agent   -> POST /v1/redemptions               exactly the proposed total, with
//	                                              Idempotency-Key redeem-<mandate id>
//	gateway -> OnOutcome(tx)                      declined or expired: the agent forgets tx
//
// The On* methods only enqueue into a bounded queue and answer ErrBusy when it is
// full; the API calls are made by the worker goroutines Agent.Run owns, and transient
// failures (network, 5xx, 429, 409 in_flight) are retried with backoff.
package refagent
