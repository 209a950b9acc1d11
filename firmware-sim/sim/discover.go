package sim

import (
	"context"
	"fmt"

	"github.com/earshot/earshot/device/client"
)

// Transports is what a gateway offers devices, as GET /v1/transports answers (see
// client.Transports).
type Transports = client.Transports

// Discover asks the gateway at cfg.Gateway what it offers devices. A gateway that does
// not serve GET /v1/transports (404) offers WebSocket only and takes text only.
func Discover(ctx context.Context, cfg Config) (Transports, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Transports{}, err
	}
	t, err := client.Discover(ctx, cfg.Gateway)
	if err != nil {
		return Transports{}, fmt.Errorf("sim: %w", err)
	}
	return t, nil
}
