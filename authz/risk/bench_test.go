package risk

import (
	"context"
	"testing"
)

// BenchmarkDecide is one decision under the default policy for a glasses purchase
// with what the user said, every rule evaluated.
func BenchmarkDecide(b *testing.B) {
	p := Default()
	req := request()
	req.Said = &Said{MaxAmount: 2000, SKUs: []string{"latte-oat", "croissant"}}
	h := &fakeHistory{spent: 1000, purchases: 2}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := p.Decide(ctx, req, h)
		if err != nil || d.Outcome != OutcomeAllow {
			b.Fatalf("Decide = %+v, %v", d, err)
		}
	}
}

// BenchmarkParse is reading the default rule file.
func BenchmarkParse(b *testing.B) {
	f := DefaultFile()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(f); err != nil {
			b.Fatal(err)
		}
	}
}
