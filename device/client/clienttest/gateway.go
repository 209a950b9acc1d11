// Package clienttest is a fake earshot gateway for tests of device code (the device
// client, the firmware simulator). It speaks just enough of the gateway's HTTP surface
// and of protocol v1 to drive a device through a purchase: enrolment with pairing
// codes, the admin pairing-code endpoint, GET /v1/transports, the WebSocket device
// endpoint with token checks and RFC 9457 refusals, hello/resume, utterance ->
// confirm.request (or a not_understood rejection), confirm verification (hash and
// Ed25519 signature), tx.result mandated -> redeemed, declined, expired, tx.status,
// tx.cancel (the merchant confirms a cancellation at once), seq/ack with re-send of
// unacknowledged messages, and knobs to inject faults.
//
// Step-up (docs/protocol.md, "Step-up: the phone and the PIN"): devices of kind phone
// enrol, and pin.set from a phone stores the user's PIN key (any other kind gets
// bad_request). With Config.StepUpAbove a larger purchase needs the phone on glasses
// (the prompt, with a binding code, goes to the glasses and to every phone of the
// user; a phone approves with its own key, and results go to both) and the PIN on a
// kiosk (pin_salt; bad_pin, and pin_locked after three wrong PINs); no_phone and
// no_pin when the user has none.
//
// With ServeMQTT it also serves devices over MQTT 3.1.1, as a backend client of a
// real broker (StartMosquitto): it subscribes to every device's up and status topics,
// publishes downlinks at QoS 1 and its own retained status with an epoch, and answers
// exactly as over WebSocket. The broker does not check device tokens here (Mosquitto
// with allow_anonymous): the fake refuses unknown and revoked devices at hello.
//
// Proxy sits between a device and a server to break connections on purpose.
//
// It is not the gateway: no persistence, no agent, no risk rules. It imports nothing
// under gateway/.
package clienttest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// Offer is what the fake agent proposes for one utterance.
type Offer struct {
	Merchant wire.Merchant
	Items    []wire.Item
	Currency string
}

// DefaultOffers returns the demo catalogue the simulator's scenarios assume, keyed by
// the lower-case utterance: two oat lattes (2 x 550 USD cents at Earshot Coffee), a
// large americano (450) and black leggings (8900 at Earshot Outfitters).
func DefaultOffers() map[string]Offer {
	coffee := wire.Merchant{ID: "mer_coffee", Name: "Earshot Coffee"}
	latte := wire.Item{SKU: "latte-oat", Name: "Oat latte", Qty: 2, UnitAmount: 550}
	americano := wire.Item{SKU: "americano", Name: "Americano", Qty: 1, UnitAmount: 450, Options: []string{"large"}}
	leggings := wire.Item{SKU: "leggings-black", Name: "Black leggings", Qty: 1, UnitAmount: 8900}
	return map[string]Offer{
		"buy two oat lattes":     {Merchant: coffee, Items: []wire.Item{latte}, Currency: "USD"},
		"two oat lattes":         {Merchant: coffee, Items: []wire.Item{latte}, Currency: "USD"},
		"a large americano":      {Merchant: coffee, Items: []wire.Item{americano}, Currency: "USD"},
		"buy a large americano":  {Merchant: coffee, Items: []wire.Item{americano}, Currency: "USD"},
		"buy the black leggings": {Merchant: wire.Merchant{ID: "mer_outfitters", Name: "Earshot Outfitters"}, Items: []wire.Item{leggings}, Currency: "USD"},
	}
}

// Config configures a fake gateway. Zero values are working defaults.
type Config struct {
	// Audience is the device-token audience. Default: "earshot:fake".
	Audience string
	// Offers maps a lower-case, trimmed utterance to the purchase the fake agent
	// proposes; anything else is rejected as not_understood. Default: DefaultOffers().
	Offers map[string]Offer
	// PromptTTL is how long a prompt stays open before it expires. Default: 30 s.
	PromptTTL time.Duration
	// Heartbeat is the heartbeat_s announced in hello.ok. Default: 0 (none).
	Heartbeat int
	// Hear returns what the fake heard in a finished audio stream (it has no
	// recogniser). Default: DefaultHear.
	Hear func(AudioStream) string
	// NotUnderstood, if set, returns why a heard command is not understood ("" when it
	// is): the fake then answers speech.result not_understood and opens no
	// transaction, as the gateway's speech layer does.
	NotUnderstood func(text string) string
	// PromptPCM returns the speech of a prompt, 16 kHz mono, for devices that asked
	// for prompt audio in hello. Default: half a second of a 440 Hz tone.
	PromptPCM func(text string) []int16
	// StepUpAbove, when positive, is the total (minor units, any currency) above which
	// a purchase needs a stronger method, as the gateway's default risk rules say: on
	// glasses the user's phone (methods [phone]), on a kiosk the user's PIN (methods
	// [pin]). Default: 0, no step-up: tap (and voice on glasses) at any amount.
	StepUpAbove wire.Amount
	// StepUpTTL is how long a prompt that needs the phone or the PIN stays open: a
	// second device, or a PIN stretched by scrypt (slow under -race), takes longer
	// than a tap. Default: PromptTTL.
	StepUpTTL time.Duration
}

