// Command earshot-sim runs simulated earshot devices (smart glasses, a kiosk, the
// user's phone) against a gateway, over WebSocket, MQTT or WebRTC: one purchase with
// `say` (as text, or spoken with --audio; cancelled after paying with --cancel), the
// phone that approves large purchases and sets the PIN with `phone`, conformance
// scenarios with `run`, and device credentials for the Mosquitto command-line clients
// with `token`.
//
//	earshot-sim say "buy two oat lattes" --confirm
//	earshot-sim say --audio "buy two oat lattes" --confirm --transport webrtc
//	earshot-sim phone --user bob --set-pin 1234
//	earshot-sim say --kind kiosk --user bob --pin 1234 "buy the black leggings" --confirm
//	earshot-sim say "buy a large americano" --confirm --cancel
//	earshot-sim run --transport mqtt firmware-sim/scenarios/*.yaml
//	eval "$(earshot-sim token --state ~/.earshot-sim)"
//	earshot-sim help
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/firmware-sim/scenario"
	"github.com/earshot/earshot/firmware-sim/sim"
)

const usage = `earshot-sim: simulated earshot devices.

Usage:
  earshot-sim say TEXT (--confirm | --decline) [--cancel] [--pin PIN] [flags]
      Say TEXT on a simulated device, show the prompt, approve or decline it and
      print the outcome. Exits 1 unless a --confirm ends redeemed (or a --decline
      ends declined). With --audio the user speaks TEXT (espeak-ng, --voice,
      --speed, --noise-snr) over ws or webrtc; the output adds what the gateway
      heard, the spoken prompt's length and the turn's timings, and glasses
      confirm by saying "confirm" (or "cancel").
      A purchase over the gateway's step-up limit needs more: on glasses the
      prompt shows a code and is approved on the user's phone (run earshot-sim
      phone for the same --user first); say waits for the result until the prompt
      expires. On a kiosk the user types the PIN given with --pin (set it with
      earshot-sim phone --set-pin); a wrong one is refused (bad_pin), the third
      closes the purchase (pin_locked).
      --cancel (with --confirm) cancels the purchase right after it is paid ("cancel
      my order", inside the gateway's cancel window) and follows it to cancelled;
      it then exits 1 unless the purchase ends cancelled.
  earshot-sim phone [--decline] [--set-pin PIN] [--count N] [flags]
      Enrol (once, with --state) and connect the user's phone (--user), set the
      user's PIN first with --set-pin (4 to 12 digits; only a salt and a public key
      leave the phone), then show every prompt that needs the phone with its code
      and approve it (or decline it with --decline), until interrupted or, with
      --count N, after N answers. The gateway sends a prompt only to a phone it has
      seen connected: start the phone before the purchase.
  earshot-sim run [flags] SCENARIO.yaml...
      Run scenario files; prints PASS/FAIL/SKIP per scenario and "N passed, N
      failed" (", N skipped"), exits 1 if one fails. --audio speaks every say.
      Speaking scenarios (device audio: true, or all with --audio) are skipped
      over mqtt and against a gateway without a speech recogniser.
  earshot-sim token [--count N] [flags]
      Print, for the device (--kind, --user; enrolled first if needed), shell lines
      DEVICE=<device id> and TOKEN=<fresh device token> (TOKEN2=... with --count 2,
      and so on: every MQTT or WebSocket connection needs its own token), for use
      with mosquitto_pub and mosquitto_sub (see docs/protocol.md, MQTT):
        eval "$(earshot-sim token --state ~/.earshot-sim --count 2)"
        mosquitto_sub -V mqttv311 -p 1883 -i "$DEVICE-sub" -u "$DEVICE" -P "$TOKEN" -c -q 1 \
          -t "earshot/v1/dev/$DEVICE/down"
      Tokens expire after 5 minutes. Use --state: without it the device's key is
      thrown away and every run enrols a new device.
  earshot-sim help
      Show this help.

A device keeps its key and enrolment in --state (default: a temporary directory, so it
enrols on every run). It enrols with --pairing-code, or asks the gateway's admin API
for a code, with the admin token in <--data-dir>/admin.token.

say, phone and run connect over WebSocket (--transport ws, the default), MQTT
(--transport mqtt) to the broker given with --mqtt, or WebRTC (--transport webrtc:
WHIP, events on a data channel, speech on an Opus track) to the endpoint given with
--whip; by default to the ones the gateway names at GET /v1/transports.

Flags:
`

