// Package gatewayproc runs the real earshot gateway as a process for the simulator's
// tests: `earshot serve`, built from cmd/earshot, on free ports with a fresh data
// directory. The simulator never imports the gateway; it meets it the way firmware
// does, over the network.
package gatewayproc

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if binDir != "" {
		_ = os.RemoveAll(binDir) // a temporary directory; nothing to do if it stays
	}
}

// binary builds cmd/earshot once per test binary, text only (no speech build tags).
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "earshot-gatewayproc-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", "github.com/earshot/earshot/cmd/earshot").CombinedOutput()
		if err != nil {
			buildErr = &buildFailure{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("building the gateway: %v", buildErr)
	}
	return filepath.Join(binDir, "earshot")
}

type buildFailure struct {
	err error
	out string
}

func (b *buildFailure) Error() string { return b.err.Error() + "\n" + b.out }

// logBuffer is the gateway's stderr, written by exec's copier and read by the test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start starts `earshot serve` on free ports (HTTP, and its embedded MQTT broker),
// text only, with a fresh data directory, the default risk rules and extra flags
// (for example "--consent-ttl", "2s"), and returns its base URL and data directory
// (which holds the admin token). The gateway is stopped when the test ends; its log
// is shown if the test failed. With -short the test is skipped.
func Start(t testing.TB, flags ...string) (url, dataDir string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	bin := binary(t)
	dir := t.TempDir()
	log := &logBuffer{}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir, "--no-tts", "--no-webrtc",
		"--recognizer", "none", "--log-level", "warn"}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // the exit status does not matter: the test stops it
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // it may have exited already
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill() // stuck in shutdown
			<-done
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", log)
		}
	})
	for range 400 {
		if b, err := os.ReadFile(filepath.Join(dir, "gateway.addr")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return "http://" + string(bytes.TrimSpace(b)), dir
		}
		select {
		case <-done:
			t.Fatalf("earshot serve exited:\n%s", log)
		case <-time.After(25 * time.Millisecond):
		}
	}
	t.Fatalf("earshot serve did not start in 10 s:\n%s", log)
	return "", ""
}
