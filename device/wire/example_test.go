package wire_test

import (
	"errors"
	"fmt"

	"github.com/earshot/earshot/device/wire"
)

// A device encodes an acknowledgement of every downlink up to seq 42.
func ExampleEncode() {
	frame, err := wire.Encode(wire.Envelope{ID: "msg_1", TS: 1773480602100}, &wire.Ack{Seq: 42})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(frame))
	// Output: {"v":1,"type":"ack","id":"msg_1","ts":1773480602100,"body":{"seq":42}}
}

// A device reads a frame: unknown types are skipped, known ones decoded and validated.
func ExampleDecodeBody() {
	for _, frame := range []string{
		`{"v":1,"type":"telemetry.v2","body":{"battery":0.4}}`,
		`{"v":1,"type":"tx.result","seq":43,"body":{"tx":"tx_1","state":"mandated","mandate":"mnd_1"}}`,
	} {
		e, err := wire.Decode([]byte(frame))
		if err != nil {
			fmt.Println("drop:", err)
			continue
		}
		if !e.Known() {
			fmt.Println("ignore", e.Type)
			continue
		}
		b := wire.NewBody(e.Type)
		if err := wire.DecodeBody(e, b); err != nil {
			fmt.Println("refuse:", err)
			continue
		}
		r := b.(*wire.TxResult)
		fmt.Println(e.Seq, r.Tx, r.State, r.State.Final())
	}
	// Output:
	// ignore telemetry.v2
	// 43 tx_1 mandated false
}

// The device recomputes the hash of the terms it shows and refuses the prompt if it
// differs from the one the gateway sent.
func ExampleTerms_Hash() {
	terms := wire.Terms{
		Tx: "tx_1", Device: "dev_72asyextvngonlc5w2nm", Session: "ses_1",
		Merchant: wire.Merchant{ID: "earshot-coffee", Name: "Earshot Coffee"},
		Items:    []wire.Item{{SKU: "latte-oat", Name: "Oat latte", Qty: 2, UnitAmount: 550}},
		Total:    1100, Currency: "USD", Kind: wire.KindOneOff,
		ExpiresAt: 1773480722000, Nonce: "n_1",
	}
	if err := terms.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	canonical, _ := terms.Canonical()
	hash, _ := terms.Hash()
	fmt.Println(string(canonical))
	fmt.Println(hash)
	fmt.Println(wire.Money(terms.Total, terms.Currency))
	// Output:
	// {"currency":"USD","device":"dev_72asyextvngonlc5w2nm","expires_at":1773480722000,"items":[{"name":"Oat latte","qty":2,"sku":"latte-oat","unit_amount":550}],"kind":"one_off","merchant":{"id":"earshot-coffee","name":"Earshot Coffee"},"nonce":"n_1","session":"ses_1","total":1100,"tx":"tx_1"}
	// xJKSEb0jXO4sZ5xlbkECvqcMfKMWs_idR8KTwxtBgqs
	// USD 11.00
}

func ExampleCanonicalize() {
	out, err := wire.Canonicalize([]byte(`{ "b": [1.50, 1e21, "\u00e9"], "a": null }`))
	fmt.Println(string(out), err)
	// Output: {"a":null,"b":[1.5,1e+21,"é"]} <nil>
}

func ExampleMoney() {
	fmt.Println(wire.Money(550, "USD"))
	fmt.Println(wire.Money(950, "JPY"))
	fmt.Println(wire.Money(1234, "KWD"))
	// Output:
	// USD 5.50
	// JPY 950
	// KWD 1.234
}

// A device decides what to do after a disconnect from the code alone.
func ExampleCode_Reconnect() {
	for _, c := range []wire.Code{wire.CodeShutdown, wire.CodeTokenExpired, wire.Code(4321)} {
		fmt.Println(c, c.Disconnect(), c.Reconnect())
	}
	err := error(wire.NewError(wire.CodeAgentUnavailable, "the shop is not answering"))
	var we *wire.Error
	if errors.As(err, &we) {
		fmt.Println(we.Code, we.Retry)
	}
	// Output:
	// shutdown true true
	// token_expired true false
	// code_4321 true true
	// agent_unavailable true
}

// A device streams 20 ms of 16 kHz speech: one binary frame per 20 ms, the last one
// with FlagEnd when push-to-talk is released.
func ExampleAppendAudioFrame() {
	samples := make([]byte, 2*320) // 320 signed 16-bit little-endian samples
	h := wire.AudioHeader{Codec: wire.CodecPCM, Flags: wire.FlagEnd, Rate: 16000, Stream: 7, Seq: 12, TS: 240}
	frame, err := wire.AppendAudioFrame(nil, h, samples)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", frame[:wire.AudioHeaderBytes])
	got, payload, err := wire.DecodeAudioFrame(frame)
	fmt.Println(got.Codec, got.Rate, got.Seq, got.Flags&wire.FlagEnd != 0, len(payload), err)

	_, _, err = wire.DecodeAudioFrame(frame[:len(frame)-1])
	fmt.Println(errors.Is(err, wire.ErrAudioFrame), err)
	// Output:
	// 01 01 01 10 00 00 00 07 00 00 00 0c 00 00 00 f0
	// pcm 16000 12 true 640 <nil>
	// true wire: bad audio frame: pcm payload of odd length 639
}
