// Package authz turns a user's signed consent into a single-use payment mandate and
// redeems that mandate exactly once. It is pure logic over the kv contract: no network,
// no Badger, no gateway imports.
//
// The flow of one purchase:
//
//	NewChallenge(terms, methods, now)         the prompt: canonical terms and their hash
//	VerifyConfirmation(ch, confirm, ...)      the device's signed decision (a *wire.Error
//	                                          the gateway sends to the device as is)
//	ClaimsFor(ch, user, agent, issuer, ...)   the mandate's claims, bound to one agent
//	KeySet.Sign(claims)                       a compact JWS, ES256, with a kid header
//	Ledger.Record(txn, claims)                state issued, in the gateway's transaction
//	Ledger.Redeem(ctx, request)               issued -> redeemed, once, idempotently
//	Ledger.Revoke(ctx, jti, reason)           issued -> revoked ("cancel my order")
//
// # Kinds
//
// The terms' kind (wire.Kind) and conditions become the mandate's Kind and Constraints;
// the Ledger enforces them (docs/mandates.md has the table):
//
//	one_off       one redemption of at most AmountCap until exp (now + ttl)
//	price_target  the same until the consent's Until; the cap is checked against the
//	              amount charged, never the agent's word that the price was met
//	recurring     one payment per redemption, each at most AmountCap, at most PeriodCap
//	              per Every period (anchored at nbf) and Times in all (CodeOverPeriodCap,
//	              CodeExhausted), until Until; the last payment makes it redeemed
//	tip           one redemption while its parent mandate is paid (CodeParentNotPaid)
//
// price_target and recurring mandates live at most MaxOpenValidity. A tip is bounded
// either by a fresh consent (ClaimsFor, Record) or by the parent's TipCap without one
// (TipClaims, RecordTip with underCap; TipAllowance tells what is left).
//
// # Mandates
//
// A mandate is a compact JWS (RFC 7515) signed with ES256 (ECDSA P-256, SHA-256), with
// the protected header {"alg":"ES256","kid":<key id>,"typ":"earshot-mandate+jwt"}. The
// key id is the RFC 7638 thumbprint of the public key. KeySet.JWKS publishes the public
// keys for /.well-known/jwks.json, so anyone can verify a mandate; several keys overlap
// during rotation. Verification pins the algorithm and accepts only the alg, kid and typ
// header parameters: "none", HMAC, RSA, and embedded or referenced keys (jwk, jku, x5c,
// x5u) are refused, as is a kid the key set does not hold (RFC 8725 section 3).
//
// # Ledger keys
//
// The ledger writes two kinds of keys through kv.Txn (gateway/store documents them too):
//
//	ledger/<jti>                            JSON Entry: the claims, the state, the
//	                                        redemption once redeemed (a subscription's
//	                                        payments), the tips taken from its tip cap
//	idem/<agent>/<hex sha256 of the key>    JSON IdemRecord: the hash of the request
//	                                        body and the answer given to it
//
// The Idempotency-Key is hashed so that any printable key makes a fixed-length,
// slash-free key suffix; the agent in the key keeps agents' keys apart. Every state
// change of an entry and the idempotency record that answers it are written in one
// transaction, so a crash never leaves a redemption without its record or the reverse.
//
// # Errors
//
// Agent-facing refusals are *Error values carrying an ErrorCode (stable snake_case
// names, HTTP statuses via ErrorCode.HTTPStatus); CodeOf extracts the code from any
// wrapped error. Device-facing refusals of a confirmation are *wire.Error values.
package authz
