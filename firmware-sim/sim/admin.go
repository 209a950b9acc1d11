package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/earshot/earshot/device/wire"
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

// NewAdmin returns the Admin of the gateway cfg names (Config.Gateway), with the token
// in Config.DataDir and Config.HTTP for the requests, the defaults applied as Start
// applies them.
func NewAdmin(cfg Config) (*Admin, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a, err := AdminFromDataDir(cfg.Gateway, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a.HTTP = cfg.HTTP
	return a, nil
}

// PairingCode asks the gateway for a one-time pairing code for user.
func (a *Admin) PairingCode(ctx context.Context, user string) (string, error) {
	var out struct {
		Code string `json:"code"`
	}
	if err := a.do(ctx, http.MethodPost, "/admin/v1/pairing-codes", map[string]string{"user": user}, &out); err != nil {
		return "", wrapAPI("sim: pairing code", err)
	}
	if out.Code == "" {
		return "", fmt.Errorf("sim: pairing code: no code in the answer")
	}
	return out.Code, nil
}

// SetPrice changes the price of sku in the catalogue of the gateway's embedded agent
// (PUT /admin/v1/catalog/prices/{sku}): the simulated merchant's price drop, which
// redeems the price targets it meets.
func (a *Admin) SetPrice(ctx context.Context, sku string, amount wire.Amount) error {
	body := map[string]wire.Amount{"amount": amount}
	if err := a.do(ctx, http.MethodPut, "/admin/v1/catalog/prices/"+url.PathEscape(sku), body, nil); err != nil {
		return wrapAPI("sim: price of "+sku, err)
	}
	return nil
}

// wrapAPI prefixes err with what, unless it is an *APIError, which says it all.
func wrapAPI(what string, err error) error {
	if _, ok := errors.AsType[*APIError](err); ok {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// do sends body as JSON to the admin API and decodes a 200 or 201 answer into out
// (when not nil); a refusal is an *APIError.
func (a *Admin) do(ctx context.Context, method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.BaseURL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("Content-Type", "application/json")
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var p struct{ Code, Detail, Title string }
		if json.Unmarshal(raw, &p) != nil || p.Detail == "" {
			p.Detail = strings.TrimSpace(p.Title + " " + http.StatusText(resp.StatusCode))
		}
		return &APIError{Status: resp.StatusCode, Code: p.Code, Detail: p.Detail}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	return nil
}
