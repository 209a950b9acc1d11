package wire_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/device/wire/wiretest"
)

var update = flag.Bool("update", false, "rewrite the golden frames in wiretest/testdata")

const goldenDir = "wiretest/testdata"

// The fixed values the goldens are built from.
const (
	gSession   = "ses_7QmX2c9KpL4vTz"
	gResume    = "rsm_3k9VqZ7xW2mN8pL5tR1yB6cD4fH0jSa"
	gTx        = "tx_01JPB5Q3YF8V2K7M9N4R6T0W1X"
	gUtterance = "msg_01JPB5Q2ZK3D8F6H1J4L7N9P0R"
	gConfirm   = "msg_01JPB5Q8AC2E4G6J8L0N2Q4S6U"
	gStatus    = "msg_01JPB5QF1B3D5F7H9K1M3P5R7T"
	gCancel    = "msg_01JPB5QH3D5F7H9K1M3P5R7T9V"
	gPINSet    = "msg_01JPB5QJ8C4E6G8J0L2N4Q6S8U"
	gPINSalt   = "c2FsdC1mb3ItYWxpY2UtMDAwMQ" // "salt-for-alice-0001"
	// gConfirmAgain is a confirm re-sent under a new id after a reconnect.
	gConfirmAgain = "msg_01JPB5QD9Z1B3D5F7H9K1M3P5R"
	gAck          = "msg_01JPB5Q4XW6Y8A0C2E4G6J8L0N"
	gPing         = "msg_01JPB5QH7V9X1Z3B5D7F9H1K3M"
	gHello        = "msg_01JPB5Q1NB5C7D9F1H3K5M7P9R"
	gNonce        = "n_Yk2vQ8sLmP4wR7tZ3xC6"
	gMandate      = "mnd_01JPB5Q9GJ4K6M8P0R2T4V6X8Z"
	gSeq          = 42
	// gAudioEnd is the audio.end of the spoken command, whose audio.start carries the
	// utterance's id (gUtterance).
	gAudioEnd = "msg_01JPB5Q2ZW4F7H9K2M4P6R8T0V"
	// gStream is the device's stream of the spoken command; gPromptStream the
	// gateway's stream that speaks the prompt.
	gStream       = 7
	gPromptStream = 1
	// gPromptMS is how long the spoken prompt lasts.
	gPromptMS = 4210
	// gOpusPacket is 20 ms of the word "confirm" said by espeak-ng, resampled to 48 kHz
	// and encoded by libopus 1.3.1 (VoIP, 24 kbit/s): the encoder's third packet, where
	// speech starts. TOC 0x78: hybrid mode, fullband, 20 ms, one frame.
	gOpusPacket = "7880076c50a0d72257b47267c31b017f3c962f0061a1c45056e341d600035c403b787ca8b5668063b7390fd319209d0561d2c365f7c2"
)

// gNow is the goldens' clock: 2026-03-14 09:30:00 UTC.
var gNow = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

func ms(t time.Time) int64 { return t.UnixMilli() }

// goldenTerms are the terms of the golden confirm.request.
func goldenTerms() wire.Terms {
	return wire.Terms{
		Tx:       gTx,
		Device:   wiretest.DeviceKey().DeviceID(),
		Session:  gSession,
		Merchant: wire.Merchant{ID: "earshot-coffee", Name: "Earshot Coffee"},
		Items: []wire.Item{
			{SKU: "latte-oat-12oz", Name: "Oat latte", Qty: 2, UnitAmount: 550, Options: []string{"oat milk", "12 oz"}},
		},
		Total:     1100,
		Currency:  "USD",
		Kind:      wire.KindOneOff,
		ExpiresAt: ms(gNow.Add(2*time.Second + 2*time.Minute)),
		Nonce:     gNonce,
	}
}

// goldenPromptText is the golden prompt's text, written and spoken.
func goldenPromptText(terms wire.Terms) string {
	return "2 oat lattes from Earshot Coffee, " + wire.Money(terms.Total, terms.Currency) + ". Tap or say confirm to pay."
}

type goldenMsg struct {
	h wire.Envelope
	b wire.Body
}

