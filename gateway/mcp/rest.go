package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/earshot/earshot/gateway/problem"
)

// ToolError is the gateway's refusal of a tool call, as the model sees it: the REST
// API's problem code and detail (or this package's own bad_request for arguments it
// cannot translate). It is reported as a tool error (isError), never as a protocol
// error, so the model can read it and correct itself.
type ToolError struct {
	Status int    // the HTTP status of the problem
	Code   string // the problem's stable code: "not_found", "insufficient_scope", ...
	Detail string
}

// Error is what the model reads: "code: detail".
func (e *ToolError) Error() string { return e.Code + ": " + e.Detail }

// badArgs is a tool error for arguments that cannot be sent.
func badArgs(format string, a ...any) error {
	return &ToolError{Status: http.StatusBadRequest, Code: "bad_request", Detail: fmt.Sprintf(format, a...)}
}

// maxAnswer bounds an answer read from the API; the largest are lists of users.
const maxAnswer = 1 << 20

// request is one in-process call of the REST API.
type request struct {
	method, path string
	query        url.Values
	idem         string // Idempotency-Key, if any
	body         any    // JSON-encoded, if non-nil
}

// answer is the part of the API's answer tools use.
type answer struct {
	status int
	header http.Header
}

// call makes the request to the REST API in-process with the caller's own key and
// decodes a success into out. A problem comes back as a *ToolError.
func (s *Server) call(ctx context.Context, key string, rq request, out any) (answer, error) {
	var body bytes.Buffer
	if rq.body != nil {
		if err := json.NewEncoder(&body).Encode(rq.body); err != nil {
			return answer{}, fmt.Errorf("mcp: encoding %s %s: %w", rq.method, rq.path, err)
		}
	}
	u := "http://earshot.internal" + rq.path
	if len(rq.query) > 0 {
		u += "?" + rq.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u, &body)
	if err != nil {
		return answer{}, fmt.Errorf("mcp: %s %s: %w", rq.method, rq.path, err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rq.idem != "" {
		req.Header.Set("Idempotency-Key", rq.idem)
	}
	rec := &recorder{header: make(http.Header), status: http.StatusOK}
	s.cfg.API.ServeHTTP(rec, req)
	an := answer{status: rec.status, header: rec.header}
	if rec.over {
		return an, fmt.Errorf("mcp: %s %s: the answer is over %d bytes", rq.method, rq.path, maxAnswer)
	}
	if rec.status >= 400 {
		var p problem.Details
		if err := json.Unmarshal(rec.buf.Bytes(), &p); err != nil || p.Code == "" {
			return an, &ToolError{Status: rec.status, Code: "internal", Detail: fmt.Sprintf("the gateway answered %d", rec.status)}
		}
		return an, &ToolError{Status: rec.status, Code: p.Code, Detail: p.Detail}
	}
	if out != nil {
		if err := json.Unmarshal(rec.buf.Bytes(), out); err != nil {
			return an, fmt.Errorf("mcp: decoding the answer to %s %s: %w", rq.method, rq.path, err)
		}
	}
	return an, nil
}

// pathTx is the path of a transaction route; the tx is escaped, whatever the model
// wrote.
func pathTx(tx, rest string) string {
	return "/v1/transactions/" + url.PathEscape(tx) + rest
}

// recorder keeps the API's answer, at most maxAnswer bytes of it.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	over   bool
	buf    bytes.Buffer
}

func (rw *recorder) Header() http.Header { return rw.header }

func (rw *recorder) WriteHeader(code int) {
	if !rw.wrote {
		rw.status, rw.wrote = code, true
	}
}

func (rw *recorder) Write(b []byte) (int, error) {
	rw.WriteHeader(http.StatusOK)
	if rw.buf.Len()+len(b) > maxAnswer {
		rw.over = true
		return 0, fmt.Errorf("mcp: answer over %d bytes", maxAnswer)
	}
	return rw.buf.Write(b)
}

// scrub removes a secret from text a model will read.
func scrub(err error, secret string) error {
	if te, ok := err.(*ToolError); ok && secret != "" && strings.Contains(te.Detail, secret) {
		return &ToolError{Status: te.Status, Code: te.Code, Detail: strings.ReplaceAll(te.Detail, secret, "[mandate token]")}
	}
	return err
}
