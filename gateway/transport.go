package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/earshot/earshot/gateway/mqtt"
	"github.com/earshot/earshot/gateway/registry"
	"github.com/earshot/earshot/gateway/rtc"
	"github.com/earshot/earshot/gateway/ws"
	"github.com/prometheus/client_golang/prometheus"
)

// TransportsPath tells devices where each transport is.
const TransportsPath = "/v1/transports"

// MQTTSecretFile is the broker secret's file name in the data directory: the
// gateway's password at an external broker, and the bearer token the broker's auth
// plugin presents to mqtt.AuthPath.
const MQTTSecretFile = "mqtt.secret"

// mqttTransport is the embedded or the external broker.
type mqttTransport interface {
	Start() error
	Close() error
	URL() string
}

// buildMQTT creates the configured MQTT transport, registers its metrics and, for
// an external broker, the auth endpoint its plugin calls.
func (s *Server) buildMQTT(reg *registry.Registry, promReg *prometheus.Registry, mux *http.ServeMux) error {
	mc := s.cfg.MQTT
	if mc.Disabled {
		return nil
	}
	m := mqtt.NewMetrics()
	if mc.Broker == "" {
		listen := mc.Listen
		if listen == "" {
			listen = "127.0.0.1:1883"
			if portZero(s.cfg.Listen) {
				listen = "127.0.0.1:0"
			}
		}
		e, err := mqtt.NewEmbedded(mqtt.EmbeddedConfig{Core: s.core, Registry: reg, Listen: listen, Logger: s.cfg.Logger, Metrics: m})
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		s.mqtt = e
	} else {
		secret, err := loadOrCreateSecret(filepath.Join(s.cfg.DataDir, MQTTSecretFile))
		if err != nil {
			return err
		}
		tc, err := brokerTLS(mc)
		if err != nil {
			return err
		}
		x, err := mqtt.NewExternal(mqtt.ExternalConfig{
			Core: s.core, Registry: reg, Broker: mc.Broker, TLS: tc, Password: secret,
			DeviceURL: mc.DeviceURL, Logger: s.cfg.Logger, Metrics: m,
		})
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		s.mqtt = x
		mux.Handle("POST "+mqtt.AuthPath, mqtt.AuthHandler(reg, secret, m, s.cfg.Logger.With("component", "mqtt")))
	}
	promReg.MustRegister(m.Collectors()...)
	return nil
}

func portZero(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

// brokerTLS builds the TLS configuration for an ssl:// broker from files.
func brokerTLS(mc MQTTConfig) (*tls.Config, error) {
	if mc.CAFile == "" && mc.CertFile == "" && mc.KeyFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if mc.CAFile != "" {
		pem, err := os.ReadFile(mc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: MQTT CA: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("gateway: MQTT CA %s: no PEM certificate in it", mc.CAFile)
		}
	}
	if (mc.CertFile == "") != (mc.KeyFile == "") {
		return nil, fmt.Errorf("gateway: MQTT client certificate and key go together")
	}
	if mc.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(mc.CertFile, mc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: MQTT client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// MQTTURL is the broker URL devices are told to use, or "" when MQTT is off.
func (s *Server) MQTTURL() string {
	switch {
	case s.mqtt == nil:
		return ""
	case s.cfg.MQTT.DeviceURL != "":
		return s.cfg.MQTT.DeviceURL
	}
	return s.mqtt.URL()
}

// Transports is the answer of GET /v1/transports.
type Transports struct {
	WS     string `json:"ws"`
	MQTT   string `json:"mqtt,omitempty"`
	WebRTC string `json:"webrtc,omitempty"` // the WHIP endpoint, as a whip:// URL
	// Recognizer names the speech recogniser, "none" when devices must send text.
	Recognizer string `json:"recognizer"`
}

func (s *Server) transports(w http.ResponseWriter, r *http.Request) {
	t := Transports{WS: "ws://" + r.Host + ws.Path, MQTT: s.MQTTURL(), Recognizer: s.voice.Recognizer()}
	if s.rtc != nil {
		t.WebRTC = "whip://" + r.Host + WHIPPath
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(t) // a client that left cannot be answered
}

// buildRTC creates the WHIP endpoint, unless WebRTC is disabled.
func (s *Server) buildRTC(reg *registry.Registry, promReg *prometheus.Registry, mux *http.ServeMux) error {
	wc := s.cfg.WebRTC
	if wc.Disabled {
		return nil
	}
	loopback := isLoopback(s.cfg.Listen)
	if wc.Loopback != nil {
		loopback = *wc.Loopback
	}
	r, err := rtc.New(rtc.Config{
		Voice: s.voice, Registry: reg, Logger: s.cfg.Logger, Loopback: loopback,
		NAT1To1IPs: wc.NAT1To1IPs, UDPPortMin: wc.UDPPortMin, UDPPortMax: wc.UDPPortMax,
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	s.rtc = r
	mux.Handle(WHIPPath, r)
	mux.Handle(WHIPPath+"/", r)
	promReg.MustRegister(r.Metrics().Collectors()...)
	return nil
}

// WHIPPath is where devices open WebRTC sessions (RFC 9725).
const WHIPPath = "/v1/whip"

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
