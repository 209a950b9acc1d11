package wire

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// Hello opens a session. On transports that authenticate at connect (WebSocket upgrade,
// MQTT CONNECT) Token may be empty.
type Hello struct {
	Token string `json:"token,omitempty"` // signed device token (see device/identity)
	// Resume is the resume token from an earlier hello.ok; with it the session continues
	// and LastAck is honoured. Without it a new session starts and every unacknowledged
	// downlink message is sent again.
	Resume  string     `json:"resume,omitempty"`
	LastAck uint64     `json:"last_ack,omitempty"`
	Client  ClientInfo `json:"client"`
	// PromptAudio asks for every prompt spoken as well as written: prompt.audio and
	// binary audio frames follow each confirm.request (WebSocket and WebRTC only).
	PromptAudio bool `json:"prompt_audio,omitempty"`
}

// ClientInfo describes the firmware, for logs and metrics.
type ClientInfo struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// HelloOK accepts a hello.
type HelloOK struct {
	Session   string `json:"session"`
	Resume    string `json:"resume"`  // present it in the next hello to resume
	Resumed   bool   `json:"resumed"` // true when the session continued
	Heartbeat int    `json:"heartbeat_s"`
	MaxFrame  int    `json:"max_frame"`
	// LastSeq is the newest downlink seq the gateway has assigned for this device.
	LastSeq uint64 `json:"last_seq"`
}

// Utterance is what the user said, as text (the device did its own ASR, or typed).
// The envelope's ID identifies it: a repeated utterance with the same ID is one.
type Utterance struct {
	Text string `json:"text"`
	Lang string `json:"lang,omitempty"` // BCP 47, default "en"
	// PTT is true when the user pressed push-to-talk or said the wake word; purchases
	// from ambient speech are refused.
	PTT bool `json:"ptt"`
}

// ConfirmRequest is the consent prompt for one transaction. The device shows or speaks
// Text, recomputes Hash from Terms (see Terms.Hash) and refuses the prompt if they
// differ, then signs the hash with the user's decision (see Confirm).
type ConfirmRequest struct {
	Tx      string   `json:"tx"`
	Terms   Terms    `json:"terms"`
	Hash    string   `json:"hash"`
	Text    string   `json:"text"`
	Methods []Method `json:"methods"` // verification methods the gateway accepts
	// Ref is the id of the utterance the transaction came from, when there was one.
	Ref string `json:"ref,omitempty"`
	// Binding is set when the approval is on the user's phone (MethodPhone): the short
	// code BindingCode(Hash), shown on both the device that asked and the phone, so the
	// user approves the purchase they made. A phone receives the prompt of another
	// device (Terms.Device) with it; it checks the code itself.
	Binding string `json:"binding,omitempty"`
	// PINSalt is set when MethodPIN is allowed: the user's PIN salt, base64url, from
	// which the device derives the PIN key (identity.PINKey) that signs Confirm.PINSig.
	PINSalt string `json:"pin_salt,omitempty"`
}

// BindingCode is the four-digit binding message of a prompt with terms hash h: the
// first four bytes of the hash, big-endian, modulo 10000. Both devices compute it.
func BindingCode(h string) string {
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil || len(b) < 4 {
		return ""
	}
	return fmt.Sprintf("%04d", binary.BigEndian.Uint32(b)%10000)
}

// Decision is the user's answer to a prompt.
type Decision string

// Decisions.
const (
	DecisionApprove Decision = "approve"
	DecisionDecline Decision = "decline"
)

// Method is how the user verified a decision.
type Method string

// Verification methods.
const (
	MethodTap    Method = "tap"    // touchpad or screen tap
	MethodVoice  Method = "voice"  // a spoken "confirm"
	MethodButton Method = "button" // a physical button
	MethodPIN    Method = "pin"    // a PIN on the device
	MethodPhone  Method = "phone"  // approval on the paired phone
)

func (m Method) valid() bool {
	switch m {
	case MethodTap, MethodVoice, MethodButton, MethodPIN, MethodPhone:
		return true
	}
	return false
}

// Confirm carries the user's signed decision on a prompt.
type Confirm struct {
	Tx       string   `json:"tx"`
	Hash     string   `json:"hash"`
	Decision Decision `json:"decision"`
	Method   Method   `json:"method"`
	Sig      string   `json:"sig"` // base64url Ed25519 signature over SigningInput
	// PINSig is, with MethodPIN, a second signature over SigningInput, by the key
	// derived from the PIN the user typed and the prompt's PINSalt. The PIN itself
	// never leaves the device.
	PINSig string `json:"pin_sig,omitempty"`
}

// ConfirmContext prefixes every signed confirmation, so a signature made for earshot
// cannot be replayed as anything else.
const ConfirmContext = "earshot/confirm/v1"

// SigningInput is the exact byte string the device signs with its key: the context, the
// device id, the transaction, the terms hash, the decision and the method, one per line.
func (c *Confirm) SigningInput(device string) []byte {
	return fmt.Appendf(nil, "%s\n%s\n%s\n%s\n%s\n%s", ConfirmContext, device, c.Tx, c.Hash, c.Decision, c.Method)
}

