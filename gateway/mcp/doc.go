// Package mcp serves the gateway to third-party agents over the Model Context Protocol
// (streamable HTTP, at Path), so that an MCP-capable agent (Claude Code, an
// OpenClaw-type agent, anything built on an MCP SDK) can "install" earshot with one
// URL and one agent API key.
//
// The package translates MCP into the gateway's REST API (gateway/api) and holds no
// rule of its own: every tool call is a REST request made in-process with the caller's
// own bearer key, so scopes, user links, idempotency and problem codes are enforced in
// exactly one place, and a refusal comes back to the model as a tool error (isError)
// carrying the problem's code, never as a protocol error.
//
// Message flow:
//
//	agent (MCP client)                  this package                     gateway/api, session core
//	 | POST /mcp initialize               |                                     |
//	 | Authorization: Bearer esk_...  --> | Registry.Authorize: 401 otherwise;  |
//	 |                                    | the session is bound to the agent   |
//	 | resources/subscribe intents    --> | watch Core.Wake for the agent       |
//	 |                                    |<-- intent.received in its log ------|
//	 |<-- notifications/resources/updated |                                     |
//	 | resources/read earshot://intents-> | Core.Events + GET /v1/transactions  |
//	 | tools/call request_purchase    --> | POST /v1/purchase-requests -------->| prompt on the device
//	 |<-- notifications/progress ...      | GET /v1/transactions/{tx}?wait=N    |
//	 |<-- {state: mandated, mandate id}   |<-- the user approved ---------------|
//	 | tools/call redeem              --> | Core.MandateToken (kept here) and   |
//	 |                                    | POST /v1/redemptions -------------->| paid once
//	 |<-- {redemption}                    |                                     |
//
// The mandate token never appears in a tool result or a resource (they go into a
// model's context): redeem fetches it from the core and presents it itself.
//
// Tools: request_purchase, check_consent, redeem, cancel, notify, reject_intent,
// list_users. Resource: earshot://intents (IntentsURI), the agent's recent intents
// not yet answered, subscribable.
//
// Sessions are stateful (protocol versions up to 2025-11-25; resource subscriptions
// and progress need a session). Every HTTP request authenticates; a request with
// another agent's key on a session is refused (403). Each agent gets its own MCP
// server value, so a resource update reaches only that agent's sessions.
package mcp
