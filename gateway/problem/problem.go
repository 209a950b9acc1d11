// Package problem writes HTTP errors as RFC 9457 problem details, with a stable
// machine-readable "code" extension member that clients switch on.
package problem

import (
	"encoding/json"
	"net/http"
)

// TypeBase prefixes every problem type URI; the code completes it.
const TypeBase = "https://earshot.dev/problems/"

// Details is an RFC 9457 problem details object.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
}

// Write sends a problem with the given status and code. title defaults to the status
// text; detail is device- or agent-visible and must not carry secrets.
func Write(w http.ResponseWriter, status int, code, detail string) {
	d := Details{Type: TypeBase + code, Title: http.StatusText(status), Status: status, Detail: detail, Code: code}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// The status line is out; a failed body write leaves nothing to report to.
	_ = json.NewEncoder(w).Encode(d)
}
