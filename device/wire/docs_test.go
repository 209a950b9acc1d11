package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/device/wire/wiretest"
)

// protocolDoc reads docs/protocol.md, or skips when the package is used outside the
// repository.
func protocolDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/protocol.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("docs/protocol.md not found")
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProtocolDoc keeps docs/protocol.md true to the code: it carries every golden
// verbatim, its example frames decode, and its tables name every code and state.
func TestProtocolDoc(t *testing.T) {
	doc := protocolDoc(t)
	for typ, g := range wiretest.Goldens() {
		if !strings.Contains(doc, "```json\n"+string(g)+"```") {
			t.Errorf("docs/protocol.md does not carry the %s golden verbatim", typ)
		}
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(doc, -1)
	frames := 0
	for _, m := range blocks {
		block := []byte(m[1])
		if !bytes.Contains(block, []byte(`"v":`)) && !bytes.Contains(block, []byte(`"v": `)) {
			continue
		}
		frames++
		e, err := wire.Decode(block)
		if err != nil {
			t.Errorf("example frame does not decode: %v\n%s", err, block)
			continue
		}
		b := wire.NewBody(e.Type)
		if b == nil {
			t.Errorf("example frame of unknown type %q", e.Type)
			continue
		}
		if err := wire.DecodeBody(e, b); err != nil {
			t.Errorf("example %s body: %v\n%s", e.Type, err, block)
			continue
		}
		if c, ok := b.(*wire.Confirm); ok {
			checkDocConfirm(t, c)
		}
	}
	if frames < len(wiretest.Goldens()) {
		t.Errorf("only %d example frames in docs/protocol.md", frames)
	}
	if !strings.Contains(doc, goldenCanonical) || !strings.Contains(doc, goldenHash) {
		t.Errorf("docs/protocol.md does not show the golden terms' canonical form and hash")
	}
	if !strings.Contains(doc, fmt.Sprintf("(one line, %d bytes)", len(goldenCanonical))) {
		t.Errorf("docs/protocol.md gives the wrong length for the canonical terms")
	}
	for c, name := range wire.NamedCodes() {
		if c == wire.CodeUnknown {
			continue
		}
		if !strings.Contains(doc, fmt.Sprintf("| %d | `%s` |", c, name)) {
			t.Errorf("docs/protocol.md has no row for code %d %s", c, name)
		}
	}
	for _, typ := range wire.KnownTypes() {
		if !strings.Contains(doc, fmt.Sprintf("| [`%s`](#", typ)) {
			t.Errorf("docs/protocol.md has no row for message %s in the messages table", typ)
		}
	}
	for _, s := range []wire.TxState{wire.TxReceived, wire.TxRequested, wire.TxPrompted, wire.TxConfirmed,
		wire.TxMandated, wire.TxRedeemed, wire.TxDeclined, wire.TxExpired, wire.TxRejected, wire.TxFailed} {
		final := "no"
		if s.Final() {
			final = "**yes**"
		}
		if !strings.Contains(doc, fmt.Sprintf("| `%s` | %s |", s, final)) {
			t.Errorf("docs/protocol.md has no row for state %s (final %s)", s, final)
		}
	}
	for _, lim := range []string{
		fmt.Sprint(wire.MaxFrameBytes), fmt.Sprintf("%d bytes (`MaxIDBytes`)", wire.MaxIDBytes),
		fmt.Sprintf("%d bytes (`MaxTextBytes`)", wire.MaxTextBytes), fmt.Sprintf("%d bytes (`MaxTokenBytes`)", wire.MaxTokenBytes),
		fmt.Sprintf("%d bytes (`MaxNameBytes`)", wire.MaxNameBytes), fmt.Sprintf("1 to %d (`MaxItems`)", wire.MaxItems),
		fmt.Sprint(wire.MaxAmount), wire.Subprotocol, wire.ConfirmContext,
	} {
		if !strings.Contains(doc, lim) {
			t.Errorf("docs/protocol.md does not mention %q", lim)
		}
	}
}

// checkDocConfirm checks that a confirm shown in the doc is the golden key's valid
// signature, so firmware makers can test their signing against it.
func checkDocConfirm(t *testing.T, c *wire.Confirm) {
	t.Helper()
	key := wiretest.DeviceKey()
	if err := identity.VerifyConfirm(key.Public(), key.DeviceID(), c); err != nil {
		want := *c
		key.SignConfirm(&want)
		t.Errorf("docs/protocol.md shows a confirm (%s, %s) the golden key did not sign: %v; its sig would be %s",
			c.Decision, c.Method, err, want.Sig)
	}
}

// TestProtocolDocAudio keeps the audio section true to the code: the header, codec
// and flag tables, the limits, and the golden frames' headers.
func TestProtocolDocAudio(t *testing.T) {
	doc := protocolDoc(t)
	var rates []string
	for _, r := range wire.SampleRates {
		rates = append(rates, fmt.Sprint(r))
	}
	for _, want := range []string{
		fmt.Sprintf("**%d-byte header**", wire.AudioHeaderBytes),
		fmt.Sprintf("at most %d bytes (`MaxAudioPayload`)", wire.MaxAudioPayload),
		fmt.Sprintf("| 0 | 1 | version | `%d`;", wire.AudioVersion),
		fmt.Sprintf("| %d | `%s` | signed 16-bit little-endian mono samples; an even number of bytes | %s Hz |",
			wire.CodecPCM, wire.CodecPCM, strings.Join(rates, ", ")),
		fmt.Sprintf("| %d | `%s` | one Opus packet", wire.CodecOpus, wire.CodecOpus),
		fmt.Sprintf("| `FlagEnd` | `%#02x` |", wire.FlagEnd),
		fmt.Sprintf("| `FlagSpeechStart` | `%#02x` |", wire.FlagSpeechStart),
		fmt.Sprintf("| `FlagSpeechEnd` | `%#02x` |", wire.FlagSpeechEnd),
		"`" + string(wire.EndPTT) + "`", "`" + string(wire.EndVAD) + "`", "`" + string(wire.EndCancel) + "`",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/protocol.md does not say %q", want)
		}
	}
	for _, o := range []wire.SpeechOutcome{wire.SpeechAccepted, wire.SpeechNotUnderstood, wire.SpeechNoSpeech, wire.SpeechCancelled} {
		if !strings.Contains(doc, fmt.Sprintf("| `%s` |", o)) {
			t.Errorf("docs/protocol.md has no row for outcome %s", o)
		}
	}
	for _, a := range []wire.Answer{wire.AnswerApprove, wire.AnswerDecline, wire.AnswerRepeat, wire.AnswerPIN} {
		if !strings.Contains(doc, fmt.Sprintf("| `%s` |", a)) {
			t.Errorf("docs/protocol.md has no row for answer %s", a)
		}
	}
	for name, frame := range wiretest.AudioFrames() {
		header := fmt.Sprintf("```\n% x\n```", frame[:wire.AudioHeaderBytes])
		if !strings.Contains(doc, header) {
			t.Errorf("docs/protocol.md does not show the %s golden frame's header:\n%s", name, header)
		}
		if size := fmt.Sprintf("frame.%s.bin` (%d bytes)", name, len(frame)); !strings.Contains(doc, size) {
			t.Errorf("docs/protocol.md does not give the size of the %s golden frame as %q", name, size)
		}
	}
}
