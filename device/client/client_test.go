package client_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

func TestEnrollAndDial(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		key, en := enroll(t, e.g, "alice", "glasses")
		if en.Device != key.DeviceID() || en.User != "usr_alice" || en.Audience != e.g.Audience() {
			t.Fatalf("enrolment %+v", en)
		}
		c := dial(t, e, key, en, nil)
		if id, resumed := c.Session(); id == "" || resumed {
			t.Fatalf("Session() = %q, %v", id, resumed)
		}
		st, _ := e.g.Device(en.Device)
		if !st.Connected || st.Transport != tr || len(st.Hellos) != 1 || st.Hellos[0].Client.Name != "test" || st.Hellos[0].Resume != "" {
			t.Fatalf("gateway saw %+v", st)
		}
		if tr == "mqtt" && st.Presence != wire.Online {
			t.Fatalf("presence %q, want online", st.Presence)
		}
		if s := c.Stats(); s.Connections != 1 || s.Hellos != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestEnrollRefused(t *testing.T) {
	g := newEnv(t, "ws", clienttest.Config{}).g
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	code := g.PairingCode("alice")
	if _, err := client.Enroll(ctxT(t), g.URL(), key, code, "glasses", "g"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, code, kind string
		status           int
		problem          string
	}{
		{"unknown code", "NOPE-NOPE", "glasses", 403, "invalid_pairing_code"},
		{"used code", code, "glasses", 403, "invalid_pairing_code"},
		{"bad kind", g.PairingCode("bob"), "toaster", 400, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.Enroll(ctxT(t), g.URL(), key, tt.code, tt.kind, "g")
			var ee *client.EnrollError
			if !errors.As(err, &ee) || !errors.Is(err, client.ErrRefused) {
				t.Fatalf("err = %v, want *EnrollError", err)
			}
			if ee.Status != tt.status || ee.Code != tt.problem {
				t.Fatalf("got %d %s, want %d %s", ee.Status, ee.Code, tt.status, tt.problem)
			}
		})
	}
}

// TestDialRefused: over WebSocket the gateway refuses the upgrade; over MQTT the
// broker here lets any device in (token checks at the broker are the gateway's or
// its plugin's job, see TestMQTTConnectRefused) and the gateway refuses the hello.
func TestDialRefused(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		key, en := enroll(t, e.g, "alice", "glasses")
		revokedKey, revoked := enroll(t, e.g, "alice", "kiosk")
		e.g.Revoke(revoked.Device)
		stranger, err := identity.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			key      *identity.Key
			audience string
			status   int // over WebSocket
			code     wire.Code
		}{
			{"unknown device", stranger, en.Audience, 401, wire.CodeUnknownDevice},
			{"wrong audience", key, "earshot:elsewhere", 401, wire.CodeInvalidToken},
			{"revoked", revokedKey, en.Audience, 403, wire.CodeDeviceRevoked},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tr == "mqtt" && tt.code == wire.CodeInvalidToken {
					t.Skip("the token is the broker's to check")
				}
				_, err := client.Dial(ctxT(t), client.Config{URL: e.url(), Key: tt.key, Audience: tt.audience})
				var de *client.DialError
				if !errors.As(err, &de) || !errors.Is(err, client.ErrRefused) {
					t.Fatalf("err = %v, want *DialError", err)
				}
				status := tt.status
				if tr == "mqtt" {
					status = 0
				}
				if de.Status != status || de.Code != tt.code.String() || de.WireCode() != tt.code || de.Detail == "" {
					t.Fatalf("got %+v, want %d %s", de, status, tt.code)
				}
			})
		}
	})
}

func TestConfigRequired(t *testing.T) {
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  client.Config
	}{
		{"no url", client.Config{Key: key, Audience: "a"}},
		{"http url", client.Config{URL: "http://127.0.0.1:1/v1/device", Key: key, Audience: "a"}},
		{"no key", client.Config{URL: "ws://127.0.0.1:1/v1/device", Audience: "a"}},
		{"no audience", client.Config{URL: "ws://127.0.0.1:1/v1/device", Key: key}},
		{"mqtt without host", client.Config{URL: "mqtt://", Key: key, Audience: "a"}},
		{"mqtt with a path", client.Config{URL: "mqtt://127.0.0.1:1883/v1/device", Key: key, Audience: "a"}},
		{"unknown scheme", client.Config{URL: "amqp://127.0.0.1:5672", Key: key, Audience: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := client.Dial(ctxT(t), tt.cfg); err == nil {
				t.Fatal("Dial accepted an invalid config")
			}
		})
	}
}

