package main_test

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// earshot agent registers an external agent whose key works at once, links a user,
// and revokes it: the key then stops working.
func TestAgentCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	d := serve(t, dir, "127.0.0.1:0")
	earshot := func(args ...string) string {
		t.Helper()
		// Flags before the positional argument, as flag parsing wants.
		n := len(args)
		if n > 2 && !strings.HasPrefix(args[n-1], "-") && !strings.HasPrefix(args[n-2], "-") {
			args = append(append(args[:n-1:n-1], "--gateway", d.url(), "--data-dir", dir), args[n-1])
		} else {
			args = append(args, "--gateway", d.url(), "--data-dir", dir)
		}
		out, err := exec.CommandContext(t.Context(), filepath.Join(binaries(t), "earshot"), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("earshot %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	me := func(key string) int {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", d.url()+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	out := earshot("agent", "create", "--name", "Corner shop", "--scopes", "purchase,redeem", "--webhook-url", "http://127.0.0.1:9/hooks")
	id := regexp.MustCompile(`agent (agt_[0-9a-f]+)`).FindStringSubmatch(out)
	key := regexp.MustCompile(`api key: (esk_[0-9a-f]+)`).FindStringSubmatch(out)
	if id == nil || key == nil || !strings.Contains(out, "webhook secret: whsec_") {
		t.Fatalf("create said:\n%s", out)
	}
	if st := me(key[1]); st != 200 {
		t.Fatalf("the new key: %d", st)
	}
	if list := earshot("agent", "list"); !strings.Contains(list, id[1]) || !strings.Contains(list, "purchase,redeem") || strings.Contains(list, "esk_") {
		t.Fatalf("list:\n%s", list)
	}
	if out := earshot("agent", "link", "--user", "alice", "--agent", id[1]); !strings.Contains(out, "usr_alice linked "+id[1]) {
		t.Fatalf("link said %q", out)
	}
	if out := earshot("agent", "links", "--user", "alice"); !strings.Contains(out, id[1]) {
		t.Fatalf("links said %q", out)
	}
	earshot("agent", "unlink", "--user", "alice", "--agent", id[1])
	if out := earshot("agent", "links", "--user", "alice"); strings.Contains(out, id[1]) {
		t.Fatalf("still linked: %q", out)
	}
	rotated := regexp.MustCompile(`api key: (esk_[0-9a-f]+)`).FindStringSubmatch(earshot("agent", "rotate-key", id[1]))
	if rotated == nil || me(key[1]) != 401 || me(rotated[1]) != 200 {
		t.Fatalf("after rotation: %v", rotated)
	}
	earshot("agent", "revoke", id[1])
	if st := me(rotated[1]); st != 401 {
		t.Fatalf("a revoked agent's key: %d", st)
	}
}
