// Command webhook-agent is an example external earshot agent: a corner bakery that
// sells croissants, baguettes and sourdough loaves from its own menu, over webhooks
// and the REST API (docs/agents.md).
//
// The gateway POSTs the agent's events to /webhook, signed per Standard Webhooks; the
// agent verifies each with gateway/webhook, skips the ones it has already handled
// (delivery is at least once, deduplicated by webhook-id) and answers each with one
// REST call, with nothing but net/http and encoding/json:
//
//	intent.received         POST /v1/purchase-requests, or POST /v1/transactions/{tx}/reject
//	transaction.mandated    POST /v1/redemptions, once (Idempotency-Key: redeem-<mandate id>)
//	transaction.redeemed    POST /v1/notifications: "Your 2 croissants are ready at the counter."
//	transaction.cancelling  POST /v1/transactions/{tx}/cancellation, accepted
//
// A webhook is answered 2xx only once its REST call succeeded or was refused for good;
// on a transient failure it is answered 500 and the gateway sends the event again.
//
// Usage (the key and the secret are better given in the environment, which ps does
// not show):
//
//	EARSHOT_API_KEY=esk_... EARSHOT_WEBHOOK_SECRET=whsec_... \
//	  webhook-agent [--gateway http://127.0.0.1:8080] [--listen 127.0.0.1:8090] [--addr-file F]
//
// It stops gracefully on SIGINT or SIGTERM. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhook-agent:", err)
		os.Exit(1)
	}
}

// config is what the flags and the environment give.
type config struct {
	gateway  string // base URL
	apiKey   string // esk_...
	secret   string // whsec_...
	listen   string
	addrFile string
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("webhook-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envOr := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var c config
	fs.StringVar(&c.gateway, "gateway", envOr("EARSHOT_GATEWAY", "http://127.0.0.1:8080"), "the gateway's base URL (EARSHOT_GATEWAY)")
	// The key and the secret are read from the environment after parsing, not as the
	// flags' defaults, which the usage text would print.
	fs.StringVar(&c.apiKey, "api-key", "", "the agent's API key, esk_... (EARSHOT_API_KEY)")
	fs.StringVar(&c.secret, "webhook-secret", "", "the webhook signing secret, whsec_... (EARSHOT_WEBHOOK_SECRET)")
	fs.StringVar(&c.listen, "listen", envOr("WEBHOOK_AGENT_LISTEN", "127.0.0.1:8090"), "address to serve /webhook on; port 0 picks one (WEBHOOK_AGENT_LISTEN)")
	fs.StringVar(&c.addrFile, "addr-file", getenv("WEBHOOK_AGENT_ADDR_FILE"), "file to write the listening address to while running (WEBHOOK_AGENT_ADDR_FILE)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.apiKey == "" {
		c.apiKey = getenv("EARSHOT_API_KEY")
	}
	if c.secret == "" {
		c.secret = getenv("EARSHOT_WEBHOOK_SECRET")
	}
	if u, err := url.Parse(c.gateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("--gateway %q is not an http(s) URL", c.gateway)
	}
	c.gateway = strings.TrimRight(c.gateway, "/")
	if !strings.HasPrefix(c.apiKey, "esk_") {
		return c, errors.New("--api-key (or EARSHOT_API_KEY) must be the agent's esk_... key")
	}
	if err := webhook.ValidSecret(c.secret); err != nil { // the error never holds the secret
		return c, fmt.Errorf("--webhook-secret (or EARSHOT_WEBHOOK_SECRET): %w", err)
	}
	return c, nil
}

// run serves the webhook until ctx ends, then shuts down, letting the events being
// handled finish (10 seconds at most).
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "webhook-agent")
	b := newBakery(&restClient{base: cfg.gateway, key: cfg.apiKey, http: &http.Client{Timeout: restTimeout}}, log)

	mux := http.NewServeMux()
	mux.HandleFunc("/webhook", func(w http.ResponseWriter, r *http.Request) {
		// webhook.Handler verifies the signature (401 if it does not), decodes the
		// event and answers 204 when handle returns nil, 500 otherwise. The request's
		// context ends if the gateway stops waiting, and with it the REST call.
		webhook.Handler(cfg.secret, 0, func(ev agent.Event) error {
			return b.handle(r.Context(), ev)
		}).ServeHTTP(w, r)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      restTimeout + 5*time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.addrFile != "" {
		if err := writeAddr(cfg.addrFile, ln.Addr().String()); err != nil {
			_ = ln.Close() // not served yet; the write error is the one to report
			return err
		}
		defer func() {
			if err := os.Remove(cfg.addrFile); err != nil {
				log.Warn("cannot remove the address file", "err", err)
			}
		}()
	}
	log.Info("listening", "addr", ln.Addr().String(), "gateway", cfg.gateway)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(drain)
	if err != nil {
		// Cut the events still running: unanswered, the gateway sends them again.
		err = errors.Join(fmt.Errorf("shutdown: %w", err), srv.Close())
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve: %w", serr))
	}
	log.Info("stopped", "handled", b.handled.Load(), "duplicates", b.duplicates.Load(), "failed", b.failed.Load(),
		"ids_forgotten", b.seen.dropped(), "orders_forgotten", b.orders.dropped())
	return err
}

// writeAddr writes the address to path atomically, so that a reader never sees half
// of it.
func writeAddr(path, addr string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return fmt.Errorf("address file: %w", err)
	}
	_, werr := tmp.WriteString(addr + "\n")
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name()) // best effort; the write error is what matters
		return fmt.Errorf("address file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name()) // best effort, as above
		return fmt.Errorf("address file: %w", err)
	}
	return nil
}
