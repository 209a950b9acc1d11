package brokerauth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/earshot/earshot/device/wire"
)

// MaxFilterBytes bounds a topic filter; a longer one is refused.
const MaxFilterBytes = 512

// ErrSubscribe reports a subscription outside the earshot topic layout.
var ErrSubscribe = errors.New("brokerauth: subscription not allowed")

const sharePrefix = "$share/"

// CheckSubscribe decides one topic filter of a SUBSCRIBE (the broker then answers
// 0x80 for it): nil allows it, an error wrapping ErrSubscribe refuses it.
//
// A device may subscribe to exactly its own down topic and to the gateway's status
// topic: no wildcard, no $share, nothing of another device. The gateway user may
// subscribe to any filter under earshot/v1, shared ($share/group/...) or not. This
// only narrows subscriptions: what a client may publish and receive is the broker's
// ACL (Mosquitto's acl_file), which also filters every delivery.
func (c *Checker) CheckSubscribe(username, filter string) error {
	c.mu.Lock()
	cfg := c.cfg
	c.mu.Unlock()
	err := checkSubscribe(cfg.GatewayUser, username, filter)
	if err != nil {
		cfg.Logger.Warn("mqtt subscription refused", "username", printable(username),
			"filter", printable(filter[:min(len(filter), MaxFilterBytes)]), "err", err)
	}
	return err
}

func checkSubscribe(gatewayUser, username, filter string) error {
	switch {
	case username == "" || len(username) > MaxUsernameBytes:
		return fmt.Errorf("%w: username of %d bytes", ErrSubscribe, len(username))
	case filter == "" || len(filter) > MaxFilterBytes:
		return fmt.Errorf("%w: filter of %d bytes", ErrSubscribe, len(filter))
	}
	if username == gatewayUser {
		if rest, ok := strings.CutPrefix(filter, sharePrefix); ok {
			group, f, ok := strings.Cut(rest, "/")
			if !ok || group == "" || strings.ContainsAny(group, "+#") {
				return fmt.Errorf("%w: malformed shared subscription", ErrSubscribe)
			}
			filter = f
		}
		if !strings.HasPrefix(filter, wire.TopicPrefix+"/") {
			return fmt.Errorf("%w: the gateway subscribes under %s only", ErrSubscribe, wire.TopicPrefix)
		}
		return nil
	}
	if filter != wire.DownlinkTopic(username) && filter != wire.GatewayStatusTopic {
		return fmt.Errorf("%w: a device subscribes to its own down topic and %s only", ErrSubscribe, wire.GatewayStatusTopic)
	}
	return nil
}