// Gateway is a running fake gateway on a loopback httptest server.
type Gateway struct {
	cfg        Config
	srv        *httptest.Server
	adminToken string

	mu         sync.Mutex
	closed     bool
	codes      map[string]string // pairing code -> user
	devices    map[string]*device
	pins       map[string]wire.PINSet // user -> PIN key, from pin.set
	txs        map[string]*tx
	nonces     map[string]bool
	tamper     func(*wire.ConfirmRequest)
	ignoreAcks bool
	timers     map[*time.Timer]bool
	handlers   sync.WaitGroup      // WebSocket sessions
	mqtt       *mqttBackend        // nil unless ServeMQTT
	peers      map[string]*rtcConn // WHIP sessions by id
	deletes    int                 // WHIP sessions ended by DELETE
}

type device struct {
	id, user, kind, name string
	pub                  ed25519.PublicKey
	revoked              bool
	session, resume      string
	nextSeq, acked       uint64
	history              map[uint64][]byte // every seq'd frame sent, for Resend
	conn                 deviceConn        // the current session's link; nil without one
	hellos               []wire.Hello
	confirms             []wire.Confirm
	uplinks              map[wire.Type]int

	// Audio.
	promptAudio bool          // hello asked for prompt speech
	audio       *AudioStream  // the open uplink stream
	streams     []AudioStream // finished uplink streams
	outStream   uint32        // the last prompt stream id
	rtpDropped  int           // RTP packets outside an open Opus stream

	// MQTT.
	persistent     bool   // the broker keeps a session for the device: queue downlinks there
	lastHello      string // envelope id of the last hello, to drop its QoS 1 duplicates
	presence       string // its last status: wire.Online or wire.Offline
	presenceEpoch  string // the epoch of its last online status
	presenceWrites int    // status messages received
}

// deviceConn is where a device's session is: a WebSocket, or its MQTT down topic.
type deviceConn interface {
	// write sends one frame.
	write(frame []byte) error
	// writeBinary sends one binary audio frame; MQTT refuses.
	writeBinary(frame []byte) error
	// end ends the session with a disconnect code, or abruptly when code is zero.
	end(code wire.Code)
	transport() string
}

type tx struct {
	id, device, ref string
	state           wire.TxState
	terms           wire.Terms
	hash            string
	methods         []wire.Method
	mandate         string
	approvers       []string // the phones the prompt went to (MethodPhone)
	pinFailures     int      // wrong PINs so far (MethodPIN)
}

