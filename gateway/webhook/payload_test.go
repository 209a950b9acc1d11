package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/gateway/agent"
)

func TestPayload(t *testing.T) {
	at := time.Date(2026, 1, 2, 4, 4, 5, 600_000_000, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		ev   agent.Event
		want string
		err  bool
	}{
		{
			name: "compact, UTC, data kept",
			ev: agent.Event{ID: "evt_1", Seq: 9, Type: agent.EventIntent, At: at, Device: "dev", User: "u",
				Data: json.RawMessage(`{ "tx": "tx_1",  "text": "two <oat> lattes & one" }`)},
			want: `{"type":"intent.received","timestamp":"2026-01-02T03:04:05.6Z","data":{"tx":"tx_1","text":"two <oat> lattes & one"}}`,
		},
		{
			name: "whole seconds",
			ev:   agent.Event{ID: "evt_2", Type: "transaction.declined", At: time.Unix(1_700_000_000, 0), Data: json.RawMessage(`[1,2]`)},
			want: `{"type":"transaction.declined","timestamp":"2023-11-14T22:13:20Z","data":[1,2]}`,
		},
		{
			name: "no data",
			ev:   agent.Event{ID: "evt_3", Type: "transaction.expired", At: time.Unix(0, 0)},
			want: `{"type":"transaction.expired","timestamp":"1970-01-01T00:00:00Z","data":null}`,
		},
		{name: "data not JSON", ev: agent.Event{ID: "evt_4", Type: "x", Data: json.RawMessage(`{nope`)}, err: true},
		{name: "no type", ev: agent.Event{ID: "evt_5", Data: json.RawMessage(`{}`)}, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Payload(tc.ev)
			if tc.err {
				if !errors.Is(err, ErrPayload) {
					t.Fatalf("Payload err = %v, want ErrPayload", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("Payload =\n%s\nwant\n%s", got, tc.want)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(got, &fields); err != nil || len(fields) != 3 {
				t.Fatalf("payload has fields %v (%v), want exactly type, timestamp, data", fields, err)
			}
		})
	}
}

// signedRequest builds a webhook POST of ev as the Dispatcher would at now.
func signedRequest(t *testing.T, url, secret string, ev agent.Event, now time.Time) *http.Request {
	t.Helper()
	body, err := Payload(ev)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sign(secret, ev.ID, now, body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderID, ev.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	return req
}

func TestHandler(t *testing.T) {
	secret, err := NewSecret(bytes.NewReader(bytes.Repeat([]byte{3}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		got  []agent.Event
		fail bool
	)
	srv := httptest.NewServer(Handler(secret, 0, func(ev agent.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("agent busy")
		}
		got = append(got, ev)
		return nil
	}))
	defer srv.Close()

	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ev := agent.Event{ID: "evt_42", Seq: 42, Type: agent.EventIntent, At: at, Data: json.RawMessage(`{"tx":"tx_9"}`)}
	do := func(req *http.Request) int {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}

	t.Run("delivered", func(t *testing.T) {
		if code := do(signedRequest(t, srv.URL, secret, ev, time.Now())); code != http.StatusNoContent {
			t.Fatalf("status %d, want 204", code)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 {
			t.Fatalf("fn called %d times, want 1", len(got))
		}
		g := got[0]
		if g.ID != ev.ID || g.Type != ev.Type || !g.At.Equal(at) || string(g.Data) != string(ev.Data) {
			t.Fatalf("fn got %+v, want %+v", g, ev)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		other, err := NewSecret(bytes.NewReader(bytes.Repeat([]byte{4}, 32)))
		if err != nil {
			t.Fatal(err)
		}
		if code := do(signedRequest(t, srv.URL, other, ev, time.Now())); code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", code)
		}
	})
	t.Run("stale timestamp", func(t *testing.T) {
		if code := do(signedRequest(t, srv.URL, secret, ev, time.Now().Add(-time.Hour))); code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", code)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		req := signedRequest(t, srv.URL, secret, ev, time.Now())
		req.Header.Del(HeaderSignature)
		if code := do(req); code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", code)
		}
	})
	t.Run("signed body that is not a payload", func(t *testing.T) {
		now := time.Now()
		body := []byte(`{"hello":"world"}`)
		sig, err := Sign(secret, "evt_x", now, body)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(HeaderID, "evt_x")
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(HeaderSignature, sig)
		if code := do(req); code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", code)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		big := ev
		big.Data = json.RawMessage(`"` + strings.Repeat("a", MaxBody) + `"`)
		if code := do(signedRequest(t, srv.URL, secret, big, time.Now())); code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", code)
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code := do(req); code != http.StatusMethodNotAllowed {
			t.Fatalf("status %d, want 405", code)
		}
	})
	t.Run("fn fails", func(t *testing.T) {
		mu.Lock()
		fail = true
		mu.Unlock()
		if code := do(signedRequest(t, srv.URL, secret, ev, time.Now())); code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", code)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("fn took %d events in all, want only the one good delivery", len(got))
	}
}
