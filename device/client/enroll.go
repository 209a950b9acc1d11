package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/earshot/earshot/device/identity"
)

// Enrollment is what a gateway returns when it enrols a device.
type Enrollment struct {
	Device   string `json:"device"`   // the device id, identity.DeviceID of the key
	User     string `json:"user"`     // the user who created the pairing code
	Audience string `json:"audience"` // the audience for device tokens (Config.Audience)
}

// enrollTimeout bounds an enrolment request when ctx has no deadline.
const enrollTimeout = 10 * time.Second

// Enroll registers key with the gateway at baseURL (http://host:port) using a one-time
// pairing code. kind is "glasses", "kiosk" or "phone"; name is free text shown to the user. A
// refusal is an *EnrollError with the problem code (for example
// "invalid_pairing_code").
func Enroll(ctx context.Context, baseURL string, key *identity.Key, code, kind, name string) (Enrollment, error) {
	var en Enrollment
	if key == nil {
		return en, fmt.Errorf("client: enroll: no key")
	}
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/") + "/v1/enroll")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return en, fmt.Errorf("client: enroll: base URL %q: want http(s)://host[:port]", baseURL)
	}
	body, err := json.Marshal(map[string]string{
		"code": code, "public_key": identity.EncodePublic(key.Public()),
		"proof": key.EnrollProof(code), "kind": kind, "name": name,
	})
	if err != nil {
		return en, fmt.Errorf("client: enroll: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, enrollTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return en, fmt.Errorf("client: enroll: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return en, fmt.Errorf("client: enroll: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		p := readProblem(resp)
		return en, &EnrollError{Status: resp.StatusCode, Code: p.Code, Detail: p.Detail}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<10)).Decode(&en); err != nil {
		return en, fmt.Errorf("client: enroll: response: %w", err)
	}
	if want := key.DeviceID(); en.Device != want {
		return en, fmt.Errorf("%w: enrolment: gateway says device %q, the key's id is %q", ErrProtocol, en.Device, want)
	}
	if en.Audience == "" {
		return en, fmt.Errorf("%w: enrolment: no audience", ErrProtocol)
	}
	return en, nil
}

// DeviceURL returns the WebSocket device endpoint of the gateway at baseURL:
// http://host:port becomes ws://host:port/v1/device, https becomes wss.
func DeviceURL(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", fmt.Errorf("client: gateway URL: %w", err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("client: gateway URL %q: want http(s)://host[:port]", baseURL)
	}
	if u.Host == "" {
		return "", fmt.Errorf("client: gateway URL %q: no host", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/device"
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}
