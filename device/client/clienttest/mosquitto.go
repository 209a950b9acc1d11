package clienttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MosquittoBinary is where Debian installs the broker.
const MosquittoBinary = "/usr/sbin/mosquitto"

// Mosquitto is a real Mosquitto broker for a test, listening on a random loopback
// port, with persistence off (a restart loses what the broker held, the worst case).
// It is stopped when the test ends.
type Mosquitto struct {
	// Addr is host:port; URL is tcp://Addr.
	Addr, URL string

	t    testing.TB
	dir  string
	conf string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *lockedWriter // shared by every run
	done chan struct{}
}

// StartMosquitto starts a broker whose configuration is the listener line followed by
// extra (Mosquitto configuration lines, for example per docs/deploy-mqtt.md). The
// test fails if Mosquitto is not installed: `make deps` installs it.
func StartMosquitto(t testing.TB, extra string) *Mosquitto {
	t.Helper()
	if _, err := os.Stat(MosquittoBinary); err != nil {
		t.Fatalf("mosquitto is not installed (%v): run `make deps`", err)
	}
	m := &Mosquitto{t: t, dir: t.TempDir()}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		m.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		m.URL = "tcp://" + m.Addr
		m.conf = filepath.Join(m.dir, "mosquitto.conf")
		conf := fmt.Sprintf("listener %d 127.0.0.1\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n%s\n", port, extra)
		if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if lastErr = m.start(); lastErr == nil {
			t.Cleanup(m.Stop)
			return m
		}
	}
	t.Fatalf("mosquitto did not start: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the broker and waits until it accepts connections.
func (m *Mosquitto) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(MosquittoBinary, "-c", m.conf)
	if m.log == nil {
		m.log = &lockedWriter{w: new(bytes.Buffer)}
	}
	log := m.log
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // the exit status is read from the log
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("mosquitto exited: %s", log.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", m.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			m.cmd, m.done = cmd, done
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-done
	return errors.New("mosquitto did not accept connections in 5s: " + log.String())
}

// Kill stops the broker with SIGKILL, as a crash would.
func (m *Mosquitto) Kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL) // it may have exited already
	<-done
}

// Restart starts the broker again on the same port, after Kill.
func (m *Mosquitto) Restart() {
	m.t.Helper()
	m.Kill()
	var err error
	for attempt := 0; attempt < 50; attempt++ { // the port may linger briefly
		if err = m.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.t.Fatalf("mosquitto did not restart: %v", err)
}

// Stop ends the broker; when the test failed it logs what the broker said.
func (m *Mosquitto) Stop() {
	m.Kill()
	if m.t.Failed() {
		m.t.Logf("mosquitto log:\n%s", m.Log())
	}
}

// Log returns what the broker has logged, over all its runs.
func (m *Mosquitto) Log() string {
	m.mu.Lock()
	log := m.log
	m.mu.Unlock()
	if log == nil {
		return ""
	}
	return log.String()
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.w.String())
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
