package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Transports are the device endpoints a gateway offers, as GET /v1/transports
// answers: {"ws":"ws://127.0.0.1:8080/v1/device","mqtt":"tcp://127.0.0.1:1883"}.
// Each is a Config.URL.
type Transports struct {
	// WS is the WebSocket device endpoint.
	WS string `json:"ws"`
	// MQTT is the broker devices connect to; empty when the gateway has none.
	MQTT string `json:"mqtt,omitempty"`
	// WebRTC is the WHIP endpoint (whip:// or whips://); empty when the gateway has
	// none.
	WebRTC string `json:"webrtc,omitempty"`
	// Recognizer names the gateway's speech recogniser; "none" when devices must send
	// text (Discover also says "none" for a gateway that predates speech).
	Recognizer string `json:"recognizer,omitempty"`
}

// Speech reports whether the gateway recognises speech.
func (t Transports) Speech() bool { return t.Recognizer != "" && t.Recognizer != "none" }

// Discover asks the gateway at baseURL (http://host:port) where its device
// endpoints are. A gateway that does not serve GET /v1/transports (404: it predates
// MQTT) offers WebSocket only, at DeviceURL(baseURL).
func Discover(ctx context.Context, baseURL string) (Transports, error) {
	var t Transports
	ws, err := DeviceURL(baseURL)
	if err != nil {
		return t, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, enrollTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+"/v1/transports", nil)
	if err != nil {
		return t, fmt.Errorf("client: discover: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return t, fmt.Errorf("client: discover: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return Transports{WS: ws, Recognizer: "none"}, nil
	default:
		p := readProblem(resp)
		return t, fmt.Errorf("client: discover: %d %s: %s", resp.StatusCode, p.Code, p.Detail)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<10)).Decode(&t); err != nil {
		return t, fmt.Errorf("%w: GET /v1/transports: %w", ErrProtocol, err)
	}
	if t.Recognizer == "" {
		t.Recognizer = "none"
	}
	for _, u := range []string{t.WS, t.MQTT, t.WebRTC} {
		if u == "" {
			continue
		}
		if _, err := transportOf(u); err != nil {
			return Transports{}, fmt.Errorf("%w: transports: %w", ErrProtocol, err)
		}
	}
	return t, nil
}
