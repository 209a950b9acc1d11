package wire_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/wire"
)

func TestDeviceTopics(t *testing.T) {
	const dev = "dev_abc"
	for _, c := range []struct {
		topic, kind string
	}{
		{wire.UplinkTopic(dev), wire.TopicUp},
		{wire.DownlinkTopic(dev), wire.TopicDown},
		{wire.StatusTopic(dev), wire.TopicStatus},
	} {
		d, k, err := wire.ParseDeviceTopic(c.topic)
		if err != nil || d != dev || k != c.kind {
			t.Errorf("ParseDeviceTopic(%q) = %q, %q, %v", c.topic, d, k, err)
		}
	}
	for _, bad := range []string{
		"", "earshot/v1/dev/", "earshot/v1/dev//up", "earshot/v1/dev/+/up", "earshot/v1/dev/#",
		"earshot/v1/dev/a/b/up", "earshot/v1/dev/a/sideways", "earshot/v2/dev/a/up", wire.GatewayStatusTopic,
		"earshot/v1/dev/" + strings.Repeat("x", wire.MaxIDBytes+1) + "/up", "earshot/v1/dev/$a/up",
	} {
		if _, _, err := wire.ParseDeviceTopic(bad); !errors.Is(err, wire.ErrTopic) {
			t.Errorf("ParseDeviceTopic(%q): err = %v, want ErrTopic", bad, err)
		}
	}
}

func TestPresence(t *testing.T) {
	p := wire.Presence{State: wire.Online, Epoch: "e1"}
	got, err := wire.DecodePresence(p.Encode())
	if err != nil || got != p {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{``, `{}`, `{"state":"away"}`, `[1]`, `{"state":"online","epoch":"` + strings.Repeat("e", 65) + `"}`,
		`{"state":"online","epoch":"` + strings.Repeat("e", 300) + `"}`} {
		if _, err := wire.DecodePresence([]byte(bad)); err == nil {
			t.Errorf("DecodePresence(%.40q) accepted", bad)
		}
	}
}
