package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoAdminToken reports that no pairing code was given and the gateway's admin token
// could not be read to ask for one.
var ErrNoAdminToken = errors.New("sim: no pairing code and no admin token")

// APIError is a refusal from the gateway's HTTP API, from its RFC 9457 problem.
type APIError struct {
	Status int
	Code   string
	Detail string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("sim: gateway answered %d %s: %s", e.Status, e.Code, e.Detail)
}

// Admin is the part of the gateway's admin API the simulator uses.
type Admin struct {
	// BaseURL is the gateway's base URL, http://host:port.
	BaseURL string
	// Token is the admin bearer token. Never logged.
	Token string
	// HTTP is the client for the requests. Default: http.DefaultClient.
	HTTP *http.Client
}

// AdminFromDataDir returns an Admin whose token is the trimmed content of
// dataDir/admin.token, the file the gateway writes on its first start.
func AdminFromDataDir(baseURL, dataDir string) (*Admin, error) {
	path := filepath.Join(dataDir, "admin.token")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (pass --pairing-code, or --data-dir with the gateway's data directory)", ErrNoAdminToken, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return nil, fmt.Errorf("%w: %s is empty", ErrNoAdminToken, path)
	}
	return &Admin{BaseURL: baseURL, Token: tok}, nil
}

// PairingCode asks the gateway for a one-time pairing code for user.
func (a *Admin) PairingCode(ctx context.Context, user string) (string, error) {
	body, err := json.Marshal(map[string]string{"user": user})
	if err != nil {
		return "", fmt.Errorf("sim: pairing code: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(a.BaseURL, "/")+"/admin/v1/pairing-codes", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("sim: pairing code: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("Content-Type", "application/json")
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("sim: pairing code: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil {
		return "", fmt.Errorf("sim: pairing code: %w", err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var p struct{ Code, Detail, Title string }
		if json.Unmarshal(raw, &p) != nil || p.Detail == "" {
			p.Detail = strings.TrimSpace(p.Title + " " + http.StatusText(resp.StatusCode))
		}
		return "", &APIError{Status: resp.StatusCode, Code: p.Code, Detail: p.Detail}
	}
	var out struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Code == "" {
		return "", fmt.Errorf("sim: pairing code: no code in the answer")
	}
	return out.Code, nil
}