func TestPurchase(t *testing.T) {
	tests := []struct {
		name     string
		kind     string
		decision wire.Decision
		method   wire.Method
		states   []wire.TxState
	}{
		{"glasses approve by voice", "glasses", wire.DecisionApprove, wire.MethodVoice, []wire.TxState{wire.TxMandated, wire.TxRedeemed}},
		{"kiosk approve by tap", "kiosk", wire.DecisionApprove, wire.MethodTap, []wire.TxState{wire.TxMandated, wire.TxRedeemed}},
		{"decline", "glasses", wire.DecisionDecline, wire.MethodTap, []wire.TxState{wire.TxDeclined}},
	}
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				g := e.g
				key, en := enroll(t, g, "alice", tt.kind)
				c := dial(t, e, key, en, nil)
				req := prompt(t, c, "buy two oat lattes")
				if req.Terms.Total != 1100 || req.Terms.Merchant.Name != "Earshot Coffee" {
					t.Fatalf("terms %+v", req.Terms)
				}
				if err := c.Confirm(ctxT(t), req, tt.decision, tt.method); err != nil {
					t.Fatal(err)
				}
				for _, want := range tt.states {
					ev := next(t, c)
					if ev.Type != wire.TypeTxResult || ev.TxResult.State != want || ev.TxResult.Tx != req.Tx {
						t.Fatalf("got %s %+v, want tx.result %s", ev.Type, ev.TxResult, want)
					}
					if want == wire.TxRedeemed && (ev.TxResult.Amount != 1100 || ev.TxResult.Currency != "USD" || ev.TxResult.Mandate == "") {
						t.Fatalf("redeemed %+v", ev.TxResult)
					}
				}
				st, _ := g.Device(en.Device)
				if len(st.Confirms) != 1 || st.Confirms[0].Decision != tt.decision || st.Confirms[0].Method != tt.method {
					t.Fatalf("gateway verified %+v", st.Confirms)
				}
			})
		}
	})
}

func TestNotUnderstoodAndStatus(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		key, en := enroll(t, e.g, "alice", "glasses")
		c := dial(t, e, key, en, nil)
		ref, err := c.Say(ctxT(t), "play some music")
		if err != nil {
			t.Fatal(err)
		}
		ev := next(t, c)
		r := ev.TxResult
		if r == nil || r.State != wire.TxRejected || r.Code != wire.CodeNotUnderstood || r.Ref != ref {
			t.Fatalf("got %s %+v, want rejected not_understood for %s", ev.Type, r, ref)
		}
		if err := c.Status(ctxT(t), r.Tx); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, c); ev.TxResult == nil || ev.TxResult.Tx != r.Tx || ev.TxResult.State != wire.TxRejected {
			t.Fatalf("status answered %s %+v", ev.Type, ev.TxResult)
		}
		if err := c.Status(ctxT(t), "tx_nope"); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, c); ev.Error == nil || ev.Error.Code != wire.CodeUnknownTx || ev.Seq != 0 {
			t.Fatalf("unknown tx answered %s %+v", ev.Type, ev.Error)
		}
	})
}

