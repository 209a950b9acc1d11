package authz

import (
	"errors"
	"fmt"
)

// ErrorCode is a stable, machine-readable reason why a mandate operation was refused.
// Its String form is the snake_case name an agent sees.
type ErrorCode int

// Error codes. CodeUnknown, the zero value, is never returned on purpose.
const (
	CodeUnknown             ErrorCode = iota
	CodeMandateInvalid                // the token is malformed, badly signed, or not ours
	CodeMandateExpired                // the mandate's validity ended
	CodeAlreadyRedeemed               // the mandate was already redeemed
	CodeOverCap                       // the amount is over the mandate's cap
	CodePayeeMismatch                 // the payee is not the mandate's payee
	CodeCurrencyMismatch              // the currency is not the mandate's currency
	CodeRevoked                       // the user cancelled the mandate
	CodeWrongAgent                    // the mandate is bound to another agent
	CodeIdempotencyConflict           // the Idempotency-Key was used with another body
	CodeInFlight                      // a request with this Idempotency-Key is running
	CodeNotFound                      // no such mandate
	CodeBadRequest                    // the request is malformed
	CodeCancelWindowOpen              // settlement waits for the user's cancel window to close
	CodeCancelWindowClosed            // the cancel window is over: the payment stands
	CodeCancelPending                 // the user asked to cancel; the merchant has not answered
	CodeCancelled                     // the payment was cancelled
	CodeAlreadySettled                // the payment was settled
	CodeSuperseded                    // a newer consent replaced the mandate
	CodeNotCancelling                 // there is no cancellation to answer
	CodeOverPeriodCap                 // a recurring mandate's period cap would be exceeded
	CodeExhausted                     // a recurring mandate's payments are all made
	CodeParentNotPaid                 // a tip's parent mandate is not redeemed or settled
	CodeOverTipCap                    // the tip is over what is left of the parent's tip cap
)

var codeNames = [...]string{
	CodeUnknown: "unknown", CodeMandateInvalid: "mandate_invalid", CodeMandateExpired: "mandate_expired",
	CodeAlreadyRedeemed: "already_redeemed", CodeOverCap: "over_cap", CodePayeeMismatch: "payee_mismatch",
	CodeCurrencyMismatch: "currency_mismatch", CodeRevoked: "revoked", CodeWrongAgent: "wrong_agent",
	CodeIdempotencyConflict: "idempotency_conflict", CodeInFlight: "in_flight", CodeNotFound: "not_found",
	CodeBadRequest: "bad_request", CodeCancelWindowOpen: "cancel_window_open",
	CodeCancelWindowClosed: "cancel_window_closed", CodeCancelPending: "cancel_pending",
	CodeCancelled: "cancelled", CodeAlreadySettled: "already_settled", CodeSuperseded: "superseded",
	CodeNotCancelling: "not_cancelling", CodeOverPeriodCap: "over_period_cap", CodeExhausted: "exhausted",
	CodeParentNotPaid: "parent_not_paid", CodeOverTipCap: "over_tip_cap",
}

// String returns the code's snake_case name, or "code_N" for a code this version does
// not know.
func (c ErrorCode) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code_%d", int(c))
}

// MarshalText encodes the code as its name, so JSON carries "over_cap", not a number.
func (c ErrorCode) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText decodes a name written by MarshalText; an unknown name is an error.
func (c *ErrorCode) UnmarshalText(b []byte) error {
	for i, n := range codeNames {
		if n == string(b) {
			*c = ErrorCode(i)
			return nil
		}
	}
	return fmt.Errorf("authz: unknown error code %q", b)
}

// HTTPStatus is the status an HTTP API answers with for the code (500 for
// CodeUnknown). The numbers are literal so that authz needs no net/http.
func (c ErrorCode) HTTPStatus() int {
	switch c {
	case CodeBadRequest:
		return 400 // Bad Request
	case CodeMandateInvalid:
		return 401 // Unauthorized
	case CodeWrongAgent:
		return 403 // Forbidden
	case CodeNotFound:
		return 404 // Not Found
	case CodeAlreadyRedeemed, CodeInFlight, CodeCancelWindowOpen, CodeCancelWindowClosed, CodeCancelPending,
		CodeAlreadySettled, CodeNotCancelling, CodeParentNotPaid:
		return 409 // Conflict
	case CodeMandateExpired, CodeRevoked, CodeCancelled, CodeSuperseded, CodeExhausted:
		return 410 // Gone
	case CodeOverCap, CodePayeeMismatch, CodeCurrencyMismatch, CodeIdempotencyConflict, CodeOverPeriodCap,
		CodeOverTipCap:
		return 422 // Unprocessable Content
	}
	return 500 // Internal Server Error
}

// Retryable reports whether the same request may succeed if sent again later
// unchanged: only while an earlier one with the same key is still running.
func (c ErrorCode) Retryable() bool { return c == CodeInFlight }

// Error is a refusal an agent may see. Detail is safe to show an agent (it never holds
// a token or a key); Err is the internal cause, for logs, and may be nil.
type Error struct {
	Code   ErrorCode
	Detail string
	Err    error
}

func (e *Error) Error() string {
	s := "authz: " + e.Code.String()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the ErrorCode of the first *Error in err's chain, or CodeUnknown.
func CodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeUnknown
}

func refuse(code ErrorCode, detail string, cause error) *Error {
	return &Error{Code: code, Detail: detail, Err: cause}
}

// Sentinel errors for the caller's mistakes (not an agent's).
var (
	// ErrInvalidChallenge reports terms or methods NewChallenge refuses.
	ErrInvalidChallenge = errors.New("authz: invalid challenge")
	// ErrInvalidClaims reports claims that cannot be signed or recorded.
	ErrInvalidClaims = errors.New("authz: invalid claims")
	// ErrMandateExists reports a Record of a jti the ledger already holds.
	ErrMandateExists = errors.New("authz: mandate already recorded")
	// ErrInvalidKey reports a signing key that cannot be used.
	ErrInvalidKey = errors.New("authz: invalid signing key")
	// ErrInvalidConfig reports a LedgerConfig NewLedger refuses.
	ErrInvalidConfig = errors.New("authz: invalid config")
)
