package main_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

const (
	pluginHeader = "/usr/include/mosquitto_plugin.h"
	confFile     = "../../docs/mosquitto/earshot.conf"
	aclFile      = "../../docs/mosquitto/earshot.acl"
	gatewayUser  = "earshot-gateway"
)

// buildArgs is how docs/deploy-mqtt.md builds the plugin, without -o.
var buildArgs = []string{"build", "-tags", "mosquitto", "-buildmode=c-shared"}

// shared is built once by TestMain: a directory the broker can read after it drops
// to the mosquitto user (Mosquitto loads plugins, the ACL and the secret after that),
// holding the plugin.
var shared struct {
	dir, plugin string
	skip        string // why integration tests skip
	err         error  // why the build failed
}

func TestMain(m *testing.M) {
	code := func() int {
		if _, err := os.Stat(pluginHeader); err != nil {
			shared.skip = pluginHeader + " is missing (Debian package mosquitto-dev): the plugin cannot be built here"
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "earshot-mosquitto-auth-")
		if err != nil {
			shared.err = err
			return m.Run()
		}
		defer os.RemoveAll(dir)
		shared.dir = dir
		shared.plugin = filepath.Join(dir, "earshot-mosquitto-auth.so")
		shared.err = buildPlugin(dir, shared.plugin)
		return m.Run()
	}()
	os.Exit(code)
}