func TestConfirmRefusesBadPrompt(t *testing.T) {
	tests := []struct {
		name   string
		kind   string
		tamper func(*wire.ConfirmRequest)
		method wire.Method
		want   error
	}{
		{"terms changed after hashing", "glasses", func(r *wire.ConfirmRequest) { r.Terms.Merchant.Name = "Evil Coffee" }, wire.MethodTap, client.ErrHashMismatch},
		{"hash replaced", "glasses", func(r *wire.ConfirmRequest) { r.Hash = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }, wire.MethodTap, client.ErrHashMismatch},
		{"terms for another device", "glasses", func(r *wire.ConfirmRequest) {
			r.Terms.Device = "dev_someoneelse"
			r.Hash, _ = r.Terms.Hash()
		}, wire.MethodTap, client.ErrBadPrompt},
		{"terms for another tx", "glasses", func(r *wire.ConfirmRequest) {
			r.Terms.Tx = "tx_other"
			r.Hash, _ = r.Terms.Hash()
		}, wire.MethodTap, client.ErrBadPrompt},
		{"method not offered", "kiosk", nil, wire.MethodVoice, client.ErrMethodNotOffered},
	}
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e.g.SetTamper(tt.tamper)
				key, en := enroll(t, e.g, "alice", tt.kind)
				c := dial(t, e, key, en, nil)
				req := prompt(t, c, "a large americano")
				err := c.Confirm(ctxT(t), req, wire.DecisionApprove, tt.method)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Confirm = %v, want %v", err, tt.want)
				}
				// Nothing was signed or sent: a status round trip proves the gateway
				// has read everything the client wrote before it.
				if err := c.Status(ctxT(t), req.Tx); err != nil {
					t.Fatal(err)
				}
				if ev := next(t, c); ev.TxResult == nil || ev.TxResult.State != wire.TxPrompted {
					t.Fatalf("status answered %s %+v", ev.Type, ev.TxResult)
				}
				if st, _ := e.g.Device(en.Device); st.Uplinks[wire.TypeConfirm] != 0 {
					t.Fatalf("gateway received %d confirm frames", st.Uplinks[wire.TypeConfirm])
				}
			})
		}
	})
}

func TestDuplicatesDeliveredOnce(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		g := e.g
		key, en := enroll(t, g, "alice", "glasses")
		c := dial(t, e, key, en, nil)
		req := prompt(t, c, "buy two oat lattes") // seq 1
		for range 2 {
			if err := g.Resend(en.Device, 1); err != nil { // the same seq again
				t.Fatal(err)
			}
		}
		if _, err := g.Push(en.Device, req); err != nil { // the same prompt under a new seq
			t.Fatal(err)
		}
		seq, err := g.Push(en.Device, &wire.TxResult{Tx: req.Tx, State: wire.TxPrompted})
		if err != nil {
			t.Fatal(err)
		}
		ev := next(t, c)
		if ev.Seq != seq || ev.TxResult == nil {
			t.Fatalf("got %s seq %d, want tx.result seq %d", ev.Type, ev.Seq, seq)
		}
		noEvent(t, c)
		waitAcked(t, g, en.Device, seq)
		if s := c.Stats(); s.Duplicates != 2 {
			t.Fatalf("stats %+v, want 2 duplicates", s)
		}
	})
}

// TestReconnectResumes: the gateway ends the session with a reconnect code (over
// WebSocket a close frame; over MQTT an error on the down topic, and the device
// resumes on the same connection).
func TestReconnectResumes(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		g := e.g
		key, en := enroll(t, g, "alice", "glasses")
		c := dial(t, e, key, en, func(cfg *client.Config) {
			cfg.Reconnect, cfg.MinBackoff, cfg.MaxBackoff = true, 50*time.Millisecond, 100*time.Millisecond
		})
		session, _ := c.Session()
		req := prompt(t, c, "buy two oat lattes") // seq 1, acked
		waitAcked(t, g, en.Device, 1)
		if !g.Disconnect(en.Device, wire.CodeShutdown) {
			t.Fatal("not connected")
		}
		// Sent while the device is away: delivered after the resume, once, in order.
		var seqs []uint64
		for _, s := range []wire.TxState{wire.TxPrompted, wire.TxExpired} {
			seq, err := g.Push(en.Device, &wire.TxResult{Tx: req.Tx, State: s})
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, seq)
		}
		ev := next(t, c)
		if ev.Type != client.EventDisconnected || !ev.Disconnected.Reconnecting || ev.Disconnected.Code != wire.CodeShutdown {
			t.Fatalf("got %s %+v, want a reconnecting disconnect", ev.Type, ev.Disconnected)
		}
		ev = next(t, c)
		if ev.Type != wire.TypeHelloOK || !ev.HelloOK.Resumed || ev.HelloOK.Session != session {
			t.Fatalf("got %s %+v, want a resumed hello.ok", ev.Type, ev.HelloOK)
		}
		for _, seq := range seqs {
			if ev := next(t, c); ev.Seq != seq || ev.TxResult == nil {
				t.Fatalf("got %s seq %d, want seq %d", ev.Type, ev.Seq, seq)
			}
		}
		noEvent(t, c)
		st, _ := g.Device(en.Device)
		if h := st.Hellos[len(st.Hellos)-1]; h.Resume == "" || h.LastAck != 1 {
			t.Fatalf("second hello %+v, want a resume token and last_ack 1", h)
		}
		if id, resumed := c.Session(); id != session || !resumed {
			t.Fatalf("Session() = %s %v", id, resumed)
		}
		wantLinks := int64(2)
		if tr == "mqtt" {
			wantLinks = 1 // the MQTT link outlives the session
		}
		if s := c.Stats(); s.Connections != wantLinks || s.Hellos != 2 {
			t.Fatalf("stats %+v, want %d connections and 2 hellos", s, wantLinks)
		}
	})
}

