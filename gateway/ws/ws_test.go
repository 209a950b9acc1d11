package ws_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/session"
	"github.com/earshot/earshot/gateway/voice"
	"github.com/earshot/earshot/gateway/ws"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type nopAgent struct{}

func (nopAgent) ID() string                                     { return "agent" }
func (nopAgent) OnIntent(context.Context, agent.Intent) error   { return nil }
func (nopAgent) OnMandate(context.Context, agent.Mandate) error { return nil }
func (nopAgent) OnOutcome(context.Context, agent.Outcome) error { return nil }

type rig struct {
	t    *testing.T
	reg  *registry.Registry
	core *session.Core
	srv  *ws.Server
	url  string
}

func newRig(t *testing.T, cfg ws.Config) *rig {
	t.Helper()
	st := kv.NewMemory()
	reg, err := registry.New(registry.Config{Store: st, Audience: "earshot:test"})
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := authz.GenerateSigningKey(rand.Reader, time.Now())
	keys, _ := authz.NewKeySet(sk)
	core, err := session.New(session.Config{Store: st, Registry: reg, Keys: keys, Agent: nopAgent{}})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := voice.New(voice.Config{Core: core})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Voice, cfg.Registry = vs, reg
	srv, err := ws.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		core.Close()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return &rig{t: t, reg: reg, core: core, srv: srv, url: "ws" + strings.TrimPrefix(hs.URL, "http") + ws.Path}
}

func (r *rig) enroll() *identity.Key {
	r.t.Helper()
	k, _ := identity.GenerateKey()
	p, err := r.reg.CreatePairingCode(r.t.Context(), "alice")
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.reg.Enroll(r.t.Context(), registry.EnrollRequest{
		Code: p.Code, PublicKey: identity.EncodePublic(k.Public()), Proof: k.EnrollProof(p.Code), Kind: registry.KindKiosk,
	}); err != nil {
		r.t.Fatal(err)
	}
	return k
}

func (r *rig) token(k *identity.Key) string {
	tok, err := k.Token("earshot:test", time.Now(), 0)
	if err != nil {
		r.t.Fatal(err)
	}
	return tok
}

func (r *rig) dial(tok string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return d.Dial(r.url, h)
}

func (r *rig) hello(c *websocket.Conn) {
	r.t.Helper()
	f, _ := wire.Encode(wire.Envelope{ID: "h"}, &wire.Hello{})
	if err := c.WriteMessage(websocket.TextMessage, f); err != nil {
		r.t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		r.t.Fatal(err)
	}
	if e, _ := wire.Decode(b); e.Type != wire.TypeHelloOK {
		r.t.Fatalf("got %s, want hello.ok", e.Type)
	}
}

// closeCode reads until the gateway closes the connection and returns the code.
func closeCode(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func TestUpgradeRefusals(t *testing.T) {
	r := newRig(t, ws.Config{})
	k := r.enroll()
	stranger, _ := identity.GenerateKey()
	revoked := r.enroll()
	if _, err := r.reg.Revoke(t.Context(), revoked.DeviceID()); err != nil {
		t.Fatal(err)
	}
	expired, _ := k.Token("earshot:test", time.Now().Add(-time.Hour), time.Minute)
	replayed := r.token(k)
	c, _, err := r.dial(replayed)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	otherAud, _ := k.Token("earshot:elsewhere", time.Now(), 0)

	for _, tc := range []struct {
		name, tok, code string
		status          int
	}{
		{"no token", "", "invalid_token", 401},
		{"garbage", "not.a.token", "invalid_token", 401},
		{"unknown device", r.token(stranger), "unknown_device", 401},
		{"revoked device", r.token(revoked), "device_revoked", 403},
		{"expired token", expired, "token_expired", 401},
		{"replayed token", replayed, "token_replayed", 401},
		{"another gateway's token", otherAud, "invalid_token", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := r.dial(tc.tok)
			if err == nil {
				t.Fatal("upgrade succeeded")
			}
			defer resp.Body.Close()
			var p struct{ Code string }
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || p.Code != tc.code {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, p.Code, tc.status, tc.code)
			}
		})
	}
	t.Run("no subprotocol", func(t *testing.T) {
		d := websocket.Dialer{}
		_, resp, err := d.Dial(r.url, http.Header{"Authorization": {"Bearer " + r.token(k)}})
		if err == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("err %v", err)
		}
		resp.Body.Close()
	})
}