// New starts a fake gateway. Close it when done.
func New(cfg Config) *Gateway {
	if cfg.Audience == "" {
		cfg.Audience = "earshot:fake"
	}
	if cfg.Offers == nil {
		cfg.Offers = DefaultOffers()
	}
	if cfg.PromptTTL <= 0 {
		cfg.PromptTTL = 30 * time.Second
	}
	if cfg.StepUpTTL <= 0 {
		cfg.StepUpTTL = cfg.PromptTTL
	}
	if cfg.Hear == nil {
		cfg.Hear = DefaultHear
	}
	if cfg.PromptPCM == nil {
		cfg.PromptPCM = func(string) []int16 { return Tone(440, 500*time.Millisecond) }
	}
	g := &Gateway{
		cfg: cfg, adminToken: newID("adm"),
		codes: map[string]string{}, devices: map[string]*device{}, txs: map[string]*tx{},
		nonces: map[string]bool{}, timers: map[*time.Timer]bool{}, pins: map[string]wire.PINSet{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/enroll", g.serveEnroll)
	mux.HandleFunc("POST /admin/v1/pairing-codes", g.servePairingCode)
	mux.HandleFunc("GET /v1/device", g.serveDevice)
	mux.HandleFunc("GET /v1/transports", g.serveTransports)
	mux.HandleFunc("POST /v1/whip", g.serveWHIP)
	mux.HandleFunc("DELETE /v1/whip/{id}", g.serveWHIPDelete)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	g.srv = httptest.NewServer(mux)
	return g
}

// URL returns the gateway's base URL, http://127.0.0.1:port.
func (g *Gateway) URL() string { return g.srv.URL }

// DeviceURL returns the WebSocket device endpoint.
func (g *Gateway) DeviceURL() string {
	return "ws" + strings.TrimPrefix(g.srv.URL, "http") + "/v1/device"
}

// Audience returns the device-token audience.
func (g *Gateway) Audience() string { return g.cfg.Audience }

// AdminToken returns the bearer token of the admin API.
func (g *Gateway) AdminToken() string { return g.adminToken }

// WriteAdminToken writes the admin token to dir/admin.token (mode 0600), as the real
// gateway does in its data directory.
func (g *Gateway) WriteAdminToken(dir string) error {
	return os.WriteFile(filepath.Join(dir, "admin.token"), []byte(g.adminToken+"\n"), 0o600)
}

// PairingCode creates a one-time pairing code for user.
func (g *Gateway) PairingCode(user string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	code := strings.ToUpper(newID("")[:4] + "-" + newID("")[:4])
	g.codes[code] = user
	return code
}

// Close closes every device connection, stops the prompt timers, publishes the
// gateway's offline status and disconnects from the broker (with ServeMQTT), and
// stops the server.
func (g *Gateway) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	for t := range g.timers {
		t.Stop()
	}
	for _, d := range g.devices {
		if d.conn != nil {
			d.conn.end(wire.CodeUnknown) // a WebSocket reader sees the error and returns
			d.conn = nil
		}
	}
	for _, rc := range g.peers {
		rc.end(wire.CodeUnknown)
	}
	b := g.mqtt
	g.mu.Unlock()
	if b != nil {
		b.stop()
	}
	g.handlers.Wait()
	g.srv.Close()
}

// SetTamper installs f to modify every prompt after its hash was computed, as a
// compromised gateway or a man in the middle would.
func (g *Gateway) SetTamper(f func(*wire.ConfirmRequest)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tamper = f
}

// SetIgnoreAcks makes the gateway forget acks and ignore hello.last_ack, so that it
// re-sends every message on every connection.
func (g *Gateway) SetIgnoreAcks(v bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ignoreAcks = v
}

// Revoke revokes a device; its next connection is refused with device_revoked.
func (g *Gateway) Revoke(deviceID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d := g.devices[deviceID]; d != nil {
		d.revoked = true
	}
}

// Forget deletes a device, as a gateway whose data was reset would; its next
// connection is refused with unknown_device.
func (g *Gateway) Forget(deviceID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d := g.devices[deviceID]; d != nil {
		if d.conn != nil {
			d.conn.end(wire.CodeUnknown) // a WebSocket reader returns
		}
		delete(g.devices, deviceID)
	}
}

// Push queues a downlink message for a device, sends it if the device is connected and
// returns its seq.
func (g *Gateway) Push(deviceID string, b wire.Body) (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.devices[deviceID]
	if d == nil {
		return 0, fmt.Errorf("clienttest: unknown device %s", deviceID)
	}
	return g.pushLocked(d, b)
}

// Resend writes an already sent message again, as a gateway that lost track would.
func (g *Gateway) Resend(deviceID string, seq uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.devices[deviceID]
	if d == nil || d.history[seq] == nil {
		return fmt.Errorf("clienttest: no seq %d for %s", seq, deviceID)
	}
	if d.conn == nil {
		return errors.New("clienttest: device not connected")
	}
	return g.writeLocked(d, d.history[seq])
}

// Disconnect ends a device's session with a disconnect code: over WebSocket a close
// frame with that code, then the connection closes (abruptly, without a close
// frame, when code is zero); over MQTT an error with the code on the device's down
// topic, and the gateway forgets the session (with code zero, silently: the device
// learns it from the no_session answer to its next message). It reports whether the
// device had a session.
func (g *Gateway) Disconnect(deviceID string, code wire.Code) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.devices[deviceID]
	if d == nil || d.conn == nil {
		return false
	}
	d.conn.end(code)
	d.conn = nil
	return true
}

