package client_test

import (
	"reflect"
	"testing"

	"github.com/earshot/earshot/device/client/clienttest"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/device/wire/wiretest"
)

// TestGoldenDownlinks pushes the body of every downlink golden frame (the files the
// gateway's tests use too) to the client and checks it arrives as the same event.
func TestGoldenDownlinks(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) { goldenDownlinks(t, newEnv(t, tr, clienttest.Config{})) })
}

func goldenDownlinks(t *testing.T, e *env) {
	g := e.g
	key := wiretest.DeviceKey()
	en := enrollKey(t, g, key, "alice", "glasses")
	c := dial(t, e, key, en, nil)

	for _, typ := range []wire.Type{wire.TypeConfirmRequest, wire.TypeTxResult, wire.TypeError, wire.TypePINSetOK, wire.TypeNotice} {
		t.Run(string(typ), func(t *testing.T) {
			env, err := wire.Decode(wiretest.Golden(typ))
			if err != nil {
				t.Fatal(err)
			}
			want := wire.NewBody(typ)
			if err := wire.DecodeBody(env, want); err != nil {
				t.Fatal(err)
			}
			if _, err := g.Push(key.DeviceID(), want); err != nil {
				t.Fatal(err)
			}
			ev := next(t, c)
			if ev.Type != typ || ev.Err != nil {
				t.Fatalf("event %s (err %v), want %s", ev.Type, ev.Err, typ)
			}
			var got wire.Body
			switch typ {
			case wire.TypeConfirmRequest:
				got = ev.ConfirmRequest
			case wire.TypeTxResult:
				got = ev.TxResult
			case wire.TypeError:
				got = ev.Error
			case wire.TypePINSetOK:
				got = ev.PINSetOK
			case wire.TypeNotice:
				got = ev.Notice
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("event body\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}