type options struct {
	gateway, dataDir, pairingCode, state, kind, user, method string
	transport, mqtt, whip, voice, pin, setPIN                string
	timeout                                                  time.Duration
	count, speed                                             int
	noiseSNR                                                 float64
	confirm, decline, cancel, verbose, audio, realtime       bool
	kindSet                                                  bool // --kind was given
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("earshot-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.gateway, "gateway", "http://127.0.0.1:8080", "gateway base URL")
	fs.StringVar(&o.dataDir, "data-dir", "./data", "the gateway's data directory (for admin.token)")
	fs.StringVar(&o.pairingCode, "pairing-code", "", "pairing code to enrol with (default: ask the admin API)")
	fs.StringVar(&o.state, "state", "", "device state directory (default: a temporary directory)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for each answer from the gateway")
	fs.StringVar(&o.kind, "kind", "glasses", "device kind for say and token: glasses, kiosk or phone")
	fs.StringVar(&o.user, "user", "alice", "user the device is paired to, for say and token")
	fs.StringVar(&o.method, "method", "", "verification method for say (default: the device's, tap)")
	fs.BoolVar(&o.confirm, "confirm", false, "say: approve the prompt")
	fs.BoolVar(&o.decline, "decline", false, "say: decline the prompt; phone: decline every prompt")
	fs.BoolVar(&o.cancel, "cancel", false, "say --confirm: cancel the purchase right after it is paid")
	fs.StringVar(&o.pin, "pin", "", "say: the PIN the user types when the prompt asks for it (a kiosk over the step-up limit)")
	fs.StringVar(&o.setPIN, "set-pin", "", "phone: set the user's PIN (4 to 12 digits) before approving prompts")
	fs.StringVar(&o.transport, "transport", "ws", "how devices connect: ws, mqtt or webrtc")
	fs.StringVar(&o.mqtt, "mqtt", "", "MQTT broker URL for --transport mqtt, mqtt://host:port (default: ask the gateway)")
	fs.StringVar(&o.whip, "whip", "", "WHIP URL for --transport webrtc, whip://host:port/v1/whip (default: ask the gateway)")
	fs.BoolVar(&o.audio, "audio", false, "say and run: speak (synthesised speech over ws or webrtc) instead of sending text")
	fs.StringVar(&o.voice, "voice", "en-us", "--audio: the espeak-ng voice of the user")
	fs.IntVar(&o.speed, "speed", 160, "--audio: how fast the user speaks, words per minute")
	fs.Float64Var(&o.noiseSNR, "noise-snr", 0, "--audio: mix pink noise at this SNR in dB (0: clean speech)")
	fs.BoolVar(&o.realtime, "realtime", false, "--audio: pace the speech at real time (default: as fast as the link takes)")
	fs.IntVar(&o.count, "count", 0, "token: how many tokens to print (0: one); phone: stop after N answers (0: when interrupted)")
	fs.BoolVar(&o.verbose, "v", false, "log to stderr")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return 2
	}
	cmd, rest := args[0], args[1:]
	pos, err := parseInterleaved(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	fs.Visit(func(f *flag.Flag) { o.kindSet = o.kindSet || f.Name == "kind" })
	switch cmd {
	case "help", "-h", "-help", "--help":
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, usage)
		fs.PrintDefaults()
		return 0
	case "say":
		return say(ctx, o, pos, stdout, stderr)
	case "phone":
		return phone(ctx, o, pos, stdout, stderr)
	case "run":
		return runScenarios(ctx, o, pos, stdout, stderr)
	case "token":
		return token(ctx, o, pos, stdout, stderr)
	}
	fmt.Fprintf(stderr, "earshot-sim: unknown command %q (try earshot-sim help)\n", cmd)
	return 2
}

// parseInterleaved parses flags placed before, between and after positional
// arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

func (o options) deviceConfig(stderr io.Writer) (sim.Config, error) {
	kind, err := sim.ParseKind(o.kind)
	if err != nil {
		return sim.Config{}, err
	}
	transport, err := sim.ParseTransport(o.transport)
	if err != nil {
		return sim.Config{}, err
	}
	if o.mqtt != "" && transport != sim.TransportMQTT {
		return sim.Config{}, errors.New("--mqtt needs --transport mqtt")
	}
	if o.whip != "" && transport != sim.TransportWebRTC {
		return sim.Config{}, errors.New("--whip needs --transport webrtc")
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	return sim.Config{
		Gateway: o.gateway, DataDir: o.dataDir, StateDir: o.state, PairingCode: o.pairingCode,
		Kind: kind, User: o.user, PIN: o.pin, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Transport: transport, MQTT: o.mqtt, WebRTC: o.whip,
		Audio: o.audio, Voice: o.voice, Speed: o.speed, NoiseSNR: o.noiseSNR, Realtime: o.realtime,
	}, nil
}

func say(ctx context.Context, o options, pos []string, stdout, stderr io.Writer) int {
	if len(pos) != 1 || o.confirm == o.decline || (o.cancel && !o.confirm) {
		fmt.Fprintln(stderr, `usage: earshot-sim say "TEXT" (--confirm [--cancel] | --decline) [flags]`)
		return 2
	}
	cfg, err := o.deviceConfig(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 2
	}
	if cfg.Audio && !cfg.Transport.CarriesAudio() {
		fmt.Fprintf(stderr, "earshot-sim: --audio needs --transport ws or webrtc, not %s\n", cfg.Transport)
		return 2
	}
	decision := wire.DecisionApprove
	if o.decline {
		decision = wire.DecisionDecline
	}
	method := wire.Method(o.method)
	if profile, _ := sim.ProfileFor(cfg.Kind); method == "" && cfg.Audio && profile.Supports(wire.MethodVoice) {
		method = wire.MethodVoice // hands free: the user says "confirm"
	}
	sctx, cancel := context.WithTimeout(ctx, o.timeout)
	dev, err := sim.Start(sctx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 1
	}
	defer dev.Close()
	fmt.Fprintf(stdout, "%s %s (user %s) connected to %s over %s (%s)\n", cfg.Kind, dev.ID(), dev.Enrollment().User,
		cfg.Gateway, dev.Transport(), dev.URL())
	p, err := dev.Buy(ctx, stdout, pos[0], decision, method, o.timeout)
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 1
	}
	if o.cancel && p.OK() {
		if err := p.Cancel(ctx, stdout, "cancel my order", o.timeout); err != nil {
			fmt.Fprintln(stderr, "earshot-sim:", err)
			return 1
		}
	}
	if !p.OK() {
		return 1
	}
	return 0
}

