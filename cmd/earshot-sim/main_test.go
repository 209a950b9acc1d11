package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/earshot/earshot/device/client/clienttest"
)

func TestCLI(t *testing.T) {
	g := clienttest.New(clienttest.Config{PromptTTL: 300 * time.Millisecond})
	t.Cleanup(g.Close)
	data := t.TempDir()
	if err := g.WriteAdminToken(data); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad-total.yaml")
	if err := os.WriteFile(bad, []byte("name: bad-total\nsteps:\n  - say: buy two oat lattes\n  - expect_prompt: {total: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	scenarios, err := filepath.Glob("../../firmware-sim/scenarios/*.yaml")
	if err != nil || len(scenarios) == 0 {
		t.Fatal("no scenarios", err)
	}
	flags := []string{"--gateway", g.URL(), "--data-dir", data, "--timeout", "3s"}
	tests := []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"say confirm", append([]string{"say", "buy two oat lattes", "--confirm"}, flags...), 0,
			[]string{"Earshot Coffee asks you to approve", "2 x Oat latte", "Total USD 11.00", "redeemed (final), mandate mnd_", "amount USD 11.00"}},
		{"say decline on a kiosk", append([]string{"say", "--decline", "a large americano", "--kind", "kiosk"}, flags...), 0,
			[]string{"kiosk dev_", "declined (final)"}},
		{"say not understood", append([]string{"say", "play some music", "--confirm"}, flags...), 1,
			[]string{"rejected (final), code not_understood"}},
		{"run shipped scenarios", append(append([]string{"run"}, flags...), scenarios...), 0,
			[]string{"PASS glasses-buy-coffee (", "PASS kiosk-order-declined (", "PASS prompt-expires (", "PASS not-understood ("}},
		{"run a failing scenario", append([]string{"run", bad}, flags...), 1,
			[]string{"FAIL bad-total (", "total 1100 (USD 11.00), want 1", "0 passed, 1 failed"}},
		{"help", []string{"help"}, 0, []string{"earshot-sim say TEXT", "-pairing-code"}},
		{"say without a decision", []string{"say", "hi"}, 2, nil},
		{"run without files", []string{"run"}, 2, nil},
		{"unknown command", []string{"fly"}, 2, nil},
		{"unknown kind", append([]string{"say", "hi", "--confirm", "--kind", "toaster"}, flags...), 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if code := run(ctx, tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, s := range tt.out {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
		})
	}
}
