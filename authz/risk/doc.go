// Package risk decides, before the user is prompted, whether a purchase the agent
// proposes may go ahead and with which consent methods: the "risk rules" of the
// design and the step-up verification chosen per request. It is pure: no network, no
// store, no clock. The time comes in the Request, and the past (what a user spent,
// how often a device asked) through the small History interface the gateway
// implements over its store.
//
// The gateway builds a Request from the agent's proposal and what the user said, and
// calls Policy.Decide. The Decision is one of
//
//	allow     prompt; Methods are the device kind's weakest (tap or voice on glasses)
//	step_up   prompt, accepting only the stronger Methods given (PIN, the paired phone)
//	refuse    do not prompt; say why
//
// with Reasons, every rule that fired, in rule order, each with the numbers. Decide
// returns an error only when History fails (or is nil and needed); the gateway then
// refuses and says the service is unavailable.
//
// # Rules
//
// Decide applies every rule, in this order, so that the reasons are complete. A rule
// that may either refuse or step up has an action in the file.
//
//	code                  rule  when it fires                                 does
//	invalid_request       -     amount < 0 or > 2^53-1, malformed currency,   refuse, alone
//	                            or no Now
//	currency_not_allowed  1     tx_cap set and the currency not in it         refuse
//	over_tx_cap           1     amount > tx_cap                               refuse
//	over_daily_cap        2     spent in the last 24 h + amount > daily_cap   refuse
//	velocity              3     earlier requests in the window >= max         refuse (action)
//	merchant_denied       4     merchant in deny                              refuse
//	merchant_not_allowed  4     allow set and the merchant not in it          refuse
//	kind_not_allowed      4     kinds set and the kind not in it              refuse
//	said_mismatch_amount  5     amount > the spoken cap ("under 30")          step_up (action)
//	said_mismatch_item    5     an item named but not proposed, proposed but  step_up (action)
//	                            not named (when some were named), or a
//	                            quantity said that differs
//	new_device            6     enrolled < cooldown ago (or not known) and    step_up (action)
//	                            amount > limit
//	device_kind_unknown   7     step_up set and the device kind not in it     refuse
//	step_up_amount        7     amount over a level's threshold               step_up
//
// Caps and limits are inclusive: an amount equal to the cap passes. The daily window
// is rolling, the 24 hours before Request.Now, so that it means the same in every time
// zone and gives no fresh allowance at midnight. Velocity counts the device's earlier
// requests, so max: 10 lets the tenth request in the window through and refuses the
// eleventh.
//
// # Step-up
//
// Each device kind has a ladder of levels, weakest first; each level lists the
// consent methods it accepts (wire.Method names: tap, voice, button, pin, phone). The
// amount picks the highest level whose threshold ("above") it exceeds. Then any rule
// that steps up (said mismatch, new device, velocity with action step_up) raises the
// level by one, once however many fired, and no higher than the top: so a small
// mismatched order on glasses asks for the paired phone, on a kiosk for the PIN, and
// on a phone approving for itself stays at tap. Outcome is step_up whenever the level
// is above the first or a rule fired; Methods are then those of the level reached.
//
// # Rule file
//
// YAML, at most MaxFileBytes (1 MiB), one document. Unknown and repeated fields,
// aliases, and amounts that are not integers (25.00) are refused; errors give the
// field path and the line: "risk: bad policy: risk.yaml: rules.daily_cap.USD (line
// 4): must be positive, got 0". Every section may be left out, which turns its rule
// off (the zero Policy allows everything with tap or voice), but rules itself is
// required. This is the built-in policy, Default (DefaultFile returns it):
//
//	version: 1                 # optional; only 1
//	rules:
//	  # 1. The most one purchase may be; also the currencies accepted.
//	  tx_cap: {USD: 25000, EUR: 25000, GBP: 25000, JPY: 30000}
//	  # 2. The most a user may spend in the 24 hours before a purchase, it included.
//	  daily_cap: {USD: 50000, EUR: 50000, GBP: 50000, JPY: 60000}
//	  # 3. Purchase requests per device in the window (default 10m); action
//	  #    refuse (default) or step_up.
//	  velocity: {max: 10, window: 10m, action: refuse}
//	  # 4. Merchant ids (allow: only these; deny: never these), consent kinds.
//	  merchants: {allow: [], deny: []}
//	  kinds: []                # one_off, price_target, recurring, tip; empty: all
//	  # 5. step_up (default) or refuse.
//	  said_mismatch: {action: step_up}
//	  # 6. A currency absent from limit counts as 0; action step_up (default) or refuse.
//	  new_device:
//	    cooldown: 24h
//	    limit: {USD: 1500, EUR: 1500, GBP: 1500, JPY: 2000}
//	    action: step_up
//	  # 7. Per device kind, 1 to 4 levels of 1 to 5 methods, weakest first.
//	  step_up:
//	    glasses:
//	      - methods: [tap, voice, button]
//	      - methods: [phone]
//	        above: {USD: 2000, EUR: 2000, GBP: 2000, JPY: 3000}
//	    kiosk:
//	      - methods: [tap, button]
//	      - methods: [pin]
//	        above: {USD: 2000, EUR: 2000, GBP: 2000, JPY: 3000}
//	    phone:
//	      - methods: [tap]
//
// Amounts are integers in minor units: USD 2000 is 20.00, JPY 3000 is 3000 yen. Caps
// are positive; limits and thresholds may be 0. When tx_cap is set, every other
// per-currency map that is not empty must name exactly its currencies, so that no
// accepted currency escapes a rule by omission. On a level after the first, an empty
// above means the level is reached only by a step-up, and thresholds must not fall
// from one level to the next. A merchant may not be on both lists.
package risk
