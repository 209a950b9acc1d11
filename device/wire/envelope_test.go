package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/wire"
)

func TestDecodeRefuses(t *testing.T) {
	long := strings.Repeat("x", wire.MaxIDBytes+1)
	tests := []struct {
		name     string
		frame    string
		tooLarge bool
	}{
		{"empty", "", false},
		{"whitespace", " \r\n\t ", false},
		{"not json", "hello", false},
		{"truncated", `{"v":1,"type":"ping"`, false},
		{"array", `[1,"ping"]`, false},
		{"string", `"ping"`, false},
		{"null", `null`, false},
		{"version 0", `{"v":0,"type":"ping"}`, false},
		{"version 2", `{"v":2,"type":"ping"}`, false},
		{"version missing", `{"type":"ping"}`, false},
		{"version as string", `{"v":"1","type":"ping"}`, false},
		{"version as float", `{"v":1.5,"type":"ping"}`, false},
		{"type missing", `{"v":1}`, false},
		{"type empty", `{"v":1,"type":""}`, false},
		{"type not a string", `{"v":1,"type":7}`, false},
		{"seq negative", `{"v":1,"type":"ack","seq":-1}`, false},
		{"body not json", `{"v":1,"type":"ping","body":x}`, false},
		{"long type", `{"v":1,"type":"` + long + `"}`, true},
		{"long id", `{"v":1,"type":"ping","id":"` + long + `"}`, true},
		{"long device", `{"v":1,"type":"ping","device":"` + long + `"}`, true},
		{"long session", `{"v":1,"type":"ping","session":"` + long + `"}`, true},
		{"frame over MaxFrameBytes", `{"v":1,"type":"ping","body":{}}` + strings.Repeat(" ", wire.MaxFrameBytes), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wire.Decode([]byte(tt.frame))
			if err == nil {
				t.Fatalf("Decode(%.60q) accepted", tt.frame)
			}
			if got := errors.Is(err, wire.ErrTooLarge); got != tt.tooLarge {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooLarge)
			}
		})
	}
}

func TestDecodeAtTheLimits(t *testing.T) {
	atLimit := strings.Repeat("x", wire.MaxIDBytes)
	frame := `{"v":1,"type":"ping","id":"` + atLimit + `","device":"` + atLimit + `","session":"` + atLimit + `","body":{}}`
	if _, err := wire.Decode([]byte(frame)); err != nil {
		t.Errorf("ids of MaxIDBytes refused: %v", err)
	}
	// A frame of exactly MaxFrameBytes is accepted.
	head := `{"v":1,"type":"ping","body":{}`
	full := head + strings.Repeat(" ", wire.MaxFrameBytes-len(head)-1) + "}"
	if len(full) != wire.MaxFrameBytes {
		t.Fatalf("built %d bytes", len(full))
	}
	if _, err := wire.Decode([]byte(full)); err != nil {
		t.Errorf("frame of MaxFrameBytes refused: %v", err)
	}
}

func TestDecodeUnknownType(t *testing.T) {
	frame := `{"v":1,"type":"telemetry.battery","id":"m1","ts":1,"body":{"level":0.42,"charging":true}}`
	e, err := wire.Decode([]byte(frame))
	if err != nil {
		t.Fatalf("an unknown type must decode: %v", err)
	}
	if e.Known() || e.Type.Known() {
		t.Errorf("Known() = true for %q", e.Type)
	}
	if wire.NewBody(e.Type) != nil {
		t.Errorf("NewBody(%q) is not nil", e.Type)
	}
	if !bytes.Contains(e.Body, []byte(`"level"`)) {
		t.Errorf("body not kept raw: %s", e.Body)
	}
	// DecodeBody into any v1 body refuses it.
	if err := wire.DecodeBody(e, &wire.Ping{}); err == nil {
		t.Errorf("DecodeBody of an unknown type into a ping accepted")
	}
}

// TestDecodeIgnoresUnknownFields: newer peers may add fields; older ones ignore them.
func TestDecodeIgnoresUnknownFields(t *testing.T) {
	frame := `{"v":1,"type":"ack","id":"m1","trace":"abc","body":{"seq":7,"window":16}}`
	e, err := wire.Decode([]byte(frame))
	if err != nil {
		t.Fatal(err)
	}
	var a wire.Ack
	if err := wire.DecodeBody(e, &a); err != nil || a.Seq != 7 {
		t.Errorf("DecodeBody = %v, seq %d", err, a.Seq)
	}
}

