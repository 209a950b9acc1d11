package grammar

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real recogniser: the grammars load in Debian's PocketSphinx, and speech made by
// espeak-ng comes back as text Parse understands. The cgo recogniser has its own tests;
// this one needs only the command-line tools.
func TestPocketSphinx(t *testing.T) {
	if testing.Short() {
		t.Skip("short: no recogniser run")
	}
	model := "/usr/share/pocketsphinx/model/en-us"
	for _, tool := range []string{"pocketsphinx_batch", "espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: make deps", tool)
		}
	}
	if _, err := os.Stat(filepath.Join(model, "en-us")); err != nil {
		t.Skipf("no acoustic model: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	g := shipped(t)
	dir := t.TempDir()

	// decode speaks each sentence and returns what PocketSphinx heard, by id.
	decode := func(jsgf string, said []string) []string {
		t.Helper()
		gram := filepath.Join(dir, fmt.Sprintf("g%d.gram", len(said)))
		if err := os.WriteFile(gram, []byte(jsgf), 0o600); err != nil {
			t.Fatal(err)
		}
		var ctl strings.Builder
		for i, s := range said {
			id := fmt.Sprintf("u%d_%d", len(said), i)
			raw := filepath.Join(dir, id+".raw")
			sh := exec.CommandContext(ctx, "sh", "-c", `espeak-ng -v en-us --stdout "$1" | sox -t wav - -r 16000 -c 1 -b 16 -e signed -t raw "$2"`, "sh", s, raw)
			if out, err := sh.CombinedOutput(); err != nil {
				t.Fatalf("synthesising %q: %v\n%s", s, err, out)
			}
			ctl.WriteString(id + "\n")
		}
		ctlFile := filepath.Join(dir, fmt.Sprintf("ctl%d", len(said)))
		hyp := filepath.Join(dir, fmt.Sprintf("hyp%d", len(said)))
		if err := os.WriteFile(ctlFile, []byte(ctl.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, "pocketsphinx_batch", "-hmm", filepath.Join(model, "en-us"),
			"-dict", dictPath, "-jsgf", gram, "-adcin", "yes", "-cepdir", dir, "-cepext", ".raw",
			"-ctl", ctlFile, "-hyp", hyp)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Run(); err != nil {
			t.Fatalf("pocketsphinx_batch: %v\n%s", err, log.Bytes())
		}
		b, err := os.ReadFile(hyp)
		if err != nil {
			t.Fatalf("%v\n%s", err, log.Bytes())
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != len(said) {
			t.Fatalf("%d hypotheses for %d utterances:\n%s\n%s", len(lines), len(said), b, log.Bytes())
		}
		for i, l := range lines { // "buy two oat latte (u3_0 -4321)"
			if k := strings.LastIndex(l, " ("); k >= 0 {
				lines[i] = l[:k]
			} else {
				lines[i] = ""
			}
		}
		return lines
	}

	commands := []string{"buy two oat lattes", "where is my order", "cancel my order"}
	for i, heard := range decode(g.CommandJSGF(), commands) {
		want, err := g.Parse(commands[i])
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.Parse(heard)
		if err != nil || !got.Equal(want) {
			t.Errorf("said %q, heard %q: %s %v, want %s", commands[i], heard, got, err, want)
		}
	}
	answers := []string{"yes", "cancel it"}
	for i, heard := range decode(ConfirmJSGF(), answers) {
		want, _, _ := ParseAnswer(answers[i])
		if got, _, err := ParseAnswer(heard); err != nil || got != want {
			t.Errorf("said %q, heard %q: %s %v, want %s", answers[i], heard, got, err, want)
		}
	}
}
