package voice

import (
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the speech layer's Prometheus collectors.
type Metrics struct {
	Streams            *prometheus.CounterVec   // audio streams opened, by mode and codec
	Outcomes           *prometheus.CounterVec   // speech results, by mode and outcome
	Stages             *prometheus.HistogramVec // seconds from the end of speech to each stage
	SpeechSeconds      prometheus.Histogram     // length of the utterances (to end of speech)
	RealTime           prometheus.Histogram     // recognition time over audio duration
	AudioDropped       *prometheus.CounterVec   // uplink audio frames dropped, by reason
	AudioGaps          prometheus.Counter       // uplink frames whose seq skipped
	Capped             prometheus.Counter       // utterances cut at the profile's cap
	Busy               prometheus.Counter       // utterances refused: every worker busy
	Refusals           *prometheus.CounterVec   // audio events refused, by code
	PromptsDropped     prometheus.Counter       // prompts whose audio was not spoken
	PromptAudioSeconds prometheus.Counter       // prompt audio sent
}

// NewMetrics returns unregistered collectors.
func NewMetrics() *Metrics {
	stageBuckets := []float64{.01, .025, .05, .1, .2, .35, .5, .75, 1, 1.5, 2.5, 5, 10}
	return &Metrics{
		Streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_voice_streams_total", Help: "Audio streams opened by devices, by mode and codec.",
		}, []string{"mode", "codec"}),
		Outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_voice_results_total", Help: "Speech results, by mode and outcome.",
		}, []string{"mode", "outcome"}),
		Stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "earshot_voice_turn_stage_seconds", Buckets: stageBuckets,
			Help: "Seconds from the end of speech to each stage of a turn: final (recogniser), agent (prompt terms), prompt (audio synthesised), first_audio (first prompt audio frame sent).",
		}, []string{"stage"}),
		SpeechSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "earshot_voice_speech_seconds", Help: "Length of utterances up to the end of speech.",
			Buckets: []float64{.5, 1, 1.5, 2, 3, 4, 6, 8, 10},
		}),
		RealTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "earshot_voice_recognition_realtime_factor", Help: "Recognition time divided by audio duration.",
			Buckets: []float64{.01, .02, .05, .1, .2, .5, 1, 2},
		}),
		AudioDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_voice_audio_dropped_total", Help: "Uplink audio frames or packets dropped, by reason.",
		}, []string{"reason"}),
		AudioGaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_voice_audio_gaps_total", Help: "Uplink audio frames whose seq was not the next one.",
		}),
		Capped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_voice_capped_total", Help: "Utterances cut at their profile's maximum length.",
		}),
		Busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_voice_busy_total", Help: "Utterances refused because every recognition worker was busy.",
		}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "earshot_voice_refusals_total", Help: "Audio events refused, by code.",
		}, []string{"code"}),
		PromptsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_voice_prompts_unspoken_total", Help: "Prompts whose audio was not spoken (queue overflow or synthesis failure); their text was sent.",
		}),
		PromptAudioSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "earshot_voice_prompt_audio_seconds_total", Help: "Seconds of prompt audio sent to devices.",
		}),
	}
}

// Collectors lists every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Streams, m.Outcomes, m.Stages, m.SpeechSeconds, m.RealTime, m.AudioDropped,
		m.AudioGaps, m.Capped, m.Busy, m.Refusals, m.PromptsDropped, m.PromptAudioSeconds}
}

func (m *Metrics) outcome(mode wire.SpeechMode, o wire.SpeechOutcome) {
	m.Outcomes.WithLabelValues(string(mode), string(o)).Inc()
}
func (m *Metrics) stage(name string, d time.Duration) {
	m.Stages.WithLabelValues(name).Observe(d.Seconds())
}
func (m *Metrics) refused(c wire.Code) { m.Refusals.WithLabelValues(c.String()).Inc() }
