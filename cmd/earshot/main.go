// Command earshot is the gateway daemon and its admin commands.
//
//	earshot serve [flags]            run the gateway (embedded defaults with no flags)
//	earshot pair --user alice        create a one-time pairing code for a user
//	earshot devices                  list enrolled devices
//	earshot revoke DEVICE            revoke a device
//	earshot agent ...                register external agents, link them to users
//
// Admin commands talk to the running gateway's admin API with the admin token from
// its data directory.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/earshot/earshot/gateway"
)

const usage = `earshot — voice commerce gateway

usage:
  earshot serve   [--data-dir ./data] [--listen 127.0.0.1:8080] [--consent-ttl 60s]
                  [--mandate-ttl 10m] [--cancel-window 2m] [--heartbeat 25s] [--catalog FILE] [--risk FILE] [--log-level info]
                  [--mqtt-listen 127.0.0.1:1883 | --mqtt-broker tcp://host:port | --no-mqtt]
                  [--mqtt-ca FILE] [--mqtt-cert FILE] [--mqtt-key FILE] [--mqtt-device-url URL]
                  [--recognizer auto|pocketsphinx|openai|none] [--decoders 2]
                  [--openai-url URL] [--openai-model whisper-1] [--openai-key-file FILE]
                  [--voice en-us | --no-tts] [--no-webrtc] [--webrtc-ip IP[,IP]]
                  [--webrtc-ports MIN-MAX]
                  [--agent ref | --agent llm --llm-base-url URL --llm-model NAME [--llm-key-file F]]
  earshot pair    --user HANDLE        create a one-time pairing code
  earshot devices                      list enrolled devices
  earshot revoke  DEVICE               revoke a device
  earshot agent   create --name N [--scopes intents,purchase,redeem,cancel,notify] [--webhook-url URL]
                                       register an external agent; prints its API key (and
                                       webhook secret) once
  earshot agent   list | revoke ID | rotate-key ID
  earshot agent   webhook ID --url URL [--rotate-secret]   (--url "" removes it)
  earshot agent   link --user U --agent ID | unlink --user U --agent ID | links --user U
  earshot keys    [list]               list the mandate signing keys
  earshot keys    rotate               sign mandates with a new key from now on; the old
                                       one verifies until its last mandate has expired
  earshot audit   export [--from N]    the audit trail as JSON lines
  earshot audit   verify [--file F [--jwks F]]
                                       verify the gateway's audit trail, or an exported
                                       file (exit 1 and the records at fault if it fails)
  earshot help

admin commands take --gateway http://127.0.0.1:8080 and --data-dir ./data
(the admin token is read from DATA_DIR/admin.token).
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "earshot:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		args = []string{"serve"}
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "pair":
		return pair(args[1:], stdout)
	case "devices":
		return devices(args[1:], stdout)
	case "revoke":
		return revoke(args[1:], stdout)
	case "keys":
		return keys(args[1:], stdout)
	case "agent", "agents":
		return agentCmd(args[1:], stdout)
	case "audit":
		return auditCmd(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg gateway.Config
	fs.StringVar(&cfg.DataDir, "data-dir", envOr("EARSHOT_DATA_DIR", "./data"), "data directory")
	fs.StringVar(&cfg.Listen, "listen", envOr("EARSHOT_LISTEN", "127.0.0.1:8080"), "HTTP and WebSocket address")
	fs.DurationVar(&cfg.ConsentTTL, "consent-ttl", 60*time.Second, "how long a prompt stays open")
	fs.DurationVar(&cfg.MandateTTL, "mandate-ttl", 10*time.Minute, "how long a mandate may be redeemed")
	fs.DurationVar(&cfg.CancelWindow, "cancel-window", 2*time.Minute, "how long after a payment the user may cancel it (0: none)")
	fs.StringVar(&cfg.RiskFile, "risk", "", "risk rules file (YAML; default: the embedded rules, authz/risk/default.yaml)")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", 25*time.Second, "WebSocket ping interval")
	fs.StringVar(&cfg.CatalogFile, "catalog", "", "catalogue file for the embedded agent (default: the embedded demo)")
	fs.StringVar(&cfg.Agent, "agent", envOr("EARSHOT_AGENT", "ref"), "embedded agent: ref (rule-based) or llm (a model behind an OpenAI-compatible API)")
	fs.StringVar(&cfg.LLM.BaseURL, "llm-base-url", envOr("EARSHOT_LLM_BASE_URL", ""), "the llm agent's chat-completions API base, such as http://127.0.0.1:11434/v1")
	fs.StringVar(&cfg.LLM.Model, "llm-model", envOr("EARSHOT_LLM_MODEL", ""), "the llm agent's model, such as qwen2.5:7b-instruct")
	llmKeyFile := fs.String("llm-key-file", "", "file holding the model server's API key (or EARSHOT_LLM_API_KEY)")
	fs.StringVar(&cfg.MQTT.Listen, "mqtt-listen", envOr("EARSHOT_MQTT_LISTEN", ""),
		"embedded MQTT broker address (default 127.0.0.1:1883, or a free port when --listen has port 0)")
	fs.StringVar(&cfg.MQTT.Broker, "mqtt-broker", envOr("EARSHOT_MQTT_BROKER", ""),
		"use this external broker (tcp://host:port or ssl://host:port) instead of the embedded one; see docs/deploy-mqtt.md")
	fs.StringVar(&cfg.MQTT.CAFile, "mqtt-ca", "", "CA certificate (PEM) of an ssl:// broker")
	fs.StringVar(&cfg.MQTT.CertFile, "mqtt-cert", "", "client certificate (PEM) for an ssl:// broker")
	fs.StringVar(&cfg.MQTT.KeyFile, "mqtt-key", "", "client key (PEM) for an ssl:// broker")
	fs.StringVar(&cfg.MQTT.DeviceURL, "mqtt-device-url", "", "broker URL devices are told (default: the broker's)")
	fs.BoolVar(&cfg.MQTT.Disabled, "no-mqtt", false, "turn MQTT off")
	fs.StringVar(&cfg.Speech.Recognizer, "recognizer", envOr("EARSHOT_RECOGNIZER", "auto"),
		"speech recogniser: auto (PocketSphinx when built in), pocketsphinx, openai or none")
	fs.IntVar(&cfg.Speech.Decoders, "decoders", 2, "PocketSphinx decoders (concurrent recognitions)")
	fs.StringVar(&cfg.Speech.OpenAIURL, "openai-url", envOr("EARSHOT_OPENAI_URL", ""),
		"base URL of an OpenAI-compatible transcription server (with --recognizer openai)")
	fs.StringVar(&cfg.Speech.OpenAIModel, "openai-model", "whisper-1", "transcription model")
	fs.StringVar(&cfg.Speech.OpenAIKeyFile, "openai-key-file", "", "file holding the transcription server's API key")
	fs.StringVar(&cfg.Speech.Voice, "voice", "en-us", "espeak-ng voice that speaks prompts")
	fs.BoolVar(&cfg.Speech.NoTTS, "no-tts", false, "do not speak prompts (text only)")
	fs.BoolVar(&cfg.WebRTC.Disabled, "no-webrtc", false, "turn the WebRTC (WHIP) endpoint off")
	natIPs := fs.String("webrtc-ip", "", "public IPs to announce in WebRTC ICE candidates, comma-separated")
	ports := fs.String("webrtc-ports", "", "UDP port range for WebRTC media, MIN-MAX (default: any)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.LLM.APIKey = os.Getenv("EARSHOT_LLM_API_KEY")
	if *llmKeyFile != "" {
		b, err := os.ReadFile(*llmKeyFile)
		if err != nil {
			return fmt.Errorf("--llm-key-file: %w", err)
		}
		cfg.LLM.APIKey = strings.TrimSpace(string(b))
	}
	if *natIPs != "" {
		cfg.WebRTC.NAT1To1IPs = strings.Split(*natIPs, ",")
	}
	if *ports != "" {
		lo, hi, ok := strings.Cut(*ports, "-")
		first, err1 := strconv.ParseUint(lo, 10, 16)
		last, err2 := strconv.ParseUint(hi, 10, 16)
		if !ok || err1 != nil || err2 != nil || first == 0 || first > last {
			return fmt.Errorf("--webrtc-ports: %q, want MIN-MAX like 40000-40100", *ports)
		}
		cfg.WebRTC.UDPPortMin, cfg.WebRTC.UDPPortMax = uint16(first), uint16(last)
	}
	if cfg.MQTT.Broker != "" && cfg.MQTT.Listen != "" {
		return errors.New("--mqtt-listen is for the embedded broker; with --mqtt-broker there is none")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

type adminClient struct {
	base, token string
	http        *http.Client
}

func newAdmin(fs *flag.FlagSet, args []string) (*adminClient, error) {
	base := fs.String("gateway", envOr("EARSHOT_GATEWAY", "http://127.0.0.1:8080"), "gateway base URL")
	dir := fs.String("data-dir", envOr("EARSHOT_DATA_DIR", "./data"), "the gateway's data directory (for the admin token)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(*dir, gateway.AdminTokenFile))
	if err != nil {
		return nil, fmt.Errorf("reading the admin token (is --data-dir the gateway's?): %w", err)
	}
	return &adminClient{base: strings.TrimRight(*base, "/"), token: strings.TrimSpace(string(b)), http: &http.Client{Timeout: 10 * time.Second}}, nil
}

func (a *adminClient) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var p struct{ Code, Detail string }
		if json.Unmarshal(raw, &p) == nil && p.Code != "" {
			return fmt.Errorf("%s: %s (%s)", resp.Status, p.Detail, p.Code)
		}
		return errors.New(resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

func pair(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pair", flag.ContinueOnError)
	user := fs.String("user", "", "the user the device will belong to (required)")
	a, err := newAdmin(fs, args)
	if err != nil {
		return err
	}
	if *user == "" {
		return errors.New("pair: --user is required")
	}
	var p struct {
		Code, User string
		ExpiresAt  time.Time `json:"expires_at"`
	}
	if err := a.do(http.MethodPost, "/admin/v1/pairing-codes", map[string]string{"user": *user}, &p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pairing code %s for %s, valid until %s\n", p.Code, p.User, p.ExpiresAt.Local().Format(time.Kitchen))
	return nil
}

func devices(args []string, stdout io.Writer) error {
	a, err := newAdmin(flag.NewFlagSet("devices", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	var out struct {
		Devices []struct {
			Device, User, Kind, Name string
			EnrolledAt               time.Time `json:"enrolled_at"`
			Revoked                  bool
		}
	}
	if err := a.do(http.MethodGet, "/admin/v1/devices", nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tUSER\tKIND\tNAME\tENROLLED\tREVOKED")
	for _, d := range out.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", d.Device, d.User, d.Kind, d.Name, d.EnrolledAt.Format(time.RFC3339), d.Revoked)
	}
	return tw.Flush()
}

func revoke(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	a, err := newAdmin(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("revoke: give exactly one device id")
	}
	var out struct{ Device string }
	if err := a.do(http.MethodPost, "/admin/v1/devices/"+fs.Arg(0)+"/revoke", nil, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %s\n", out.Device)
	return nil
}

// keyInfo is a row of GET /admin/v1/keys.
type keyInfo struct {
	KID         string    `json:"kid"`
	Active      bool      `json:"active"`
	Created     time.Time `json:"created"`
	RetireAfter time.Time `json:"retire_after"`
}

func keys(args []string, stdout io.Writer) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	a, err := newAdmin(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("keys %s: unexpected %q", sub, fs.Args())
	}
	switch sub {
	case "list":
		var out struct{ Keys []keyInfo }
		if err := a.do(http.MethodGet, "/admin/v1/keys", nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID	STATE	CREATED	LEAVES JWKS")
		for _, k := range out.Keys {
			state, leaves := "verifies", k.RetireAfter.Format(time.RFC3339)
			if k.Active {
				state, leaves = "signs", "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.KID, state, k.Created.Format(time.RFC3339), leaves)
		}
		return tw.Flush()
	case "rotate":
		var out keyInfo
		if err := a.do(http.MethodPost, "/admin/v1/keys/rotate", nil, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "mandates are now signed with %s\n", out.KID)
		return nil
	}
	return fmt.Errorf("keys: unknown subcommand %q (list or rotate)", sub)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
