package main_test

import (
	"os"
	"strings"
	"testing"
)

const deployDoc = "../../docs/deploy-mqtt.md"

// TestDeployDocQuotesTheFiles keeps docs/deploy-mqtt.md and the shipped files in
// step: the page quotes each file whole, in a fenced block, and builds the plugin
// the way the tests do.
func TestDeployDocQuotesTheFiles(t *testing.T) {
	raw, err := os.ReadFile(deployDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, path := range []string{confFile, aclFile} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(string(b), "\n") {
			t.Errorf("%s does not end with a newline", path)
		}
		if !strings.Contains(doc, "\n```\n"+string(b)+"```\n") {
			t.Errorf("%s does not quote %s verbatim in a fenced block", deployDoc, path)
		}
	}
	build := "go " + strings.Join(buildArgs, " ") + " -o bin/earshot-mosquitto-auth.so ./cmd/earshot-mosquitto-auth"
	if !strings.Contains(doc, build) {
		t.Errorf("%s does not build the plugin with %q", deployDoc, build)
	}
	// The command lines of protocol.md §2 appear here too, unchanged.
	sub, pub := documentedCLI(t)
	for _, line := range []string{sub, pub} {
		if !strings.Contains(doc, line) {
			t.Errorf("%s does not show %q as protocol.md does", deployDoc, line)
		}
	}
}
