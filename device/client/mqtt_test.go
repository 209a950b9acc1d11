package client_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/wire"
)

// reconnecting is a client config for tests that break connections.
func reconnecting(cfg *client.Config) {
	cfg.Reconnect, cfg.MinBackoff, cfg.MaxBackoff = true, 20*time.Millisecond, 100*time.Millisecond
}

// TestMQTTBrokerRestartResumes: the broker is killed (losing every session and
// retained message) and restarted on the same port; device and gateway reconnect,
// the device resumes, and what the gateway sent meanwhile arrives once.
func TestMQTTBrokerRestartResumes(t *testing.T) {
	e := newEnv(t, "mqtt", clienttest.Config{})
	key, en := enroll(t, e.g, "alice", "glasses")
	c := dial(t, e, key, en, reconnecting)
	session, _ := c.Session()
	req := prompt(t, c, "buy two oat lattes")
	waitAcked(t, e.g, en.Device, 1)

	e.m.Kill()
	seq, err := e.g.Push(en.Device, &wire.TxResult{Tx: req.Tx, State: wire.TxPrompted})
	if err != nil {
		t.Fatal(err)
	}
	e.m.Restart()

	ev, conn := nextMessage(t, c)
	if ev.Seq != seq || ev.TxResult == nil {
		t.Fatalf("got %s seq %d, want the tx.result sent during the outage (seq %d)", ev.Type, ev.Seq, seq)
	}
	if len(conn) < 2 || conn[0].Type != client.EventDisconnected || conn[0].Disconnected.Code != wire.CodeUnknown {
		t.Fatalf("connection events %+v, want a disconnect first", conn)
	}
	if last := conn[len(conn)-1]; last.HelloOK == nil || !last.HelloOK.Resumed || last.HelloOK.Session != session {
		t.Fatalf("last connection event %+v, want the session resumed", last)
	}
	// And the session works: a whole purchase.
	if err := c.Confirm(ctxT(t), req, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	for _, want := range []wire.TxState{wire.TxMandated, wire.TxRedeemed} {
		if ev, _ := nextMessage(t, c); ev.TxResult == nil || ev.TxResult.State != want {
			t.Fatalf("got %s %+v, want %s", ev.Type, ev.TxResult, want)
		}
	}
	noEvent(t, c)
}

// TestMQTTOfflinePromptOnce: a prompt made while the device is offline is queued by
// the broker (persistent session) and re-sent by the gateway on resume; the device
// shows it once and its approval is the only one.
func TestMQTTOfflinePromptOnce(t *testing.T) {
	e := newEnv(t, "mqtt", clienttest.Config{})
	key, en := enroll(t, e.g, "alice", "glasses")
	c := dial(t, e, key, en, reconnecting)

	e.p.SetRefuse(true)
	e.p.Drop()
	if ev := next(t, c); ev.Type != client.EventDisconnected || !ev.Disconnected.Reconnecting {
		t.Fatalf("got %s %+v", ev.Type, ev.Disconnected)
	}
	eventually(t, "the gateway sees the device offline", func() bool {
		st, _ := e.g.Device(en.Device)
		return !st.Connected && st.Presence == wire.Offline
	})
	tx, err := e.g.Offer(en.Device, "buy two oat lattes")
	if err != nil {
		t.Fatal(err)
	}
	e.p.SetRefuse(false)

	if ev := next(t, c); ev.HelloOK == nil || !ev.HelloOK.Resumed {
		t.Fatalf("got %s %+v, want a resumed hello.ok", ev.Type, ev.HelloOK)
	}
	ev := next(t, c)
	if ev.ConfirmRequest == nil || ev.ConfirmRequest.Tx != tx {
		t.Fatalf("got %s %+v, want the prompt for %s", ev.Type, ev.ConfirmRequest, tx)
	}
	if err := c.Confirm(ctxT(t), ev.ConfirmRequest, wire.DecisionApprove, wire.MethodVoice); err != nil {
		t.Fatal(err)
	}
	for _, want := range []wire.TxState{wire.TxMandated, wire.TxRedeemed} {
		if ev := next(t, c); ev.TxResult == nil || ev.TxResult.State != want || ev.TxResult.Tx != tx {
			t.Fatalf("got %s %+v, want %s", ev.Type, ev.TxResult, want)
		}
	}
	noEvent(t, c)
	if st, _ := e.g.Device(en.Device); len(st.Confirms) != 1 {
		t.Fatalf("gateway got %d confirms, want 1", len(st.Confirms))
	}
	if s := c.Stats(); s.Early < 1 {
		t.Fatalf("stats %+v: the broker's queued copy did not arrive", s)
	}
}

// TestMQTTGatewayRestartRehello: a gateway that restarts publishes a new epoch
// (after an offline status when it stops cleanly); the device sends hello again on
// the same connection and resumes.
func TestMQTTGatewayRestartRehello(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		t.Run(fmt.Sprintf("graceful=%v", graceful), func(t *testing.T) {
			e := newEnv(t, "mqtt", clienttest.Config{})
			key, en := enroll(t, e.g, "alice", "glasses")
			c := dial(t, e, key, en, reconnecting)
			session, _ := c.Session()
			prompt(t, c, "buy two oat lattes")
			waitAcked(t, e.g, en.Device, 1)
			if err := e.g.RestartMQTT(graceful); err != nil {
				t.Fatal(err)
			}
			ev := next(t, c)
			if ev.Type != client.EventDisconnected || !ev.Disconnected.Reconnecting || ev.Disconnected.Code != wire.CodeUnknown {
				t.Fatalf("got %s %+v, want a reconnecting disconnect", ev.Type, ev.Disconnected)
			}
			if ev := next(t, c); ev.HelloOK == nil || !ev.HelloOK.Resumed || ev.HelloOK.Session != session {
				t.Fatalf("got %s %+v, want a resumed hello.ok", ev.Type, ev.HelloOK)
			}
			st, _ := e.g.Device(en.Device)
			if len(st.Hellos) != 2 || st.Hellos[1].LastAck != 1 || !st.Connected {
				t.Fatalf("gateway saw %+v", st)
			}
			if s := c.Stats(); s.Connections != 1 {
				t.Fatalf("stats %+v: the device reconnected to the broker", s)
			}
			seq, err := e.g.Push(en.Device, &wire.TxResult{Tx: "tx_1", State: wire.TxPrompted})
			if err != nil {
				t.Fatal(err)
			}
			if ev := next(t, c); ev.Seq != seq {
				t.Fatalf("got %s seq %d, want %d", ev.Type, ev.Seq, seq)
			}
		})
	}
}

