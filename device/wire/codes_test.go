package wire_test

import (
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/earshot/earshot/device/wire"
)

// TestCodes pins every named code: its number, its stable name and what it tells a
// device. A code added to the package without a row here fails the test.
func TestCodes(t *testing.T) {
	const (
		refuse    = iota // 1000-1999: fix the request
		retry            // 2000-2999: retry later
		reconnect        // 4000-4499: reconnect and resume
		stop             // 4500-4999: do not reconnect as is
		none             // CodeUnknown
	)
	tests := []struct {
		code  wire.Code
		num   uint16
		name  string
		class int
	}{
		{wire.CodeUnknown, 0, "unknown", none},
		{wire.CodeBadRequest, 1000, "bad_request", refuse},
		{wire.CodeUnsupportedVersion, 1001, "unsupported_version", refuse},
		{wire.CodeTooLarge, 1002, "too_large", refuse},
		{wire.CodeNotAuthenticated, 1003, "not_authenticated", refuse},
		{wire.CodeUnknownTx, 1010, "unknown_tx", refuse},
		{wire.CodeChallengeMismatch, 1011, "challenge_mismatch", refuse},
		{wire.CodeBadSignature, 1012, "bad_signature", refuse},
		{wire.CodeChallengeExpired, 1013, "challenge_expired", refuse},
		{wire.CodeAlreadyDecided, 1014, "already_decided", refuse},
		{wire.CodeWrongDevice, 1015, "wrong_device", refuse},
		{wire.CodeMethodNotAllowed, 1016, "method_not_allowed", refuse},
		{wire.CodeNotCancellable, 1017, "not_cancellable", refuse},
		{wire.CodeBadPIN, 1018, "bad_pin", refuse},
		{wire.CodePINLocked, 1019, "pin_locked", refuse},
		{wire.CodeNotUnderstood, 1020, "not_understood", refuse},
		{wire.CodeRefused, 1021, "refused", refuse},
		{wire.CodeBadAmount, 1022, "bad_amount", refuse},
		{wire.CodeUnsupportedCurrency, 1023, "unsupported_currency", refuse},
		{wire.CodeSpeechUnavailable, 1024, "speech_unavailable", refuse},
		{wire.CodeNoStream, 1025, "no_stream", refuse},
		{wire.CodeNoPIN, 1026, "no_pin", refuse},
		{wire.CodeNoPhone, 1027, "no_phone", refuse},
		{wire.CodeInternal, 2000, "internal", retry},
		{wire.CodeUnavailable, 2001, "unavailable", retry},
		{wire.CodeRateLimited, 2002, "rate_limited", retry},
		{wire.CodeAgentUnavailable, 2003, "agent_unavailable", retry},
		{wire.CodeShutdown, 4000, "shutdown", reconnect},
		{wire.CodeSlowConsumer, 4001, "slow_consumer", reconnect},
		{wire.CodeHeartbeatLost, 4002, "heartbeat_lost", reconnect},
		{wire.CodeReplaced, 4003, "replaced", reconnect},
		{wire.CodeServerError, 4004, "server_error", reconnect},
		{wire.CodeHelloTimeout, 4005, "hello_timeout", reconnect},
		{wire.CodeNoSession, 4006, "no_session", reconnect},
		{wire.CodeInvalidToken, 4500, "invalid_token", stop},
		{wire.CodeTokenExpired, 4501, "token_expired", stop},
		{wire.CodeUnknownDevice, 4502, "unknown_device", stop},
		{wire.CodeDeviceRevoked, 4503, "device_revoked", stop},
		{wire.CodeProtocolViolation, 4504, "protocol_violation", stop},
		{wire.CodeFrameTooLarge, 4505, "frame_too_large", stop},
		{wire.CodeTokenReplayed, 4506, "token_replayed", stop},
	}
	named := wire.NamedCodes()
	if len(named) != len(tests) {
		t.Errorf("%d named codes, %d in this table: add the new code here (and to docs/protocol.md)", len(named), len(tests))
	}
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	seen := map[string]wire.Code{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if uint16(tt.code) != tt.num {
				t.Errorf("value %d, want %d", uint16(tt.code), tt.num)
			}
			if got := tt.code.String(); got != tt.name || named[tt.code] != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if !snake.MatchString(tt.name) {
				t.Errorf("name %q is not snake_case", tt.name)
			}
			if prev, dup := seen[tt.name]; dup {
				t.Errorf("name %q also used by %d", tt.name, prev)
			}
			seen[tt.name] = tt.code
			wantRetry, wantDisc, wantReconn := tt.class == retry, tt.class == reconnect || tt.class == stop, tt.class != stop
			if got := tt.code.Retryable(); got != wantRetry {
				t.Errorf("Retryable() = %v, want %v", got, wantRetry)
			}
			if got := tt.code.Disconnect(); got != wantDisc {
				t.Errorf("Disconnect() = %v, want %v", got, wantDisc)
			}
			if got := tt.code.Reconnect(); got != wantReconn {
				t.Errorf("Reconnect() = %v, want %v", got, wantReconn)
			}
		})
	}
}

