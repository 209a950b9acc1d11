package sim_test

import (
	"os"
	"testing"

	"github.com/earshot/earshot/firmware-sim/internal/gatewayproc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	gatewayproc.Cleanup()
	os.Exit(code)
}