// TxState is a transaction's state as the device sees it.
type TxState string

// Transaction states. Final states are marked.
const (
	TxReceived  TxState = "received"  // the utterance arrived
	TxRequested TxState = "requested" // the agent proposed a purchase
	TxPrompted  TxState = "prompted"  // the prompt was sent to the device
	TxConfirmed TxState = "confirmed" // the user approved; a mandate follows
	TxMandated  TxState = "mandated"  // a mandate was issued to the agent
	TxRedeemed  TxState = "redeemed"  // final: the agent redeemed the mandate
	TxDeclined  TxState = "declined"  // final: the user declined
	TxExpired   TxState = "expired"   // final: the prompt expired unanswered
	TxRejected  TxState = "rejected"  // final: not understood or refused before the prompt
	TxFailed    TxState = "failed"    // final: something failed after consent
	// After a redemption the user may cancel until the cancel window closes
	// (TxResult.SettleAfter); then the payment settles.
	TxCancelling TxState = "cancelling" // the user cancelled; the merchant must confirm
	TxCancelled  TxState = "cancelled"  // final: cancelled, before or after the redemption
	TxSettled    TxState = "settled"    // final: the payment settled
)

// Final reports whether no further transition can follow.
func (s TxState) Final() bool {
	switch s {
	case TxRedeemed, TxDeclined, TxExpired, TxRejected, TxFailed, TxCancelled, TxSettled:
		return true
	}
	return false
}

// TxResult reports a transaction's state: pushed when it changes, and sent in answer
// to tx.status.
type TxResult struct {
	Tx       string  `json:"tx"`
	State    TxState `json:"state"`
	Code     Code    `json:"code,omitempty"`     // why, for rejected, expired, failed
	Reason   string  `json:"reason,omitempty"`   // device-visible text
	Mandate  string  `json:"mandate,omitempty"`  // mandate id (jti), once issued
	Amount   Amount  `json:"amount,omitempty"`   // redeemed amount, minor units
	Currency string  `json:"currency,omitempty"` // ISO 4217
	Ref      string  `json:"ref,omitempty"`      // the utterance id the transaction came from
	// SettleAfter ends the cancel window of a redeemed payment, Unix milliseconds.
	SettleAfter int64 `json:"settle_after,omitempty"`
	// Receipt is the signed receipt of the mandate's latest transition: a compact JWS
	// (typ earshot-receipt+jwt) verifiable with the gateway's JWKS.
	Receipt string `json:"receipt,omitempty"`
}

// TxCancel is the user's "cancel my order": before the redemption it revokes the
// mandate; after it, inside the cancel window, it asks the merchant to cancel.
type TxCancel struct {
	Tx     string `json:"tx"`
	Reason string `json:"reason,omitempty"` // what the user said, for the merchant
}

// PINSet sets the user's PIN, from the user's phone: the device picks a random salt,
// derives the PIN key (identity.PINKey) and sends only the salt and the key's public
// half. The gateway answers with PINSetOK, or an error naming the message.
type PINSet struct {
	Salt string `json:"salt"` // base64url, 16 to 64 bytes
	Pub  string `json:"pub"`  // base64url Ed25519 public key
}

// PINSetOK acknowledges a PINSet.
type PINSetOK struct {
	Ref string `json:"ref"` // the PINSet's message id
}

// Notice is a message from the user's agent for the device to show or speak ("your
// order is ready at the counter"). It asks nothing and moves no money.
type Notice struct {
	Text string `json:"text"`
	// Agent is the name of the agent that sent it, as the user knows it.
	Agent string `json:"agent"`
	// Tx is the transaction it is about, if any.
	Tx string `json:"tx,omitempty"`
}

// MaxNoticeBytes bounds a notice's text.
const MaxNoticeBytes = 500

// TxStatus asks for a transaction's current state.
type TxStatus struct {
	Tx string `json:"tx"`
}

// Ack acknowledges every downlink message up to and including Seq.
type Ack struct {
	Seq uint64 `json:"seq"`
}

// Ping asks for a Pong; either side may send it.
type Ping struct{}

// Pong answers a Ping.
type Pong struct{}

func (*Hello) Type() Type          { return TypeHello }
func (*HelloOK) Type() Type        { return TypeHelloOK }
func (*Utterance) Type() Type      { return TypeUtterance }
func (*ConfirmRequest) Type() Type { return TypeConfirmRequest }
func (*Confirm) Type() Type        { return TypeConfirm }
func (*TxResult) Type() Type       { return TypeTxResult }
func (*TxStatus) Type() Type       { return TypeTxStatus }
func (*TxCancel) Type() Type       { return TypeTxCancel }
func (*PINSet) Type() Type         { return TypePINSet }
func (*PINSetOK) Type() Type       { return TypePINSetOK }
func (*Notice) Type() Type         { return TypeNotice }
func (*Ack) Type() Type            { return TypeAck }
func (*Error) Type() Type          { return TypeError }
func (*Ping) Type() Type           { return TypePing }
func (*Pong) Type() Type           { return TypePong }

