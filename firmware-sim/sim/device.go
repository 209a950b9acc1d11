package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
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
	return c, nil
}

// maxBacklog bounds the events kept for later turns; the oldest are dropped (counted).
const maxBacklog = 256

// Device is a connected simulated device. It is driven by one goroutine at a time.
type Device struct {
	cfg        Config
	log        *slog.Logger
	profile    Profile
	enrollment client.Enrollment
	client     *client.Client
	tmpDir     string // removed by Close

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
	dir := filepath.Join(d.cfg.StateDir, d.cfg.Kind.String()+"-"+d.cfg.User)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sim: state dir: %w", err)
	}
	key, err := identity.LoadOrCreateKey(filepath.Join(dir, "device.key"))
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	d.log = d.cfg.Logger.With("component", "sim", "kind", d.cfg.Kind.String(), "device", key.DeviceID())
	enPath := filepath.Join(dir, "enrollment.json")
	en, known := d.loadEnrollment(enPath, key)
	if !known {
		if en, err = d.enroll(ctx, key, enPath); err != nil {
			return err
		}
	}
	d.enrollment = en
	c, err := d.dial(ctx, key)
	var de *client.DialError
	if known && errors.As(err, &de) && de.WireCode() == wire.CodeUnknownDevice {
		d.log.Info("gateway forgot this device; enrolling again")
		if d.enrollment, err = d.enroll(ctx, key, enPath); err != nil {
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
	url, err := client.DeviceURL(d.cfg.Gateway)
	if err != nil {
		return nil, err
	}
	return client.Dial(ctx, client.Config{
		URL: url, Key: key, Audience: d.enrollment.Audience, Client: d.profile.Client,
		Logger: d.cfg.Logger, Now: d.cfg.Now, Reconnect: true, MinBackoff: d.cfg.MinBackoff,
	})
}

// ID returns the device id.
func (d *Device) ID() string { return d.enrollment.Device }

// Enrollment returns the device's enrolment.
func (d *Device) Enrollment() client.Enrollment { return d.enrollment }

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
