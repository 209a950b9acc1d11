package mqtt

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the transport's collectors.
type Metrics struct {
	Uplink        prometheus.Counter     // uplink and status messages delivered to the bridge
	Downlink      prometheus.Counter     // downlink messages published
	PublishFailed prometheus.Counter     // downlink publishes the broker connection could not take
	ShardFull     prometheus.Counter     // deliveries that waited for a full shard queue
	Dropped       *prometheus.CounterVec // messages ignored, by reason
	Sessions      prometheus.Counter     // sessions opened by hello
	Refused       *prometheus.CounterVec // connections and sessions refused, by code
	Closed        *prometheus.CounterVec // sessions closed by the gateway, by code
	ACLDenied     *prometheus.CounterVec // ACL refusals, by action (publish, subscribe)
	Connected     prometheus.GaugeFunc   // set by the embedded broker: connected clients
	BrokerUp      prometheus.Gauge       // external broker: 1 while connected
	Reconnects    prometheus.Counter     // external broker: connections after the first
}

// NewMetrics returns unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Uplink: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_mqtt_uplink_total", Help: "Device messages (uplink and status) received over MQTT.",
		}),
		Downlink: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_mqtt_downlink_total", Help: "Messages published to device downlink topics.",
		}),
		PublishFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_mqtt_publish_failed_total", Help: "Downlink publishes the broker connection could not take (kept in the outbox).",
		}),
		ShardFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_mqtt_shard_full_total", Help: "Uplink deliveries that waited because their worker's queue was full.",
		}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_mqtt_dropped_total", Help: "Device messages ignored, by reason.",
		}, []string{"reason"}),
		Sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_mqtt_sessions_total", Help: "Device sessions opened by hello over MQTT.",
		}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_mqtt_refused_total", Help: "MQTT connections and sessions refused, by code.",
		}, []string{"code"}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_mqtt_closed_total", Help: "MQTT device sessions closed by the gateway, by code.",
		}, []string{"code"}),
		ACLDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_mqtt_acl_denied_total", Help: "Publishes and subscriptions refused by the device ACL.",
		}, []string{"action"}),
		BrokerUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "earshot_mqtt_broker_connected", Help: "1 while the gateway is connected to the external broker.",
		}),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_mqtt_broker_reconnects_total", Help: "Connections to the external broker after the first.",
		}),
	}
}

// Collectors lists every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{m.Uplink, m.Downlink, m.PublishFailed, m.ShardFull, m.Dropped,
		m.Sessions, m.Refused, m.Closed, m.ACLDenied, m.BrokerUp, m.Reconnects}
	if m.Connected != nil {
		cs = append(cs, m.Connected)
	}
	return cs
}