// TestMQTTNoSessionRetries: the gateway forgot the session without telling (as
// after a restart the device has not noticed yet); the device's next message is
// answered with no_session, and the device says hello and sends the message again.
func TestMQTTNoSessionRetries(t *testing.T) {
	e := newEnv(t, "mqtt", clienttest.Config{})
	key, en := enroll(t, e.g, "alice", "glasses")
	c := dial(t, e, key, en, reconnecting)
	if !e.g.Disconnect(en.Device, wire.CodeUnknown) {
		t.Fatal("no session")
	}
	if _, err := c.Say(ctxT(t), "buy two oat lattes"); err != nil {
		t.Fatal(err)
	}
	ev := next(t, c)
	if ev.Type != client.EventDisconnected || ev.Disconnected.Code != wire.CodeNoSession || !ev.Disconnected.Reconnecting {
		t.Fatalf("got %s %+v, want a no_session disconnect", ev.Type, ev.Disconnected)
	}
	if ev := next(t, c); ev.HelloOK == nil || !ev.HelloOK.Resumed {
		t.Fatalf("got %s %+v, want a resumed hello.ok", ev.Type, ev.HelloOK)
	}
	if ev := next(t, c); ev.ConfirmRequest == nil {
		t.Fatalf("got %s, want the prompt for the retried utterance", ev.Type)
	}
	if s := c.Stats(); s.Retried != 1 {
		t.Fatalf("stats %+v, want 1 retried", s)
	}
	noEvent(t, c)
}

// TestMQTTClosePublishesOffline: a clean Close leaves the retained offline status
// (with the connection's epoch), and the gateway sees the device go.
func TestMQTTClosePublishesOffline(t *testing.T) {
	e := newEnv(t, "mqtt", clienttest.Config{})
	key, en := enroll(t, e.g, "alice", "glasses")
	c := dial(t, e, key, en, nil)
	online := retainedStatus(t, e.m, en.Device)
	if online.State != wire.Online || online.Epoch == "" {
		t.Fatalf("retained status %+v, want online with an epoch", online)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := retainedStatus(t, e.m, en.Device); got != (wire.Presence{State: wire.Offline, Epoch: online.Epoch}) {
		t.Fatalf("retained status after Close %+v, want offline for epoch %s", got, online.Epoch)
	}
	st, _ := e.g.Device(en.Device)
	if st.Connected || st.Presence != wire.Offline {
		t.Fatalf("gateway sees %+v", st)
	}
}

// retainedStatus reads a device's retained status with a separate MQTT client.
func retainedStatus(t *testing.T, m *clienttest.Mosquitto, device string) wire.Presence {
	t.Helper()
	got := make(chan []byte, 1)
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL).SetClientID(device + "-test").
		SetProtocolVersion(4).SetAutoReconnect(false))
	if tok := cli.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer cli.Disconnect(0)
	tok := cli.Subscribe(wire.StatusTopic(device), 1, func(_ paho.Client, msg paho.Message) {
		select {
		case got <- msg.Payload():
		default:
		}
	})
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case b := <-got:
		p, err := wire.DecodePresence(b)
		if err != nil {
			t.Fatal(err)
		}
		return p
	case <-time.After(waitFor):
		t.Fatal("no retained status")
	}
	return wire.Presence{}
}