func buildPlugin(dir, out string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command("go", append(buildArgs, "-o", out, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
	return nil
}

func requirePlugin(t testing.TB) {
	t.Helper()
	if shared.skip != "" {
		t.Skip(shared.skip)
	}
	if shared.err != nil {
		t.Fatalf("building the plugin: %v", shared.err)
	}
}

// brokerFiles are a broker's files: its own directory, readable by the mosquitto
// user, with the ACL, the broker secret and a persistence directory.
type brokerFiles struct {
	dir, secretFile, acl, persist string
}

// newBrokerFiles writes the secret as docs/deploy-mqtt.md installs it: mode 0600,
// owned by the user Mosquitto runs as.
func newBrokerFiles(t testing.TB, secret string) brokerFiles {
	t.Helper()
	dir, err := os.MkdirTemp(shared.dir, "broker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := brokerFiles{dir: dir, secretFile: filepath.Join(dir, "earshot.secret"), acl: filepath.Join(dir, "earshot.acl"), persist: filepath.Join(dir, "db") + "/"}
	acl, err := os.ReadFile(aclFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{
		os.Chmod(dir, 0o755),
		os.WriteFile(f.acl, acl, 0o644),
		os.WriteFile(f.secretFile, []byte(secret+"\n"), 0o600),
		os.Mkdir(f.persist, 0o700),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	// Run as root, Mosquitto drops to the mosquitto user before it loads the plugin.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mosquitto")
		if err != nil {
			t.Fatalf("running as root without a mosquitto user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{f.secretFile, f.persist} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

// brokerConf is docs/mosquitto/earshot.conf for this test: the listener line is
// left to the harness, the plugin, URL, secret file and ACL point at the test's, and
// persistence_location (Debian's mosquitto.conf sets it in production) is added.
// Every other line is the shipped one, so Mosquitto 2.0.11 checks them all.
func brokerConf(t testing.TB, f brokerFiles, gatewayURL string, extra ...string) string {
	t.Helper()
	raw, err := os.ReadFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	replace := map[string]string{
		"listener":               "",
		"plugin":                 shared.plugin,
		"plugin_opt_url":         gatewayURL,
		"plugin_opt_secret_file": f.secretFile,
		"acl_file":               f.acl,
	}
	seen := map[string]int{}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		key, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		v, ok := replace[key]
		switch {
		case !ok:
			out = append(out, line)
		case v != "":
			out = append(out, key+" "+v)
		}
		if ok {
			seen[key]++
		}
	}
	for key := range replace {
		if seen[key] != 1 {
			t.Fatalf("%s has %d %q lines, want 1", confFile, seen[key], key)
		}
	}
	out = append(out, "persistence_location "+f.persist)
	out = append(out, extra...)
	return strings.Join(out, "\n")
}

// env is a real Mosquitto with the plugin and the shipped configuration, in front of
// a fake gateway.
type env struct {
	gw     *fakeGateway
	broker *clienttest.Mosquitto
	secret string
	files  brokerFiles
	tokens []string // every token minted, none of which may be logged
}

// token mints a device token for k issued at iat and remembers it.
func (e *env) token(t testing.TB, k *identity.Key, iat time.Time) string {
	t.Helper()
	tok := token(t, k, iat)
	e.tokens = append(e.tokens, tok)
	return tok
}

func newEnv(t testing.TB) *env {
	t.Helper()
	requirePlugin(t)
	e := &env{secret: "broker-secret-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	e.gw = startGateway(t, e.secret)
	e.files = newBrokerFiles(t, e.secret)
	e.broker = clienttest.StartMosquitto(t, brokerConf(t, e.files, e.gw.URL+"/v1/mqtt/auth"))
	t.Cleanup(func() {
		// Whatever happened, the broker's log never holds a password.
		log := e.broker.Log()
		if strings.Contains(log, e.secret) {
			t.Errorf("the broker log holds the broker secret")
		}
		for _, tok := range e.tokens {
			if strings.Contains(log, tok) {
				t.Errorf("the broker log holds a device token")
				break
			}
		}
		if strings.Contains(log, "eyJ") { // base64url of `{"`: a token's header or claims
			t.Errorf("the broker log holds something like a token")
		}
	})
	return e
}

// mqttClient connects as a device would (docs/protocol.md §2): MQTT 3.1.1, clean
// session false, keepalive 30 s, a retained offline will on the status topic.
// It is disconnected when the test ends.
func mqttClient(t testing.TB, addr, username, password, clientID string) (mqtt.Client, error) {
	t.Helper()
	o := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetProtocolVersion(4).
		SetClientID(clientID).
		SetUsername(username).
		SetPassword(password).
		SetCleanSession(false).
		SetKeepAlive(30 * time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetOrderMatters(true)
	if username != gatewayUser {
		o.SetWill(wire.StatusTopic(username), string(wire.Presence{State: wire.Offline}.Encode()), wire.QoSEvents, true)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("CONNECT timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func mustConnect(t testing.TB, addr, username, password, clientID string) mqtt.Client {
	t.Helper()
	c, err := mqttClient(t, addr, username, password, clientID)
	if err != nil {
		t.Fatalf("%s as %s: %v", clientID, username, err)
	}
	return c
}

// refused reports whether err is a CONNACK refusal for bad credentials (4) or not
// authorised (5); Mosquitto 2.0.11 answers a plugin's MOSQ_ERR_AUTH with 5.
func refused(err error) bool {
	return errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword)
}

// msg is one received message.
type msg struct{ topic, payload string }

// collect subscribes c to filter at QoS 1 and returns the SUBACK code and a channel
// of the messages. The channel is bounded; a message over its capacity is dropped
// and shows up as a missing message.
func collect(t testing.TB, c mqtt.Client, filter string) (byte, <-chan msg) {
	t.Helper()
	ch := make(chan msg, 64)
	tok := c.Subscribe(filter, wire.QoSEvents, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case ch <- msg{m.Topic(), string(m.Payload())}:
		default:
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	// paho keys the result by the filter without "$share/group/": there is one.
	for _, code := range tok.(*mqtt.SubscribeToken).Result() {
		return code, ch
	}
	t.Fatalf("subscribe %s: no SUBACK code", filter)
	return 0, nil
}

func publish(t testing.TB, c mqtt.Client, topic, payload string, retained bool) {
	t.Helper()
	tok := c.Publish(topic, wire.QoSEvents, retained, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func next(t testing.TB, ch <-chan msg) msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message in 5s")
		return msg{}
	}
}

// process is a broker the test runs itself.
type process struct {
	cmd  *exec.Cmd
	out  *lockedBuffer // its combined output
	port int
	done chan struct{} // closed when it has exited; err is then its exit status
	err  error
}

// runMosquitto runs a broker of the test's own, for what the harness does not do
// (signals, a broker that must fail to start). Its configuration file is readable
// by the mosquitto user, since Mosquitto re-reads it on SIGHUP after dropping
// privileges. The broker is killed when the test ends.
func runMosquitto(t testing.TB, f brokerFiles, conf string) *process {
	t.Helper()
	p := &process{out: new(lockedBuffer), port: freePort(t), done: make(chan struct{})}
	path := filepath.Join(f.dir, "mosquitto.conf")
	conf = fmt.Sprintf("listener %d 127.0.0.1\nlog_dest stderr\nlog_type all\n%s\n", p.port, conf)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(clienttest.MosquittoBinary, "-c", path)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill() // it may have exited already
		<-p.done
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", p.out)
		}
	})
	return p
}

// waitFor polls cond every 20 ms for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// lines reads r's lines into a bounded channel until r ends.
func lines(r *bufio.Scanner) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		for r.Scan() {
			select {
			case ch <- r.Text():
			default:
			}
		}
	}()
	return ch
}
