package brokerauth

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Option names, as Mosquitto passes them: the part after "plugin_opt_".
const (
	OptURL         = "url"
	OptSecretFile  = "secret_file"
	OptGatewayUser = "gateway_user"
	OptTimeout     = "timeout"
)

// ParseOptions turns the plugin's options into a Config (without Logger and
// Transport). An unknown option is an error, so that a misspelt one is not ignored.
func ParseOptions(opts map[string]string) (Config, error) {
	var cfg Config
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the first problem deterministically
	for _, k := range keys {
		v := strings.TrimSpace(opts[k])
		switch k {
		case OptURL:
			cfg.URL = v
		case OptSecretFile:
			cfg.SecretFile = v
		case OptGatewayUser:
			cfg.GatewayUser = v
		case OptTimeout:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return cfg, fmt.Errorf("%w: plugin_opt_%s %q: want a positive duration such as 2s", ErrConfig, k, v)
			}
			cfg.Timeout = d
		default:
			return cfg, fmt.Errorf("%w: unknown option plugin_opt_%s (known: %s, %s, %s, %s)",
				ErrConfig, k, OptURL, OptSecretFile, OptGatewayUser, OptTimeout)
		}
	}
	if _, err := cfg.withDefaults(); err != nil {
		return cfg, err
	}
	return cfg, nil
}