// TestReconnectDropsResent: the connection drops without a goodbye; the gateway
// re-sends everything, and the device delivers only what is new.
func TestReconnectDropsResent(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		g := e.g
		g.SetIgnoreAcks(true) // the gateway re-sends everything on every connection
		key, en := enroll(t, g, "alice", "glasses")
		c := dial(t, e, key, en, func(cfg *client.Config) {
			cfg.Reconnect, cfg.MinBackoff = true, 10*time.Millisecond
		})
		req := prompt(t, c, "buy two oat lattes")
		if err := c.Confirm(ctxT(t), req, wire.DecisionApprove, wire.MethodTap); err != nil {
			t.Fatal(err)
		}
		for _, want := range []wire.TxState{wire.TxMandated, wire.TxRedeemed} {
			if ev := next(t, c); ev.TxResult == nil || ev.TxResult.State != want {
				t.Fatalf("got %s %+v, want %s", ev.Type, ev.TxResult, want)
			}
		}
		e.cut(t, en.Device) // no close frame, no DISCONNECT
		if ev := next(t, c); ev.Type != client.EventDisconnected || ev.Disconnected.Code != wire.CodeUnknown || !ev.Disconnected.Reconnecting {
			t.Fatalf("got %s %+v", ev.Type, ev.Disconnected)
		}
		if ev := next(t, c); ev.Type != wire.TypeHelloOK {
			t.Fatalf("got %s, want hello.ok", ev.Type)
		}
		eventually(t, "session", func() bool { st, _ := g.Device(en.Device); return st.Connected })
		seq, err := g.Push(en.Device, &wire.TxResult{Tx: req.Tx, State: wire.TxRedeemed})
		if err != nil {
			t.Fatal(err)
		}
		if ev := next(t, c); ev.Seq != seq { // seqs 1-3 came again and were dropped
			t.Fatalf("got %s seq %d, want seq %d", ev.Type, ev.Seq, seq)
		}
	})
}

// TestDisconnectFinal: codes 4500-4999 (a close code, or over MQTT an error on the
// down topic) stop the client, as does any disconnect without Reconnect.
func TestDisconnectFinal(t *testing.T) {
	tests := []struct {
		name      string
		reconnect bool
		revoke    bool
		code      wire.Code
		final     wire.Code // the code of the last disconnect event
	}{
		{"no reconnect configured", false, false, wire.CodeShutdown, wire.CodeShutdown},
		{"close code forbids", true, false, wire.CodeDeviceRevoked, wire.CodeDeviceRevoked},
		{"reconnect refused", true, true, wire.CodeShutdown, wire.CodeDeviceRevoked},
	}
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				g := e.g
				key, en := enroll(t, g, "alice", "glasses")
				c := dial(t, e, key, en, func(cfg *client.Config) {
					cfg.Reconnect, cfg.MinBackoff = tt.reconnect, 10*time.Millisecond
				})
				if tt.revoke {
					g.Revoke(en.Device)
				}
				g.Disconnect(en.Device, tt.code)
				var last *client.DisconnectInfo
				for ev := range c.Events() {
					if ev.Type != client.EventDisconnected {
						t.Fatalf("unexpected %s", ev.Type)
					}
					last = ev.Disconnected
				}
				if last == nil || last.Reconnecting || last.Code != tt.final {
					t.Fatalf("last disconnect %+v, want final %s", last, tt.final)
				}
				if _, err := c.Say(ctxT(t), "hello"); !errors.Is(err, client.ErrDisconnected) {
					t.Fatalf("Say after the end = %v, want ErrDisconnected", err)
				}
				if tr == "mqtt" { // the client disconnected, saying so
					eventually(t, "offline status", func() bool { st, _ := g.Device(en.Device); return st.Presence == wire.Offline })
				}
			})
		}
	})
}

