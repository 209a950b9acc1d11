// Package llmagent is a shopping agent driven by a language model behind an
// OpenAI-compatible chat-completions server (a local llama.cpp, vLLM or Ollama server,
// or a hosted one). It implements agent.Agent and Run, like the reference agent
// (gateway/agent/refagent), sells from the same *refagent.Catalog, and answers
// through the gateway's REST API with the shared client (gateway/agent/apiclient).
//
// The flow of one transaction:
//
//	gateway -> OnIntent(tx, text)                 queued (bounded; ErrBusy when full)
//	agent   -> POST {LLMBaseURL}/chat/completions the system prompt (the task, the
//	                                              catalogue when short), the user's
//	                                              words, and three tools:
//	  search_catalog {query}                      items: sku, merchant, sizes and prices
//	  propose_purchase {merchant, items[{sku,     the agent prices each line from the
//	      qty, size?, options?}]}                 catalogue and posts it; an error (an
//	                                              unknown sku) goes back to the model,
//	                                              which may correct it once
//	  reject {reason}                             not a purchase, or not sold here
//	agent   -> POST /v1/purchase-requests         one one_off proposal per intent, or
//	agent   -> POST /v1/transactions/{tx}/reject  code not_understood, with the model's
//	                                              short reason or the agent's own
//	gateway -> OnMandate(tx, mandate)             code only: checked against the proposal
//	agent   -> POST /v1/redemptions               the proposed total, once,
//	                                              Idempotency-Key redeem-<mandate id>
//	gateway -> OnOutcome(tx)                      the agent forgets tx (accepts a
//	                                              cancellation first, as the merchant)
//
// A conversation is bounded: at most Config.MaxTurns model calls, each bounded by
// Config.TurnTimeout with a few retries on 429 and 5xx, answers of at most 1 MiB and
// of the expected shape. When the model ends without proposing or rejecting, runs
// out of turns, or its server fails, the intent is rejected (not_understood) with a
// short reason of the agent's.
//
// # What the model sees, and what it decides
//
// The model sees the user's words, the catalogue and the tool results: nothing else.
// The gateway's API key, the model server's key, device and user ids, transaction
// ids, mandates and their tokens never enter a conversation; mandates are handled in
// code. Logs carry ids, tool names and counts, never the user's words or the model's
// text.
//
// The model picks items, not prices or words on the prompt: the agent prices every
// line from the catalogue, writes the summary from the priced lines, and proposes
// one_off purchases only (no price targets, subscriptions or tips). And whatever it
// proposes passes the gateway's risk and consent rules like any agent's proposal: the
// rules compare it with what the user said (more items or a higher price than said is
// stepped up or refused), and the user approves every purchase on the device before a
// mandate exists. A model that proposes more than was asked cannot pay for it
// silently.
package llmagent