// TestMQTTConnectRefused: a broker that refuses the CONNECT (return code 5 here;
// 4 from earshot's broker or plugin) fails Dial with a *DialError, and fails a
// reconnecting client after a few attempts with fresh tokens.
func TestMQTTConnectRefused(t *testing.T) {
	e := newEnv(t, "mqtt", clienttest.Config{})
	locked := clienttest.StartMosquitto(t, "allow_anonymous false")
	key, en := enroll(t, e.g, "alice", "glasses")

	_, err := client.Dial(ctxT(t), client.Config{URL: locked.URL, Key: key, Audience: en.Audience})
	var de *client.DialError
	if !errors.As(err, &de) || !errors.Is(err, client.ErrRefused) || de.ReturnCode != 5 || de.Status != 0 {
		t.Fatalf("Dial = %v, want a *DialError with return code 5", err)
	}

	c := dial(t, e, key, en, reconnecting)
	e.p.SetTarget(locked.Addr)
	e.p.Drop()
	var events []client.Event
	for ev := range c.Events() {
		events = append(events, ev)
	}
	if len(events) != 2 || !events[0].Disconnected.Reconnecting || events[1].Disconnected.Reconnecting {
		t.Fatalf("events %+v, want a reconnecting disconnect and a final one", events)
	}
	if !errors.As(events[1].Disconnected.Err, &de) || de.ReturnCode != 5 {
		t.Fatalf("final disconnect %+v, want the CONNACK refusal", events[1].Disconnected)
	}
	if s := c.Stats(); s.Connections != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestMQTTDialGatewayOffline: Dial fails at once when the gateway's status says it
// is offline; a connected client waits for it instead.
func TestMQTTDialGatewayOffline(t *testing.T) {
	e := newEnv(t, "mqtt", clienttest.Config{})
	key, en := enroll(t, e.g, "alice", "glasses")
	e.g.Close() // publishes the gateway's offline status
	_, err := client.Dial(ctxT(t), client.Config{URL: e.url(), Key: key, Audience: en.Audience})
	if !errors.Is(err, client.ErrGatewayOffline) {
		t.Fatalf("Dial = %v, want ErrGatewayOffline", err)
	}
}

// TestMQTTOverTLS: mqtts:// with Config.TLS trusting a private CA.
func TestMQTTOverTLS(t *testing.T) {
	dir := t.TempDir()
	pool := writeTestCerts(t, dir)
	port := freePort(t)
	// "user root": a broker started as root drops to the mosquitto user before it
	// reads the certificates, which live in the test's private temporary directory
	// (when the test does not run as root, the line has no effect).
	conf := fmt.Sprintf("%s\nuser root\nlistener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n", mosquittoConf, port,
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	m := clienttest.StartMosquitto(t, conf)
	g := clienttest.New(clienttest.Config{})
	t.Cleanup(g.Close)
	if err := g.ServeMQTT(m.URL); err != nil {
		t.Fatal(err)
	}
	key, en := enroll(t, g, "alice", "kiosk")
	url := "mqtts://localhost:" + strconv.Itoa(port)

	if _, err := client.Dial(ctxT(t), client.Config{URL: url, Key: key, Audience: en.Audience}); err == nil {
		t.Fatal("Dial trusted an unknown CA")
	}
	c, err := client.Dial(ctxT(t), client.Config{URL: url, Key: key, Audience: en.Audience, TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ev := next(t, c); ev.HelloOK == nil {
		t.Fatalf("got %s", ev.Type)
	}
	if req := prompt(t, c, "a large americano"); req.Terms.Total != 450 {
		t.Fatalf("terms %+v", req.Terms)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeTestCerts writes ca.pem, server.pem and server.key (for localhost) to dir and
// returns a pool trusting the CA.
func writeTestCerts(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "earshot test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: srvDER},
		"server.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}
