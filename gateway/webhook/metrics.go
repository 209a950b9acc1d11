package webhook

import "github.com/prometheus/client_golang/prometheus"

// Delivery results, the values of the result label of earshot_webhook_deliveries_total.
const (
	ResultOK    = "ok"    // answered 2xx, acknowledged
	ResultRetry = "retry" // refused or failed; will be tried again
	ResultDead  = "dead"  // dead-lettered: acknowledged without a 2xx and skipped
)

// Dead-letter reasons, the values of the reason label of earshot_webhook_dead_letters_total.
const (
	deadMaxAge   = "max_age"   // still refused Config.MaxAge after the event happened
	deadTooLarge = "too_large" // body over MaxBody
	deadPayload  = "payload"   // event cannot be encoded or signed
)

// Metrics are the webhook dispatcher's Prometheus collectors.
type Metrics struct {
	// Deliveries counts delivery attempts by result: ok, retry or dead.
	Deliveries *prometheus.CounterVec
	// DeadLetters counts dead-lettered events by reason: max_age, too_large, payload.
	DeadLetters *prometheus.CounterVec
	// Endpoints is the number of endpoints with a running worker.
	Endpoints prometheus.Gauge
	// Latency observes the duration of each POST attempt, answered or not.
	Latency prometheus.Histogram
	// Errors counts failures of the event log and of the endpoint list, by operation
	// (events, acked, ack, endpoints); each is retried.
	Errors *prometheus.CounterVec
}

// NewMetrics returns unregistered collectors; Register them with a registry.
func NewMetrics() *Metrics {
	return &Metrics{
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_webhook_deliveries_total", Help: "Webhook delivery attempts, by result (ok, retry, dead).",
		}, []string{"result"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_webhook_dead_letters_total", Help: "Events skipped without a 2xx, by reason (max_age, too_large, payload).",
		}, []string{"reason"}),
		Endpoints: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "earshot_webhook_endpoints", Help: "Webhook endpoints with a running delivery worker.",
		}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "earshot_webhook_delivery_seconds", Help: "Duration of webhook POST attempts.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_webhook_source_errors_total", Help: "Failed reads and writes of the event log and endpoint list, by operation.",
		}, []string{"op"}),
	}
}

// Collectors lists every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Deliveries, m.DeadLetters, m.Endpoints, m.Latency, m.Errors}
}

func (m *Metrics) delivery(result string) { m.Deliveries.WithLabelValues(result).Inc() }
func (m *Metrics) dead(reason string) {
	m.Deliveries.WithLabelValues(ResultDead).Inc()
	m.DeadLetters.WithLabelValues(reason).Inc()
}
func (m *Metrics) sourceError(op string) { m.Errors.WithLabelValues(op).Inc() }
