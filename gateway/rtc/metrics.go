package rtc

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the transport's collectors.
type Metrics struct {
	Peers      prometheus.Gauge       // peer connections running
	Offers     *prometheus.CounterVec // WHIP offers, by result
	Closed     *prometheus.CounterVec // peers closed, by code
	RTPPackets prometheus.Counter     // audio RTP packets received
	RTPLost    prometheus.Counter     // audio RTP packets missing (sequence number gaps)
	RTPLate    prometheus.Counter     // audio RTP packets duplicated or out of order
	Messages   *prometheus.CounterVec // data channel messages, by direction and kind
	Overflow   prometheus.Counter     // peers closed because their send queue overflowed
}

// NewMetrics returns unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "earshot_rtc_peers", Help: "WebRTC peer connections running.",
		}),
		Offers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_rtc_offers_total",
			Help: "WHIP offers, by result: created, unauthorized, unsupported_media_type, too_large, bad_offer, busy, error.",
		}, []string{"result"}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_rtc_closed_total", Help: "WebRTC peers closed, by code (unknown: the device left or deleted the session).",
		}, []string{"code"}),
		RTPPackets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_rtc_rtp_packets_total", Help: "Audio RTP packets received.",
		}),
		RTPLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_rtc_rtp_lost_total", Help: "Audio RTP packets missing, from sequence number gaps.",
		}),
		RTPLate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_rtc_rtp_late_total", Help: "Audio RTP packets that arrived duplicated or out of order.",
		}),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_rtc_datachannel_messages_total", Help: "Data channel messages, by direction (in, out) and kind (text, binary).",
		}, []string{"direction", "kind"}),
		Overflow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_rtc_slow_consumer_total", Help: "Peers closed because their send queue overflowed.",
		}),
	}
}

// Collectors lists every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Peers, m.Offers, m.Closed, m.RTPPackets, m.RTPLost, m.RTPLate, m.Messages, m.Overflow}
}

func (m *Metrics) offer(result string) { m.Offers.WithLabelValues(result).Inc() }

func (m *Metrics) message(in, binary bool) {
	dir, kind := "out", "text"
	if in {
		dir = "in"
	}
	if binary {
		kind = "binary"
	}
	m.Messages.WithLabelValues(dir, kind).Inc()
}
