package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot/earshot/gateway/agent"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDeliversInOrderExactlyOnce(t *testing.T) {
	src := newMemSource()
	eps := &endpoints{}
	var recvs []*receiver
	agents := []string{"agent_a", "agent_b"}
	for i, a := range agents {
		rc := newReceiver(t, testSecret(t, byte(i+1)))
		srv := httptest.NewServer(rc)
		t.Cleanup(srv.Close)
		recvs = append(recvs, rc)
		eps.list = append(eps.list, Endpoint{Agent: a, URL: srv.URL + "/hooks/earshot", Secret: rc.secret})
	}
	devices := []string{"glasses_1", "kiosk_2", "phone_3"}
	want := map[string][]agent.Event{}
	for _, a := range agents {
		want[a] = src.add(t, a, 40, devices...)
	}
	cfg := testConfig(src, eps, nil)
	r := start(t, cfg)
	for _, a := range agents {
		src.waitAcked(t, a, 40)
	}
	// More while running: the workers wake up for them.
	for _, a := range agents {
		want[a] = append(want[a], src.add(t, a, 25, devices...)...)
	}
	for _, a := range agents {
		src.waitAcked(t, a, 65)
	}
	r.stop(t)

	for i, a := range agents {
		rc := recvs[i]
		rc.checkNoBad()
		if got := rc.delivered(); !slices.Equal(got, ids(want[a])) {
			t.Errorf("%s received %v\nwant %v", a, got, ids(want[a]))
		}
		last := map[string]uint64{}
		for _, at := range rc.all() {
			if !at.ok {
				t.Errorf("%s: unexpected refusal of %s", a, at.id)
			}
			if at.seq <= last[at.device] {
				t.Errorf("%s: device %s got seq %d after %d", a, at.device, at.seq, last[at.device])
			}
			last[at.device] = at.seq
		}
		if len(last) != len(devices) {
			t.Errorf("%s: events of %d devices, want %d", a, len(last), len(devices))
		}
	}
	src.checkNoAckErrors(t)
	if got := testutil.ToFloat64(cfg.Metrics.Deliveries.WithLabelValues(ResultOK)); got != 130 {
		t.Errorf("deliveries ok = %v, want 130", got)
	}
	if got := testutil.ToFloat64(cfg.Metrics.Endpoints); got != 0 {
		t.Errorf("endpoints gauge after Run = %v, want 0", got)
	}
}

// checkRetries checks a receiver's log after an outage: the 2xx answers are want in
// order, each id once, and every refused attempt was of the event delivered next.
func checkRetries(t *testing.T, rc *receiver, want []string) (refused int) {
	t.Helper()
	all := rc.all()
	if got := rc.delivered(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v\nwant %v", got, want)
	}
	for i, at := range all {
		if at.ok {
			continue
		}
		refused++
		j := slices.IndexFunc(all[i:], func(a attempt) bool { return a.ok })
		if j < 0 || all[i+j].id != at.id {
			t.Errorf("attempt %d of %s refused, but the next delivery was not a retry of it", i, at.id)
		}
	}
	return refused
}

