package gateway_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/earshot/earshot"

// TestLayering keeps the direction of imports that STYLE.md promises: the protocol
// imports nothing of ours, devices never import the gateway, authz and speech stay
// pure, and each heavy dependency has one importer.
func TestLayering(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps=false", "-json", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		imports[strings.TrimPrefix(p.ImportPath, module+"/")] = p.Imports
	}
	if len(imports) < 10 {
		t.Fatalf("go list found only %d packages", len(imports))
	}

	under := func(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }
	ours := func(imp string) (string, bool) {
		if strings.HasPrefix(imp, module+"/") {
			return strings.TrimPrefix(imp, module+"/"), true
		}
		return "", false
	}
	transports := []string{"gateway/ws", "gateway/mqtt", "gateway/rtc"}
	isTransport := func(p string) bool {
		for _, t := range transports {
			if under(p, t) {
				return true
			}
		}
		return false
	}
	rules := []struct {
		name   string
		applys func(pkg string) bool
		bad    func(imp string) bool
	}{
		{"device/wire imports nothing of ours", func(p string) bool { return p == "device/wire" },
			func(i string) bool { _, ok := ours(i); return ok }},
		{"device/... imports only device/... and speech/...", func(p string) bool { return under(p, "device") },
			func(i string) bool { o, ok := ours(i); return ok && !under(o, "device") && !under(o, "speech") }},
		{"firmware-sim never imports gateway", func(p string) bool { return under(p, "firmware-sim") },
			func(i string) bool { o, ok := ours(i); return ok && under(o, "gateway") }},
		{"authz and speech never import gateway", func(p string) bool { return under(p, "authz") || under(p, "speech") },
			func(i string) bool { o, ok := ours(i); return ok && under(o, "gateway") }},
		{"only gateway/store imports Badger", func(p string) bool { return !under(p, "gateway/store") },
			func(i string) bool { return strings.HasPrefix(i, "github.com/dgraph-io/badger") }},
		{"on the gateway side only gateway/ws imports gorilla/websocket", func(p string) bool { return under(p, "gateway") && !under(p, "gateway/ws") },
			func(i string) bool { return i == "github.com/gorilla/websocket" }},
		{"only gateway/mqtt imports the MQTT broker", func(p string) bool { return !under(p, "gateway/mqtt") },
			func(i string) bool { return strings.HasPrefix(i, "github.com/mochi-mqtt/") }},
		{"on the gateway side only gateway/mqtt imports paho", func(p string) bool { return under(p, "gateway") && !under(p, "gateway/mqtt") },
			func(i string) bool { return strings.HasPrefix(i, "github.com/eclipse/paho") }},
		{"on the gateway side only gateway/rtc imports pion", func(p string) bool { return under(p, "gateway") && !under(p, "gateway/rtc") },
			func(i string) bool { return strings.HasPrefix(i, "github.com/pion/webrtc") }},
		{"speech's heavy parts stay in their packages: cgo PocketSphinx in speech/pocketsphinx", func(p string) bool {
			return !under(p, "speech/pocketsphinx") && !under(p, "speech/asr") && !under(p, "speech/eval") && !under(p, "cmd/earshot-speech-eval")
		},
			func(i string) bool { o, ok := ours(i); return ok && o == "speech/pocketsphinx" }},
		{"transports import neither the store nor each other", isTransport,
			func(i string) bool {
				o, ok := ours(i)
				return ok && (under(o, "gateway/store") || isTransport(o))
			}},
		{"the session core knows no transport", func(p string) bool { return under(p, "gateway/session") },
			func(i string) bool {
				o, ok := ours(i)
				return ok && (under(o, "gateway/ws") || under(o, "gateway/store") || under(o, "gateway/api"))
			}},
	}
	for _, r := range rules {
		for pkg, imps := range imports {
			if !r.applys(pkg) {
				continue
			}
			for _, imp := range imps {
				if r.bad(imp) {
					t.Errorf("%s: %s imports %s", r.name, pkg, imp)
				}
			}
		}
	}
}
