// Package webhook delivers an agent's events from the gateway's durable event log to
// the agent's HTTPS endpoint, signed per the Standard Webhooks convention
// (https://www.standardwebhooks.com/, spec v1.0.0), and gives receivers the matching
// verifier.
//
// # Scheme
//
// Every delivery is an HTTP POST whose body is the compact JSON
//
//	{"type":"intent.received","timestamp":"2026-01-02T03:04:05Z","data":{...}}
//
// (Payload) with three headers:
//
//	webhook-id         the event's ID: stable across retries, the receiver's idempotency key
//	webhook-timestamp  the attempt's time in Unix seconds (a retry carries a new one)
//	webhook-signature  "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>"
//
// The key is the endpoint's secret, serialised as "whsec_" + base64 of 24 to 64 random
// bytes (NewSecret makes 32). A receiver checks the signature in constant time and
// refuses a timestamp more than a tolerance (5 minutes by default) away from its clock,
// which bounds replays (Verify, Handler). The signature header may carry several
// space-separated entries (for secret rotation); one matching "v1" entry is enough and
// entries of other schemes ("v1a") are skipped.
//
// # Delivery guarantees
//
// A Dispatcher runs one worker per endpoint, that is per agent. The worker reads the
// agent's events in Seq order from the Source starting after the Seq the Source
// reports as acknowledged, and POSTs them one at a time: event n+1 is not sent before
// event n was answered with a 2xx (or dead-lettered). So delivery is:
//
//   - ordered per agent, hence per device and per transaction, in commit order;
//   - at least once: an event is acknowledged to the Source only after a 2xx, and a
//     gateway that stops between the 2xx and the acknowledgement sends it again after
//     a restart. Retries carry the same webhook-id, so receivers dedupe by it;
//   - retried on anything but a 2xx (other statuses including 3xx and 410 Gone, network
//     errors, timeouts) with exponential backoff and jitter, honouring a Retry-After of
//     whole seconds, up to Config.MaxAge after the event happened. An event still
//     refused then, or one whose body exceeds MaxBody, is dead-lettered: logged,
//     counted, acknowledged and skipped, so one poisoned event cannot stall an agent
//     for ever. (410 Gone is deliberately not special: disabling an endpoint is the
//     operator's decision, made through the endpoint list.)
//
// Logs carry the agent, event id, type, status and attempt; never the secret, the
// event's data or the endpoint's URL, which may embed a token (a network error may
// still name the endpoint's host and port).
package webhook