func TestRetriesThroughAnOutage(t *testing.T) {
	t.Run("503 for a while", func(t *testing.T) {
		src := newMemSource()
		rc := newReceiver(t, testSecret(t, 9))
		// Down for the first 12 requests, then for every third attempt of an event.
		tries := map[string]int{}
		rc.answer = func(id string, n int) int {
			tries[id]++
			switch {
			case n < 12:
				return http.StatusServiceUnavailable
			case tries[id] < 3 && n%2 == 0:
				return http.StatusInternalServerError
			case n%5 == 0:
				return http.StatusFound // a redirect is not a delivery
			}
			return http.StatusAccepted
		}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		src.checkAck = func(a string, through uint64) error {
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if through > rc.maxOK {
				return errors.New("acknowledged past the last 2xx")
			}
			return nil
		}
		eps := &endpoints{list: []Endpoint{{Agent: "agent_a", URL: srv.URL, Secret: rc.secret}}}
		logs := &syncBuffer{}
		cfg := testConfig(src, eps, logs)
		want := src.add(t, "agent_a", 20, "dev_1", "dev_2")
		r := start(t, cfg)
		src.waitAcked(t, "agent_a", 20)
		r.stop(t)

		rc.checkNoBad()
		src.checkNoAckErrors(t)
		refused := checkRetries(t, rc, ids(want))
		if refused < 12 {
			t.Errorf("%d refused attempts, want at least 12", refused)
		}
		if got := testutil.ToFloat64(cfg.Metrics.Deliveries.WithLabelValues(ResultRetry)); int(got) != refused {
			t.Errorf("retry counter %v, want %d", got, refused)
		}
		for _, secret := range []string{rc.secret, strings.TrimPrefix(rc.secret, SecretPrefix), srv.URL, `"device"`} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("logs contain %q", secret)
			}
		}
		if !strings.Contains(logs.String(), "status=503") {
			t.Errorf("logs do not mention the refusals:\n%s", logs.String())
		}
	})

	t.Run("listener closed, then up", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		src := newMemSource()
		rc := newReceiver(t, testSecret(t, 10))
		eps := &endpoints{list: []Endpoint{{Agent: "agent_a", URL: "http://" + addr + "/hook?token=s3cr3t", Secret: rc.secret}}}
		cfg := testConfig(src, eps, nil)
		failed := make(chan struct{}, 1)
		var failures atomic.Int64
		cfg.Client = &http.Client{Timeout: 5 * time.Second, Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil && failures.Add(1) >= 3 {
				select {
				case failed <- struct{}{}:
				default:
				}
			}
			return resp, err
		})}
		want := src.add(t, "agent_a", 10, "dev_1")
		r := start(t, cfg)

		select {
		case <-failed:
		case <-time.After(10 * time.Second):
			t.Fatal("no failed connection attempts")
		}
		if got := src.ackedSeq("agent_a"); got != 0 {
			t.Fatalf("acknowledged through %d while the receiver was down", got)
		}
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("port %s taken meanwhile: %v", addr, err)
		}
		srv := httptest.NewUnstartedServer(rc)
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		defer srv.Close()
		src.waitAcked(t, "agent_a", 10)
		r.stop(t)

		rc.checkNoBad()
		src.checkNoAckErrors(t)
		checkRetries(t, rc, ids(want))
		if got := testutil.ToFloat64(cfg.Metrics.Deliveries.WithLabelValues(ResultRetry)); got < 3 {
			t.Errorf("retry counter %v, want at least 3", got)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRestartResumesFromAcked(t *testing.T) {
	src := newMemSource()
	rc := newReceiver(t, testSecret(t, 11))
	srv := httptest.NewServer(rc)
	defer srv.Close()
	eps := &endpoints{list: []Endpoint{{Agent: "agent_a", URL: srv.URL, Secret: rc.secret}}}
	first := src.add(t, "agent_a", 10, "dev_1", "dev_2")
	src.setAcked("agent_a", 3) // taken before this test's dispatchers ran

	r := start(t, testConfig(src, eps, nil))
	src.waitAcked(t, "agent_a", 10)
	r.stop(t)

	more := src.add(t, "agent_a", 5, "dev_1", "dev_2")
	r = start(t, testConfig(src, eps, nil))
	src.waitAcked(t, "agent_a", 15)
	r.stop(t)

	rc.checkNoBad()
	src.checkNoAckErrors(t)
	want := append(ids(first[3:]), ids(more)...)
	if got := rc.delivered(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v\nwant %v", got, want)
	}
	if n := len(rc.all()); n != len(want) {
		t.Fatalf("%d requests, want %d: acknowledged events were sent again", n, len(want))
	}
}

func TestDeadLetters(t *testing.T) {
	t.Run("still refused after MaxAge", func(t *testing.T) {
		src := newMemSource()
		t0 := time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC)
		var clock atomic.Int64 // minutes since t0; every reading moves it on by 10
		now := func() time.Time { return t0.Add(time.Duration(clock.Add(10)) * time.Minute) }
		rc := newReceiver(t, testSecret(t, 12))
		rc.now = func() time.Time { return t0.Add(time.Duration(clock.Load()) * time.Minute) }
		poisoned := "evt_poison"
		rc.answer = func(id string, _ int) int {
			if id == poisoned {
				return http.StatusUnprocessableEntity
			}
			return http.StatusNoContent
		}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		eps := &endpoints{list: []Endpoint{{Agent: "agent_a", URL: srv.URL, Secret: rc.secret}}}
		cfg := testConfig(src, eps, nil)
		cfg.Now = now
		cfg.MaxAge = time.Hour
		data := json.RawMessage(`{"seq":1,"device":"dev_1"}`)
		src.put("agent_a", agent.Event{ID: poisoned, Type: agent.EventIntent, At: t0, Data: data})
		good := src.put("agent_a", agent.Event{ID: "evt_good", Type: agent.EventIntent, At: t0, Data: json.RawMessage(`{"seq":2,"device":"dev_1"}`)})
		start(t, cfg)
		src.waitAcked(t, "agent_a", good.Seq)

		rc.checkNoBad()
		if got := rc.delivered(); !slices.Equal(got, []string{"evt_good"}) {
			t.Fatalf("delivered %v, want only evt_good", got)
		}
		refused := len(rc.all()) - 1
		if refused < 2 {
			t.Fatalf("poisoned event tried %d times before dead-lettering, want several", refused)
		}
		if got := testutil.ToFloat64(cfg.Metrics.Deliveries.WithLabelValues(ResultDead)); got != 1 {
			t.Errorf("dead counter %v, want 1", got)
		}
		if got := testutil.ToFloat64(cfg.Metrics.DeadLetters.WithLabelValues(deadMaxAge)); got != 1 {
			t.Errorf("dead letters max_age %v, want 1", got)
		}
		if got := testutil.ToFloat64(cfg.Metrics.Deliveries.WithLabelValues(ResultRetry)); int(got) != refused-1 {
			t.Errorf("retry counter %v, want %d", got, refused-1)
		}
	})

	t.Run("too large or not encodable", func(t *testing.T) {
		src := newMemSource()
		rc := newReceiver(t, testSecret(t, 13))
		srv := httptest.NewServer(rc)
		defer srv.Close()
		eps := &endpoints{list: []Endpoint{{Agent: "agent_a", URL: srv.URL, Secret: rc.secret}}}
		logs := &syncBuffer{}
		cfg := testConfig(src, eps, logs)
		marker := "TOP-SECRET-ITEM"
		src.put("agent_a", agent.Event{ID: "evt_big", Type: agent.EventIntent, At: time.Now(),
			Data: json.RawMessage(`{"seq":1,"device":"d","pad":"` + marker + strings.Repeat("x", MaxBody) + `"}`)})
		src.put("agent_a", agent.Event{ID: "evt_broken", Type: agent.EventIntent, At: time.Now(), Data: json.RawMessage(`{"seq":`)})
		src.put("agent_a", agent.Event{ID: "evt.dotted", Type: agent.EventIntent, At: time.Now(), Data: json.RawMessage(`{"seq":3}`)})
		good := src.put("agent_a", agent.Event{ID: "evt_ok", Type: agent.EventIntent, At: time.Now(), Data: json.RawMessage(`{"seq":4,"device":"d"}`)})
		start(t, cfg)
		src.waitAcked(t, "agent_a", good.Seq)

		rc.checkNoBad()
		if got := rc.delivered(); !slices.Equal(got, []string{"evt_ok"}) {
			t.Fatalf("delivered %v, want only evt_ok", got)
		}
		if got := testutil.ToFloat64(cfg.Metrics.DeadLetters.WithLabelValues(deadTooLarge)); got != 1 {
			t.Errorf("dead letters too_large %v, want 1", got)
		}
		if got := testutil.ToFloat64(cfg.Metrics.DeadLetters.WithLabelValues(deadPayload)); got != 2 {
			t.Errorf("dead letters payload %v, want 2", got)
		}
		if got := testutil.ToFloat64(cfg.Metrics.Deliveries.WithLabelValues(ResultDead)); got != 3 {
			t.Errorf("dead counter %v, want 3", got)
		}
		l := logs.String()
		if !strings.Contains(l, "event=evt_big") || !strings.Contains(l, "reason=too_large") {
			t.Errorf("no dead-letter log line for evt_big:\n%s", l)
		}
		if strings.Contains(l, marker) {
			t.Error("logs contain the event's data")
		}
	})
}