// phone runs the user's phone: it sets the PIN when asked, then answers prompts.
func phone(ctx context.Context, o options, pos []string, stdout, stderr io.Writer) int {
	if len(pos) != 0 || o.confirm && o.decline || o.count < 0 || (o.kindSet && o.kind != sim.KindPhone.String()) {
		fmt.Fprintln(stderr, "usage: earshot-sim phone [--decline] [--set-pin PIN] [--count N] [flags]")
		return 2
	}
	o.kind, o.pin = sim.KindPhone.String(), ""
	cfg, err := o.deviceConfig(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 2
	}
	cfg.Audio = false
	sctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	dev, err := sim.Start(sctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 1
	}
	defer dev.Close()
	fmt.Fprintf(stdout, "phone %s (user %s) connected to %s over %s (%s)\n", dev.ID(), dev.Enrollment().User,
		cfg.Gateway, dev.Transport(), dev.URL())
	if o.setPIN != "" {
		if err := dev.SetPIN(sctx, o.setPIN); err != nil {
			fmt.Fprintln(stderr, "earshot-sim:", err)
			return 1
		}
		fmt.Fprintln(stdout, "PIN set")
	}
	cancel()
	decision := wire.DecisionApprove
	if o.decline {
		decision = wire.DecisionDecline
	}
	if o.count == 0 {
		fmt.Fprintf(stdout, "waiting for prompts to %s (interrupt to stop)\n", decision)
	}
	n, err := dev.ServePhone(ctx, sim.PhoneConfig{Decision: decision, Count: o.count, Out: stdout, ReplyTimeout: o.timeout})
	fmt.Fprintf(stdout, "%d answered\n", n)
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 1
	}
	return 0
}

func runScenarios(ctx context.Context, o options, files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: earshot-sim run [flags] SCENARIO.yaml...")
		return 2
	}
	scenarios, err := scenario.LoadFiles(files...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg, err := o.deviceConfig(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 2
	}
	if cfg.StateDir == "" { // one directory for the whole run: each device enrols once
		if cfg.StateDir, err = os.MkdirTemp("", "earshot-sim-"); err != nil {
			fmt.Fprintln(stderr, "earshot-sim:", err)
			return 1
		}
		defer os.RemoveAll(cfg.StateDir)
	}
	r := scenario.NewRunner(scenario.Config{Device: cfg, StepTimeout: o.timeout})
	results := r.RunAll(ctx, stdout, scenarios)
	fmt.Fprintln(stdout, scenario.Summary(results))
	for _, res := range results {
		if !res.Passed() && !res.Skipped() {
			return 1
		}
	}
	return 0
}

// token prints shell lines with the device id and fresh tokens.
func token(ctx context.Context, o options, pos []string, stdout, stderr io.Writer) int {
	if len(pos) != 0 || o.count < 0 || o.count > 100 {
		fmt.Fprintln(stderr, "usage: earshot-sim token [--count N (1-100)] [flags]")
		return 2
	}
	o.count = max(o.count, 1)
	cfg, err := o.deviceConfig(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 2
	}
	ectx, cancel := context.WithTimeout(ctx, o.timeout)
	id, err := sim.Enroll(ectx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 1
	}
	if o.state == "" {
		fmt.Fprintln(stderr, "earshot-sim: no --state: this device's key is gone after this run")
	}
	fmt.Fprintf(stdout, "DEVICE=%s\n", id.Enrollment.Device)
	for i := 1; i <= o.count; i++ {
		tok, err := id.Token(time.Now())
		if err != nil {
			fmt.Fprintln(stderr, "earshot-sim:", err)
			return 1
		}
		name := "TOKEN"
		if i > 1 {
			name += strconv.Itoa(i)
		}
		fmt.Fprintf(stdout, "%s=%s\n", name, tok)
	}
	return 0
}