// goldenMessages builds the golden envelopes and bodies.
func goldenMessages(t *testing.T) []goldenMsg {
	t.Helper()
	key := wiretest.DeviceKey()
	dev := key.DeviceID()
	terms := goldenTerms()
	hash, err := terms.Hash()
	if err != nil {
		t.Fatalf("terms hash: %v", err)
	}
	confirm := &wire.Confirm{Tx: gTx, Hash: hash, Decision: wire.DecisionApprove, Method: wire.MethodTap}
	key.SignConfirm(confirm)
	up := func(id string, d time.Duration) wire.Envelope { return wire.Envelope{ID: id, TS: ms(gNow.Add(d))} }
	down := func(seq uint64, d time.Duration) wire.Envelope {
		return wire.Envelope{Device: dev, Session: gSession, Seq: seq, TS: ms(gNow.Add(d))}
	}
	return []goldenMsg{
		{up(gHello, 0), &wire.Hello{Resume: gResume, LastAck: gSeq - 1, Client: wire.ClientInfo{Name: "earshot-glasses", Version: "1.4.2"}}},
		{down(0, 30*time.Millisecond), &wire.HelloOK{Session: gSession, Resume: gResume, Resumed: true, Heartbeat: 25, MaxFrame: wire.MaxFrameBytes, LastSeq: gSeq - 1}},
		{up(gUtterance, time.Second), &wire.Utterance{Text: "get me two oat lattes", Lang: "en", PTT: true}},
		{down(gSeq, 2*time.Second), &wire.ConfirmRequest{
			Tx: gTx, Terms: terms, Hash: hash, Text: goldenPromptText(terms),
			Methods: []wire.Method{wire.MethodTap, wire.MethodVoice},
		}},
		// The same command spoken: the gateway finds the end of speech at 1850 ms.
		{up(gUtterance, 200*time.Millisecond), &wire.AudioStart{
			Stream: gStream, Codec: wire.CodecOpus.String(), Rate: 48000, Mode: wire.ModeCommand, PTT: true, VAD: true, Lang: "en",
		}},
		{up(gAudioEnd, 1850*time.Millisecond), &wire.AudioEnd{Stream: gStream, Reason: wire.EndVAD}},
		{down(0, 1920*time.Millisecond), &wire.SpeechResult{
			Stream: gStream, Ref: gUtterance, Mode: wire.ModeCommand, Outcome: wire.SpeechAccepted, Text: "get me two oat lattes",
		}},
		{down(0, 2030*time.Millisecond), &wire.PromptAudio{
			Tx: gTx, Stream: gPromptStream, Codec: wire.CodecPCM.String(), Rate: 16000, Duration: gPromptMS, Text: goldenPromptText(terms),
		}},
		{down(0, 2031*time.Millisecond), &wire.TurnMetrics{
			Ref: gUtterance, Tx: gTx, Stream: gStream, Recognizer: "pocketsphinx",
			SpeechMS: 1600, FinalMS: 70, AgentMS: 150, PromptMS: 180, FirstAudio: 181,
		}},
		{up(gAck, 2100*time.Millisecond), &wire.Ack{Seq: gSeq}},
		{up(gConfirm, 6*time.Second), confirm},
		{down(gSeq+2, 7*time.Second), &wire.TxResult{
			Tx: gTx, State: wire.TxRedeemed, Mandate: gMandate, Amount: 1100, Currency: "USD", Ref: gUtterance,
		}},
		{up(gStatus, 9*time.Second), &wire.TxStatus{Tx: gTx}},
		{up(gCancel, 12*time.Second), &wire.TxCancel{Tx: gTx, Reason: "cancel my order"}},
		{up(gPINSet, 13*time.Second), &wire.PINSet{Salt: gPINSalt, Pub: pinPub(t, "1234", gPINSalt)}},
		{down(gSeq+3, 13*time.Second+50*time.Millisecond), &wire.PINSetOK{Ref: gPINSet}},
		{down(gSeq+4, 14*time.Second), &wire.Notice{Text: "Your two oat lattes are ready at the counter.", Agent: "Blue Bottle", Tx: gTx}},
		{wire.Envelope{Device: dev, Session: gSession, TS: ms(gNow.Add(8*time.Second + 10*time.Millisecond))}, &wire.Error{
			Code: wire.CodeAlreadyDecided, Message: "this purchase was already decided", Retry: wire.CodeAlreadyDecided.Retryable(),
			Ref: gConfirmAgain, Tx: gTx,
		}},
		{up(gPing, 20*time.Second), &wire.Ping{}},
		{down(0, 20*time.Second+5*time.Millisecond), &wire.Pong{}},
	}
}

