package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MQTT 3.1.1 topic layout, version 1. Every topic lives under TopicPrefix; a device's
// topics carry its id, which is also its MQTT username and client id:
//
//	earshot/v1/dev/{device}/up      device -> gateway, QoS 1: one envelope per message
//	earshot/v1/dev/{device}/down    gateway -> device, QoS 1: one envelope per message
//	earshot/v1/dev/{device}/status  device presence, retained, QoS 1: Presence JSON;
//	                                the device's last will sets it offline
//	earshot/v1/gateway/status       gateway presence, retained, QoS 1: Presence JSON
//	                                with an epoch that changes when the gateway restarts
//
// A device may publish only to its own up and status topics and subscribe only to its
// own down topic and to the gateway's status topic; brokers enforce it (the embedded
// broker's ACL hook, Mosquitto's pattern ACL). The payloads of up and down are the
// same envelopes as WebSocket text frames.
const (
	TopicPrefix = "earshot/v1"
	// GatewayStatusTopic carries the gateway's retained Presence.
	GatewayStatusTopic = TopicPrefix + "/gateway/status"
	// UplinkFilter and StatusFilter are the gateway's subscriptions.
	UplinkFilter = TopicPrefix + "/dev/+/up"
	StatusFilter = TopicPrefix + "/dev/+/status"

	// QoSEvents is the QoS of every envelope and presence message.
	QoSEvents byte = 1

	devicePrefix = TopicPrefix + "/dev/"
)

// Topic kinds, the last segment of a device topic.
const (
	TopicUp     = "up"
	TopicDown   = "down"
	TopicStatus = "status"
)

// UplinkTopic is where the device publishes its envelopes.
func UplinkTopic(device string) string { return devicePrefix + device + "/" + TopicUp }

// DownlinkTopic is where the gateway publishes the device's envelopes.
func DownlinkTopic(device string) string { return devicePrefix + device + "/" + TopicDown }

// StatusTopic is the device's retained presence topic.
func StatusTopic(device string) string { return devicePrefix + device + "/" + TopicStatus }

// ErrTopic reports a topic outside the layout.
var ErrTopic = errors.New("wire: not an earshot device topic")

// ParseDeviceTopic splits a device topic into the device id and the kind (TopicUp,
// TopicDown or TopicStatus). Wildcards, empty or over-long ids, extra levels and
// unknown kinds are refused with ErrTopic.
func ParseDeviceTopic(topic string) (device, kind string, err error) {
	rest, ok := strings.CutPrefix(topic, devicePrefix)
	if !ok {
		return "", "", fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	device, kind, ok = strings.Cut(rest, "/")
	switch {
	case !ok || device == "" || len(device) > MaxIDBytes || strings.ContainsAny(device, "+#/$"):
		return "", "", fmt.Errorf("%w: %q", ErrTopic, topic)
	case kind != TopicUp && kind != TopicDown && kind != TopicStatus:
		return "", "", fmt.Errorf("%w: %q has no kind up, down or status", ErrTopic, topic)
	}
	return device, kind, nil
}

// Presence states.
const (
	Online  = "online"
	Offline = "offline"
)

// Presence is the payload of a status topic. A device publishes online (retained)
// after connecting and sets offline as its last will, both with the same Epoch, a
// random string it picks per connection, so a late will of an old connection cannot
// end a newer one. The gateway does the same on its own status topic with an epoch
// that changes whenever it (re)connects: a device that sees a new gateway epoch
// sends hello again, because the gateway may have lost the session it had.
type Presence struct {
	State string `json:"state"`
	Epoch string `json:"epoch,omitempty"`
}

// maxPresenceBytes bounds a status payload.
const maxPresenceBytes = 256

// Encode returns the JSON payload.
func (p Presence) Encode() []byte {
	b, _ := json.Marshal(p) // two strings cannot fail to marshal
	return b
}

// DecodePresence parses and checks a status payload.
func DecodePresence(b []byte) (Presence, error) {
	var p Presence
	if len(b) > maxPresenceBytes {
		return p, fmt.Errorf("%w: presence of %d bytes, limit %d", ErrTooLarge, len(b), maxPresenceBytes)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("wire: presence: %w", err)
	}
	if p.State != Online && p.State != Offline {
		return p, fmt.Errorf("wire: presence state %q, want %q or %q", p.State, Online, Offline)
	}
	if len(p.Epoch) > MaxIDBytes {
		return p, fmt.Errorf("%w: presence epoch", ErrTooLarge)
	}
	return p, nil
}
