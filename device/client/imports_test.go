package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The device client is a device: it knows device/... and nothing of the gateway.
func TestNoGatewayImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "github.com/earshot/earshot/device/client/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/earshot/earshot/gateway") {
			t.Errorf("device/client depends on %s", p)
		}
	}
}