// pinPub is the public PIN key of pin with salt.
func pinPub(t *testing.T, pin, salt string) string {
	t.Helper()
	k, err := identity.PINKey(pin, salt)
	if err != nil {
		t.Fatal(err)
	}
	return identity.EncodePublic(k.Public().(ed25519.PublicKey))
}

// goldenFrames encodes the golden messages as pretty-printed frames.
func goldenFrames(t *testing.T) map[wire.Type][]byte {
	t.Helper()
	out := make(map[wire.Type][]byte)
	for _, m := range goldenMessages(t) {
		frame, err := wire.Encode(m.h, m.b)
		if err != nil {
			t.Fatalf("encode %s: %v", m.b.Type(), err)
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, frame, "", "  "); err != nil {
			t.Fatalf("indent %s: %v", m.b.Type(), err)
		}
		buf.WriteByte('\n')
		out[m.b.Type()] = buf.Bytes()
	}
	return out
}

// TestGoldenFiles checks that the files under wiretest/testdata are what the generator
// makes; with -update it rewrites them.
func TestGoldenFiles(t *testing.T) {
	frames := goldenFrames(t)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for typ, b := range frames {
			if err := os.WriteFile(filepath.Join(goldenDir, string(typ)+".json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, b := range goldenAudioFrames(t) {
			if err := os.WriteFile(filepath.Join(goldenDir, "frame."+name+".bin"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for name, want := range goldenAudioFrames(t) {
		got, err := os.ReadFile(filepath.Join(goldenDir, "frame."+name+".bin"))
		if err != nil {
			t.Errorf("frame %s: %v (run go test ./device/wire -run TestGoldenFiles -update)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("frame %s: golden file is stale (run go test ./device/wire -run TestGoldenFiles -update)\ngot  %x\nwant %x", name, got, want)
		}
	}
	for typ, want := range frames {
		got, err := os.ReadFile(filepath.Join(goldenDir, string(typ)+".json"))
		if err != nil {
			t.Errorf("%s: %v (run go test ./device/wire -run TestGoldenFiles -update)", typ, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: golden file is stale (run go test ./device/wire -run TestGoldenFiles -update)\ngot:\n%s\nwant:\n%s", typ, got, want)
		}
	}
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		typ := wire.Type(filepath.Base(f[:len(f)-len(".json")]))
		if _, ok := frames[typ]; !ok {
			t.Errorf("%s: no generator for this golden; remove it or add a message", f)
		}
	}
	entries, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	audio := goldenAudioFrames(t)
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".json") {
			continue
		}
		frame, ok := strings.CutPrefix(name, "frame.")
		frame, ok2 := strings.CutSuffix(frame, ".bin")
		if _, gen := audio[frame]; !ok || !ok2 || !gen {
			t.Errorf("%s: no generator for this file; remove it or add a frame", name)
		}
	}
}

// goldenAudioFrames builds the golden binary audio frames: a frame of the spoken
// command's Opus stream where speech starts, and the last frame of the spoken prompt.
func goldenAudioFrames(t *testing.T) map[string][]byte {
	t.Helper()
	packet, err := hex.DecodeString(gOpusPacket)
	if err != nil {
		t.Fatal(err)
	}
	opus, err := wire.AppendAudioFrame(nil, wire.AudioHeader{
		Codec: wire.CodecOpus, Flags: wire.FlagSpeechStart, Rate: 48000, Stream: gStream, Seq: 2, TS: 40,
	}, packet)
	if err != nil {
		t.Fatalf("opus frame: %v", err)
	}
	// The prompt is spoken in 100 ms frames; its last 10 ms fade out: 160 samples of a
	// 250 Hz triangle wave (integer arithmetic, so the bytes are the same everywhere).
	pcm := make([]byte, 0, 320)
	for i := range 160 {
		phase := i % 64
		v := phase*4 - 64
		if phase >= 32 {
			v = 192 - phase*4
		}
		pcm = binary.LittleEndian.AppendUint16(pcm, uint16(int16(v*(160-i)/8)))
	}
	last, err := wire.AppendAudioFrame(nil, wire.AudioHeader{
		Codec: wire.CodecPCM, Flags: wire.FlagEnd, Rate: 16000, Stream: gPromptStream, Seq: 42, TS: 4200,
	}, pcm)
	if err != nil {
		t.Fatalf("pcm frame: %v", err)
	}
	return map[string][]byte{wiretest.FrameOpus: opus, wiretest.FramePCM: last}
}

// TestGoldensCoverEveryType fails when a message type is added without a golden.
func TestGoldensCoverEveryType(t *testing.T) {
	goldens := wiretest.Goldens()
	known := wire.KnownTypes()
	slices.Sort(known)
	for _, typ := range known {
		if _, ok := goldens[typ]; !ok {
			t.Errorf("type %q has no golden in wiretest/testdata", typ)
		}
		if wire.NewBody(typ) == nil {
			t.Errorf("type %q is known but NewBody returns nil", typ)
		}
	}
	for typ := range goldens {
		if !typ.Known() {
			t.Errorf("golden %q is not a known type", typ)
		}
	}
	if len(goldens) != len(known) {
		t.Errorf("%d goldens for %d types", len(goldens), len(known))
	}
}

// TestGoldensDecode checks every golden decodes, validates and re-encodes to the same
// JSON value.
func TestGoldensDecode(t *testing.T) {
	for typ, golden := range wiretest.Goldens() {
		t.Run(string(typ), func(t *testing.T) {
			if !bytes.Contains(golden, []byte("\n  \"")) || !bytes.HasSuffix(golden, []byte("}\n")) {
				t.Errorf("golden is not pretty-printed with a final newline")
			}
			e, err := wire.Decode(golden)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if e.Type != typ || !e.Known() || e.V != wire.Version {
				t.Fatalf("envelope: type %q known %v v %d", e.Type, e.Known(), e.V)
			}
			b := wire.NewBody(e.Type)
			if err := wire.DecodeBody(e, b); err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			frame, err := wire.Encode(e, b)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !sameJSON(t, frame, golden) {
				t.Errorf("re-encoded frame differs:\n%s\nwant the same JSON as:\n%s", frame, golden)
			}
		})
	}
}

// TestGoldenConsent checks the consent goldens tell the truth: the prompt's hash is its
// terms' hash, and the confirm is a valid signature by the golden key over that hash.
func TestGoldenConsent(t *testing.T) {
	var req wire.ConfirmRequest
	decodeGolden(t, wire.TypeConfirmRequest, &req)
	var c wire.Confirm
	decodeGolden(t, wire.TypeConfirm, &c)

	hash, err := req.Terms.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if hash != req.Hash {
		t.Errorf("confirm.request hash %q, terms hash to %q", req.Hash, hash)
	}
	if req.Terms.Merchant.ID != "earshot-coffee" || req.Terms.Total != 1100 || req.Terms.Items[0].Qty != 2 {
		t.Errorf("terms are not 2 oat lattes from earshot-coffee: %+v", req.Terms)
	}
	key := wiretest.DeviceKey()
	if req.Terms.Device != key.DeviceID() {
		t.Errorf("terms for device %q, golden key is %q", req.Terms.Device, key.DeviceID())
	}
	if c.Tx != req.Tx || c.Hash != req.Hash {
		t.Errorf("confirm (%s, %s) does not answer the prompt (%s, %s)", c.Tx, c.Hash, req.Tx, req.Hash)
	}
	if err := identity.VerifyConfirm(key.Public(), key.DeviceID(), &c); err != nil {
		t.Errorf("golden confirm does not verify: %v", err)
	}
}

func decodeGolden(t *testing.T, typ wire.Type, b wire.Body) wire.Envelope {
	t.Helper()
	e, err := wire.Decode(wiretest.Golden(typ))
	if err != nil {
		t.Fatalf("decode golden %s: %v", typ, err)
	}
	if err := wire.DecodeBody(e, b); err != nil {
		t.Fatalf("decode golden %s body: %v", typ, err)
	}
	return e
}