func TestDecodeBodyRefuses(t *testing.T) {
	tests := []struct {
		name     string
		frame    string
		body     wire.Body
		tooLarge bool
	}{
		{"envelope of another type", `{"v":1,"type":"hello","body":{}}`, &wire.Ack{}, false},
		{"body is a string", `{"v":1,"type":"ack","body":"seq 1"}`, &wire.Ack{}, false},
		{"body is an array", `{"v":1,"type":"ack","body":[1]}`, &wire.Ack{}, false},
		{"field of the wrong type", `{"v":1,"type":"ack","body":{"seq":"1"}}`, &wire.Ack{}, false},
		{"negative seq", `{"v":1,"type":"ack","body":{"seq":-1}}`, &wire.Ack{}, false},
		{"missing body of a body with required fields", `{"v":1,"type":"utterance"}`, &wire.Utterance{}, false},
		{"null body of a body with required fields", `{"v":1,"type":"tx.status","body":null}`, &wire.TxStatus{}, false},
		{"long text", `{"v":1,"type":"utterance","body":{"text":"` + strings.Repeat("a", wire.MaxTextBytes+1) + `"}}`, &wire.Utterance{}, true},
		{"amount as float", `{"v":1,"type":"tx.result","body":{"tx":"t","state":"redeemed","amount":11.0}}`, &wire.TxResult{}, false},
		{"code out of uint16", `{"v":1,"type":"error","body":{"code":70000}}`, &wire.Error{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := wire.Decode([]byte(tt.frame))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			err = wire.DecodeBody(e, tt.body)
			if err == nil {
				t.Fatalf("DecodeBody accepted %s", tt.frame)
			}
			if got := errors.Is(err, wire.ErrTooLarge); got != tt.tooLarge {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooLarge)
			}
		})
	}
}

