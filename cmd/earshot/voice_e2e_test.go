//go:build pocketsphinx

package main_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// simRun runs earshot-sim with args and returns its combined output and exit code.
func simRun(t *testing.T, d *daemon, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	args = append(args, "--gateway", d.url(), "--data-dir", d.dir, "--state", t.TempDir(), "--timeout", "20s")
	out, err := exec.CommandContext(ctx, filepath.Join(binaries(t), "earshot-sim"), args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case ctx.Err() != nil:
		t.Fatalf("earshot-sim %s: no end within 90s:\n%s", strings.Join(args, " "), out)
	case !errors.As(err, &ee):
		t.Fatalf("earshot-sim: %v", err)
	}
	return string(out), ee.ExitCode()
}

// Real speech end to end: the simulator speaks with espeak-ng, over WebSocket (PCM
// frames) and WebRTC (Opus on the track, events on the data channel); the gateway
// recognises it with PocketSphinx, speaks the prompt, and the glasses confirm by voice.
func TestVoiceE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	d := serve(t, t.TempDir(), "127.0.0.1:0")
	voice, err := filepath.Glob("../../firmware-sim/scenarios/glasses-voice-*.yaml")
	if err != nil || len(voice) != 2 {
		t.Fatalf("voice scenarios %v, %v", voice, err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"voice scenarios over ws", append([]string{"run", "--audio", "--transport", "ws"}, voice...), 0,
			[]string{"PASS glasses-voice-purchase (", "PASS glasses-voice-not-understood (", "2 passed, 0 failed\n"}},
		{"voice scenarios over webrtc", append([]string{"run", "--audio", "--transport", "webrtc"}, voice...), 0,
			[]string{"PASS glasses-voice-purchase (", "PASS glasses-voice-not-understood (", "2 passed, 0 failed\n"}},
		{"voice scenarios over mqtt are skipped", append([]string{"run", "--transport", "mqtt"}, voice...), 0,
			[]string{"SKIP glasses-voice-purchase: skipped: audio needs ws or webrtc", "0 passed, 0 failed, 2 skipped"}},
		{"say by voice over webrtc", []string{"say", "--audio", "buy two oat lattes", "--confirm", "--transport", "webrtc"}, 0,
			[]string{"over webrtc (whip://", "> buy two oat lattes (spoken: en-us, 160 wpm)", `heard "`, "(accepted)",
				"Total USD 11.00", "(spoken prompt: ", "turn: ", "of speech; after its end: final ", "(pocketsphinx",
				"< approve (voice)", `heard "confirm" (approve)`, "redeemed (final), mandate mnd_"}},
		{"say by voice in noise over ws", []string{"say", "--audio", "--noise-snr", "20", "buy two oat lattes", "--decline"}, 0,
			[]string{"pink noise at 20 dB SNR", "(accepted)", "< decline (voice)", `heard "cancel" (decline)`, "declined (final)"}},
		{"not understood by voice", []string{"say", "--audio", "play some music", "--confirm", "--transport", "webrtc"}, 1,
			[]string{"(not_understood)", "(spoken prompt: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := simRun(t, d, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("earshot-sim %s:\n%s", strings.Join(tt.args, " "), out)
			}
		})
	}
	if t.Failed() {
		t.Logf("gateway log:\n%s", d.log)
	}
}
