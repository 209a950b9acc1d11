// Package refagent is earshot's embedded reference agent: the default shopping agent,
// so that a gateway works out of the box, and the first client of the gateway's REST
// API (gateway/api), which it uses exactly as an external agent or merchant would.
//
// It has these parts:
//
//   - a catalogue (catalog.go, catalog.yaml): merchants and their items, with the
//     phrases people use for them, prices in integer minor units, sizes and options,
//     and a merchant's optional tip cap;
//   - a rule-based parser: Parse (parse.go) turns commerce text ("get me an espresso
//     and two croissants") into an Order; ParseRequest (request.go, clauses.go,
//     money.go) also understands what is said around it: a price target, a
//     subscription, a tip. Everything else is refused with ErrNotUnderstood. It reads
//     exactly the sentences of the speech recogniser's grammar (speech/grammar, built
//     from the same catalogue), and what people type;
//   - the agent (refagent.go, propose.go, mandate.go, watch.go, subscribe.go), which
//     implements agent.Agent and also plays the merchant that redeems the mandate.
//
// The kinds of consent it proposes (wire.Kind):
//
//	one_off       "two oat lattes": the order at today's prices. A merchant's tip_cap
//	              rides along as conditions.tip_cap, raised to a tip said with the
//	              order ("... and add a two dollar tip"), which is requested once the
//	              order is paid, as a purchase the agent starts itself (see below).
//	price_target  "the black leggings when they drop under 90 dollars": one line at the
//	              limit (under 90 is at most 89.99: the prompt says what the ledger
//	              enforces), until Config.TargetValidity or what was said ("for ten
//	              days", "until March 5"). Already at or under the limit: one_off now.
//	recurring     "two oat lattes every week for 4 weeks": the order's total per
//	              payment, period_cap the same (one payment a period), times and until.
//	tip           "add a two dollar tip": on the device's last one-off order the agent
//	              was paid for (conditions.parent); the gateway grants it without a
//	              prompt inside that order's tip cap, or prompts.
//
// The flow of one transaction:
//
//	gateway -> OnIntent(tx, text)                 queued; a worker parses the text
//	agent   -> POST /v1/purchase-requests         the order, total, kind, conditions
//	                                              and summary, or
//	agent   -> POST /v1/transactions/{tx}/reject  code not_understood, device-visible reason
//	gateway -> OnMandate(tx, mandate)             queued; a worker checks payee, currency,
//	                                              kind and cap against its proposal
//	agent   -> POST /v1/redemptions               one_off, tip: exactly the proposed
//	                                              total, Idempotency-Key redeem-<mandate id>
//	gateway -> OnOutcome(tx)                      declined or expired: the agent forgets tx
//
// A tip said with an order is a transaction the agent starts itself, once the order
// is paid:
//
//	agent   -> POST /v1/purchase-requests         kind tip, conditions.parent the order's
//	                                              tx, no tx but the order's user and
//	                                              device, Idempotency-Key tip-<order tx>;
//	                                              the gateway answers the tip's tx
//	gateway -> OnMandate(tip tx, mandate)         inside the order's tip cap at once, with
//	                                              no prompt; else once the user approves
//	agent   -> POST /v1/redemptions               the tip, Idempotency-Key redeem-<mandate id>
//
// The order's mandate handed over again asks for no second tip: the agent keeps the
// tip's tx with the order, and before the gateway's answer is known the same
// Idempotency-Key makes the gateway replay it. A tip mandated at once may be handed
// over before the agent has read the answer: it is redeemed from the terms its
// mandate carries, as after a restart.
//
// Price watching: prices change at run time with SetPrice (the simulated price drop).
// A price-target mandate is kept, keyed by tx (at most MaxTracked), and checked when it
// arrives, on every SetPrice and every Config.WatchEvery by a goroutine Run owns: once
// the current price of its items is at most its cap, and it has not expired, the agent
// redeems the current total (not the cap), once, with redeem-<mandate id>. Expired
// targets are forgotten. A mandate handed over again changes nothing.
//
// Subscriptions: the first payment is made when the mandate arrives; Charge makes each
// next one ("the period came"), with Idempotency-Key redeem-<mandate id>:<n>. The
// gateway's refusals (over_period_cap, exhausted) come back as errors Code reads.
//
// The On* methods only enqueue into a bounded queue and answer ErrBusy when it is
// full; the API calls are made by the worker goroutines Agent.Run owns (Charge makes
// its own in the caller's goroutine), and transient failures (network, 5xx, 429, 409
// in_flight) are retried with backoff. Logs carry ids, never a mandate token or the
// API key.
package refagent
