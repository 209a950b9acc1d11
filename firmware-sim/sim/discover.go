package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/earshot/earshot/device/client"
)

// Transports is what a gateway offers devices, as GET /v1/transports answers:
//
//	{"ws": "ws://127.0.0.1:8080/v1/device", "mqtt": "tcp://127.0.0.1:1883",
//	 "webrtc": "whip://127.0.0.1:8080/v1/whip", "recognizer": "pocketsphinx"}
type Transports struct {
	// WS is the WebSocket device endpoint.
	WS string `json:"ws"`
	// MQTT is the broker devices connect to; empty when the gateway has none.
	MQTT string `json:"mqtt,omitempty"`
	// WebRTC is the WHIP endpoint (whip:// or whips://); empty when WebRTC is off.
	WebRTC string `json:"webrtc,omitempty"`
	// Recognizer names the gateway's speech recogniser: "none" (or empty, from a
	// gateway that predates speech) when devices must send text.
	Recognizer string `json:"recognizer,omitempty"`
}

// Speech reports whether the gateway recognises speech.
func (t Transports) Speech() bool { return t.Recognizer != "" && t.Recognizer != "none" }

// Discover asks the gateway at cfg.Gateway what it offers devices. A gateway that does
// not serve GET /v1/transports (404) offers WebSocket only and takes text only.
func Discover(ctx context.Context, cfg Config) (Transports, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Transports{}, err
	}
	ws, err := client.DeviceURL(cfg.Gateway)
	if err != nil {
		return Transports{}, fmt.Errorf("sim: %w", err)
	}
	base := strings.TrimSuffix(cfg.Gateway, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/transports", nil)
	if err != nil {
		return Transports{}, fmt.Errorf("sim: discover: %w", err)
	}
	resp, err := cfg.HTTP.Do(req)
	if err != nil {
		return Transports{}, fmt.Errorf("sim: discover: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return Transports{WS: ws, Recognizer: "none"}, nil
	default:
		return Transports{}, fmt.Errorf("sim: discover: GET %s/v1/transports answered %s", base, resp.Status)
	}
	var t Transports
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<10)).Decode(&t); err != nil {
		return Transports{}, fmt.Errorf("sim: discover: GET %s/v1/transports: %w", base, err)
	}
	if t.WebRTC != "" {
		u, err := url.Parse(t.WebRTC)
		if err != nil || (u.Scheme != "whip" && u.Scheme != "whips") || u.Host == "" {
			return Transports{}, fmt.Errorf("sim: discover: webrtc endpoint %q: want whip://host:port/path", t.WebRTC)
		}
	}
	if t.Recognizer == "" {
		t.Recognizer = "none"
	}
	return t, nil
}
