package registry

import (
	"net/http"
	"strings"
)

// BearerToken returns the credentials of the request's "Authorization: Bearer ..."
// header (the scheme is case-insensitive), or "". Device tokens, agent API keys and
// the admin token all travel this way.
func BearerToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
