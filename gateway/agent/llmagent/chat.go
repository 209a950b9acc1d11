package llmagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// The OpenAI chat-completions wire format, as much of it as the agent uses.

// message is one message of a conversation: system, user, assistant (with the tool
// calls it made) or tool (the result of one call, by its id).
type message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	ToolCalls  []toolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

type toolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name string `json:"name"`
	// Arguments is a JSON object, encoded as a string.
	Arguments string `json:"arguments"`
}

type tool struct {
	Type     string      `json:"type"`
	Function functionDef `json:"function"`
}

type functionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

type chatRequest struct {
	Model      string    `json:"model"`
	Messages   []message `json:"messages"`
	Tools      []tool    `json:"tools"`
	ToolChoice string    `json:"tool_choice"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Role      string     `json:"role"`
			Content   *string    `json:"content"`
			ToolCalls []toolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
}

// Limits on what the model server answers.
const (
	// maxModelAnswerBytes bounds a chat-completions answer.
	maxModelAnswerBytes = 1 << 20
	// maxToolCalls bounds the tool calls of one assistant message.
	maxToolCalls = 8
	// maxToolNameBytes and maxToolCallIDBytes bound a tool call's name and id.
	maxToolNameBytes   = 64
	maxToolCallIDBytes = 256
)

// ErrModel reports a model server failure: no answer, a non-2xx status after the
// retries, or an answer of the wrong shape. It is logged and the intent rejected; the
// model server's words are never shown to the user.
var ErrModel = errors.New("llmagent: model server")

// modelError is a non-2xx answer from the model server.
type modelError struct {
	status int
}

func (e *modelError) Error() string { return fmt.Sprintf("answered %d", e.status) }

func (e *modelError) transient() bool {
	return e.status >= 500 || e.status == http.StatusTooManyRequests
}

// chatClient calls POST {base}/chat/completions.
type chatClient struct {
	url     string // base + "/chat/completions"
	model   string
	key     string // sent as Bearer when set; never logged
	http    *http.Client
	retries int
	backoff time.Duration
	timeout time.Duration // one turn, its retries included
	log     *slog.Logger
}

// complete asks the model for the next assistant message, retrying a network failure,
// 429 and 5xx. Every error wraps ErrModel.
func (c *chatClient) complete(ctx context.Context, req chatRequest) (message, error) {
	req.Model = c.model
	payload, err := json.Marshal(req)
	if err != nil {
		return message{}, fmt.Errorf("%w: encode: %w", ErrModel, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		m, retry, err := c.once(ctx, payload)
		if err == nil {
			return m, nil
		}
		if !retry || attempt >= c.retries || ctx.Err() != nil {
			return message{}, fmt.Errorf("%w: %w", ErrModel, err)
		}
		wait := c.backoff << min(attempt, 5)
		c.log.Debug("retrying the model server", "attempt", attempt+1, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return message{}, fmt.Errorf("%w: %w", ErrModel, ctx.Err())
		case <-t.C:
		}
	}
}

func (c *chatClient) once(ctx context.Context, payload []byte) (message, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(payload))
	if err != nil {
		return message{}, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "earshot-llmagent")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return message{}, true, err // a network failure, or ctx ending (complete stops then)
	}
	defer func() {
		// Drain so the connection is reused; what is left is of no interest.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxModelAnswerBytes))
		_ = resp.Body.Close() // a read-side close has nothing to report
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		me := &modelError{status: resp.StatusCode}
		return message{}, me.transient(), me
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxModelAnswerBytes+1))
	if err != nil {
		return message{}, true, fmt.Errorf("read answer: %w", err)
	}
	if len(raw) > maxModelAnswerBytes {
		return message{}, false, fmt.Errorf("answer larger than %d bytes", maxModelAnswerBytes)
	}
	m, err := parseAnswer(raw)
	return m, false, err
}

// parseAnswer decodes a chat-completions answer and checks its shape: a first choice
// whose message is the assistant's, with at most maxToolCalls function calls, each
// with an id, a name and arguments.
func parseAnswer(raw []byte) (message, error) {
	var r chatResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return message{}, fmt.Errorf("answer is not chat-completions JSON: %w", err)
	}
	if len(r.Choices) == 0 {
		return message{}, errors.New("answer has no choices")
	}
	got := r.Choices[0].Message
	if got.Role != "" && got.Role != "assistant" {
		return message{}, fmt.Errorf("choices[0].message.role %q, want assistant", truncate(got.Role, 32))
	}
	m := message{Role: "assistant"}
	if got.Content != nil {
		m.Content = *got.Content
	}
	if len(got.ToolCalls) > maxToolCalls {
		return message{}, fmt.Errorf("%d tool calls in one message, at most %d", len(got.ToolCalls), maxToolCalls)
	}
	for i, tc := range got.ToolCalls {
		switch {
		case tc.ID == "" || len(tc.ID) > maxToolCallIDBytes:
			return message{}, fmt.Errorf("tool_calls[%d].id: %d bytes, want 1 to %d", i, len(tc.ID), maxToolCallIDBytes)
		case tc.Type != "" && tc.Type != "function":
			return message{}, fmt.Errorf("tool_calls[%d].type %q, want function", i, truncate(tc.Type, 32))
		case tc.Function.Name == "" || len(tc.Function.Name) > maxToolNameBytes:
			return message{}, fmt.Errorf("tool_calls[%d].function.name: %d bytes, want 1 to %d", i, len(tc.Function.Name), maxToolNameBytes)
		}
		tc.Type = "function"
		if strings.TrimSpace(tc.Function.Arguments) == "" {
			tc.Function.Arguments = "{}"
		}
		m.ToolCalls = append(m.ToolCalls, tc)
	}
	return m, nil
}