// TestCodeRanges checks the range predicates over every possible code, named or not,
// so a device can act on a code it has never heard of.
func TestCodeRanges(t *testing.T) {
	named := wire.NamedCodes()
	for n := 0; n <= 0xffff; n++ {
		c := wire.Code(n)
		if got, want := c.Retryable(), n >= 2000 && n <= 2999; got != want {
			t.Fatalf("Code(%d).Retryable() = %v", n, got)
		}
		if got, want := c.Disconnect(), n >= 4000 && n <= 4999; got != want {
			t.Fatalf("Code(%d).Disconnect() = %v", n, got)
		}
		if got, want := c.Reconnect(), n < 4500 || n > 4999; got != want {
			t.Fatalf("Code(%d).Reconnect() = %v", n, got)
		}
		if name, ok := named[c]; ok {
			if c.String() != name {
				t.Fatalf("Code(%d).String() = %q, want %q", n, c.String(), name)
			}
		} else if got, want := c.String(), fmt.Sprintf("code_%d", n); got != want {
			t.Fatalf("Code(%d).String() = %q, want %q", n, got, want)
		}
	}
}

func TestNamedCodesAreInARange(t *testing.T) {
	for c := range wire.NamedCodes() {
		n := uint16(c)
		if c != wire.CodeUnknown && !(n >= 1000 && n <= 2999) && !(n >= 4000 && n <= 4999) {
			t.Errorf("%s (%d) is outside the 1000-2999 and 4000-4999 ranges", c, n)
		}
	}
}

func TestError(t *testing.T) {
	tests := []struct {
		code      wire.Code
		wantRetry bool
		wantText  string
	}{
		{wire.CodeChallengeMismatch, false, "challenge_mismatch (1011): hash differs"},
		{wire.CodeAgentUnavailable, true, "agent_unavailable (2003): hash differs"},
		{wire.Code(2999), true, "code_2999 (2999): hash differs"},
		{wire.CodeTokenExpired, false, "token_expired (4501): hash differs"},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			e := wire.NewError(tt.code, "hash differs")
			if e.Retry != tt.wantRetry || e.Code != tt.code || e.Message != "hash differs" {
				t.Errorf("NewError = %+v", e)
			}
			if e.Error() != tt.wantText {
				t.Errorf("Error() = %q, want %q", e.Error(), tt.wantText)
			}
			if err := e.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			var err error = fmt.Errorf("session: %w", e)
			var got *wire.Error
			if !errors.As(err, &got) || got.Code != tt.code {
				t.Errorf("errors.As through a wrap lost the code")
			}
		})
	}
}

func TestTxStateFinal(t *testing.T) {
	tests := []struct {
		s     wire.TxState
		final bool
	}{
		{wire.TxReceived, false}, {wire.TxRequested, false}, {wire.TxPrompted, false},
		{wire.TxConfirmed, false}, {wire.TxMandated, false},
		{wire.TxRedeemed, true}, {wire.TxDeclined, true}, {wire.TxExpired, true},
		{wire.TxRejected, true}, {wire.TxFailed, true},
		{wire.TxCancelling, false}, {wire.TxCancelled, true}, {wire.TxSettled, true},
		{"", false}, {"refunded", false},
	}
	for _, tt := range tests {
		if got := tt.s.Final(); got != tt.final {
			t.Errorf("TxState(%q).Final() = %v, want %v", tt.s, got, tt.final)
		}
	}
}