func TestReload(t *testing.T) {
	src := newMemSource()
	newSrv := func(b byte) (*receiver, *httptest.Server) {
		rc := newReceiver(t, testSecret(t, b))
		srv := httptest.NewServer(rc)
		t.Cleanup(srv.Close)
		return rc, srv
	}
	rcA, srvA := newSrv(20)
	rcB, srvB := newSrv(21)
	rcA2, srvA2 := newSrv(22) // agent_a's new URL and secret

	eps := &endpoints{list: []Endpoint{{Agent: "agent_a", URL: srvA.URL, Secret: rcA.secret}}}
	cfg := testConfig(src, eps, nil)
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	synced := make(chan struct{}, 1)
	d.OnSync(func() { synced <- struct{}{} })
	waitSync := func() {
		t.Helper()
		select {
		case <-synced:
		case <-time.After(10 * time.Second):
			t.Fatal("endpoint list not read")
		}
	}
	startD(t, d)
	waitSync()
	a1 := src.add(t, "agent_a", 3)
	src.waitAcked(t, "agent_a", 3)

	// Add agent_b, move agent_a to a new URL and secret.
	eps.set(Endpoint{Agent: "agent_a", URL: srvA2.URL, Secret: rcA2.secret}, Endpoint{Agent: "agent_b", URL: srvB.URL, Secret: rcB.secret})
	d.Reload()
	waitSync()
	if n := d.LiveWorkers(); n != 2 {
		t.Fatalf("%d workers after adding agent_b, want 2", n)
	}
	if got := testutil.ToFloat64(cfg.Metrics.Endpoints); got != 2 {
		t.Fatalf("endpoints gauge %v, want 2", got)
	}
	a2 := src.add(t, "agent_a", 2)
	b1 := src.add(t, "agent_b", 4)
	src.waitAcked(t, "agent_a", 5)
	src.waitAcked(t, "agent_b", 4)

	// Remove agent_a; an invalid endpoint is refused, not started.
	eps.set(Endpoint{Agent: "agent_b", URL: srvB.URL, Secret: rcB.secret}, Endpoint{Agent: "agent_c", URL: srvB.URL, Secret: "whsec_short"})
	d.Reload()
	waitSync()
	if n := d.LiveWorkers(); n != 1 {
		t.Fatalf("%d workers after removing agent_a, want 1", n)
	}
	src.add(t, "agent_a", 1) // nobody sends this one now
	b2 := src.add(t, "agent_b", 2)
	src.waitAcked(t, "agent_b", 6)

	for _, rc := range []*receiver{rcA, rcA2, rcB} {
		rc.checkNoBad()
	}
	src.checkNoAckErrors(t)
	if got := rcA.delivered(); !slices.Equal(got, ids(a1)) {
		t.Errorf("old URL of agent_a got %v, want %v", got, ids(a1))
	}
	if got := rcA2.delivered(); !slices.Equal(got, ids(a2)) {
		t.Errorf("new URL of agent_a got %v, want %v", got, ids(a2))
	}
	if got := rcB.delivered(); !slices.Equal(got, append(ids(b1), ids(b2)...)) {
		t.Errorf("agent_b got %v", got)
	}
	if got := src.ackedSeq("agent_a"); got != 5 {
		t.Errorf("removed agent_a acknowledged through %d, want 5", got)
	}
}

