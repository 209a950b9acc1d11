package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech/tts"
)

// Config configures a simulated device. Zero values are working defaults.
type Config struct {
	// Gateway is the gateway's base URL. Default: http://127.0.0.1:8080.
	Gateway string
	// DataDir is the gateway's data directory, where its admin.token lives; read only
	// when a pairing code has to be fetched. Default: ./data.
	DataDir string
	// StateDir keeps device keys and enrolments, one subdirectory per kind and user
	// ("glasses-alice"), so a device enrols once. Default: a new temporary directory,
	// removed by Close.
	StateDir string
	// PairingCode enrols the device; default: one fetched from the admin API for User.
	PairingCode string
	// Kind is the device kind. Default: KindGlasses.
	Kind Kind
	// PIN is the PIN the simulated user types when a prompt asks for it (a kiosk
	// purchase over the step-up limit). Never logged. Default: none; such a prompt
	// fails with ErrNoPIN.
	PIN string
	// User is the user the device is paired to. Default: "alice".
	User string
	// Name is the device name shown to the user. Default: "earshot-sim <kind> (<user>)".
	Name string
	// Logger receives the device's logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock for tokens and display. Default: time.Now.
	Now func() time.Time
	// HTTP makes admin API requests. Default: a client with a 10 s timeout.
	HTTP *http.Client
	// MinBackoff is the first reconnect delay. Default: the client's (250 ms).
	MinBackoff time.Duration
	// Transport is how the device connects. Default: TransportWS.
	Transport Transport
	// MQTT is the broker URL for TransportMQTT (mqtt://host:port, tcp://, mqtts://,
	// ssl://). Default: the broker the gateway names at GET /v1/transports.
	MQTT string
	// WebRTC is the WHIP endpoint for TransportWebRTC (whip://host:port/v1/whip, or
	// whips:// for HTTPS). Default: the one the gateway names at GET /v1/transports.
	WebRTC string

	// Audio makes the device speak: Say synthesises the text with espeak-ng and streams
	// it as push-to-talk speech, voice confirmations are spoken, and the device asks
	// for spoken prompts. It needs TransportWS or TransportWebRTC. Default: text.
	Audio bool
	// Voice is the espeak-ng voice of the simulated user. Default: "en-us".
	Voice string
	// Speed is how fast the user speaks, in words per minute. Default: 160.
	Speed int
	// NoiseSNR, when not 0, mixes pink noise into the speech at this signal-to-noise
	// ratio in dB, with 300 ms of the noise before and after the speech. Default: 0,
	// clean speech.
	NoiseSNR float64
	// Realtime paces the speech at real time (one 20 ms frame every 20 ms). Default:
	// as fast as the connection takes it.
	Realtime bool
}

func (c Config) withDefaults() (Config, error) {
	if c.Gateway == "" {
		c.Gateway = "http://127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Kind == KindUnknown {
		c.Kind = KindGlasses
	}
	if c.User == "" {
		c.User = "alice"
	}
	if c.Name == "" {
		c.Name = fmt.Sprintf("earshot-sim %s (%s)", c.Kind, c.User)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Transport == TransportUnknown {
		c.Transport = TransportWS
	}
	if c.MQTT != "" && c.Transport != TransportMQTT {
		return c, fmt.Errorf("sim: config: an MQTT broker URL with transport %s", c.Transport)
	}
	if c.WebRTC != "" && c.Transport != TransportWebRTC {
		return c, fmt.Errorf("sim: config: a WHIP URL with transport %s", c.Transport)
	}
	if c.Voice == "" {
		c.Voice = "en-us"
	}
	if c.Speed == 0 {
		c.Speed = 160
	}
	if c.Audio && !c.Transport.CarriesAudio() {
		return c, fmt.Errorf("%w: %s", ErrAudioTransport, c.Transport)
	}
	return c, nil
}

// ErrNoMQTT reports a gateway that names no MQTT broker (GET /v1/transports has
// none, or the gateway predates it) when a device is to connect over MQTT without a
// broker URL.
var ErrNoMQTT = errors.New("sim: the gateway has no MQTT broker")

// ErrNoWebRTC reports a gateway that names no WHIP endpoint (WebRTC is disabled) when
// a device is to connect over WebRTC without a WHIP URL.
var ErrNoWebRTC = errors.New("sim: the gateway does not offer WebRTC")

// ErrAudioTransport reports a speaking device on a transport that carries no audio
// (MQTT): speech needs WebSocket or WebRTC.
var ErrAudioTransport = errors.New("sim: audio needs ws or webrtc")

// maxBacklog bounds the events kept for later turns; the oldest are dropped (counted).
const maxBacklog = 256

// Device is a connected simulated device. It is driven by one goroutine at a time.
type Device struct {
	cfg        Config
	log        *slog.Logger
	profile    Profile
	enrollment client.Enrollment
	client     *client.Client
	url        string // where the client connects
	tmpDir     string // removed by Close

	synth *tts.Synth // the user's voice, when cfg.Audio

	backlog []client.Event  // events no turn has taken yet
	dropped int             // backlog overflow
	seenTx  map[string]bool // every transaction seen in an event

	closeOnce sync.Once
}

// Start loads or creates the device's key, enrols it if it has no enrolment for this
// gateway, and connects. If the gateway no longer knows an enrolled device (its data
// was reset) the device enrols again, once.
func Start(ctx context.Context, cfg Config) (*Device, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	profile, err := ProfileFor(cfg.Kind)
	if err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, profile: profile, seenTx: map[string]bool{}}
	if cfg.Audio {
		if d.synth, err = tts.New(tts.Config{Voice: cfg.Voice, Speed: cfg.Speed}); err != nil {
			return nil, fmt.Errorf("sim: the user's voice: %w", err)
		}
	}
	if cfg.StateDir == "" {
		if d.tmpDir, err = os.MkdirTemp("", "earshot-sim-"); err != nil {
			return nil, fmt.Errorf("sim: state dir: %w", err)
		}
		cfg.StateDir, d.cfg.StateDir = d.tmpDir, d.tmpDir
	}
	if err := d.start(ctx); err != nil {
		d.removeTmp()
		return nil, err
	}
	return d, nil
}

