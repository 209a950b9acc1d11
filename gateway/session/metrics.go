package session

import (
	"github.com/earshot/earshot/authz/risk"
	"github.com/earshot/earshot/device/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the session core's Prometheus collectors.
type Metrics struct {
	Connected    *prometheus.GaugeVec
	Utterances   prometheus.Counter
	Prompts      prometheus.Counter
	Decisions    *prometheus.CounterVec
	Final        *prometheus.CounterVec
	Refusals     *prometheus.CounterVec
	Downlink     prometheus.Counter
	Redemptions  *prometheus.CounterVec
	AgentRetries *prometheus.CounterVec
	Backlog      prometheus.Counter
	Cancels      *prometheus.CounterVec
	Risk         *prometheus.CounterVec
	RiskReasons  *prometheus.CounterVec
	PINs         *prometheus.CounterVec
	Tips         *prometheus.CounterVec
}

// NewMetrics returns unregistered collectors; Register them with a registry.
func NewMetrics() *Metrics {
	return &Metrics{
		Connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "earshot_devices_connected", Help: "Devices with a live connection, by transport.",
		}, []string{"transport"}),
		Utterances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_utterances_total", Help: "Utterances that opened a transaction.",
		}),
		Prompts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_prompts_total", Help: "Consent prompts sent to devices.",
		}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_decisions_total", Help: "Verified user decisions on prompts.",
		}, []string{"decision"}),
		Final: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_transactions_final_total", Help: "Transactions that reached a final state.",
		}, []string{"state"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_device_refusals_total", Help: "Device requests refused, by code.",
		}, []string{"code"}),
		Downlink: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_downlink_frames_total", Help: "Sequenced downlink frames written to connections (re-sends included).",
		}),
		Redemptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_redemptions_total", Help: "Mandate redemption attempts, by result.",
		}, []string{"result"}),
		AgentRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_agent_delivery_retries_total", Help: "Events the embedded agent refused (its queue was full) and was handed again, by event type.",
		}, []string{"type"}),
		Backlog: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_agent_backlog_refusals_total", Help: "Utterances refused because their agent had too many events it had not taken.",
		}),
		Cancels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_cancels_total", Help: "Cancellations asked for by devices, by the mandate state they led to.",
		}, []string{"state"}),
		Risk: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_risk_decisions_total", Help: "Risk decisions on purchase requests, by outcome (allow, step_up, refuse).",
		}, []string{"outcome"}),
		RiskReasons: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_risk_reasons_total", Help: "Risk rules that fired, by reason code.",
		}, []string{"reason"}),
		PINs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_pin_checks_total", Help: "PIN checks on confirmations, by result (ok, wrong, locked).",
		}, []string{"result"}),
		Tips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_tips_total", Help: "Tips requested by agents, by how they were consented (cap, prompt).",
		}, []string{"consent"}),
	}
}

// Collectors lists every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Connected, m.Utterances, m.Prompts, m.Decisions, m.Final, m.Refusals, m.Downlink, m.Redemptions, m.AgentRetries, m.Backlog, m.Cancels,
		m.Risk, m.RiskReasons, m.PINs, m.Tips}
}

func (m *Metrics) connected(transport string, d float64) {
	m.Connected.WithLabelValues(transport).Add(d)
}
func (m *Metrics) utterance()               { m.Utterances.Inc() }
func (m *Metrics) prompt()                  { m.Prompts.Inc() }
func (m *Metrics) decision(d wire.Decision) { m.Decisions.WithLabelValues(string(d)).Inc() }
func (m *Metrics) final(s wire.TxState)     { m.Final.WithLabelValues(string(s)).Inc() }
func (m *Metrics) refused(c wire.Code)      { m.Refusals.WithLabelValues(c.String()).Inc() }
func (m *Metrics) downlink()                { m.Downlink.Inc() }
func (m *Metrics) redemption(result string) { m.Redemptions.WithLabelValues(result).Inc() }
func (m *Metrics) backlogRefusal()          { m.Backlog.Inc() }
func (m *Metrics) agentRetry(typ string)    { m.AgentRetries.WithLabelValues(typ).Inc() }
func (m *Metrics) cancel(state string)      { m.Cancels.WithLabelValues(state).Inc() }
func (m *Metrics) pin(result string)        { m.PINs.WithLabelValues(result).Inc() }
func (m *Metrics) tip(consent string)       { m.Tips.WithLabelValues(consent).Inc() }

// risk counts a risk decision and the reasons that fired.
func (m *Metrics) risk(d risk.Decision) {
	m.Risk.WithLabelValues(d.Outcome.String()).Inc()
	for _, r := range d.Reasons {
		m.RiskReasons.WithLabelValues(r.Code).Inc()
	}
}
