package sim

import (
	"fmt"
	"slices"

	"github.com/earshot/earshot/device/wire"
)

// Version is the simulated firmware version reported in hello.
const Version = "0.1.0"

// Kind is a kind of simulated device.
type Kind int

// Device kinds.
const (
	KindUnknown Kind = iota
	KindGlasses      // smart glasses: voice confirmation or a touchpad tap; the phone above a limit
	KindKiosk        // a retail kiosk: a screen tap; the user's PIN above a limit
	KindPhone        // the user's phone: approves the purchases of the user's other devices, sets the PIN
)

func (k Kind) String() string {
	switch k {
	case KindGlasses:
		return "glasses"
	case KindKiosk:
		return "kiosk"
	case KindPhone:
		return "phone"
	}
	return "unknown"
}

// ParseKind parses "glasses", "kiosk" or "phone".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "glasses":
		return KindGlasses, nil
	case "kiosk":
		return KindKiosk, nil
	case "phone":
		return KindPhone, nil
	}
	return KindUnknown, fmt.Errorf("sim: unknown device kind %q (want glasses, kiosk or phone)", s)
}

// Profile is what a kind of device can do.
type Profile struct {
	Kind Kind
	// Methods are the verification methods the hardware offers the user, preferred
	// first. On glasses wire.MethodPhone means the user approves on the paired phone
	// (the glasses sign nothing); on a kiosk wire.MethodPIN means the user types the
	// PIN (Config.PIN); on a phone it means approving another device's prompt.
	Methods []wire.Method
	// DefaultMethod is used when a confirmation names none and the prompt offers it;
	// otherwise the first of Methods the prompt offers. A decline that names none
	// always uses it.
	DefaultMethod wire.Method
	// Client is what the firmware reports in hello.
	Client wire.ClientInfo
}

// ProfileFor returns the profile of a kind of device.
func ProfileFor(k Kind) (Profile, error) {
	switch k {
	case KindGlasses:
		return Profile{Kind: k, Methods: []wire.Method{wire.MethodTap, wire.MethodVoice, wire.MethodPhone}, DefaultMethod: wire.MethodTap,
			Client: wire.ClientInfo{Name: "earshot-sim-glasses", Version: Version}}, nil
	case KindKiosk:
		return Profile{Kind: k, Methods: []wire.Method{wire.MethodTap, wire.MethodPIN}, DefaultMethod: wire.MethodTap,
			Client: wire.ClientInfo{Name: "earshot-sim-kiosk", Version: Version}}, nil
	case KindPhone:
		return Profile{Kind: k, Methods: []wire.Method{wire.MethodTap, wire.MethodPhone}, DefaultMethod: wire.MethodTap,
			Client: wire.ClientInfo{Name: "earshot-sim-phone", Version: Version}}, nil
	}
	return Profile{}, fmt.Errorf("sim: no profile for device kind %s", k)
}

// Supports reports whether the device can verify a user with m.
func (p Profile) Supports(m wire.Method) bool { return slices.Contains(p.Methods, m) }

// Transport is how a simulated device connects to the gateway.
type Transport int

// Transports.
const (
	TransportUnknown Transport = iota // the zero value: WebSocket
	TransportWS                       // WebSocket, at the gateway's /v1/device
	TransportMQTT                     // MQTT 3.1.1, through the gateway's broker
	TransportWebRTC                   // WebRTC by WHIP: events on a data channel, speech on an Opus track
)

func (t Transport) String() string {
	switch t {
	case TransportWS:
		return "ws"
	case TransportMQTT:
		return "mqtt"
	case TransportWebRTC:
		return "webrtc"
	}
	return "unknown"
}

// CarriesAudio reports whether a device can speak over t: WebSocket (binary frames)
// and WebRTC (an Opus track) carry audio, MQTT does not.
func (t Transport) CarriesAudio() bool {
	return t == TransportWS || t == TransportWebRTC || t == TransportUnknown
}

// ParseTransport parses "ws", "mqtt" or "webrtc".
func ParseTransport(s string) (Transport, error) {
	switch s {
	case "ws":
		return TransportWS, nil
	case "mqtt":
		return TransportMQTT, nil
	case "webrtc":
		return TransportWebRTC, nil
	}
	return TransportUnknown, fmt.Errorf("sim: unknown transport %q (want ws, mqtt or webrtc)", s)
}