func (h *Hello) Validate() error {
	return firstErr(
		maxLen("token", h.Token, MaxTokenBytes), maxLen("resume", h.Resume, MaxTokenBytes),
		maxLen("client.name", h.Client.Name, MaxNameBytes), maxLen("client.version", h.Client.Version, MaxNameBytes),
	)
}

func (h *HelloOK) Validate() error {
	return firstErr(required("session", h.Session), maxLen("session", h.Session, MaxIDBytes),
		required("resume", h.Resume), maxLen("resume", h.Resume, MaxTokenBytes))
}

func (u *Utterance) Validate() error {
	return firstErr(required("text", u.Text), maxLen("text", u.Text, MaxTextBytes), maxLen("lang", u.Lang, 35))
}

func (c *ConfirmRequest) Validate() error {
	if err := firstErr(id("tx", c.Tx), id("hash", c.Hash), maxLen("ref", c.Ref, MaxIDBytes),
		required("text", c.Text), maxLen("text", c.Text, MaxTextBytes), maxLen("binding", c.Binding, 16),
		maxLen("pin_salt", c.PINSalt, 128)); err != nil {
		return err
	}
	if len(c.Methods) == 0 || len(c.Methods) > 5 {
		return fmt.Errorf("methods: %d given, want 1 to 5", len(c.Methods))
	}
	for _, m := range c.Methods {
		if !m.valid() {
			return fmt.Errorf("methods: unknown method %q", m)
		}
	}
	return c.Terms.Validate()
}

func (c *Confirm) Validate() error {
	if err := firstErr(id("tx", c.Tx), id("hash", c.Hash), required("sig", c.Sig), maxLen("sig", c.Sig, 128),
		maxLen("pin_sig", c.PINSig, 128)); err != nil {
		return err
	}
	if c.Decision != DecisionApprove && c.Decision != DecisionDecline {
		return fmt.Errorf("decision: %q, want %q or %q", c.Decision, DecisionApprove, DecisionDecline)
	}
	if !c.Method.valid() {
		return fmt.Errorf("method: unknown method %q", c.Method)
	}
	return nil
}

func (r *TxResult) Validate() error {
	if r.State == "" {
		return errors.New("state: required")
	}
	return firstErr(id("tx", r.Tx), maxLen("state", string(r.State), MaxIDBytes), maxLen("reason", r.Reason, MaxTextBytes),
		maxLen("mandate", r.Mandate, MaxIDBytes), maxLen("ref", r.Ref, MaxIDBytes), r.Amount.validate("amount"),
		optionalCurrency(r.Currency))
}

func (s *TxStatus) Validate() error { return id("tx", s.Tx) }

// Salt and key sizes of a PINSet, decoded.
const (
	MinPINSaltBytes = 16
	MaxPINSaltBytes = 64
)

func (p *PINSet) Validate() error {
	salt, err := base64.RawURLEncoding.DecodeString(p.Salt)
	if err != nil || len(salt) < MinPINSaltBytes || len(salt) > MaxPINSaltBytes {
		return fmt.Errorf("salt: want %d to %d bytes of unpadded base64url", MinPINSaltBytes, MaxPINSaltBytes)
	}
	pub, err := base64.RawURLEncoding.DecodeString(p.Pub)
	if err != nil || len(pub) != 32 {
		return errors.New("pub: want a 32-byte Ed25519 public key in unpadded base64url")
	}
	return nil
}

func (p *PINSetOK) Validate() error { return id("ref", p.Ref) }
func (n *Notice) Validate() error {
	if err := required("text", n.Text); err != nil {
		return err
	}
	if n.Tx != "" {
		if err := id("tx", n.Tx); err != nil {
			return err
		}
	}
	return firstErr(maxLen("text", n.Text, MaxNoticeBytes), maxLen("agent", n.Agent, 64))
}
func (c *TxCancel) Validate() error {
	return firstErr(id("tx", c.Tx), maxLen("reason", c.Reason, MaxTextBytes))
}
func (a *Ack) Validate() error { return nil }
func (*Ping) Validate() error  { return nil }
func (*Pong) Validate() error  { return nil }

func (e *Error) Validate() error {
	if e.Code == CodeUnknown {
		return errors.New("code: required")
	}
	return firstErr(maxLen("message", e.Message, MaxTextBytes), maxLen("ref", e.Ref, MaxIDBytes), maxLen("tx", e.Tx, MaxIDBytes))
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func required(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s: required", field)
	}
	return nil
}

func maxLen(field, v string, limit int) error {
	if len(v) > limit {
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, field, len(v), limit)
	}
	return nil
}

// id checks an identifier: present, within MaxIDBytes, and free of control characters
// and spaces (so a newline cannot shift fields in a signing input).
func id(field, v string) error {
	if err := firstErr(required(field, v), maxLen(field, v, MaxIDBytes)); err != nil {
		return err
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] == 0x7f {
			return fmt.Errorf("%s: control character or space at byte %d", field, i)
		}
	}
	return nil
}

func optionalCurrency(c string) error {
	if c == "" {
		return nil
	}
	return ValidCurrency(c)
}