func (d *Device) start(ctx context.Context) error {
	key, known, err := d.identity(ctx)
	if err != nil {
		return err
	}
	if d.url, err = d.deviceURL(ctx); err != nil {
		return err
	}
	c, err := d.dial(ctx, key)
	var de *client.DialError
	if known && errors.As(err, &de) && de.WireCode() == wire.CodeUnknownDevice {
		d.log.Info("gateway forgot this device; enrolling again")
		if d.enrollment, err = d.enroll(ctx, key, d.enrollmentPath()); err != nil {
			return err
		}
		c, err = d.dial(ctx, key)
	}
	if err != nil {
		return err
	}
	d.client = c
	return nil
}

func (d *Device) stateDir() string {
	return filepath.Join(d.cfg.StateDir, d.cfg.Kind.String()+"-"+d.cfg.User)
}

func (d *Device) enrollmentPath() string { return filepath.Join(d.stateDir(), "enrollment.json") }

// identity loads or creates the device's key, and loads its enrolment for this
// gateway or enrols it; known reports that the enrolment was loaded.
func (d *Device) identity(ctx context.Context) (key *identity.Key, known bool, err error) {
	dir := d.stateDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("sim: state dir: %w", err)
	}
	if key, err = identity.LoadOrCreateKey(filepath.Join(dir, "device.key")); err != nil {
		return nil, false, fmt.Errorf("sim: %w", err)
	}
	d.log = d.cfg.Logger.With("component", "sim", "kind", d.cfg.Kind.String(), "device", key.DeviceID())
	en, known := d.loadEnrollment(d.enrollmentPath(), key)
	if !known {
		if en, err = d.enroll(ctx, key, d.enrollmentPath()); err != nil {
			return nil, false, err
		}
	}
	d.enrollment = en
	return key, known, nil
}

// deviceURL returns where the device connects: the gateway's WebSocket endpoint, its
// MQTT broker or its WHIP endpoint.
func (d *Device) deviceURL(ctx context.Context) (string, error) {
	switch d.cfg.Transport {
	case TransportMQTT:
		if d.cfg.MQTT != "" {
			return d.cfg.MQTT, nil
		}
	case TransportWebRTC:
		if d.cfg.WebRTC != "" {
			return d.cfg.WebRTC, nil
		}
	default:
		return client.DeviceURL(d.cfg.Gateway)
	}
	t, err := Discover(ctx, d.cfg)
	if err != nil {
		return "", fmt.Errorf("sim: asking the gateway for its %s endpoint: %w", d.cfg.Transport, err)
	}
	switch {
	case d.cfg.Transport == TransportMQTT && t.MQTT == "":
		return "", fmt.Errorf("%w (GET %s/v1/transports names none)", ErrNoMQTT, strings.TrimSuffix(d.cfg.Gateway, "/"))
	case d.cfg.Transport == TransportMQTT:
		return t.MQTT, nil
	case t.WebRTC == "":
		return "", fmt.Errorf("%w (GET %s/v1/transports names no WHIP endpoint)", ErrNoWebRTC, strings.TrimSuffix(d.cfg.Gateway, "/"))
	}
	return t.WebRTC, nil
}

