package refagent

import (
	"context"

	"github.com/earshot/earshot/gateway/agent/apiclient"
)

// The REST API bodies the agent sends and reads (gateway/api), and its calls, are
// those of the shared agent API client.

type (
	purchaseRequest  = apiclient.PurchaseRequest
	purchaseResponse = apiclient.Tx
	rejectRequest    = apiclient.RejectRequest
	redeemRequest    = apiclient.RedeemRequest
	redemption       = apiclient.Redemption
	// apiError is a non-2xx answer, with its RFC 9457 problem details when it had them.
	apiError = apiclient.Error
)

// Code returns the problem code of the gateway's refusal in err's chain, such as
// "over_period_cap" or "exhausted" from Charge, or "" when err is not a refusal
// (nil, a network failure, a local error).
func Code(err error) string { return apiclient.Code(err) }

// call sends body as JSON to path and decodes a 2xx answer into out (if not nil),
// retrying transient failures with exponential backoff. It returns the final status.
func (a *Agent) call(ctx context.Context, method, path, idempotencyKey string, body, out any) (int, error) {
	return a.api.Do(ctx, method, path, idempotencyKey, body, out)
}