func TestDecodeBodyEmptyBodies(t *testing.T) {
	for _, typ := range []wire.Type{wire.TypePing, wire.TypePong, wire.TypeAck, wire.TypeHello} {
		e, err := wire.Decode([]byte(`{"v":1,"type":"` + string(typ) + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := wire.DecodeBody(e, wire.NewBody(typ)); err != nil {
			t.Errorf("%s without a body: %v", typ, err)
		}
	}
}

func TestEncode(t *testing.T) {
	frame, err := wire.Encode(wire.Envelope{V: 9, Type: "bogus", ID: "m1", Body: json.RawMessage(`{"x":1}`)}, &wire.Ack{Seq: 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"v":1,"type":"ack","id":"m1","body":{"seq":3}}`; string(frame) != want {
		t.Errorf("Encode = %s, want %s (version, type and body come from the body)", frame, want)
	}
	if _, err := wire.Encode(wire.Envelope{}, &wire.Utterance{}); err == nil {
		t.Errorf("Encode of an invalid body accepted")
	}
	// Valid field by field, too large as a whole.
	big := bigConfirmRequest(t)
	if err := big.Validate(); err != nil {
		t.Fatalf("big request should be valid: %v", err)
	}
	if _, err := wire.Encode(wire.Envelope{}, big); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("Encode of a frame over MaxFrameBytes: %v, want ErrTooLarge", err)
	}
}

// bigConfirmRequest returns a request whose every field is within its limit but whose
// frame is over MaxFrameBytes.
func bigConfirmRequest(t *testing.T) *wire.ConfirmRequest {
	t.Helper()
	var req wire.ConfirmRequest
	decodeGolden(t, wire.TypeConfirmRequest, &req)
	name := strings.Repeat("n", wire.MaxNameBytes)
	var opts []string
	for range 8 {
		opts = append(opts, name)
	}
	req.Terms.Items = nil
	for range wire.MaxItems {
		req.Terms.Items = append(req.Terms.Items, wire.Item{SKU: name, Name: name, Qty: 1, UnitAmount: 1, Options: opts})
	}
	req.Terms.Total = wire.MaxItems
	return &req
}

// TestEncodeEscapesInflate: Encode uses encoding/json's HTML escaping, which turns a
// one-byte '<', '>' or '&' into six bytes. A frame Decode accepts can then fail to
// re-encode, and terms that fit in a frame can fail to hash.
func TestEncodeEscapesInflate(t *testing.T) {
	var req wire.ConfirmRequest
	decodeGolden(t, wire.TypeConfirmRequest, &req)
	name := strings.Repeat("&", wire.MaxNameBytes)
	req.Terms.Items = nil
	for range wire.MaxItems {
		req.Terms.Items = append(req.Terms.Items, wire.Item{SKU: name, Name: name, Qty: 1, UnitAmount: 1, Options: []string{name, name}})
	}
	req.Terms.Total = wire.MaxItems
	raw, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.ReplaceAll(raw, []byte(`\u0026`), []byte("&"))
	frame := append([]byte(`{"v":1,"type":"confirm.request","body":`), raw...)
	frame = append(frame, '}')
	if len(frame) > wire.MaxFrameBytes {
		t.Fatalf("test frame of %d bytes", len(frame))
	}
	e, err := wire.Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	var got wire.ConfirmRequest
	if err := wire.DecodeBody(e, &got); err != nil {
		t.Fatalf("DecodeBody: %v", err)
	}
	if _, err := wire.Encode(e, &got); err != nil {
		t.Errorf("a %d-byte frame that decoded does not re-encode: %v", len(frame), err)
	}
	if _, err := got.Terms.Hash(); err != nil {
		t.Errorf("terms from a %d-byte frame do not hash: %v", len(frame), err)
	}
}

func TestValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	var req wire.ConfirmRequest
	decodeGolden(t, wire.TypeConfirmRequest, &req)
	withReq := func(f func(r *wire.ConfirmRequest)) *wire.ConfirmRequest {
		r := req
		r.Terms.Items = append([]wire.Item(nil), req.Terms.Items...)
		f(&r)
		return &r
	}
	var c wire.Confirm
	decodeGolden(t, wire.TypeConfirm, &c)
	withConfirm := func(f func(c *wire.Confirm)) *wire.Confirm { x := c; f(&x); return &x }

	tests := []struct {
		name     string
		body     wire.Body
		ok       bool
		tooLarge bool
	}{
		{"hello empty", &wire.Hello{}, true, false},
		{"hello token at limit", &wire.Hello{Token: long(wire.MaxTokenBytes)}, true, false},
		{"hello token too long", &wire.Hello{Token: long(wire.MaxTokenBytes + 1)}, false, true},
		{"hello resume too long", &wire.Hello{Resume: long(wire.MaxTokenBytes + 1)}, false, true},
		{"hello client name too long", &wire.Hello{Client: wire.ClientInfo{Name: long(wire.MaxNameBytes + 1)}}, false, true},
		{"hello.ok", &wire.HelloOK{Session: "s", Resume: "r"}, true, false},
		{"hello.ok without session", &wire.HelloOK{Resume: "r"}, false, false},
		{"hello.ok without resume", &wire.HelloOK{Session: "s"}, false, false},
		{"hello.ok long session", &wire.HelloOK{Session: long(wire.MaxIDBytes + 1), Resume: "r"}, false, true},
		{"utterance", &wire.Utterance{Text: "buy"}, true, false},
		{"utterance at limit", &wire.Utterance{Text: long(wire.MaxTextBytes)}, true, false},
		{"utterance empty", &wire.Utterance{}, false, false},
		{"utterance too long", &wire.Utterance{Text: long(wire.MaxTextBytes + 1)}, false, true},
		{"utterance long lang", &wire.Utterance{Text: "buy", Lang: long(36)}, false, true},
		{"confirm.request golden", &req, true, false},
		{"confirm.request no methods", withReq(func(r *wire.ConfirmRequest) { r.Methods = nil }), false, false},
		{"confirm.request six methods", withReq(func(r *wire.ConfirmRequest) {
			r.Methods = []wire.Method{"tap", "voice", "button", "pin", "phone", "tap"}
		}), false, false},
		{"confirm.request unknown method", withReq(func(r *wire.ConfirmRequest) { r.Methods = []wire.Method{"face"} }), false, false},
		{"confirm.request no hash", withReq(func(r *wire.ConfirmRequest) { r.Hash = "" }), false, false},
		{"confirm.request no text", withReq(func(r *wire.ConfirmRequest) { r.Text = "" }), false, false},
		{"confirm.request long text", withReq(func(r *wire.ConfirmRequest) { r.Text = long(wire.MaxTextBytes + 1) }), false, true},
		{"confirm.request long tx", withReq(func(r *wire.ConfirmRequest) { r.Tx = long(wire.MaxIDBytes + 1) }), false, true},
		{"confirm.request bad terms", withReq(func(r *wire.ConfirmRequest) { r.Terms.Total++ }), false, false},
		{"confirm.request too many items", withReq(func(r *wire.ConfirmRequest) {
			for len(r.Terms.Items) <= wire.MaxItems {
				r.Terms.Items = append(r.Terms.Items, r.Terms.Items[0])
			}
			r.Terms.Total = r.Terms.Items[0].UnitAmount * wire.Amount(r.Terms.Items[0].Qty) * wire.Amount(len(r.Terms.Items))
		}), false, false},
		{"confirm golden", &c, true, false},
		{"confirm decline by voice", withConfirm(func(c *wire.Confirm) { c.Decision, c.Method = wire.DecisionDecline, wire.MethodVoice }), true, false},
		{"confirm unknown decision", withConfirm(func(c *wire.Confirm) { c.Decision = "maybe" }), false, false},
		{"confirm unknown method", withConfirm(func(c *wire.Confirm) { c.Method = "wink" }), false, false},
		{"confirm no sig", withConfirm(func(c *wire.Confirm) { c.Sig = "" }), false, false},
		{"confirm long sig", withConfirm(func(c *wire.Confirm) { c.Sig = long(129) }), false, true},
		{"confirm no tx", withConfirm(func(c *wire.Confirm) { c.Tx = "" }), false, false},
		{"tx.result", &wire.TxResult{Tx: "t", State: wire.TxMandated}, true, false},
		{"tx.result future state", &wire.TxResult{Tx: "t", State: "settled"}, true, false},
		{"tx.result no state", &wire.TxResult{Tx: "t"}, false, false},
		{"tx.result no tx", &wire.TxResult{State: wire.TxRedeemed}, false, false},
		{"tx.result bad currency", &wire.TxResult{Tx: "t", State: wire.TxRedeemed, Amount: 1, Currency: "usd"}, false, false},
		{"tx.result negative amount", &wire.TxResult{Tx: "t", State: wire.TxRedeemed, Amount: -1, Currency: "USD"}, false, false},
		{"tx.result long reason", &wire.TxResult{Tx: "t", State: wire.TxRejected, Reason: long(wire.MaxTextBytes + 1)}, false, true},
		{"tx.status", &wire.TxStatus{Tx: "t"}, true, false},
		{"tx.status no tx", &wire.TxStatus{}, false, false},
		{"ack zero", &wire.Ack{}, true, false},
		{"error", wire.NewError(wire.CodeBadRequest, "no"), true, false},
		{"error without code", &wire.Error{Message: "no"}, false, false},
		{"error long message", wire.NewError(wire.CodeBadRequest, long(wire.MaxTextBytes+1)), false, true},
		{"ping", &wire.Ping{}, true, false},
		{"pong", &wire.Pong{}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.body.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
			if got := errors.Is(err, wire.ErrTooLarge); got != tt.tooLarge {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooLarge)
			}
			if err == nil {
				return
			}
			// What Validate refuses, Encode refuses and DecodeBody refuses.
			if _, err := wire.Encode(wire.Envelope{}, tt.body); err == nil {
				t.Errorf("Encode accepted an invalid %s", tt.body.Type())
			}
			raw, err := json.Marshal(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			e := wire.Envelope{V: wire.Version, Type: tt.body.Type(), Body: raw}
			if err := wire.DecodeBody(e, wire.NewBody(e.Type)); err == nil {
				t.Errorf("DecodeBody accepted an invalid %s", tt.body.Type())
			}
		})
	}
}

func TestNewBody(t *testing.T) {
	for _, typ := range wire.KnownTypes() {
		b := wire.NewBody(typ)
		if b == nil || b.Type() != typ {
			t.Errorf("NewBody(%q) = %#v", typ, b)
		}
	}
	for _, typ := range []wire.Type{"", "Hello", "hello.ok ", "mandate"} {
		if b := wire.NewBody(typ); b != nil {
			t.Errorf("NewBody(%q) = %#v, want nil", typ, b)
		}
	}
}

func TestSubprotocolAndVersion(t *testing.T) {
	if wire.Version != 1 || wire.Subprotocol != "earshot.v1" {
		t.Errorf("Version %d, Subprotocol %q", wire.Version, wire.Subprotocol)
	}
}
