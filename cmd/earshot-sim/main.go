// Command earshot-sim runs simulated earshot devices (smart glasses, a kiosk) against
// a gateway: one spoken purchase with `say`, or conformance scenarios with `run`.
//
//	earshot-sim say "buy two oat lattes" --confirm
//	earshot-sim run firmware-sim/scenarios/*.yaml
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
	"syscall"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/firmware-sim/scenario"
	"github.com/earshot/earshot/firmware-sim/sim"
)

const usage = `earshot-sim: simulated earshot devices.

Usage:
  earshot-sim say TEXT (--confirm | --decline) [flags]
      Say TEXT on a simulated device, show the prompt, approve or decline it and
      print the outcome. Exits 1 unless a --confirm ends redeemed (or a --decline
      ends declined).
  earshot-sim run [flags] SCENARIO.yaml...
      Run scenario files; prints PASS/FAIL per scenario, exits 1 if one fails.
  earshot-sim help
      Show this help.

A device keeps its key and enrolment in --state (default: a temporary directory, so it
enrols on every run). It enrols with --pairing-code, or asks the gateway's admin API
for a code, with the admin token in <--data-dir>/admin.token.

Flags:
`

type options struct {
	gateway, dataDir, pairingCode, state, kind, user, method string
	timeout                                                  time.Duration
	confirm, decline, verbose                                bool
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
	fs.StringVar(&o.kind, "kind", "glasses", "device kind for say: glasses or kiosk")
	fs.StringVar(&o.user, "user", "alice", "user the device is paired to, for say")
	fs.StringVar(&o.method, "method", "", "verification method for say (default: the device's, tap)")
	fs.BoolVar(&o.confirm, "confirm", false, "say: approve the prompt")
	fs.BoolVar(&o.decline, "decline", false, "say: decline the prompt")
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
	switch cmd {
	case "help", "-h", "-help", "--help":
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, usage)
		fs.PrintDefaults()
		return 0
	case "say":
		return say(ctx, o, pos, stdout, stderr)
	case "run":
		return runScenarios(ctx, o, pos, stdout, stderr)
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
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	return sim.Config{
		Gateway: o.gateway, DataDir: o.dataDir, StateDir: o.state, PairingCode: o.pairingCode,
		Kind: kind, User: o.user, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}, nil
}

func say(ctx context.Context, o options, pos []string, stdout, stderr io.Writer) int {
	if len(pos) != 1 || o.confirm == o.decline {
		fmt.Fprintln(stderr, `usage: earshot-sim say "TEXT" (--confirm | --decline) [flags]`)
		return 2
	}
	cfg, err := o.deviceConfig(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 2
	}
	decision := wire.DecisionApprove
	if o.decline {
		decision = wire.DecisionDecline
	}
	sctx, cancel := context.WithTimeout(ctx, o.timeout)
	dev, err := sim.Start(sctx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 1
	}
	defer dev.Close()
	fmt.Fprintf(stdout, "%s %s (user %s) connected to %s\n", cfg.Kind, dev.ID(), dev.Enrollment().User, cfg.Gateway)
	p, err := dev.Buy(ctx, stdout, pos[0], decision, wire.Method(o.method), o.timeout)
	if err != nil {
		fmt.Fprintln(stderr, "earshot-sim:", err)
		return 1
	}
	if !p.OK() {
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
	failed := 0
	for _, res := range r.RunAll(ctx, stdout, scenarios) {
		if !res.Passed() {
			failed++
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", len(scenarios)-failed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}
