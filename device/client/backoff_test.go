package client

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt  int
		rnd      float64
		min, max time.Duration
	}{
		{0, 0, 125 * time.Millisecond, 125 * time.Millisecond},
		{0, 0.999, 125 * time.Millisecond, 250 * time.Millisecond},
		{1, 0, 250 * time.Millisecond, 250 * time.Millisecond},
		{3, 0.5, 1500 * time.Millisecond, 1500 * time.Millisecond},
		{10, 0, 2500 * time.Millisecond, 2500 * time.Millisecond},
		{100, 0.999, 2500 * time.Millisecond, 5 * time.Second},
	}
	for _, tt := range tests {
		cfg := Config{MinBackoff: defaultMinBackoff, MaxBackoff: defaultMaxBackoff, Rand: func() float64 { return tt.rnd }}
		if got := cfg.backoff(tt.attempt); got < tt.min || got > tt.max {
			t.Errorf("backoff(%d) with rand %v = %s, want %s..%s", tt.attempt, tt.rnd, got, tt.min, tt.max)
		}
	}
}
