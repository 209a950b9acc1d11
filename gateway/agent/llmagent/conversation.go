package llmagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/agent/apiclient"
)

// Device-visible reasons of the rejections the agent makes itself.
const (
	reasonNotUnderstood = "Sorry, I couldn't work out what to buy."
	reasonNoMatch       = "Sorry, I couldn't match that to what the shop sells."
	reasonTrouble       = "Sorry, I can't take orders right now."
)

// maxBadProposals is how many invalid propose_purchase calls end the conversation:
// the model may correct one (an unknown sku, a size the item lacks), not guess on.
const maxBadProposals = 2

// conversation is one intent's exchange with the model.
type conversation struct {
	a    *Agent
	in   agent.Intent
	log  *slog.Logger
	msgs []message
	bad  int // invalid proposals so far
}

// handleIntent holds the conversation for one intent: it ends in one purchase request
// or one rejection for in.Tx. An intent delivered again after its proposal was made
// posts the same proposal again (the gateway answers with the open transaction),
// without asking the model.
func (a *Agent) handleIntent(ctx context.Context, in agent.Intent) {
	log := a.log.With("tx", in.Tx)
	if p, ok := a.lookup(in.Tx); ok {
		a.propose(ctx, log, p.pr)
		return
	}
	text := strings.TrimSpace(truncate(in.Text, wire.MaxTextBytes))
	if text == "" {
		a.reject(ctx, log, in.Tx, reasonNotUnderstood, "empty")
		return
	}
	c := &conversation{a: a, in: in, log: log, msgs: []message{
		{Role: "system", Content: a.idx.systemPrompt()},
		{Role: "user", Content: text},
	}}
	c.run(ctx)
}

func (c *conversation) run(ctx context.Context) {
	a := c.a
	for turn := 1; turn <= a.maxTurns; turn++ {
		m, err := a.chat.complete(ctx, chatRequest{Messages: c.msgs, Tools: tools, ToolChoice: "auto"})
		if err != nil {
			if ctx.Err() != nil {
				return // stopping: the gateway hands the intent over again
			}
			a.stats.modelFailures.Add(1)
			c.log.Warn("model turn failed", "turn", turn, "err", err)
			a.reject(ctx, c.log, c.in.Tx, reasonTrouble, "model_failed")
			return
		}
		a.stats.modelCalls.Add(1)
		c.msgs = append(c.msgs, m)
		if len(m.ToolCalls) == 0 {
			// The model ended without proposing or rejecting: a question, an answer.
			a.reject(ctx, c.log, c.in.Tx, reasonNotUnderstood, "no_tool_call")
			return
		}
		done := false
		for _, tc := range m.ToolCalls {
			var result any
			if done {
				result = errorResult("not done: this request was answered already")
			} else {
				result, done = c.call(ctx, turn, tc)
			}
			c.msgs = append(c.msgs, message{Role: "tool", ToolCallID: tc.ID, Content: encodeResult(result)})
		}
		if done {
			return
		}
	}
	c.log.Info("no answer within the turns", "max_turns", a.maxTurns)
	a.reject(ctx, c.log, c.in.Tx, reasonNotUnderstood, "max_turns")
}

// call runs one tool call and returns its result for the model, and whether the
// intent is answered (proposed or rejected).
func (c *conversation) call(ctx context.Context, turn int, tc toolCall) (any, bool) {
	a := c.a
	c.log.Debug("tool call", "turn", turn, "tool", truncate(tc.Function.Name, maxToolNameBytes))
	switch tc.Function.Name {
	case toolSearch:
		var args struct {
			Query string `json:"query"`
		}
		if err := decodeArgs(tc.Function.Arguments, &args); err != nil {
			return errorResult(err.Error()), false
		}
		items := a.idx.search(args.Query)
		if len(items) == 0 {
			return map[string]any{"items": items, "note": "nothing matches: try other words, or an empty query for everything"}, false
		}
		return map[string]any{"items": items}, false

	case toolPropose:
		var args proposeArgs
		if err := decodeArgs(tc.Function.Arguments, &args); err != nil {
			return c.badProposal(ctx, err)
		}
		order, err := a.idx.order(args)
		if err != nil {
			return c.badProposal(ctx, err)
		}
		m := order.Merchant
		pr := apiclient.PurchaseRequest{
			Tx:       c.in.Tx,
			Merchant: wire.Merchant{ID: m.ID, Name: m.Name},
			Items:    order.Items(),
			Total:    order.Total(),
			Currency: m.Currency,
			Kind:     wire.KindOneOff,
			Summary:  truncate(order.Summary(), maxSummaryBytes),
		}
		a.remember(pr)
		a.propose(ctx, c.log, pr)
		return map[string]any{"status": "sent to the user for approval", "total": pr.Total,
			"total_text": wire.Money(pr.Total, pr.Currency)}, true

	case toolReject:
		var args struct {
			Reason string `json:"reason"`
		}
		if err := decodeArgs(tc.Function.Arguments, &args); err != nil {
			return errorResult(err.Error()), false
		}
		a.reject(ctx, c.log, c.in.Tx, deviceText(args.Reason, reasonNotUnderstood), "model")
		return map[string]any{"status": "the user was told"}, true
	}
	return errorResult(fmt.Sprintf("unknown tool %q: use %s, %s or %s",
		truncate(tc.Function.Name, maxToolNameBytes), toolSearch, toolPropose, toolReject)), false
}

