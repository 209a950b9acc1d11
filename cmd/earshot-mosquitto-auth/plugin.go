//go:build mosquitto

package main

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include <string.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

void earshot_log(int level, const char *msg);
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"unsafe"

	"github.com/earshot/earshot/cmd/earshot-mosquitto-auth/internal/brokerauth"
)

// main is required by -buildmode=c-shared and never runs.
func main() {}

// plugin holds the one Checker of this broker. Mosquitto calls in from one thread;
// the mutex only makes that assumption unnecessary.
var plugin struct {
	mu      sync.Mutex
	checker *brokerauth.Checker
	cfg     brokerauth.Config // the options of the last successful init or reload
	log     *slog.Logger
}

func init() {
	plugin.log = slog.New(brokerHandler{}).With("component", "earshot-mosquitto-auth")
}

//export earshotInit
func earshotInit(opts *C.struct_mosquitto_opt, n C.int) C.int {
	cfg, err := config(opts, n)
	if err == nil {
		var c *brokerauth.Checker
		if c, err = brokerauth.New(cfg); err == nil {
			plugin.mu.Lock()
			plugin.checker, plugin.cfg = c, cfg
			plugin.mu.Unlock()
			eff := c.Config()
			plugin.log.Info("plugin ready", "url", eff.URL, "gateway_user", eff.GatewayUser, "timeout", eff.Timeout.String())
			return C.MOSQ_ERR_SUCCESS
		}
	}
	plugin.log.Error("plugin not started", "err", err)
	return C.MOSQ_ERR_INVAL
}

//export earshotReload
func earshotReload(opts *C.struct_mosquitto_opt, n C.int) {
	plugin.mu.Lock()
	defer plugin.mu.Unlock()
	if plugin.checker == nil {
		return
	}
	// Mosquitto 2.0.11 passes no options with MOSQ_EVT_RELOAD (plugin options are
	// only read at start-up): keep the options and read the secret file again.
	cfg, err := plugin.cfg, error(nil)
	if n > 0 {
		cfg, err = config(opts, n)
	}
	if err == nil {
		err = plugin.checker.Reload(cfg)
	}
	if err != nil {
		plugin.log.Error("reload failed; the previous configuration and secret stay in force", "err", err)
		return
	}
	plugin.cfg = cfg
	plugin.log.Info("reloaded: secret file read again")
}

//export earshotBasicAuth
func earshotBasicAuth(username, password, clientID *C.char) C.int {
	plugin.mu.Lock()
	c := plugin.checker
	plugin.mu.Unlock()
	if c == nil {
		return C.MOSQ_ERR_AUTH
	}
	// Each string is copied only up to one byte over its limit: enough for Check to
	// refuse it, without copying whatever a client sent.
	err := c.Check(context.Background(),
		goString(username, brokerauth.MaxUsernameBytes),
		goString(password, brokerauth.MaxPasswordBytes),
		goString(clientID, brokerauth.MaxClientIDBytes))
	switch {
	case errors.Is(err, brokerauth.ErrUnavailable):
		// Not a refusal: the gateway could not be asked. Any answer but
		// MOSQ_ERR_AUTH makes Mosquitto drop the connection without a CONNACK,
		// which devices treat as a network failure and retry with backoff; a
		// CONNACK "not authorised" would count towards giving up for good.
		return C.MOSQ_ERR_UNKNOWN
	case err != nil:
		return C.MOSQ_ERR_AUTH
	}
	return C.MOSQ_ERR_SUCCESS
}

// earshotSubscribe returns 0 if the client may subscribe to filter, else 1.
//
//export earshotSubscribe
func earshotSubscribe(username, filter *C.char) C.int {
	plugin.mu.Lock()
	c := plugin.checker
	plugin.mu.Unlock()
	if c == nil || c.CheckSubscribe(goString(username, brokerauth.MaxUsernameBytes), goString(filter, brokerauth.MaxFilterBytes)) != nil {
		return 1
	}
	return 0
}

//export earshotCleanup
func earshotCleanup() {
	plugin.mu.Lock()
	c := plugin.checker
	plugin.checker = nil
	plugin.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

var errNoOptions = errors.New("no plugin_opt_ lines: plugin_opt_url and plugin_opt_secret_file are required")

// config reads Mosquitto's plugin options into a brokerauth.Config.
func config(opts *C.struct_mosquitto_opt, n C.int) (brokerauth.Config, error) {
	if opts == nil || n <= 0 {
		return brokerauth.Config{}, errNoOptions
	}
	m := make(map[string]string, int(n))
	for _, o := range unsafe.Slice(opts, int(n)) {
		k, v := goString(o.key, 256), goString(o.value, 4096)
		if _, dup := m[k]; dup {
			return brokerauth.Config{}, fmt.Errorf("plugin_opt_%s given twice", k)
		}
		m[k] = v
	}
	cfg, err := brokerauth.ParseOptions(m)
	cfg.Logger = plugin.log
	return cfg, err
}

// goString copies a C string of at most limit+1 bytes; nil is "".
func goString(s *C.char, limit int) string {
	if s == nil {
		return ""
	}
	return C.GoStringN(s, C.int(C.strnlen(s, C.size_t(limit+1))))
}

// logLine hands one line to mosquitto_log_printf.
func logLine(level slog.Level, line string) {
	mosq := C.int(C.MOSQ_LOG_INFO)
	switch {
	case level >= slog.LevelError:
		mosq = C.MOSQ_LOG_ERR
	case level >= slog.LevelWarn:
		mosq = C.MOSQ_LOG_WARNING
	case level < slog.LevelInfo:
		mosq = C.MOSQ_LOG_DEBUG
	}
	cs := C.CString(line)
	defer C.free(unsafe.Pointer(cs))
	C.earshot_log(mosq, cs)
}
