package mqtt_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/registry"
)

// TestNoSessionAndDuplicateHello: a message before hello is answered with a
// reconnect-range no_session; a QoS 1 duplicate of a hello (same id) does not open
// a second session.
func TestNoSessionAndDuplicateHello(t *testing.T) {
	r := newEmbedded(t, nil)
	k := r.enroll(registry.KindKiosk)
	d, err := r.connect(k, devOpts{})
	if err != nil {
		t.Fatal(err)
	}
	ref := d.send(&wire.Utterance{Text: "a latte", PTT: true})
	e := body[wire.Error](t, d.next(wire.TypeError))
	if e.Code != wire.CodeNoSession || e.Ref != ref || !e.Code.Reconnect() {
		t.Fatalf("error = %+v, want no_session for %s", e, ref)
	}

	d.sendID("hello-1", &wire.Hello{})
	ok := body[wire.HelloOK](t, d.next(wire.TypeHelloOK))
	d.sendID("hello-1", &wire.Hello{}) // the broker delivering it again
	d.quiet(wire.TypeHelloOK, 300*time.Millisecond)
	if n := testutil.ToFloat64(r.m.Dropped.WithLabelValues("duplicate_hello")); n != 1 {
		t.Errorf("duplicate hellos dropped = %v, want 1", n)
	}
	// A new hello (new id) resuming the session replaces it.
	ok2 := body[wire.HelloOK](t, func() wire.Envelope {
		d.send(&wire.Hello{Resume: ok.Resume})
		return d.next(wire.TypeHelloOK)
	}())
	if !ok2.Resumed || ok2.Session != ok.Session {
		t.Fatalf("second hello: %+v, want the session %s resumed", ok2, ok.Session)
	}
	d.send(&wire.Utterance{Text: "a latte", PTT: true})
	r.intent()
}

// TestStaleWillIgnored: the offline status of an older connection does not end the
// session of the newer one; the newest connection's offline does.
func TestStaleWillIgnored(t *testing.T) {
	r := newEmbedded(t, nil)
	k := r.enroll(registry.KindGlasses)
	d, err := r.connect(k, devOpts{})
	if err != nil {
		t.Fatal(err)
	}
	old := d.epoch
	d.epoch = "newer-epoch"
	d.online()
	d.hello(&wire.Hello{})
	stale := wire.Presence{State: wire.Offline, Epoch: old}.Encode()
	if err := d.publish(wire.StatusTopic(d.id), stale, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stale offline", func() bool {
		return testutil.ToFloat64(r.m.Dropped.WithLabelValues("stale_offline")) == 1
	})
	d.send(&wire.Utterance{Text: "a latte", PTT: true})
	r.intent() // still in session

	if err := d.publish(wire.StatusTopic(d.id), wire.Presence{State: wire.Offline, Epoch: d.epoch}.Encode(), true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session to end", func() bool {
		d.send(&wire.Utterance{Text: "a latte", PTT: true})
		select {
		case env := <-d.down:
			return env.Type == wire.TypeError && body[wire.Error](t, env).Code == wire.CodeNoSession
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
}

// TestOfflineKioskGetsPromptOnce: a kiosk goes offline after speaking; the prompt
// is sent while it is away; when it comes back it receives the prompt (from the
// broker's queue and again from resume), acts on it once, and the purchase completes.
func TestOfflineKioskGetsPromptOnce(t *testing.T) {
	r := newEmbedded(t, nil)
	k := r.enroll(registry.KindKiosk)
	d, err := r.connect(k, devOpts{})
	if err != nil {
		t.Fatal(err)
	}
	d.online()
	ok := d.hello(&wire.Hello{})
	d.send(&wire.Utterance{Text: "a latte", PTT: true})
	in := r.intent()
	// The kiosk loses power: its offline status arrives, and it is gone.
	if err := d.publish(wire.StatusTopic(d.id), wire.Presence{State: wire.Offline, Epoch: d.epoch}.Encode(), true); err != nil {
		t.Fatal(err)
	}
	d.c.Disconnect(0)
	r.propose(in) // sent while the kiosk is offline

	// Back: the same client id and a persistent session; the broker still holds the
	// subscription, so the queued prompt arrives before anything is subscribed again.
	d2, err := r.connect(k, devOpts{noSub: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.subscribe(wire.DownlinkTopic(d2.id)); err != nil {
		t.Fatal(err)
	}
	d2.online()
	d2.send(&wire.Hello{Resume: ok.Resume, LastAck: ok.LastSeq})

	var (
		prompts = map[uint64]int{}
		req     *wire.ConfirmRequest
		acted   int
		lastAck uint64
	)
	deadline := time.After(10 * time.Second)
	for req == nil || len(prompts) == 0 {
		select {
		case env := <-d2.down:
			if env.Type != wire.TypeConfirmRequest {
				continue
			}
			prompts[env.Seq]++
			if env.Seq <= lastAck {
				continue // a duplicate: dropped by seq
			}
			lastAck = env.Seq
			req = body[wire.ConfirmRequest](t, env)
			acted++
			d2.ack(env.Seq)
		case <-deadline:
			t.Fatal("the prompt never reached the kiosk")
		}
	}
	conf := &wire.Confirm{Tx: req.Tx, Hash: req.Hash, Decision: wire.DecisionApprove, Method: wire.MethodButton}
	k.SignConfirm(conf)
	d2.send(conf)
	for {
		res := body[wire.TxResult](t, d2.next(wire.TypeTxResult))
		if res.State == wire.TxMandated {
			break
		}
	}
	if acted != 1 || len(prompts) != 1 {
		t.Fatalf("acted on %d prompts, distinct seqs %v; want exactly one", acted, prompts)
	}
}
