package asr

import "testing"

func TestSpeakerSettlesOnTheBestTotal(t *testing.T) {
	warps := []float64{1, 1.15, 1.3}
	s := NewSpeaker()
	// 1.3 wins two utterances by a little, 1.15 one by a lot: the total decides.
	fits := [][]float64{{-30, -31, -29}, {-30, -31, -29}, {-40, -20, -41}, {-30, -30, -30}}
	for _, f := range fits {
		s.learn(warps, f)
		if w := s.Warp(); w != 0 {
			t.Fatalf("settled on %v after fewer than %d utterances", w, settleAfter)
		}
	}
	s.learn(warps, []float64{-30, -30, -30})
	if w := s.Warp(); w != 1.15 {
		t.Fatalf("settled on %v, want 1.15 (the best total)", w)
	}
	s.learn(warps, []float64{0, -100, -100})
	if w := s.Warp(); w != 1.15 {
		t.Fatalf("a settled warp changed to %v", w)
	}
}

func TestSpeakerTieIsNeutral(t *testing.T) {
	s := NewSpeaker()
	for range settleAfter {
		s.learn([]float64{1, 1.3}, []float64{-25, -25})
	}
	if w := s.Warp(); w != 1 {
		t.Fatalf("a tie settled on %v, want the neutral 1", w)
	}
	var none *Speaker
	none.learn([]float64{1}, []float64{0})
	if none.Warp() != 0 {
		t.Fatal("a nil speaker has a warp")
	}
}