func TestEndpointListFailureIsRetried(t *testing.T) {
	src := newMemSource()
	rc := newReceiver(t, testSecret(t, 30))
	srv := httptest.NewServer(rc)
	defer srv.Close()
	eps := &endpoints{list: []Endpoint{{Agent: "agent_a", URL: srv.URL, Secret: rc.secret}}, err: errors.New("registry down")}
	cfg := testConfig(src, eps, nil)
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	synced := make(chan struct{}, 1)
	d.OnSync(func() { synced <- struct{}{} })
	src.add(t, "agent_a", 2)
	startD(t, d)
	<-synced
	if n := d.LiveWorkers(); n != 0 {
		t.Fatalf("%d workers without an endpoint list", n)
	}
	eps.mu.Lock()
	eps.err = nil
	eps.mu.Unlock()
	src.waitAcked(t, "agent_a", 2) // the retry read the list
	if got := testutil.ToFloat64(cfg.Metrics.Errors.WithLabelValues("endpoints")); got < 1 {
		t.Errorf("endpoint errors counted %v, want at least 1", got)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	src := newMemSource()
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up.
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		select {
		case arrived <- struct{}{}:
		default:
		}
		select { // hold the request until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release) // before Close, which waits for handlers
	refuse := newReceiver(t, testSecret(t, 41))
	refuse.answer = func(string, int) int { return http.StatusInternalServerError }
	refuseSrv := httptest.NewServer(refuse)
	defer refuseSrv.Close()
	idle := newReceiver(t, testSecret(t, 42))
	idleSrv := httptest.NewServer(idle)
	defer idleSrv.Close()

	eps := &endpoints{list: []Endpoint{
		{Agent: "hangs", URL: hang.URL, Secret: testSecret(t, 40)},
		{Agent: "refuses", URL: refuseSrv.URL, Secret: refuse.secret},
		{Agent: "idle", URL: idleSrv.URL, Secret: idle.secret},
	}}
	cfg := testConfig(src, eps, nil)
	cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour // a refused worker sleeps
	cfg.Poll = time.Hour                                  // an idle worker waits on Wake
	cfg.Client = &http.Client{}                           // no timeout: only ctx ends the hanging POST
	src.add(t, "hangs", 1)
	src.add(t, "refuses", 1)
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-arrived
	refuse.waitAttempts(1)
	if n := d.LiveWorkers(); n != 3 {
		t.Fatalf("%d workers, want 3", n)
	}
	if err := d.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := d.LiveWorkers(); n != 0 {
		t.Fatalf("%d workers still running after Run returned", n)
	}
	if got := src.ackedSeq("hangs") + src.ackedSeq("refuses"); got != 0 {
		t.Fatalf("undelivered events acknowledged")
	}
}

func TestNewConfig(t *testing.T) {
	src := newMemSource()
	eps := (&endpoints{}).get
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{Source: src, Endpoints: eps}, true},
		{"no source", Config{Endpoints: eps}, false},
		{"no endpoints", Config{Source: src}, false},
		{"min above max", Config{Source: src, Endpoints: eps, MinBackoff: time.Second, MaxBackoff: time.Millisecond}, false},
		{"negative batch", Config{Source: src, Endpoints: eps, Batch: -1}, false},
		{"min above the default max", Config{Source: src, Endpoints: eps, MinBackoff: time.Hour}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.cfg)
			if tc.ok != (err == nil) {
				t.Fatalf("New err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if d != nil && (d.cfg.MaxAge != DefaultMaxAge || d.cfg.Batch != DefaultBatch || d.cfg.Client.Timeout != DefaultTimeout) {
				t.Fatalf("defaults not applied: %+v", d.cfg)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	d, err := New(Config{Source: newMemSource(), Endpoints: (&endpoints{}).get,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Rand: bytes.NewReader(make([]byte, 1024))})
	if err != nil {
		t.Fatal(err)
	}
	// Zero randomness gives the bottom of each range: b/2.
	for n, want := range map[int]time.Duration{1: 50 * time.Millisecond, 2: 100 * time.Millisecond, 3: 200 * time.Millisecond, 4: 400 * time.Millisecond, 5: 500 * time.Millisecond, 60: 500 * time.Millisecond} {
		if got := d.backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
	d.cfg.Rand = bytes.NewReader(bytes.Repeat([]byte{0xff}, 1024))
	for n := 1; n < 8; n++ {
		b := min(100*time.Millisecond<<(n-1), time.Second)
		if got := d.backoff(n); got < b/2 || got > b {
			t.Errorf("backoff(%d) = %s, want within [%s, %s]", n, got, b/2, b)
		}
	}
	d.cfg.Rand = bytes.NewReader(nil) // exhausted: no jitter, still a wait
	if got := d.backoff(2); got != 200*time.Millisecond {
		t.Errorf("backoff without randomness = %s, want 200ms", got)
	}
}

func TestEndpointHidesSecrets(t *testing.T) {
	ep := Endpoint{Agent: "agent_a", URL: "https://agent.example/hook?token=t0k", Secret: vecSecret}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "ep", ep)
	for _, s := range []string{ep.String(), buf.String()} {
		if strings.Contains(s, "t0k") || strings.Contains(s, "MfKQ9r8") || !strings.Contains(s, "agent_a") {
			t.Errorf("endpoint shown as %q", s)
		}
	}
}