func TestCloseCodes(t *testing.T) {
	r := newRig(t, ws.Config{HelloTimeout: 300 * time.Millisecond})
	k := r.enroll()

	t.Run("oversize frame", func(t *testing.T) {
		c, _, err := r.dial(r.token(k))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r.hello(c)
		big := `{"v":1,"type":"utterance","id":"x","body":{"text":"` + strings.Repeat("a", wire.MaxFrameBytes) + `"}}`
		if err := c.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
			t.Fatal(err)
		}
		if code := closeCode(t, c); code != int(wire.CodeFrameTooLarge) {
			t.Fatalf("close code %d, want %d", code, wire.CodeFrameTooLarge)
		}
	})
	t.Run("audio before hello", func(t *testing.T) {
		c, _, err := r.dial(r.token(k))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		frame, err := wire.AppendAudioFrame(nil, wire.AudioHeader{Codec: wire.CodecPCM, Rate: 16000, Stream: 1}, make([]byte, 640))
		if err != nil {
			t.Fatal(err)
		}
		_ = c.WriteMessage(websocket.BinaryMessage, frame)
		if code := closeCode(t, c); code != int(wire.CodeProtocolViolation) {
			t.Fatalf("close code %d", code)
		}
	})
	t.Run("malformed audio frame is answered", func(t *testing.T) {
		c, _, err := r.dial(r.token(k))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r.hello(c)
		_ = c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		e, _ := wire.Decode(b)
		var we wire.Error
		if err := wire.DecodeBody(e, &we); err != nil || we.Code != wire.CodeBadRequest || !strings.Contains(we.Message, "audio frame") {
			t.Fatalf("%+v %v", we, err)
		}
	})
	t.Run("audio.start without a recogniser", func(t *testing.T) {
		c, _, err := r.dial(r.token(k))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r.hello(c)
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"v":1,"type":"audio.start","id":"a1","body":{"stream":1,"codec":"pcm","rate":16000,"mode":"command","ptt":true}}`))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		e, _ := wire.Decode(b)
		var we wire.Error
		if err := wire.DecodeBody(e, &we); err != nil || we.Code != wire.CodeSpeechUnavailable || we.Ref != "a1" {
			t.Fatalf("%+v %v", we, err)
		}
	})
	t.Run("no hello", func(t *testing.T) {
		c, _, err := r.dial(r.token(k))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if code := closeCode(t, c); code != int(wire.CodeHelloTimeout) {
			t.Fatalf("close code %d", code)
		}
	})
	t.Run("malformed frame is answered", func(t *testing.T) {
		c, _, err := r.dial(r.token(k))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r.hello(c)
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"v":1,"type":"utterance","id":"m","body":{"text":5}}`))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		e, _ := wire.Decode(b)
		var we wire.Error
		if err := wire.DecodeBody(e, &we); err != nil || we.Code != wire.CodeBadRequest || we.Ref != "m" {
			t.Fatalf("%+v %v", we, err)
		}
	})
	t.Run("revocation disconnects", func(t *testing.T) {
		k2 := r.enroll()
		c, _, err := r.dial(r.token(k2))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r.hello(c)
		if _, err := r.reg.Revoke(t.Context(), k2.DeviceID()); err != nil {
			t.Fatal(err)
		}
		r.core.Disconnect(k2.DeviceID(), wire.CodeDeviceRevoked, "revoked")
		if code := closeCode(t, c); code != int(wire.CodeDeviceRevoked) {
			t.Fatalf("close code %d", code)
		}
	})
}

// A device that stops reading while the gateway has frames for it is disconnected
// with the reconnectable slow-consumer code, and the overflow is counted.
func TestSlowConsumerIsDisconnected(t *testing.T) {
	r := newRig(t, ws.Config{SendQueue: 2, WriteTimeout: 200 * time.Millisecond})
	k := r.enroll()
	c, _, err := r.dial(r.token(k))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r.hello(c)
	// Pings are answered inline; flood them without reading the pongs until the
	// socket buffers and then the send queue fill.
	ping, _ := wire.Encode(wire.Envelope{}, &wire.Ping{})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && counter(r.srv.Metrics().Overflow) == 0 {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		if c.WriteMessage(websocket.TextMessage, ping) != nil {
			break
		}
	}
	if counter(r.srv.Metrics().Overflow) == 0 {
		t.Fatal("the send queue never overflowed")
	}
	if code := closeCode(t, c); code != int(wire.CodeSlowConsumer) {
		t.Fatalf("close code %d, want %d", code, wire.CodeSlowConsumer)
	}
}

func TestShutdownLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		r := newRig(t, ws.Config{})
		k := r.enroll()
		for range 5 {
			c, _, err := r.dial(r.token(k))
			if err != nil {
				t.Fatal(err)
			}
			r.hello(c)
			defer c.Close()
		}
		r.core.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after shutdown:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