// Identity is a simulated device's key and enrolment.
type Identity struct {
	Key        *identity.Key
	Enrollment client.Enrollment
}

// Token mints a fresh device token (every connection needs a new one).
func (id *Identity) Token(now time.Time) (string, error) {
	return id.Key.Token(id.Enrollment.Audience, now, 0)
}

// Enroll loads the device's key and enrolment from cfg.StateDir, making the key and
// enrolling it as Start would, without connecting. Without a StateDir the key lives
// only in the returned Identity.
func Enroll(ctx context.Context, cfg Config) (*Identity, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, seenTx: map[string]bool{}}
	if cfg.StateDir == "" {
		if d.tmpDir, err = os.MkdirTemp("", "earshot-sim-"); err != nil {
			return nil, fmt.Errorf("sim: state dir: %w", err)
		}
		d.cfg.StateDir = d.tmpDir
		defer d.removeTmp()
	}
	key, _, err := d.identity(ctx)
	if err != nil {
		return nil, err
	}
	return &Identity{Key: key, Enrollment: d.enrollment}, nil
}

// savedEnrollment is the enrolment file in the state directory.
type savedEnrollment struct {
	Gateway string `json:"gateway"`
	client.Enrollment
}

func (d *Device) loadEnrollment(path string, key *identity.Key) (client.Enrollment, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return client.Enrollment{}, false
	}
	var s savedEnrollment
	if err := json.Unmarshal(b, &s); err != nil || s.Gateway != d.cfg.Gateway || s.Device != key.DeviceID() || s.Audience == "" {
		d.log.Info("enrolment file not for this gateway or key; enrolling", "path", path)
		return client.Enrollment{}, false
	}
	return s.Enrollment, true
}

func (d *Device) enroll(ctx context.Context, key *identity.Key, path string) (client.Enrollment, error) {
	code := d.cfg.PairingCode
	if code == "" {
		admin, err := AdminFromDataDir(d.cfg.Gateway, d.cfg.DataDir)
		if err != nil {
			return client.Enrollment{}, err
		}
		admin.HTTP = d.cfg.HTTP
		if code, err = admin.PairingCode(ctx, d.cfg.User); err != nil {
			return client.Enrollment{}, err
		}
	}
	en, err := client.Enroll(ctx, d.cfg.Gateway, key, code, d.cfg.Kind.String(), d.cfg.Name)
	if err != nil {
		return en, err
	}
	b, err := json.MarshalIndent(savedEnrollment{Gateway: d.cfg.Gateway, Enrollment: en}, "", "  ")
	if err != nil {
		return en, fmt.Errorf("sim: enrolment: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return en, fmt.Errorf("sim: enrolment: %w", err)
	}
	d.log.Info("enrolled", "user", en.User)
	return en, nil
}

func (d *Device) dial(ctx context.Context, key *identity.Key) (*client.Client, error) {
	return client.Dial(ctx, client.Config{
		URL: d.url, Key: key, Audience: d.enrollment.Audience, Client: d.profile.Client,
		Logger: d.cfg.Logger, Now: d.cfg.Now, Reconnect: true, MinBackoff: d.cfg.MinBackoff,
		PromptAudio: d.cfg.Audio, WebRTC: client.WebRTCSettings{Loopback: loopbackURL(d.url)},
	})
}

// loopbackURL reports whether raw names a loopback host: a WebRTC peer on the same
// host needs loopback ICE candidates.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if h := u.Hostname(); h == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// ID returns the device id.
func (d *Device) ID() string { return d.enrollment.Device }

// Enrollment returns the device's enrolment.
func (d *Device) Enrollment() client.Enrollment { return d.enrollment }

// URL returns where the device connects: the gateway's WebSocket endpoint, its
// MQTT broker or its WHIP endpoint.
func (d *Device) URL() string { return d.url }

// Transport returns how the device connects.
func (d *Device) Transport() Transport { return d.cfg.Transport }

// Profile returns the device's profile.
func (d *Device) Profile() Profile { return d.profile }

// Client returns the underlying device client.
func (d *Device) Client() *client.Client { return d.client }

// Close disconnects and removes the temporary state directory, if Start made one.
// It is idempotent.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		if d.client != nil {
			_ = d.client.Close() // always nil
		}
		if d.dropped > 0 {
			d.log.Warn("events dropped from the backlog", "count", d.dropped)
		}
		d.removeTmp()
	})
	return nil
}

func (d *Device) removeTmp() {
	if d.tmpDir == "" {
		return
	}
	if err := os.RemoveAll(d.tmpDir); err != nil {
		d.cfg.Logger.Warn("temporary state not removed", "dir", d.tmpDir, "err", err)
	}
}