// badProposal answers an invalid propose_purchase: the error for the model to
// correct, or, after maxBadProposals, a rejection.
func (c *conversation) badProposal(ctx context.Context, err error) (any, bool) {
	c.bad++
	c.a.stats.badProposals.Add(1)
	c.log.Info("proposal refused back to the model", "attempt", c.bad)
	if c.bad >= maxBadProposals {
		c.a.reject(ctx, c.log, c.in.Tx, reasonNoMatch, "bad_proposals")
		return errorResult(err.Error()), true
	}
	return errorResult(err.Error() + "; nothing was sent: correct it and call propose_purchase again"), false
}

// propose posts the purchase request. The gateway's risk rules may still refuse it
// (the answer's state is rejected, code refused) or ask for stronger consent.
func (a *Agent) propose(ctx context.Context, log *slog.Logger, pr apiclient.PurchaseRequest) {
	t, err := a.api.RequestPurchase(ctx, pr)
	var ae *apiclient.Error
	switch {
	case err == nil:
		a.stats.proposals.Add(1)
		log.Info("proposed", "merchant", pr.Merchant.ID, "lines", len(pr.Items), "total", int64(pr.Total),
			"state", string(t.State), "code", t.Code)
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		log.Info("purchase request already made", "code", ae.Code) // delivered again
	case ctx.Err() != nil:
		// Stopping: the gateway hands the intent over again.
	default:
		a.stats.failures.Add(1)
		log.Warn("purchase request failed", "err", err)
		if ae != nil { // refused for good: nothing to redeem; tell the user
			a.forget(pr.Tx)
			a.reject(ctx, log, pr.Tx, reasonTrouble, "purchase_refused")
		}
	}
}

// reject tells the gateway the intent gets no proposal, code not_understood; why is
// a word for the logs.
func (a *Agent) reject(ctx context.Context, log *slog.Logger, tx, reason, why string) {
	_, err := a.api.Reject(ctx, tx, apiclient.RejectRequest{Code: wire.CodeNotUnderstood.String(), Reason: reason})
	var ae *apiclient.Error
	switch {
	case err == nil:
		a.stats.rejections.Add(1)
		log.Info("rejected", "why", why)
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		log.Info("rejection already made", "code", ae.Code)
	case ctx.Err() != nil:
	default:
		a.stats.failures.Add(1)
		log.Warn("rejection failed", "why", why, "err", err)
	}
}

// decodeArgs decodes a tool call's arguments, a JSON object in a string.
func decodeArgs(raw string, v any) error {
	dec := json.NewDecoder(strings.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the arguments are not the JSON object the tool takes: %v", err)
	}
	if dec.More() {
		return fmt.Errorf("the arguments hold more than one JSON value")
	}
	return nil
}

func errorResult(msg string) map[string]string { return map[string]string{"error": msg} }

// encodeResult is a tool result as the tool message's content.
func encodeResult(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // only maps and slices of strings and numbers
		return `{"error":"internal: result not encodable"}`
	}
	return strings.TrimSpace(b.String())
}

// deviceText makes the model's words fit to show or speak on the device: valid
// UTF-8, no control characters, single spaces, at most maxReasonBytes; def if empty.
func deviceText(s, def string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return def
	}
	return truncate(s, maxReasonBytes)
}