// DeviceState is what the fake knows about one device.
type DeviceState struct {
	User, Kind string
	Connected  bool   // it has a session
	Transport  string // of its session: "ws" or "mqtt"; empty without one
	// Presence is its last MQTT status (wire.Online, wire.Offline; empty before
	// any), PresenceWrites how many status messages it published.
	Presence       string
	PresenceWrites int
	Acked          uint64 // highest seq acknowledged
	LastSeq        uint64 // highest seq assigned
	Hellos         []wire.Hello
	Confirms       []wire.Confirm
	Uplinks        map[wire.Type]int // uplink frames received, by type
	// Streams are the finished uplink audio streams, oldest first; RTPDropped counts
	// RTP packets that arrived outside an open Opus stream.
	Streams    []AudioStream
	RTPDropped int
}

// Device returns a snapshot of a device's state; ok is false for an unknown device.
func (g *Gateway) Device(deviceID string) (s DeviceState, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.devices[deviceID]
	if d == nil {
		return s, false
	}
	transport := ""
	if d.conn != nil {
		transport = d.conn.transport()
	}
	return DeviceState{
		User: d.user, Kind: d.kind, Connected: d.conn != nil, Transport: transport,
		Presence: d.presence, PresenceWrites: d.presenceWrites, Acked: d.acked, LastSeq: d.nextSeq,
		Hellos: append([]wire.Hello(nil), d.hellos...), Confirms: append([]wire.Confirm(nil), d.confirms...),
		Uplinks: maps.Clone(d.uplinks), Streams: slices.Clone(d.streams), RTPDropped: d.rtpDropped,
	}, true
}

// UserPIN returns the PIN key a phone of user set with pin.set (user as enrolled, without
// the "usr_" prefix); ok is false when none was set.
func (g *Gateway) UserPIN(user string) (p wire.PINSet, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok = g.pins[user]
	return p, ok
}

// TxState returns a transaction's state.
func (g *Gateway) TxState(id string) wire.TxState {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := g.txs[id]; t != nil {
		return t.state
	}
	return ""
}

func (g *Gateway) serveEnroll(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code      string `json:"code"`
		PublicKey string `json:"public_key"`
		Proof     string `json:"proof"`
		Kind      string `json:"kind"`
		Name      string `json:"name"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		writeProblem(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	pub, err := identity.DecodePublic(req.PublicKey)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if req.Kind != "glasses" && req.Kind != "kiosk" && req.Kind != "phone" {
		writeProblem(w, http.StatusBadRequest, "bad_request", "kind must be glasses, kiosk or phone")
		return
	}
	if err := identity.VerifyEnrollProof(pub, req.Code, req.Proof); err != nil {
		writeProblem(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	user, ok := g.codes[req.Code]
	if !ok {
		writeProblem(w, http.StatusForbidden, "invalid_pairing_code", "unknown, used or expired pairing code")
		return
	}
	delete(g.codes, req.Code)
	id := identity.DeviceID(pub)
	g.devices[id] = &device{id: id, user: user, kind: req.Kind, name: req.Name, pub: pub,
		history: map[uint64][]byte{}, uplinks: map[wire.Type]int{}}
	writeJSON(w, http.StatusCreated, map[string]string{"device": id, "user": "usr_" + user, "audience": g.cfg.Audience})
}

func (g *Gateway) servePairingCode(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+g.adminToken {
		writeProblem(w, http.StatusUnauthorized, "unauthorized", "admin token required")
		return
	}
	var req struct {
		User string `json:"user"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil || req.User == "" {
		writeProblem(w, http.StatusBadRequest, "bad_request", "user required")
		return
	}
	code := g.PairingCode(req.User)
	writeJSON(w, http.StatusCreated, map[string]string{
		"code": code, "user": "usr_" + req.User, "expires_at": time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339),
	})
}

// serveTransports tells devices where to connect, as the real gateway does.
func (g *Gateway) serveTransports(w http.ResponseWriter, _ *http.Request) {
	out := map[string]string{"ws": g.DeviceURL(), "webrtc": g.WHIPURL()}
	if u := g.MQTTURL(); u != "" {
		out["mqtt"] = u
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{ // the client went away; nothing to do
		"type": "https://earshot.dev/problems/" + code, "title": http.StatusText(status),
		"status": status, "detail": detail, "code": code,
	})
}

func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	if prefix == "" {
		return hex.EncodeToString(b[:])
	}
	return prefix + "_" + hex.EncodeToString(b[:])
}