func TestCloseStopsEverything(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		before := runtime.NumGoroutine()
		g := clienttest.New(clienttest.Config{})
		e := &env{transport: tr, g: g}
		if tr == "mqtt" {
			e = newEnv(t, tr, clienttest.Config{})
			g = e.g
		}
		key, en := enroll(t, g, "alice", "glasses")
		if tr == "mqtt" { // the broker, the fake's paho client, the proxy and HTTP keep-alives stay
			before = runtime.NumGoroutine()
		}
		c := dial(t, e, key, en, func(cfg *client.Config) { cfg.Reconnect = true })
		prompt(t, c, "buy two oat lattes")
		for range 2 {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := <-c.Events(); ok {
			t.Fatal("events still open after Close")
		}
		if _, err := c.Say(ctxT(t), "hello"); !errors.Is(err, client.ErrClosed) {
			t.Fatalf("Say after Close = %v, want ErrClosed", err)
		}
		if tr != "mqtt" {
			g.Close()
		}
		deadline := time.Now().Add(waitFor)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestDeviceURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/v1/device"},
		{"https://gw.example/", "wss://gw.example/v1/device"},
		{"http://h/base", "ws://h/base/v1/device"},
		{"ftp://h", ""},
		{"127.0.0.1:8080", ""},
	}
	for _, tt := range tests {
		got, err := client.DeviceURL(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("DeviceURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestAckOnlyAfterDelivery(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		e := newEnv(t, tr, clienttest.Config{})
		g := e.g
		key, en := enroll(t, g, "alice", "glasses")
		c := dial(t, e, key, en, func(cfg *client.Config) { cfg.EventBuffer = 1 })
		for range 3 {
			if _, err := g.Push(en.Device, &wire.TxResult{Tx: "tx_1", State: wire.TxPrompted}); err != nil {
				t.Fatal(err)
			}
		}
		// The first fits in Events and is acknowledged; the second waits for room.
		waitAcked(t, g, en.Device, 1)
		time.Sleep(50 * time.Millisecond)
		if st, _ := g.Device(en.Device); st.Acked != 1 {
			t.Fatalf("acked %d before the events were read, want 1", st.Acked)
		}
		for seq := uint64(1); seq <= 3; seq++ {
			if ev := next(t, c); ev.Seq != seq {
				t.Fatalf("got seq %d, want %d", ev.Seq, seq)
			}
		}
		waitAcked(t, g, en.Device, 3)
	})
}

func TestDiscover(t *testing.T) {
	g := newEnv(t, "ws", clienttest.Config{}).g
	got, err := client.Discover(ctxT(t), g.URL())
	if err != nil || got != (client.Transports{WS: g.DeviceURL(), WebRTC: g.WHIPURL(), Recognizer: "none"}) {
		t.Fatalf("Discover = %+v, %v; want WebSocket and WebRTC", got, err)
	}
	e := newEnv(t, "mqtt", clienttest.Config{})
	got, err = client.Discover(ctxT(t), e.g.URL())
	if err != nil || got != (client.Transports{WS: e.g.DeviceURL(), MQTT: e.m.URL, WebRTC: e.g.WHIPURL(), Recognizer: "none"}) {
		t.Fatalf("Discover = %+v, %v; want the broker too", got, err)
	}
	old := httptest.NewServer(http.NotFoundHandler()) // a gateway from before MQTT
	t.Cleanup(old.Close)
	got, err = client.Discover(ctxT(t), old.URL)
	if want, _ := client.DeviceURL(old.URL); err != nil || got != (client.Transports{WS: want, Recognizer: "none"}) {
		t.Fatalf("Discover on a 404 = %+v, %v; want WebSocket at %s", got, err, want)
	}
}
