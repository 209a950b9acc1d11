package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildTags are the build tags of the binaries under test, as the Makefile's.
const buildTags = "pocketsphinx libopus nolibopusfile"

// binaries builds earshot and earshot-sim once per test binary.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "earshot-e2e-bin")
		if buildErr != nil {
			return
		}
		// The project's tags: the gateway recognises speech with PocketSphinx, the
		// simulator encodes Opus for WebRTC with libopus.
		out, err := exec.Command("go", "build", "-tags", buildTags, "-o", binDir+"/",
			"github.com/earshot/earshot/cmd/earshot", "github.com/earshot/earshot/cmd/earshot-sim").CombinedOutput()
		if err != nil {
			buildErr = &buildFailure{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

type buildFailure struct {
	err error
	out string
}

func (b *buildFailure) Error() string { return b.err.Error() + "\n" + b.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// daemon is an `earshot serve` process.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	dir  string
	addr string
	log  *syncBuffer
}

// syncBuffer is the daemon's stderr, written by exec's copier and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func serve(t *testing.T, dir, addr string, args ...string) *daemon {
	t.Helper()
	_ = os.Remove(filepath.Join(dir, "gateway.addr"))
	d := &daemon{t: t, dir: dir, addr: addr, log: &syncBuffer{}}
	d.cmd = exec.Command(filepath.Join(binaries(t), "earshot"), append([]string{"serve", "--data-dir", dir, "--listen", addr}, args...)...)
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.kill(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("gateway log:\n%s", d.log)
		}
	})
	for range 200 {
		if b, err := os.ReadFile(filepath.Join(dir, "gateway.addr")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			d.addr = string(bytes.TrimSpace(b))
			return d
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("earshot serve did not start:\n%s", d.log)
	return nil
}

func (d *daemon) url() string { return "http://" + d.addr }

func (d *daemon) kill(sig syscall.Signal) {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(sig)
	_ = d.cmd.Wait()
}

func (d *daemon) adminToken() string {
	b, err := os.ReadFile(filepath.Join(d.dir, "admin.token"))
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (d *daemon) enroll(kind string) (*identity.Key, client.Enrollment) {
	d.t.Helper()
	req, _ := http.NewRequest("POST", d.url()+"/admin/v1/pairing-codes", strings.NewReader(`{"user":"alice"}`))
	req.Header.Set("Authorization", "Bearer "+d.adminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct{ Code string }
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 201 {
		d.t.Fatalf("pairing code: %d %v", resp.StatusCode, err)
	}
	k, _ := identity.GenerateKey()
	en, err := client.Enroll(d.t.Context(), d.url(), k, p.Code, kind, "e2e")
	if err != nil {
		d.t.Fatal(err)
	}
	return k, en
}

func dial(t *testing.T, url string, k *identity.Key, en client.Enrollment) *client.Client {
	t.Helper()
	u, _ := client.DeviceURL(url)
	c, err := client.Dial(t.Context(), client.Config{URL: u, Key: k, Audience: en.Audience, Reconnect: true,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func next(t *testing.T, c *client.Client, typ wire.Type) client.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("client stopped while waiting for %s", typ)
			}
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s within 20s", typ)
		}
	}
}

func final(t *testing.T, c *client.Client, tx string) *wire.TxResult {
	t.Helper()
	for {
		r := next(t, c, wire.TypeTxResult).TxResult
		if r.Tx == tx && r.State.Final() {
			return r
		}
	}
}

// The gateway is killed with SIGKILL after the prompt went out and before the
// confirmation. On restart a device that resumes confirms the prompt it holds, a device
// that rebooted gets the pending prompt again, and both purchases complete. A gateway
// killed right after issuing a mandate redeems it exactly once after the restart.
func TestSIGKILLRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	d := serve(t, dir, addr)
	ka, ea := d.enroll("glasses")
	kb, eb := d.enroll("kiosk")
	a := dial(t, d.url(), ka, ea)
	b := dial(t, d.url(), kb, eb)

	if _, err := a.Say(t.Context(), "buy two oat lattes"); err != nil {
		t.Fatal(err)
	}
	promptA := next(t, a, wire.TypeConfirmRequest).ConfirmRequest
	if _, err := b.Say(t.Context(), "a large americano"); err != nil {
		t.Fatal(err)
	}
	promptB := next(t, b, wire.TypeConfirmRequest).ConfirmRequest
	b.Close() // the kiosk reboots: its resume state is gone

	d.kill(syscall.SIGKILL)
	d = serve(t, dir, addr)

	// A resumes on its own and confirms the prompt it already shows.
	if ev := next(t, a, wire.TypeHelloOK); !ev.HelloOK.Resumed {
		t.Fatalf("device A did not resume: %+v", ev.HelloOK)
	}
	if err := a.Confirm(t.Context(), promptA, wire.DecisionApprove, wire.MethodVoice); err != nil {
		t.Fatal(err)
	}
	if r := final(t, a, promptA.Tx); r.State != wire.TxRedeemed || r.Amount != 1100 {
		t.Fatalf("device A: %+v", r)
	}

	// B comes back with no session: its pending prompt arrives again, once.
	b2 := dial(t, d.url(), kb, eb)
	again := next(t, b2, wire.TypeConfirmRequest).ConfirmRequest
	if again.Tx != promptB.Tx || again.Terms.Total != promptB.Terms.Total {
		t.Fatalf("re-sent prompt %+v, want tx %s", again, promptB.Tx)
	}
	if err := b2.Confirm(t.Context(), again, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	if r := final(t, b2, promptB.Tx); r.State != wire.TxRedeemed || r.Amount != 450 {
		t.Fatalf("device B: %+v", r)
	}

	// Kill right after the mandate is issued, before or while the agent redeems.
	if _, err := a.Say(t.Context(), "an espresso"); err != nil {
		t.Fatal(err)
	}
	p := next(t, a, wire.TypeConfirmRequest).ConfirmRequest
	if err := a.Confirm(t.Context(), p, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	for {
		r := next(t, a, wire.TypeTxResult).TxResult
		if r.Tx == p.Tx && (r.State == wire.TxMandated || r.State.Final()) {
			break
		}
	}
	d.kill(syscall.SIGKILL)
	d = serve(t, dir, addr)
	if err := a.Status(t.Context(), p.Tx); err != nil {
		t.Fatal(err)
	}
	if r := final(t, a, p.Tx); r.State != wire.TxRedeemed || r.Amount != 300 {
		t.Fatalf("after the second kill: %+v", r)
	}
	if strings.Contains(d.log.String(), "level=ERROR") {
		t.Errorf("the restarted gateway logged errors:\n%s", d.log)
	}
}

// The README's tour: the gateway with embedded defaults (here on a free port) and the
// simulator command complete a purchase with no manual step.
func TestREADMETour(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const simCmd = `make sim ARGS='say "buy two oat lattes" --confirm'`
	if !bytes.Contains(readme, []byte(simCmd)) {
		t.Fatalf("the README no longer shows %s", simCmd)
	}
	dir := t.TempDir()
	d := serve(t, dir, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	sim := exec.CommandContext(ctx, filepath.Join(binaries(t), "earshot-sim"), "say", "buy two oat lattes", "--confirm",
		"--gateway", d.url(), "--data-dir", dir, "--state", t.TempDir())
	out, err := sim.CombinedOutput()
	if err != nil {
		t.Fatalf("earshot-sim: %v\n%s\ngateway log:\n%s", err, out, d.log)
	}
	for _, want := range []string{"Earshot Coffee", "11.00", "redeemed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("simulator output lacks %q:\n%s", want, out)
		}
	}
	// The same tour step over MQTT, through the embedded broker.
	const mqttCmd = `make sim ARGS='say "a large americano" --confirm --transport mqtt'`
	if !bytes.Contains(readme, []byte(mqttCmd)) {
		t.Fatalf("the README no longer shows %s", mqttCmd)
	}
	sim = exec.CommandContext(ctx, filepath.Join(binaries(t), "earshot-sim"), "say", "a large americano", "--confirm",
		"--transport", "mqtt", "--gateway", d.url(), "--data-dir", dir, "--state", t.TempDir())
	out, err = sim.CombinedOutput()
	if err != nil {
		t.Fatalf("earshot-sim over MQTT: %v\n%s\ngateway log:\n%s", err, out, d.log)
	}
	if !strings.Contains(string(out), "redeemed") {
		t.Errorf("simulator output over MQTT lacks \"redeemed\":\n%s", out)
	}
	d.kill(syscall.SIGTERM)
	if d.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("earshot serve exited %d on SIGTERM:\n%s", d.cmd.ProcessState.ExitCode(), d.log)
	}
}

// earshot keys rotate switches the signing key of a running gateway; purchases go on.
func TestKeysCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	d := serve(t, dir, "127.0.0.1:0")
	earshot := func(args ...string) string {
		t.Helper()
		args = append(args, "--gateway", d.url(), "--data-dir", dir)
		out, err := exec.CommandContext(t.Context(), filepath.Join(binaries(t), "earshot"), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("earshot %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	list := earshot("keys")
	if strings.Count(list, "signs") != 1 || strings.Contains(list, "verifies") {
		t.Fatalf("keys before rotation:\n%s", list)
	}
	out := earshot("keys", "rotate")
	kid, ok := strings.CutPrefix(strings.TrimSpace(out), "mandates are now signed with ")
	if !ok || kid == "" {
		t.Fatalf("rotate said %q", out)
	}
	list = earshot("keys", "list")
	if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 3 ||
		!strings.HasPrefix(lines[1], kid+" ") || !strings.Contains(lines[1], "signs") || !strings.Contains(lines[2], "verifies") {
		t.Fatalf("keys after rotation:\n%s", list)
	}
	sim := exec.CommandContext(t.Context(), filepath.Join(binaries(t), "earshot-sim"), "say", "buy two oat lattes", "--confirm",
		"--gateway", d.url(), "--data-dir", dir, "--state", t.TempDir())
	if out, err := sim.CombinedOutput(); err != nil || !strings.Contains(string(out), "redeemed") {
		t.Fatalf("purchase after rotation: %v\n%s\ngateway log:\n%s", err, out, d.log)
	}
}

// earshot audit verifies the trail a purchase left, in the store and as an export,
// and names the record someone edited in an exported file.
func TestAuditCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	d := serve(t, dir, "127.0.0.1:0")
	sim := exec.CommandContext(t.Context(), filepath.Join(binaries(t), "earshot-sim"), "say", "buy two oat lattes", "--confirm",
		"--gateway", d.url(), "--data-dir", dir, "--state", t.TempDir())
	if out, err := sim.CombinedOutput(); err != nil {
		t.Fatalf("purchase: %v\n%s", err, out)
	}
	earshot := func(args ...string) (string, error) {
		args = append(args, "--gateway", d.url(), "--data-dir", dir)
		out, err := exec.CommandContext(t.Context(), filepath.Join(binaries(t), "earshot"), args...).CombinedOutput()
		return string(out), err
	}
	if out, err := earshot("audit", "verify"); err != nil || !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	export, err := earshot("audit", "export")
	if err != nil || strings.Count(export, "\n") < 3 || !strings.Contains(export, `"kind":"redemption"`) {
		t.Fatalf("audit export: %v\n%s", err, export)
	}
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(file, []byte(export), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := earshot("audit", "verify", "--file", file); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("audit verify --file: %v\n%s", err, out)
	}
	lines := strings.Split(export, "\n")
	for i, l := range lines {
		if strings.Contains(l, `"kind":"redemption"`) {
			lines[i] = strings.Replace(l, `"amount":1100`, `"amount":110`, 1)
			if lines[i] == l {
				t.Fatalf("no amount in %s", l)
			}
			break
		}
	}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := earshot("audit", "verify", "--file", file)
	if err == nil || !strings.Contains(out, ": edited") {
		t.Fatalf("a tampered export verified: %v\n%s", err, out)
	}
}
